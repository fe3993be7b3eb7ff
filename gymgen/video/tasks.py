"""Task lists, ids and the optional-dependency guard of the video family (no heavy imports here)."""

from __future__ import annotations

from typing import Any

# Meta-World's MT10 set (metaworld.env_dict.MT10_V3), in its order.
MT10: tuple[str, ...] = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
)
# The tasks the small-scale VPDD claim is run on (a 2-core machine cannot afford all ten; see seeds/VPDD.toml).
CLAIM_TASKS: tuple[str, ...] = ("drawer-close-v3", "button-press-topdown-v3")
# The camera the robot policy sees; the action-free video uses the others.
POLICY_CAMERA = "corner"
ACTION_FREE_CAMERAS: tuple[str, ...] = ("corner2", "corner3", "corner4")
CAMERAS: tuple[str, ...] = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")


def env_id(task: str) -> str:
    """The gymgen id of a Meta-World task name: ``"drawer-open-v3"`` -> ``"gymgen/MetaWorld-drawer-open-v0"``."""
    if not task.endswith("-v3"):
        raise ValueError(f"expected a Meta-World v3 task name like 'drawer-open-v3', got {task!r}")
    return f"gymgen/MetaWorld-{task[:-3]}-v0"


def require_metaworld() -> Any:
    """Import metaworld (registering its ``Meta-World/*`` ids) or say which extra installs it."""
    try:
        import metaworld  # noqa: F401  (registers Meta-World/MT1 with gymnasium)
        import packaging  # noqa: F401  (gymnasium's mujoco renderer imports it without declaring it)
    except ImportError as exc:
        raise ImportError(f'the video family needs Meta-World: pip install "gymgen[video]" ({exc})') from exc
    return metaworld
