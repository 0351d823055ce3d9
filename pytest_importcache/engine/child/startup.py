"""A start-up round's script: its first statement, then the round (``startup_round.py``).

Run by path (``python -I -S startup.py REPORT METRIC TOP ...``) as a console
script's wrapper is; it imports nothing from pytest_importcache. It takes the
first point and executes ``startup_round.py`` (beside it) in its own
namespace, which does the rest. Its
arguments, in order: the report's path, the metric (``time`` or
``instructions``), the package under test's top-level name, the number of
roots and the roots, the number of import path entries and the entries, the
number of source-only directories and the directories, then what to run:
``entry MODULE:ATTR``, ``module MODULE`` or ``code SNIPPET``, the wrapper
file's path (``""`` for none), then the
``sys.argv[0]`` the command sees and its arguments
(``startupround.startup_command`` writes them).

It runs the same clean start-up and tracer as an import round (``harness.py``,
read and executed as ``main.py`` does), then imports the entry module (for
``-m``, its package, and ``runpy``), then runs the command: the wrapper file the
console script's installer wrote, executed as ``__main__`` (it finds the
entry module imported, and its own imports are the command's; without a
Python wrapper the entry point is called as ``sys.exit(main())``), the
module run as ``__main__`` by ``runpy``, or the snippet executed as ``-c``
runs it. The tracer stays in for the whole process, so imports made while
running are in the tree.

It records *points* (``perf_counter_ns`` in a timed round, the number of a
callgrind fence in a counted one, which reads no clock): ``first`` (its
first statement), ``harness`` (the harness loaded: overhead), ``site`` (the
clean start-up done), ``import`` (the entry module imported), ``prelim``
(the first report written: overhead), ``end`` (the command returned or
raised) and ``report`` (the last report written: overhead). The measuring
side turns them into the phases. The first report, written before the command
runs, stands in when the command leaves by ``os._exit``; the last one is
written as the command's exception (``SystemExit`` too) leaves, which then
goes on to end the interpreter as it would have.
"""

import sys
from time import perf_counter_ns as _now

_counting = sys.argv[2] == "instructions"
# A counted round reads no clock: each read executes a varying number of instructions.
_first = 0 if _counting else _now()
if _counting:
    from os import getppid as _fence_function

    _fence_function()  # the first fence: callgrind's first dump is the interpreter's start-up
    # Without -I (a counted round): no script directory first on the path (3.10).
    if not getattr(sys.flags, "safe_path", False):
        del sys.path[0]
# Kept short: a script run by path is compiled before its first statement, in every
# round; the round's code is compiled after it, where its cost is measured and taken off.
with open(__file__[: -len("startup.py")] + "startup_round.py", "rb") as _source:
    exec(compile(_source.read(), __file__[: -len("startup.py")] + "startup_round.py", "exec"))
