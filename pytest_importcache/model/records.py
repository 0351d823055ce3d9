"""The records that cross the layers: a round's report, a tree row, a same-run baseline.

Frozen dataclasses, each with its JSON in one place (``to_json`` and the
``from_json`` that reads it back, checking every field): the count store keeps
round reports, outcomes carry tree rows and the same-run baseline from an xdist
worker to the controller and into pytest-benchmark's saved runs. A malformed
record is one :class:`~pytest_importcache.model.errors.RecordError` naming the
record and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import RecordError

__all__ = [
    "RoundReport",
    "SameRunBaseline",
    "TracedImport",
    "TreeRow",
    "pending_lazy_imports",
    "reified_lazy_imports",
    "reified_note",
    "typed",
]


def _shown(value: object) -> str:
    """``value`` as JSON, cut for a message."""
    return json.dumps(value, default=repr)[:80]


def typed(value: object, kind: type | tuple[type, ...], what: str) -> Any:
    """``value`` when it is a ``kind`` (a bool is no int), else :class:`RecordError`."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise RecordError(f"{what} is {type(value).__name__}")
    return value


def _field(fields: Mapping[str, Any], key: str, where: str) -> Any:
    """``fields[key]``, or :class:`RecordError` saying that ``where`` lacks it."""
    if key not in fields:
        raise RecordError(f"{where} has no {key!r}")
    return fields[key]


