"""The VPDD video setting: Meta-World tasks with rendered image observations, scripted experts and
an action-free "human video" stand-in (models live in ``gymgen.agents.video``).

Importing this package sets ``MUJOCO_GL=egl`` (headless offscreen OpenGL on the CPU through Mesa)
**only if the user has not set ``MUJOCO_GL`` already**; set it yourself (``osmesa``, ``glx``, ``egl``)
before importing to choose another backend. MuJoCo reads the variable when it is first imported, so
this must happen before anything imports ``mujoco``.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from gymgen.video.tasks import CLAIM_TASKS, MT10, POLICY_CAMERA, env_id  # noqa: E402

__all__ = ["CLAIM_TASKS", "MT10", "POLICY_CAMERA", "env_id"]
