"""What a round reports: the imports it traced and its whole report, as typed records."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RoundReport", "TracedImport"]


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
    bytecode with the source file it was compiled from.
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