def cost_number(value: object, what: str) -> float:
    """``value`` as a figure (seconds or a count), or :class:`RecordError` saying ``what`` holds.

    A figure is a finite, non-negative number (a bool is none).
    """
    number = _float(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise RecordError(f"{what} is {_shown(value)}, not a non-negative number")
    return number


def _real(value: object, what: str) -> float:
    """``value`` as a number (a ratio or a change: any sign), or :class:`RecordError`."""
    number = _float(value)
    if number is None:
        raise RecordError(f"{what} is {_shown(value)}, not a number")
    return number


def _float(value: object) -> float | None:
    """``value`` as a float; ``None`` for what is no number (a bool, text) or too large for one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


@dataclass(frozen=True)
class TracedImport:
    """One import call the child saw.

    ``call_id`` numbers the calls; ``parent_id`` is the call it happened in
    (0 for none). ``loaded`` says whether this call loaded the module (it was
    not in ``sys.modules`` before and was after); ``cumulative_ns`` includes
    the calls made inside it, and so does ``cumulative_instructions``, counted
    in a detailed instructions round (``None`` otherwise).
    """

    call_id: int
    parent_id: int
    name: str
    loaded: bool
    cumulative_ns: int
    cumulative_instructions: int | None = None


@dataclass(frozen=True)
class RoundReport:
    """What one round measured: import wall and CPU time, origin, loaded modules, the tree.

    ``traced`` lists the imports in the order they completed; ``stderr`` is the
    child's whole stderr (the raw ``-X importtime`` output, the measured import
    between two marker lines). ``loaded`` are the
    modules the import executed, ``lazy`` those it created lazily but never
    executed, ``startup_modules`` how many modules were loaded before it began.
    ``instructions`` is the import's instruction count in an instructions round
    (``None`` in a time round; under valgrind the times are valgrind's, 50-100
    times slower than without it). ``inputs`` (instructions rounds) are the
    paths the count depends on, as (path, source): a module's file, a
    directory on the import path or that the importer listed, a ``.pth``
    file, a mapped binary or library, with source ``""``; a ``sys.path``
    entry, whose existence alone counts, with ``"<exists>"``; a module's
    bytecode with the source file it was compiled from. ``peak_memory`` is the
    round process's peak resident set in bytes (the child's ``VmHWM``, else
    ``os.wait4``'s ``ru_maxrss``),
    ``None`` when unknown (a made-up round, a platform without it). ``command``
    is a start-up round's key (``StartupCommand.key``; ``None`` for an import), and ``phases`` its
    figure split into named stretches (``("start-up", ns or instructions)``, ...).
    ``pending_lazy`` names
    the PEP 810 lazy imports (3.15+) still pending after the import: never
    executed, not in ``loaded`` (:func:`pending_lazy_imports`); ``reified``
    the lazy imports the import itself reified, as (module, ``"file.py:LINE"``)
    (:func:`reified_lazy_imports`). A start-up round's ``reified`` are those its
    entry module's import reified (the "import" phase); ``reified_in_run``
    those its command's run reified: the deferred cost landing at first use,
    expected, no problem (empty for an import round).
    """

    wall_ns: int
    cpu_ns: int
    origin: str
    loaded: tuple[str, ...]
    python_version: str
    traced: tuple[TracedImport, ...]
    stderr: str = ""
    lazy: tuple[str, ...] = ()
    startup_modules: int = 0
    instructions: int | None = None
    inputs: tuple[tuple[str, str], ...] = ()
    peak_memory: int | None = None
    command: str | None = None
    phases: tuple[tuple[str, int], ...] = ()
    pending_lazy: tuple[str, ...] = ()
    reified: tuple[tuple[str, str], ...] = ()
    reified_in_run: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types; ``inputs`` stay out (the count store's manifest holds them)."""
        return {
            "wall_ns": self.wall_ns,
            "cpu_ns": self.cpu_ns,
            "origin": self.origin,
            "loaded": list(self.loaded),
            "python_version": self.python_version,
            "traced": [
                [
                    call.call_id,
                    call.parent_id,
                    call.name,
                    call.loaded,
                    call.cumulative_ns,
                    call.cumulative_instructions,
                ]
                for call in self.traced
            ],
            "stderr": self.stderr,
            "lazy": list(self.lazy),
            "startup_modules": self.startup_modules,
            "instructions": self.instructions,
            "peak_memory": self.peak_memory,
            "command": self.command,
            "phases": [[name, value] for name, value in self.phases],
            "pending_lazy": list(self.pending_lazy),
            "reified": [list(pair) for pair in self.reified],
            "reified_in_run": [list(pair) for pair in self.reified_in_run],
        }

    @classmethod
    def from_json(cls, data: object) -> RoundReport:
        """The inverse of :meth:`to_json`; :class:`RecordError` names the bad field."""
        fields = typed(data, dict, "round report")

        def field(key: str) -> Any:
            return _field(fields, key, "round report")

        instructions = field("instructions")
        return cls(
            wall_ns=typed(field("wall_ns"), int, "wall_ns"),
            cpu_ns=typed(field("cpu_ns"), int, "cpu_ns"),
            origin=typed(field("origin"), str, "origin"),
            loaded=_strings(field("loaded"), "loaded"),
            python_version=typed(field("python_version"), str, "python_version"),
            traced=tuple(_traced_from_json(row) for row in typed(field("traced"), list, "traced")),
            stderr=typed(field("stderr"), str, "stderr"),
            lazy=_strings(field("lazy"), "lazy"),
            startup_modules=typed(field("startup_modules"), int, "startup_modules"),
            instructions=(
                None if instructions is None else typed(instructions, int, "instructions")
            ),
            # Added later: reports stored before them have none.
            peak_memory=_optional_int(fields.get("peak_memory"), "peak_memory"),
            command=_optional_str(fields.get("command"), "command"),
            phases=tuple(
                (typed(name, str, "phase name"), typed(value, int, "phase value"))
                for name, value in (
                    _pair(row, "phase") for row in typed(fields.get("phases", []), list, "phases")
                )
            ),
            # Absent from reports stored before PEP 810 was understood.
            pending_lazy=_strings(fields.get("pending_lazy", []), "pending_lazy"),
            reified=tuple(
                _string_pair(pair, "reified")
                for pair in typed(fields.get("reified", []), list, "reified")
            ),
            reified_in_run=tuple(
                _string_pair(pair, "reified_in_run")
                for pair in typed(fields.get("reified_in_run", []), list, "reified_in_run")
            ),
        )


def _optional_int(value: object, what: str) -> int | None:
    return None if value is None else typed(value, int, what)


def _optional_str(value: object, what: str) -> str | None:
    return None if value is None else typed(value, str, what)


def _pair(value: object, what: str) -> tuple[object, object]:
    row = typed(value, list, what)
    if len(row) != 2:
        raise RecordError(f"{what} {_shown(value)} does not have 2 fields")
    return row[0], row[1]


def _string_pair(value: object, what: str) -> tuple[str, str]:
    """``[text, text]`` as a pair, or :class:`RecordError` naming ``what``."""
    items = _strings(value, what)
    if len(items) != 2:
        raise RecordError(f"{what} holds {_shown(value)}, not a pair")
    return items[0], items[1]


