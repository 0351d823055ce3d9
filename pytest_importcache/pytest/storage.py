"""Import measurements as pytest-benchmark entries: their names and their ``extra_info``.

What a saved run holds for each measurement, so that pytest-benchmark's
table, files and comparisons, and this package's command line and reports,
read it. Handing the entries to pytest-benchmark is
:mod:`pytest_importcache.pytest.benchmark`'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_importcache.model.outcome import MeasurementOutcome
from pytest_importcache.render.runs import SELF_COST_KEYS

__all__ = ["benchmark_names", "extra_info"]


def benchmark_names(records: Sequence[MeasurementOutcome]) -> list[tuple[str, str]]:
    """(name, fullname) per record: ``test[module-flavour]`` and ``nodeid[module-flavour]``.

    The full name is what ``--benchmark-compare`` matches runs by, so it depends
    only on the test and the measurement. Instruction counts end in
    ``-instructions`` (``test[mylib-warm-instructions]``), so they are never
    compared with times. A test that measures the same module, flavour and
    metric again gets ``-2``, ``-3``... on the later ones.
    """
    seen: dict[str, int] = {}
    names = []
    for record in records:
        suffix = record.name_suffix
        key = f"{record.nodeid}[{suffix}]"
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            suffix += f"-{seen[key]}"
        names.append((f"{record.test_name}[{suffix}]", f"{record.nodeid}[{suffix}]"))
    return names


def extra_info(record: MeasurementOutcome) -> dict[str, Any]:
    """The ``extra_info`` of a measurement's benchmark entry.

    With a baseline revision, ``baseline`` holds the same-run comparison
    (:func:`~pytest_importcache.model.outcome.baseline_record`); ``noise`` says why
    the rounds cannot support the budget, when they cannot.
    """
    info = _plain_extra_info(record)
    if record.baseline is not None:
        info["baseline"] = record.baseline.to_json()
    if record.noise:
        info["noise"] = record.noise
    if record.reused is not None:
        # A count reused from the count store: when and where it was counted.
        info["reused"] = True
        info["counted_at"] = record.reused.counted_at
        info["counted_on"] = record.reused.counted_on
        info["count_store"] = record.reused.store
    return info


def _plain_extra_info(record: MeasurementOutcome) -> dict[str, Any]:
    return {
        "module": record.module,
        "flavour": record.flavour,
        "closure": record.closure,
        "label": record.label,
        "metric": record.metric,
        "stat": record.stat,
        "budget": record.budget,
        "modules_loaded": record.module_count,
        "slowest_modules": [
            {"module": row.name, "self": row.self_cost, "cumulative": row.cumulative_cost}
            for row in record.slowest
        ],
        SELF_COST_KEYS[record.metric]: record.self_costs,
        "python_version": record.python_version,
        # Enough to rebuild the outcome later (pytest-importcache report, history):
        # every module as [name, self, cumulative, importer], the verdict and the rounds.
        "import_tree": [row.to_json() for row in record.modules],
        "passed": record.verdict,
        "scale": record.scale,
        "values": list(record.values),  # each counted round's figure
        "file": record.file,
        "startup_modules": record.startup_modules,
        "lazy_modules": list(record.lazy_modules),
        "pending_lazy": list(record.pending_lazy),
        "reified": [{"module": module, "where": where} for module, where in record.reified],
        # Bytes: the highest round's peak resident memory, and a bare interpreter's.
        "peak_memory": record.peak_memory,
        "bare_peak_memory": record.bare_peak_memory,
        "command": record.command,
        "phases": {name: list(values) for name, values in record.phases},
        "lazy_imports": record.lazy_imports,
        "reified_in_run": [
            {"module": module, "where": where} for module, where in record.reified_in_run
        ],
    }
