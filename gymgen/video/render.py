"""Fast offscreen rendering of MuJoCo scenes on the CPU (Mesa llvmpipe through ``MUJOCO_GL=egl``).

MuJoCo's defaults are tuned for GPUs: a 4096x4096 shadow map, 4x offscreen multisampling and
planar reflections. On llvmpipe they cost almost all of the frame time (4-7 frames/s at 64-96 px).
``FastRenderer`` turns all three off (``model.vis.quality.shadowsize = 0``, ``offsamples = 0``,
``scene.flags[mjRND_REFLECTION] = 0``) and renders ~15x faster with the same scene; the skybox is
kept so the background is not black. ``tests/benchmarks/test_video.py`` measures both.

Meta-World's ``corner*`` cameras are mounted upside down; frames from them are rotated by 180
degrees (as VPDD does), so the table is at the bottom of the image.
"""

from __future__ import annotations

import os

from gymgen.offscreen_gl import default_headless_gl, match_mujoco_backend

default_headless_gl()
os.environ.setdefault("MUJOCO_GL", "egl")  # this module renders offscreen, display or not

import atexit  # noqa: E402
import contextlib  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

_HOOKED = False


def _hook_exit() -> None:
    # Registered after the first context exists, i.e. after MuJoCo's EGL module registered its own
    # eglTerminate; atexit runs last-in first-out, so contexts are freed before the display goes.
    global _HOOKED
    if not _HOOKED:
        atexit.register(lambda: _close_contexts())
        _HOOKED = True

_ROTATE = ("corner", "corner2", "corner3", "corner4")


def speed_up_model(model: mujoco.MjModel) -> None:
    """Turn off shadows and offscreen multisampling (read when a rendering context is created)."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0


def _release_current_gl(gl: object) -> None:
    """Unbind ``gl`` (a ``mujoco.gl_context.GLContext``) from the calling thread.

    An EGL context can be current in one thread at a time: making it current in a second thread while the
    first still holds it fails with ``EGL_BAD_ACCESS``. Envs are made in one thread and stepped in another
    whenever a caller runs them under a timeout (the leaderboard's serial backend runs each run in a helper
    thread), in a thread pool or in a Ray actor, so every frame hands the context back. Measured on
    llvmpipe, 64x64 drawer-close, one thread: 96.7 env steps/s before the release was added, 98.5 with it (noise).
    """
    module = type(gl).__module__
    if module.startswith("mujoco.egl"):
        from mujoco import egl

        egl.EGL.eglMakeCurrent(egl.EGL_DISPLAY, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_SURFACE, egl.EGL.EGL_NO_CONTEXT)
    elif module.startswith("mujoco.osmesa"):
        from OpenGL import GL, osmesa

        osmesa.OSMesaMakeCurrent(None, None, GL.GL_FLOAT, 0, 0)
    elif module.startswith("mujoco.glfw"):
        import glfw

        glfw.make_context_current(None)


class _SharedContext:
    """One OpenGL context + ``MjrContext`` (uploaded meshes, textures, fonts: ~0.8 s to build on llvmpipe)
    shared by every renderer of the same ``share_key`` (the same model XML) and frame size. The context is
    current only while a frame is drawn (``drawing()``), so any thread may render with it."""

    def __init__(self, model: mujoco.MjModel, size: int) -> None:
        from mujoco import gl_context

        if gl_context.GLContext is None:
            raise RuntimeError("MuJoCo has no OpenGL backend (MUJOCO_GL is 'disabled'?)")
        self.gl = gl_context.GLContext(size, size)
        self._lock = threading.Lock()  # two threads drawing at once would both need the context current
        with self.drawing():
            self.con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.con)

    @contextlib.contextmanager
    def drawing(self) -> Iterator[None]:
        """``with ctx.drawing(): ...`` draws with this context current in the calling thread, then releases it."""
        with self._lock:
            self.gl.make_current()
            try:
                yield
            finally:
                _release_current_gl(self.gl)

    def close(self) -> None:
        con, self.con = getattr(self, "con", None), None
        if con is not None:
            with self._lock:
                self.gl.make_current()
                con.free()
                self.gl.free()


_CONTEXTS: dict[tuple, _SharedContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def _close_contexts() -> None:
    for c in _CONTEXTS.values():
        c.close()
    _CONTEXTS.clear()


class FastRenderer:
    """Renders ``size x size`` RGB frames of one model from any named camera.

    Renderers with the same ``share_key`` (pass the model's XML identity, e.g. the task name) reuse one
    OpenGL/MuJoCo rendering context, so making a second env of a task costs no context build; each keeps
    its own scene, built from its own model and data. ``close()`` drops this renderer's scene.
    """

    def __init__(self, model: mujoco.MjModel, size: int, fast: bool = True, share_key: str | None = None) -> None:
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"render size must be an int >= 8, got {size!r}")
        if size > min(model.vis.global_.offwidth, model.vis.global_.offheight):
            raise ValueError(f"render size {size} exceeds the model's offscreen buffer "
                             f"({model.vis.global_.offwidth}x{model.vis.global_.offheight})")
        self.model, self.size, self.fast = model, size, fast
        if fast:
            speed_up_model(model)
        key = (share_key if share_key is not None else id(model), size, fast)
        try:
            match_mujoco_backend()
            with _CONTEXTS_LOCK:
                if key not in _CONTEXTS:
                    _CONTEXTS[key] = _SharedContext(model, size)
                    _hook_exit()
        except Exception as exc:  # mujoco.FatalError or an EGL/OSMesa import error
            raise RuntimeError(
                f"cannot create an offscreen OpenGL context (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): {exc}. "
                "gymgen sets MUJOCO_GL=egl unless you set it; EGL needs libegl1 and libgl1-mesa-dri "
                "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri), OSMesa needs libosmesa6."
            ) from exc
        self._ctx = _CONTEXTS[key]
        self._scene = mujoco.MjvScene(model, maxgeom=10_000)
        self._opt = mujoco.MjvOption()
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, size, size)
        self._pixels = np.empty((size, size, 3), np.uint8)
        self._cameras = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i): i for i in range(model.ncam)}

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """One uint8 frame ``(size, size, 3)`` of ``data`` seen from ``camera``."""
        if camera not in self._cameras:
            raise ValueError(f"unknown camera {camera!r}; this model has {sorted(self._cameras)}")
        if self._scene is None:
            raise RuntimeError("render() after close()")
        self._cam.fixedcamid = self._cameras[camera]
        mujoco.mjv_updateScene(self.model, data, self._opt, None, self._cam, mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        if self.fast:
            self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        with self._ctx.drawing():
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._ctx.con)
            mujoco.mjr_render(self._rect, self._scene, self._ctx.con)
            mujoco.mjr_readPixels(self._pixels, None, self._rect, self._ctx.con)
        frame = self._pixels[::-1]  # OpenGL rows start at the bottom
        if camera in _ROTATE:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        """Drop this renderer's scene (the shared context lives until the process exits)."""
        self._scene = None
