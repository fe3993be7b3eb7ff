"""Exit 0 when pytest's arguments select tests only by registered markers (``-m slow``), else 1.

Used by ``scripts/test.sh`` to decide whether "no tests collected" is expected (a marker selection over
paths without such tests) or a mistake (a ``-k`` filter or path that matches nothing, a misspelt marker).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

KEYWORDS = {"and", "or", "not"}


def registered_markers() -> set[str]:
    cfg = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    return {m.split(":")[0].strip() for m in cfg["tool"]["pytest"]["ini_options"].get("markers", [])}


def only_marker_selection(args: list[str]) -> bool:
    """True when ``args`` contain a ``-m`` expression of registered markers and no ``-k`` filter."""
    exprs, i = [], 0
    while i < len(args):
        a = args[i]
        if a in ("-k",) or a.startswith("-k") or a.startswith("--keyword") or a.startswith("--deselect"):
            return False
        if a == "-m" and i + 1 < len(args):
            exprs.append(args[i + 1])
            i += 1
        elif a.startswith("-m") and len(a) > 2:
            exprs.append(a[2:])
        i += 1
    if not exprs:
        return False
    known = registered_markers()
    names = {w for e in exprs for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", e)} - KEYWORDS
    return bool(names) and names <= known


if __name__ == "__main__":
    sys.exit(0 if only_marker_selection(sys.argv[1:]) else 1)
