"""Which OpenGL backend MuJoCo renders with, and a headless default so ``render_mode="rgb_array"`` works.

MuJoCo (and dm-control) fix their OpenGL backend from ``MUJOCO_GL``; unset, they pick GLFW, which
aborts without a display. On a headless machine with EGL installed (Mesa's ``libEGL``, what ``.ci/run``
installs), gymgen defaults ``MUJOCO_GL`` to ``egl`` (and ``PYOPENGL_PLATFORM`` to match) *only when the user
set neither and there is no display*, so every MuJoCo-backed id (control, DMC, Meta-World) renders
offscreen on the CPU with no configuration. A value the user set is always kept.
"""

from __future__ import annotations

import ctypes.util
import os

_BACKENDS = ("egl", "osmesa", "glfw")


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_headless_gl() -> None:
    """Set ``MUJOCO_GL=egl`` when it is unset, there is no display and an EGL library is installed."""
    if os.environ.get("MUJOCO_GL") or _has_display():
        return
    if ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def gl_backend() -> str | None:
    """The backend MuJoCo renders with in this process (``egl``, ``osmesa``, ``glfw``), or None when rendering
    would abort it (GLFW without a display): envs offer ``rgb_array`` only when this is not None."""
    default_headless_gl()
    gl = os.environ.get("MUJOCO_GL", "glfw").lower().strip() or "glfw"
    if gl in ("egl", "osmesa"):
        return gl
    if gl == "glfw" and _has_display():
        return gl
    return None


def match_mujoco_backend() -> None:
    """Honour ``MUJOCO_GL`` even when ``mujoco`` was imported before it was set (e.g. ``import metaworld`` first).

    MuJoCo picks ``mujoco.gl_context.GLContext`` once, at import; if that happened with ``MUJOCO_GL`` unset it
    chose GLFW. When ``MUJOCO_GL`` now names ``egl`` or ``osmesa``, switch that class to the named backend.
    """
    from mujoco import gl_context

    want = os.environ.get("MUJOCO_GL", "").lower().strip()
    if want == getattr(gl_context, "_MUJOCO_GL", want) or want not in ("egl", "osmesa"):
        return
    if want == "egl":
        from mujoco.egl import GLContext
    else:
        from mujoco.osmesa import GLContext
    gl_context.GLContext = GLContext
    gl_context._MUJOCO_GL = want
