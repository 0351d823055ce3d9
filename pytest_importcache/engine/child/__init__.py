"""The code a round's interpreter runs, and what the measuring side knows of it.

:data:`CHILD_SCRIPT` (``main.py``) is run by path in a clean interpreter and
reads :data:`HARNESS` (``harness.py``, the tracer and start-up hooks) from
beside itself; neither is imported by the package, and neither imports from
it. Their bytes are part of a stored count's key (:func:`child_digest`).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

__all__ = ["BEGIN_MARKER", "CHILD_SCRIPT", "END_MARKER", "HARNESS", "child_digest"]

CHILD_SCRIPT = Path(__file__).with_name("main.py")
HARNESS = Path(__file__).with_name("harness.py")
#: The lines the child writes to stderr around the measured import (``main.py`` spells them).
BEGIN_MARKER = "importcache: begin"
END_MARKER = "importcache: end"


@functools.lru_cache(maxsize=1)
def child_digest() -> str:
    """A digest of the child's code (script and harness): a count depends on every byte."""
    digest = hashlib.sha256()
    for path in (CHILD_SCRIPT, HARNESS):
        digest.update(path.read_bytes())
    return digest.hexdigest()
