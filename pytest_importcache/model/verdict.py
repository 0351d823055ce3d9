"""Verdicts: one budget against its measurements, judged limit by limit.

Pure functions of their arguments (no pytest, no processes): the pytest side,
``pytest-importcache check`` and the tests all judge through :func:`judge`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .units import headroom

if TYPE_CHECKING:
    from .budget import ImportBudget
    from .result import ImportResult

__all__ = [
    "Kind",
    "Verdict",
    "disallowed_modules",
    "forbidden_modules",
    "is_stdlib",
    "judge",
]

Kind = Literal["cold", "warm", "max_modules", "forbid", "allow", "max_memory"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one budget against one measurement.

    ``measured`` and ``limit`` are in the budget's metric (seconds or
    instructions) for cold and warm budgets, and module counts for
    ``max_modules``, bytes for ``max_memory``; ``forbidden`` lists (module,
    chain) pairs for ``forbid``, and the modules outside the standard library
    and every pattern for ``allow``. ``bare_memory`` is a bare interpreter's
    peak beside a ``max_memory`` verdict's (``None`` when unknown).
    """

    budget: ImportBudget
    kind: Kind
    passed: bool
    result: ImportResult
    measured: float = 0.0
    limit: float = 0.0
    stat: str = "min"
    scale: float = 1.0
    forbidden: tuple[tuple[str, tuple[str, ...]], ...] = ()
    bare_memory: int | None = None

    @property
    def headroom(self) -> float:
        """Fraction of the limit left over (negative when overspent)."""
        return headroom(self.measured, self.limit)


def forbidden_modules(result: ImportResult, patterns: Sequence[str]) -> list[str]:
    """Modules the import loaded whose names match one of the glob ``patterns``."""
    return [
        name
        for name in result.modules
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
    ]


def is_stdlib(name: str, stdlib: Collection[str]) -> bool:
    """Whether module ``name`` belongs to the standard library whose top-level names are ``stdlib``.

    ``__main__`` (a command's script or ``-c`` code) counts as part of the
    interpreter too.
    """
    return name == "__main__" or name.partition(".")[0] in stdlib


def disallowed_modules(
    result: ImportResult, patterns: Sequence[str], stdlib: Collection[str]
) -> list[str]:
    """Modules the import loaded outside the standard library that match none of ``patterns``.

    ``stdlib`` is the interpreter's ``sys.stdlib_module_names``. Patterns match
    as :func:`forbidden_modules`' do: ``"mylib"`` is ``mylib`` alone.
    """
    return [
        name
        for name in result.modules
        if not is_stdlib(name, stdlib)
        and not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)
    ]


def judge(
    budget: ImportBudget,
    results: Mapping[Literal["cold", "warm"], ImportResult],
    *,
    stat: str,
    scale: float | Mapping[str, float] = 1.0,
    stdlib: Collection[str] = frozenset(),
    memory: ImportResult | None = None,
    bare_memory: int | None = None,
) -> list[Verdict]:
    """Judge every limit of ``budget``; ``results`` maps ``"cold"``/``"warm"`` to measurements.

    Time budgets compare ``stat`` with the budget times ``scale`` (one factor, or
    one per flavour: ``{"cold": 1.2, "warm": 1.1}``); ``max_modules``,
    ``forbid`` and ``allow`` use any measurement (they do not depend on
    timing); ``allow`` takes the standard library's top-level names from
    ``stdlib``. ``max_memory`` is judged on the highest round's peak of the
    ``memory`` measurement (else the warm one, else the cold one), with
    ``bare_memory`` (a bare interpreter's peak) kept beside it.
    """
    verdicts: list[Verdict] = []
    for flavour in budget.timed_flavours:
        result = results[flavour]
        written = budget.cold if flavour == "cold" else budget.warm
        if written is None:
            continue  # a budget in the other unit: measured, not judged
        limit = written
        factor = scale if isinstance(scale, int | float) else scale[flavour]
        measured = result.statistic(stat)
        verdicts.append(
            Verdict(
                budget,
                flavour,
                measured <= limit * factor,
                result,
                measured=measured,
                limit=limit * factor,
                stat=stat,
                scale=factor,
            )
        )
    any_result = results.get("warm") or results["cold"]
    if budget.max_modules is not None:
        count = len(any_result.modules)
        verdicts.append(
            Verdict(
                budget,
                "max_modules",
                count <= budget.max_modules,
                any_result,
                measured=count,
                limit=budget.max_modules,
            )
        )
    if budget.forbid:
        found = forbidden_modules(any_result, budget.forbid)
        verdicts.append(
            Verdict(
                budget,
                "forbid",
                not found,
                any_result,
                forbidden=tuple((name, tuple(any_result.chain(name))) for name in found),
            )
        )
    if budget.allow:
        found = disallowed_modules(any_result, budget.allow, stdlib)
        verdicts.append(
            Verdict(
                budget,
                "allow",
                not found,
                any_result,
                forbidden=tuple((name, tuple(any_result.chain(name))) for name in found),
            )
        )
    if budget.max_memory is not None:
        memory_result = memory or any_result
        peak = memory_result.peak_memory_max
        verdicts.append(
            Verdict(
                budget,
                "max_memory",
                peak is not None and peak <= budget.max_memory,
                memory_result,
                measured=float(peak or 0),
                limit=budget.max_memory,
                bare_memory=bare_memory,
            )
        )
    return verdicts
