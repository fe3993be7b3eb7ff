"""Import an optional dependency of the ``[marl]`` extra with an install hint when it is missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str = "marl") -> ModuleType:
    """Import ``module`` or raise ``ImportError`` saying ``pip install "gymgen[<extra>]"``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module!r} is needed for this gymgen env but is not installed ({exc}); "
            f'install it with: pip install "gymgen[{extra}]"'
        ) from exc
