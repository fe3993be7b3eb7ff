"""Headless MuJoCo rendering for the control agent tests (set before any test module imports mujoco): OSMesa when Debian's libosmesa6 is installed."""

import ctypes.util
import os

if "MUJOCO_GL" not in os.environ and ctypes.util.find_library("OSMesa"):
    os.environ["MUJOCO_GL"] = "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

