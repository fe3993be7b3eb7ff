"""A tiny numpy rasterizer for the top-down ``rgb_array`` renders of the batched multi-agent envs.

No pygame or matplotlib: frames are drawn only when ``render_frame`` is called (never inside a step),
in pixel coordinates with the origin at the top-left, so a world ``y`` axis pointing up is flipped
by the caller. Shapes are clipped at the image border.
"""

from __future__ import annotations

import numpy as np

Color = tuple[int, int, int]


def canvas(height: int, width: int, color: Color) -> np.ndarray:
    """A fresh ``(height, width, 3)`` uint8 image filled with ``color``."""
    img = np.empty((height, width, 3), dtype=np.uint8)
    img[:] = color
    return img


def _window(img: np.ndarray, cx: float, cy: float, r: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
    h, w = img.shape[:2]
    x0, x1 = max(int(np.floor(cx - r)), 0), min(int(np.ceil(cx + r)) + 1, w)
    y0, y1 = max(int(np.floor(cy - r)), 0), min(int(np.ceil(cy + r)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    yy, xx = np.ogrid[y0:y1, x0:x1]
    return slice(y0, y1), slice(x0, x1), (xx + 0.5 - cx), (yy + 0.5 - cy)


def disc(img: np.ndarray, cx: float, cy: float, r: float, color: Color) -> None:
    """Fill the disc of radius ``r`` pixels centred at pixel ``(cx, cy)``."""
    win = _window(img, cx, cy, r)
    if win is not None:
        ys, xs, dx, dy = win
        img[ys, xs][dx * dx + dy * dy <= r * r] = color


def ring(img: np.ndarray, cx: float, cy: float, r: float, color: Color, width: float = 1.0) -> None:
    """Draw a circle outline of radius ``r`` and stroke ``width`` (pixels) centred at ``(cx, cy)``."""
    win = _window(img, cx, cy, r)
    if win is not None:
        ys, xs, dx, dy = win
        d2 = dx * dx + dy * dy
        img[ys, xs][(d2 <= r * r) & (d2 > max(r - width, 0.0) ** 2)] = color


def rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
    """Fill the axis-aligned rectangle ``[x0, x1) x [y0, y1)`` (pixels, clipped to the image)."""
    h, w = img.shape[:2]
    a, b = max(int(round(x0)), 0), min(int(round(x1)), w)
    c, d = max(int(round(y0)), 0), min(int(round(y1)), h)
    if a < b and c < d:
        img[c:d, a:b] = color


def cross(img: np.ndarray, cx: float, cy: float, r: float, color: Color) -> None:
    """Draw an ``x`` of half-size ``r`` pixels centred at ``(cx, cy)`` (a fallen unit)."""
    win = _window(img, cx, cy, r)
    if win is not None:
        ys, xs, dx, dy = win
        img[ys, xs][((np.abs(dx - dy) <= 0.75) | (np.abs(dx + dy) <= 0.75)) & (np.abs(dx) <= r) & (np.abs(dy) <= r)] = color


def bar(img: np.ndarray, x0: float, y0: float, length: float, height: float, fraction: float,
        fill: Color, empty: Color) -> None:
    """A horizontal gauge (health, shields): ``fraction`` of ``length`` pixels in ``fill``, the rest ``empty``."""
    f = float(np.clip(fraction, 0.0, 1.0))
    rect(img, x0, y0, x0 + length, y0 + height, empty)
    rect(img, x0, y0, x0 + length * f, y0 + height, fill)
