"""What an import left to PEP 810 (3.15+), in lines: its pending lazy imports, those it reified."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_importcache.model.records import reified_note

__all__ = ["PENDING_SHOWN", "REIFIED_SHOWN", "lazy_import_lines"]

# How many pending lazy imports a line names before "and N more".
PENDING_SHOWN = 8
# How many reified lazy imports get a line (under -X lazy_imports=all, every
# import the import uses at once is one): the JSON and extra_info hold them all.
REIFIED_SHOWN = 10


def lazy_import_lines(
    pending: Sequence[str],
    reified: Sequence[tuple[str, str]],
    module: str = "",
    in_run: Sequence[tuple[str, str]] = (),
) -> list[str]:
    """What an import left to PEP 810 (3.15+): its pending lazy imports, the ones it reified.

    ``lazy imports pending (not executed, not counted): decimal, fractions``,
    then one line per lazy import the import itself reified, where it did
    (``mylib/core.py:12 reified lazy import decimal during the import``): nothing
    was deferred there. The first :data:`REIFIED_SHOWN` of them, then how many
    more. ``module`` (``"mylib: "``) starts each line when given. ``in_run``
    (a start-up measurement's) are the lazy imports the command's run reified:
    the deferred cost landing at first use, expected; one line names them
    (``first use reified lazy imports (run phase): decimal (mylib/__init__.py:5)``).
    """
    start = f"{module}: " if module else ""
    lines = []
    if pending:
        shown = ", ".join(pending[:PENDING_SHOWN])
        more = len(pending) - PENDING_SHOWN
        shown += f" and {more} more" if more > 0 else ""
        lines.append(f"{start}lazy imports pending (not executed, not counted): {shown}")
    lines += [f"{start}{reified_note(name, where)}" for name, where in reified[:REIFIED_SHOWN]]
    if len(reified) > REIFIED_SHOWN:
        more = len(reified) - REIFIED_SHOWN
        lines.append(f"{start}and {more} more lazy imports reified during the import")
    if in_run:
        shown = ", ".join(f"{name} ({where})" for name, where in in_run[:REIFIED_SHOWN])
        more = len(in_run) - REIFIED_SHOWN
        shown += f" and {more} more" if more > 0 else ""
        lines.append(f"{start}first use reified lazy imports (run phase): {shown}")
    return lines
