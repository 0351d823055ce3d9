"""The script a round's interpreter runs by path: ``python -I -S main.py MODULE ...``.

It runs ``round.py`` (beside it) as ``python -c`` runs its code: compiled
under the name ``<string>``, in the main module's namespace, with no
``__file__`` there, so that the measured import sees what it would see under
``-c``. It imports nothing but ``sys``.
"""

import sys

# Counted rounds run without -I, so that PYTHONHASHSEED reaches them, and with
# PYTHONSAFEPATH (3.11+), so that no script directory is put first. 3.10 puts it
# there: drop it before any import can list it (3.10 imports `os` from the path
# here, where later versions have it frozen).
if (
    sys.argv[3] == "instructions"
    and not sys.flags.isolated
    and not getattr(sys.flags, "safe_path", False)
):
    del sys.path[0]
with open(__file__[: -len("main.py")] + "round.py", "rb") as _source:
    _code = compile(_source.read(), "<string>", "exec")
# As under -c, the main module has no file: an import looking for its program's
# file finds none rather than this one.
del __file__, _source
exec(_code)