def pending_lazy_imports(names: Iterable[str], loaded: Iterable[str] = ()) -> tuple[str, ...]:
    """The PEP 810 lazy imports still pending, from the names ``sys.lazy_modules`` added.

    ``sys.lazy_modules`` holds a name per pending ``lazy import a.b`` (``a``,
    ``a.b``) and per ``lazy from a import x`` (``a``, and ``a.x``, which may
    be an attribute): a name under a pending or ``loaded`` package is left out
    (the package says it), and so is a name in ``loaded``. Sorted.
    """
    known = set(loaded)
    pending = {name for name in names if name not in known}
    return tuple(
        sorted(
            name
            for name in pending
            if not any(parent in pending or parent in known for parent in _parents(name))
        )
    )


def _parents(name: str) -> list[str]:
    """``"a.b.c"``'s packages: ``["a", "a.b"]``."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


# Instructions under which importlib is asked for a pending lazy name without
# anything having used it: an import statement, or a call (importlib.import_module,
# __import__); any other (LOAD_NAME, LOAD_GLOBAL, LOAD_ATTR...) is a use.
_NOT_A_USE = ("IMPORT_NAME", "CALL")


def reified_lazy_imports(
    noted: Iterable[Sequence[str]],
) -> tuple[tuple[str, str], ...]:
    """The lazy imports a use reified, from the child's ``[module, "file:line", instruction]``.

    Notes taken under an import statement or a call are no reification. Of
    the modules reified at one place (``lazy import a.b`` reifies ``a.b``,
    then ``a``), the deepest is kept. In the order they happened.
    """
    uses = [
        (str(name), str(where))
        for name, where, instruction in noted
        if not str(instruction).startswith(_NOT_A_USE)
    ]
    kept: list[tuple[str, str]] = []
    for name, where in uses:
        deeper = [other for other, other_where in uses if other_where == where]
        if any(other.startswith(name + ".") for other in deeper):
            continue
        if (name, where) not in kept:
            kept.append((name, where))
    return tuple(kept)


def reified_note(module: str, where: str) -> str:
    """How a reified lazy import is shown: ``"mylib/core.py:12 reified lazy import decimal..."``."""
    return f"{where} reified lazy import {module} during the import"


def _traced_from_json(row: object) -> TracedImport:
    """One traced call from ``[call_id, parent_id, name, loaded, ns, instructions]``."""
    fields = typed(row, list, "traced")
    if len(fields) != 6:
        raise RecordError(f"traced call {_shown(row)} does not have 6 fields")
    call_id, parent_id, name, loaded, nanoseconds, instructions = fields
    return TracedImport(
        typed(call_id, int, "call id"),
        typed(parent_id, int, "parent id"),
        typed(name, str, "module name"),
        typed(loaded, bool, "loaded"),
        typed(nanoseconds, int, "nanoseconds"),
        None if instructions is None else typed(instructions, int, "instructions"),
    )


def _strings(value: object, what: str) -> tuple[str, ...]:
    return tuple(typed(item, str, what) for item in typed(value, list, what))


@dataclass(frozen=True)
class TreeRow:
    """One module of an import's tree: its self and cumulative cost, and its importer.

    The costs are in the measurement's metric (seconds or instructions);
    ``importer`` is the module whose import pulled this one in, ``None`` for a
    root (the measured module). Its JSON is ``[name, self, cumulative, importer]``.
    """

    name: str
    self_cost: float
    cumulative_cost: float
    importer: str | None

    def to_json(self) -> list[Any]:
        """``[name, self cost, cumulative cost, importer]``."""
        return [self.name, self.self_cost, self.cumulative_cost, self.importer]

    @classmethod
    def from_json(cls, data: object, where: str = "tree row") -> TreeRow:
        """The inverse of :meth:`to_json`; :class:`RecordError` prefixed with ``where``."""
        if not (isinstance(data, list | tuple) and len(data) == 4 and isinstance(data[0], str)):
            raise RecordError(f"{where}: {_shown(data)} is not a tree row")
        name, self_cost, cumulative, importer = data
        if importer is not None and not isinstance(importer, str):
            raise RecordError(f"{where}: the importer of {name!r} is not a module name")
        return cls(
            name,
            cost_number(self_cost, f"{where}: self cost of {name!r}"),
            cost_number(cumulative, f"{where}: cumulative cost of {name!r}"),
            importer,
        )


def _tree_from_json(rows: object, where: str) -> tuple[TreeRow, ...]:
    """Tree rows from a JSON list, or :class:`RecordError` naming ``where``."""
    if not isinstance(rows, list | tuple):
        raise RecordError(f"{where} is not a list")
    return tuple(TreeRow.from_json(row, where) for row in rows)


@dataclass(frozen=True)
class SameRunBaseline:
    """What an outcome keeps of a same-run comparison with a baseline revision.

    ``revision`` is the revision as the user named it and ``commit`` the commit
    it resolved to. ``ratio`` (head / base of ``statistic``) lies in ``low``..``high``
    with ``confidence``, by ``method`` and ``estimator``; ``head`` and ``base``
    are the two figures, ``head_values``/``base_values`` each side's rounds
    (seconds or counts) and ``head_median``/``base_median`` their medians.
    ``served`` names the files git ignores that both sides took from the
    working tree. ``slower`` says whether the whole interval lies above
    ``1 + threshold``, ``noise`` why it cannot decide (``""`` when it can).
    ``changed`` holds the modules whose self cost changed most, as (module,
    change, ``"new"``/``"gone"``/``""``); ``base_modules`` the base's whole
    tree, which the report draws the diff icicle against.
    """

    revision: str
    commit: str
    ratio: float
    low: float
    high: float
    confidence: float
    method: str
    statistic: str
    head: float
    base: float
    head_values: tuple[float, ...]
    base_values: tuple[float, ...]
    head_median: float
    base_median: float
    threshold: float
    slower: bool
    noise: str
    changed: tuple[tuple[str, float, str], ...] = ()
    base_modules: tuple[TreeRow, ...] = ()
    # Saved before these were recorded: the estimator of the time, nothing served.
    estimator: str = "pairs"
    served: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, ``changed`` and ``base_modules`` as lists of lists."""
        return {
            "revision": self.revision,
            "commit": self.commit,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "method": self.method,
            "estimator": self.estimator,
            "statistic": self.statistic,
            "head": self.head,
            "base": self.base,
            "head_values": list(self.head_values),
            "base_values": list(self.base_values),
            "head_median": self.head_median,
            "base_median": self.base_median,
            "served": list(self.served),
            "threshold": self.threshold,
            "slower": self.slower,
            "noise": self.noise,
            "changed": [list(change) for change in self.changed],
            "base_modules": [row.to_json() for row in self.base_modules],
        }

    @classmethod
    def from_json(cls, data: object, where: str = "baseline") -> SameRunBaseline:
        """The inverse of :meth:`to_json`; :class:`RecordError` prefixed with ``where``.

        ``estimator``, ``served``, ``changed`` and ``base_modules`` may be
        missing (a record saved before they were kept).
        """
        if not isinstance(data, dict):
            raise RecordError(f"{where} is {_shown(data)}, not an object")

        def field(key: str) -> Any:
            return _field(data, key, where)

        def number(key: str) -> float:
            return _real(field(key), f"{where}.{key}")

        def text(key: str, default: str | None = None) -> str:
            value = data.get(key, default) if default is not None else field(key)
            return str(typed(value, str, f"{where}.{key}"))

        def values(key: str) -> tuple[float, ...]:
            return tuple(
                cost_number(value, f"{where}.{key}")
                for value in typed(field(key), list, f"{where}.{key}")
            )

        # The tree first: the diff icicle is what a damaged record breaks.
        base_modules = _tree_from_json(data.get("base_modules", []), f"{where}.base_modules")
        return cls(
            revision=text("revision"),
            commit=text("commit"),
            ratio=number("ratio"),
            low=number("low"),
            high=number("high"),
            confidence=number("confidence"),
            method=text("method"),
            statistic=text("statistic"),
            head=number("head"),
            base=number("base"),
            head_values=values("head_values"),
            base_values=values("base_values"),
            head_median=number("head_median"),
            base_median=number("base_median"),
            threshold=number("threshold"),
            slower=typed(field("slower"), bool, f"{where}.slower"),
            noise=text("noise"),
            changed=tuple(
                _change_from_json(change, f"{where}.changed")
                for change in typed(data.get("changed", []), list, f"{where}.changed")
            ),
            base_modules=base_modules,
            estimator=text("estimator", "pairs"),
            served=_strings(data.get("served", []), f"{where}.served"),
        )


def _change_from_json(data: object, where: str) -> tuple[str, float, str]:
    """One ``[module, self-cost change, tag]`` of a baseline's ``changed``."""
    if not (isinstance(data, list | tuple) and len(data) == 3):
        raise RecordError(f"{where}: {_shown(data)} is not [module, change, tag]")
    name, delta, tag = data
    return (
        str(typed(name, str, f"{where}: module")),
        _real(delta, f"{where}: change of {name!r}"),
        str(typed(tag, str, f"{where}: tag of {name!r}")),
    )
