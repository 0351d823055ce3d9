"""Parse ``python -X importtime`` output into a tree of imported modules.

CPython writes one row per completed import to file descriptor 2::

    import time: self [us] | cumulative | imported package
    import time:       140 |        140 |   _io
    import time:       412 |        903 |     json.decoder

Rows come children-first: a module's row follows the rows of everything it
imported, which sit one level (two spaces) deeper. Python 3.14's
``-X importtime=2`` adds rows whose times read ``cached`` for modules that were
already loaded; they are kept with zero times. Lines that are not rows (the
header, anything else the imported code wrote to stderr) are ignored, and a row
glued to the end of such a line is still found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["ImportNode", "iter_nodes", "parse_importtime"]

_ROW = re.compile(
    r"import time:\s+(?P<self>\d+|cached)\s+\|\s+(?P<cumulative>\d+|cached)\s+\|"
    r" (?P<indent> *)(?P<name>[^\s|]+)\s*$"
)


@dataclass
class ImportNode:
    """One imported module: its own time, the time including its imports, its children."""

    name: str
    self_us: int
    cumulative_us: int
    level: int
    cached: bool = False
    children: list[ImportNode] = field(default_factory=list)
    parent: ImportNode | None = field(default=None, repr=False, compare=False)

    @property
    def chain(self) -> list[str]:
        """Module names from the outermost importer down to this module."""
        names: list[str] = []
        node: ImportNode | None = self
        while node is not None:
            names.append(node.name)
            node = node.parent
        return names[::-1]


def parse_importtime(lines: Iterable[str]) -> list[ImportNode]:
    """Build the import forest from ``-X importtime`` lines; returns the top-level nodes.

    Each node's ``parent`` is the module whose import pulled it in. Rows whose
    importer never completed (an import that raised half-way) surface as roots.
    """
    pending: dict[int, list[ImportNode]] = {}
    for line in lines:
        match = _ROW.search(line.rstrip("\r\n"))
        if match is None:
            continue
        cached = match["self"] == "cached"
        node = ImportNode(
            name=match["name"],
            self_us=0 if cached else int(match["self"]),
            cumulative_us=0 if cached else int(match["cumulative"]),
            level=len(match["indent"]) // 2,
            cached=cached,
        )
        node.children = pending.pop(node.level + 1, [])
        for child in node.children:
            child.parent = node
        pending.setdefault(node.level, []).append(node)
    roots: list[ImportNode] = []
    for level in sorted(pending):
        roots.extend(pending[level])
    return roots


def iter_nodes(roots: Iterable[ImportNode]) -> Iterator[ImportNode]:
    """Every node of the forest, parents before their children."""
    stack = list(reversed(list(roots)))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))
