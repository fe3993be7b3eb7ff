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

os.environ.setdefault("MUJOCO_GL", "egl")

import atexit  # noqa: E402
import weakref  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

_LIVE: "weakref.WeakSet[FastRenderer]" = weakref.WeakSet()
_HOOKED = False


def _close_all() -> None:
    """Free every context before the interpreter tears the EGL bindings down (else noisy errors at exit)."""
    for r in list(_LIVE):
        r.close()


def _hook_exit() -> None:
    # Registered after the first context exists, i.e. after MuJoCo's EGL module registered its own
    # eglTerminate; atexit runs last-in first-out, so contexts are freed before the display goes.
    global _HOOKED
    if not _HOOKED:
        atexit.register(_close_all)
        _HOOKED = True

_ROTATE = ("corner", "corner2", "corner3", "corner4")


def speed_up_model(model: mujoco.MjModel) -> None:
    """Turn off shadows and offscreen multisampling (read when a rendering context is created)."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0


class FastRenderer:
    """Renders ``size x size`` RGB frames of one model from any named camera.

    Call ``render(data, camera)``; ``close()`` frees the OpenGL context (done by the env's ``close``).
    """

    def __init__(self, model: mujoco.MjModel, size: int, fast: bool = True) -> None:
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"render size must be an int >= 8, got {size!r}")
        self.model, self.size, self.fast = model, size, fast
        if fast:
            speed_up_model(model)
        try:
            self._renderer = mujoco.Renderer(model, size, size)
        except Exception as exc:  # mujoco.FatalError or an EGL/OSMesa import error
            raise RuntimeError(
                f"cannot create an offscreen OpenGL context (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}): {exc}. "
                "gymgen sets MUJOCO_GL=egl unless you set it; EGL needs libegl1 and libgl1-mesa-dri "
                "(apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri), OSMesa needs libosmesa6. MuJoCo reads "
                "MUJOCO_GL when first imported, so set it before anything imports mujoco."
            ) from exc
        _LIVE.add(self)
        _hook_exit()
        self._cameras = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)}

    def render(self, data: mujoco.MjData, camera: str) -> np.ndarray:
        """One uint8 frame ``(size, size, 3)`` of ``data`` seen from ``camera``."""
        if camera not in self._cameras:
            raise ValueError(f"unknown camera {camera!r}; this model has {sorted(self._cameras)}")
        self._renderer.update_scene(data, camera=camera)
        if self.fast:
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        frame = self._renderer.render()
        if camera in _ROTATE:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        """Free the OpenGL context (idempotent)."""
        r, self._renderer = getattr(self, "_renderer", None), None
        if r is not None:
            r.close()

    def __del__(self) -> None:
        self.close()
