"""``pytest-importcache MODULE`` once its arguments are good: measure, then print.

Loaded by :func:`pytest_importcache.cli.profile.run` only, so that ``--help``
and a usage error do not load the engine. Profiling measures cold and warm
(and closure-cold with ``--closure``) with the plugin's engine and defaults
(10 rounds after 1 warm-up round). ``--against REV`` also measures the
package as it was at git revision ``REV`` (see
:mod:`pytest_importcache.engine.against`), rounds interleaved with the working
tree's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from pytest_importcache.engine.against import measure_against
from pytest_importcache.engine.countstore import CountStore, default_store_path
from pytest_importcache.engine.locate import ImportLocationWarning
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.model.comparison import Comparison
from pytest_importcache.model.errors import ImportCacheError, LocateError
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import (
    DEFAULT_SLOWDOWN_THRESHOLD,
    Flavour,
    MeasurementSpec,
    metric_label,
)

from .cache import cache_dir_argument
from .common import PROG, WIDTH, UsageError
from .profile_output import (
    ALL_SUFFIX,
    add_comparisons_json,
    comparison_lines,
    profile_json,
    text_report,
)

__all__ = ["Progress", "measure_all", "path_hint", "profile"]

# How locate's error for a module found nowhere begins.
NOT_FOUND = "cannot find module "


class Progress:
    """A one-line progress bar on a terminal's stderr; silent elsewhere.

    With ``lines`` (``--progress``), a line per round instead, terminal or not.
    """

    def __init__(self, stream: IO[str], *, lines: bool = False) -> None:
        self.stream = stream
        self.lines = lines
        self.enabled = stream.isatty() and not lines
        self._since = time.monotonic()

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        """Redraw the bar for ``spec`` after round ``index`` (or print its line)."""
        if self.lines:
            now = time.monotonic()
            label = metric_label(spec.label, spec.metric)
            if index < spec.warmup:
                phase = f"warm-up round {index + 1} of {spec.warmup}"
            else:
                phase = f"round {index - spec.warmup + 1} of {spec.rounds}"
            self.stream.write(
                f"{PROG}: {spec.module} ({label}) {phase}: {now - self._since:.1f} s\n"
            )
            self.stream.flush()
            self._since = now
        if self.enabled:
            done, total = index + 1, spec.total_rounds
            label = f"{spec.module} ({spec.label})"
            filled = round(20 * done / total)
            bar = "#" * filled + "." * (20 - filled)
            self.stream.write(f"\r{label[:45]:<45} [{bar}] {done}/{total}")
            self.stream.flush()

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        """Nothing to show per result; the next round's time starts now."""
        self._since = time.monotonic()

    def clear(self) -> None:
        """Erase the bar."""
        if self.enabled:
            self.stream.write("\r" + " " * (WIDTH - 1) + "\r")
            self.stream.flush()


def measure_all(
    arguments: argparse.Namespace,
    flavours: list[tuple[Flavour, bool]],
    search_path: list[str] | None,
    progress: Progress,
    comparisons: dict[str, dict[str, Comparison]] | None = None,
) -> dict[str, dict[str, ImportResult]]:
    """Every flavour of every module on the command line, measured.

    With ``--against``, each is measured against the revision too (rounds
    interleaved), and the comparisons go into ``comparisons``.
    """
    measurer = Measurer(
        search_path=search_path, observers=[progress], count_store=_count_store(arguments)
    )
    results_by_module: dict[str, dict[str, ImportResult]] = {}
    try:
        for module in arguments.modules:
            results: dict[str, ImportResult] = {}
            for flavour, closure in flavours:
                spec = _spec(arguments, module, flavour, closure, arguments.lazy_imports)
                if comparisons is not None and arguments.against:
                    comparison = measure_against(measurer, spec, arguments.against)
                    comparisons.setdefault(module, {})[spec.label] = comparison
                    results[spec.label] = comparison.head
                else:
                    results[spec.label] = measurer.measure(spec)
            if arguments.lazy_imports == "compare":
                # After the normal measurements: an interpreter without PEP 810
                # fails here, in one line, once they are known to work.
                for flavour, closure in flavours:
                    spec = _spec(arguments, module, flavour, closure, "all")
                    results[spec.label + ALL_SUFFIX] = measurer.measure(spec)
            results_by_module[module] = results
    except (ImportCacheError, ValueError) as exc:
        message = str(exc).splitlines()[0]
        if isinstance(exc, LocateError) and message.startswith(NOT_FOUND):
            message += f"; {path_hint(arguments.path, arguments.modules)}"
        raise UsageError(message) from None
    finally:
        progress.clear()
    return results_by_module


