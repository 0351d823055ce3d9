"""The code a round's interpreter runs, and what the measuring side knows of it.

:data:`CHILD_SCRIPT` (``main.py``) is run by path in a clean interpreter; it
runs :data:`ROUND` (``round.py``: start-up, the fenced import, the report) as
``-c`` code, which reads :data:`HARNESS` (``harness.py``: the tracer and
start-up hooks). None is imported by the package, and none imports from it.
Their bytes are part of a stored count's key (:func:`child_digest`).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = [
    "BEGIN_MARKER",
    "CHILD_SCRIPT",
    "END_MARKER",
    "HARNESS",
    "ROUND",
    "STARTUP_ROUND",
    "STARTUP_SCRIPT",
    "child_digest",
]

CHILD_SCRIPT = Path(__file__).with_name("main.py")
ROUND = Path(__file__).with_name("round.py")
HARNESS = Path(__file__).with_name("harness.py")
#: A start-up round's script (``startup.py``), run by path; it reads :data:`HARNESS` too.
STARTUP_SCRIPT = Path(__file__).with_name("startup.py")
STARTUP_ROUND = Path(__file__).with_name("startup_round.py")
#: The lines the child writes to stderr around the measured import (``round.py`` spells them).
BEGIN_MARKER = "importcache: begin"
END_MARKER = "importcache: end"


@functools.lru_cache(maxsize=1)
def child_digest() -> str:
    """A digest of the child's code (its files): a count depends on every byte."""
    digest = hashlib.sha256()
    for path in (CHILD_SCRIPT, ROUND, HARNESS, STARTUP_SCRIPT, STARTUP_ROUND):
        digest.update(path.read_bytes())
    return digest.hexdigest()
