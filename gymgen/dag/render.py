"""``rgb_array`` pictures of DAG states (numpy only, molecules through RDKit's drawer).

Called only from ``render()``, never from ``step``: every function here takes plain lists/arrays of
one row and returns a fresh HxWx3 uint8 image whose size depends only on the env's settings (so
frames of one env have a constant shape, as ``RecordVideo`` needs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

BACKGROUND = np.array([255, 255, 255], dtype=np.uint8)
EMPTY = np.array([215, 215, 215], dtype=np.uint8)
GRID_LINE = np.array([170, 170, 170], dtype=np.uint8)
AGENT = np.array([220, 40, 40], dtype=np.uint8)
GOAL = np.array([30, 150, 60], dtype=np.uint8)
DONE = np.array([40, 90, 220], dtype=np.uint8)
#: A, C, G, T in the usual sequence-logo colours
DNA_COLORS = np.array([[40, 160, 60], [40, 90, 220], [245, 170, 20], [220, 40, 40]], dtype=np.uint8)
BIT_COLORS = np.array([[245, 245, 245], [30, 30, 30]], dtype=np.uint8)
#: target image side for grids and strip width, in pixels
TARGET = 256


def _cell(n: int) -> int:
    """Pixels per cell so that ``n`` cells span about ``TARGET`` pixels (at least 3)."""
    return max(3, TARGET // max(n, 1))


def reward_shading(values: np.ndarray) -> np.ndarray:
    """Map rewards ``(H, W)`` to a light-to-dark colour ramp (higher reward = darker), HxWx3 uint8."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(np.min(v)), float(np.max(v))
    t = np.zeros_like(v) if hi <= lo else (v - lo) / (hi - lo)
    light, dark = np.array([250, 248, 235.0]), np.array([150, 120, 200.0])
    return (light + t[..., None] * (dark - light)).astype(np.uint8)


def grid_image(
    shading: np.ndarray, position: tuple[int, int], goal: tuple[int, int] | None = None, done: bool = False
) -> np.ndarray:
    """A 2-D grid: cells coloured by ``shading`` (HxWx3), the agent's cell filled, the goal outlined.

    Coordinate 0 runs down the rows, coordinate 1 along the columns; the origin is the top-left cell.
    """
    h, w = shading.shape[:2]
    c = _cell(max(h, w))
    img = shading.repeat(c, 0).repeat(c, 1).copy()
    img[::c, :] = GRID_LINE
    img[:, ::c] = GRID_LINE
    if goal is not None:
        _outline(img, goal[0] * c, goal[1] * c, c, GOAL, width=max(1, c // 4))
    r, col = position
    inset = max(1, c // 5)
    img[r * c + inset:(r + 1) * c - inset + 1, col * c + inset:(col + 1) * c - inset + 1] = DONE if done else AGENT
    return _border(img)


def meters_image(values: list[int], high: int, done: bool = False) -> np.ndarray:
    """One horizontal bar per coordinate, filled to ``value / (high - 1)`` (for grids with D != 2)."""
    c = _cell(high)
    bar_h = max(8, c)
    img = np.full((len(values) * (bar_h + 4) + 4, high * c, 3), BACKGROUND, dtype=np.uint8)
    for i, v in enumerate(values):
        top = 4 + i * (bar_h + 4)
        img[top:top + bar_h, :] = EMPTY
        img[top:top + bar_h, : (int(v) + 1) * c] = DONE if done else AGENT
        img[top:top + bar_h, ::c] = GRID_LINE
    return _border(img)


def strip_image(
    rows: list[list[int]], colors: np.ndarray, highlight: list[list[bool]] | None = None, per_line: int = 40
) -> np.ndarray:
    """Rows of coloured squares: entry ``v >= 0`` gets ``colors[v]``, ``-1`` (empty) is grey.

    ``highlight[r][i]`` draws a green mark under square ``i`` of row ``r`` (e.g. matches a goal). A row
    longer than ``per_line`` wraps onto several lines (each row's lines stay together).
    """
    if any(len(r) > per_line for r in rows):
        lines, marks = [], []
        for ri, row in enumerate(rows):
            for start in range(0, len(row), per_line):
                lines.append(row[start:start + per_line])
                marks.append(highlight[ri][start:start + per_line] if highlight is not None else [False] * per_line)
        rows, highlight = lines, (marks if highlight is not None else None)
    n = max(len(r) for r in rows)
    c = max(8, _cell(n))
    gap = max(2, c // 4)
    img = np.full((len(rows) * (c + 2 * gap) + gap, n * c + 2 * gap, 3), BACKGROUND, dtype=np.uint8)
    for ri, row in enumerate(rows):
        top = gap + ri * (c + 2 * gap)
        for i, v in enumerate(row):
            left = gap + i * c
            img[top:top + c, left:left + c] = EMPTY if v < 0 else colors[int(v) % len(colors)]
            img[top:top + c, left] = GRID_LINE
            if highlight is not None and highlight[ri][i]:
                img[top + c:top + c + gap, left:left + c] = GOAL
    return _border(img)


def molecule_image(mol: Any, size: int = 300) -> np.ndarray:
    """RDKit's 2-D depiction of ``mol`` (a blank square for None / an empty molecule), HxWx3 uint8."""
    if mol is None or mol.GetNumAtoms() == 0:
        img = np.full((size, size, 3), BACKGROUND, dtype=np.uint8)
        img[size // 2 - 1:size // 2 + 1, size // 4:3 * size // 4] = EMPTY
        return img
    from rdkit.Chem import Draw

    return np.asarray(Draw.MolToImage(mol, size=(size, size)).convert("RGB"), dtype=np.uint8).copy()


def _outline(img: np.ndarray, top: int, left: int, c: int, color: np.ndarray, width: int) -> None:
    img[top:top + width, left:left + c + 1] = color
    img[top + c - width + 1:top + c + 1, left:left + c + 1] = color
    img[top:top + c + 1, left:left + width] = color
    img[top:top + c + 1, left + c - width + 1:left + c + 1] = color


def _border(img: np.ndarray) -> np.ndarray:
    out = np.full((img.shape[0] + 2, img.shape[1] + 2, 3), GRID_LINE, dtype=np.uint8)
    out[1:-1, 1:-1] = img
    return out
