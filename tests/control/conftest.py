"""Headless MuJoCo rendering for the control tests: OSMesa when Debian's libosmesa6 is installed."""

import ctypes.util
import os

if "MUJOCO_GL" not in os.environ and ctypes.util.find_library("OSMesa"):
    os.environ["MUJOCO_GL"] = "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")


def can_render() -> bool:
    """True when a MuJoCo rgb_array frame can be produced in this process."""
    try:
        import gymnasium

        env = gymnasium.make("HalfCheetah-v5", render_mode="rgb_array", width=32, height=32)
        env.reset(seed=0)
        frame = env.render()
        env.close()
        return frame is not None and frame.shape == (32, 32, 3)
    except Exception:  # noqa: BLE001 - any GL failure means "cannot render here"
        return False