def _spec(
    arguments: argparse.Namespace,
    module: str,
    flavour: Flavour,
    closure: bool,
    lazy_imports: str | None,
) -> MeasurementSpec:
    """The spec of one measurement the command line asks for; ``lazy_imports="all"`` or not."""
    return MeasurementSpec(
        module,
        flavour=flavour,
        closure=closure,
        python=arguments.python,
        rounds=arguments.rounds,
        warmup=arguments.warmup,
        timeout=arguments.timeout,
        metric=arguments.metric,
        lazy_imports="all" if lazy_imports == "all" else None,
    )


def path_hint(paths: Sequence[str], modules: Sequence[str]) -> str:
    """What to try when one of ``modules`` is found nowhere: ``--path``, pointed at the right
    directory (``paths``: the ``--path`` directories given)."""
    for directory in paths:
        given = Path(directory)
        if any(module.split(".")[0] == given.resolve().name for module in modules):
            holder = os.path.normpath(os.path.join(directory, os.pardir))
            return (
                f"--path {directory} names the package itself: give the directory that "
                f"holds it (--path {holder})"
            )
    if paths:
        searched = " ".join(f"--path {directory}" for directory in paths)
        return f"not in {searched} either: give the directory that holds the package"
    return "for a source tree that is not installed, add --path DIR (the directory holding it)"


def _store_warning(message: str) -> None:
    print(f"{PROG}: warning: {message.removeprefix('importcache: ')}", file=sys.stderr)


def _count_store(arguments: argparse.Namespace) -> CountStore:
    """The count store ``--store`` names (default: the per-user one), fresh with ``--fresh``."""
    if arguments.store is not None:
        directory = Path(arguments.store)
    else:
        directory = default_store_path(cache_dir_argument(None))
    return CountStore(directory, fresh=arguments.fresh, warn=_store_warning)


def _search_path_without_own_entry() -> list[str]:
    """``sys.path`` without the entry Python added for this command itself.

    That first entry is the script's directory (``pytest-importcache``) or the
    current directory (``python -m pytest_importcache``): where the command
    was started from, not where the user's modules are. Without it, both forms
    measure the same import (``--path`` names a source tree).
    """
    own_entry = not getattr(sys.flags, "safe_path", False)
    return sys.path[1:] if own_entry else list(sys.path)


def profile(arguments: argparse.Namespace) -> int:
    """Measure, print the report; 1 when ``--fail`` finds a flavour slower than the revision.

    ``arguments`` are the default action's, checked.
    """
    comparisons: dict[str, dict[str, Comparison]] = {}
    search_path = [*map(str, arguments.path), *_search_path_without_own_entry()]
    flavours: list[tuple[Flavour, bool]] = [("cold", False), ("warm", False)]
    if arguments.closure:
        flavours.append(("cold", True))
    progress = Progress(sys.stderr, lines=arguments.progress)
    # Which file is measured, when this process imported another one, is a note.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImportLocationWarning)
        results_by_module = measure_all(arguments, flavours, search_path, progress, comparisons)
    served = [
        comparison.served_note
        for by_label in comparisons.values()
        for comparison in by_label.values()
        if comparison.served
    ]
    for message in dict.fromkeys([*(str(warning.message) for warning in caught), *served]):
        print(f"{PROG}: note: {message}", file=sys.stderr)
    threshold = DEFAULT_SLOWDOWN_THRESHOLD if arguments.fail is None else arguments.fail
    if arguments.json:
        document = profile_json(results_by_module, arguments.lazy_imports)
        if comparisons:
            add_comparisons_json(document, comparisons, threshold)
        print(json.dumps(document, indent=2))
    else:
        blocks = [
            text_report(module, results, arguments.lazy_imports)
            + comparison_lines(comparisons.get(module, {}), threshold, arguments.fail is not None)
            for module, results in results_by_module.items()
        ]
        print("\n\n".join("\n".join(block) for block in blocks))
    slower = any(
        comparison.slower(threshold)
        for by_label in comparisons.values()
        for comparison in by_label.values()
    )
    return 1 if arguments.fail is not None and slower else 0
