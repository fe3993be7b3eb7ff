"""Record Meta-World episodes as video: frames from any cameras, actions, proprioception, success.

``record_episodes`` is the one recorder of the family: robot demonstrations (the expert, seen by the
policy camera, with actions), the action-free "human video" stand-in (other cameras, other
behaviour policies, actions dropped when saved) and any other Meta-World video dataset (e.g. for a
world model) come from it. Everything is deterministic given ``seed``; ``save_episodes`` returns
the sha256 of the file it writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gymgen.video.experts import behaviour
from gymgen.worldsim.data import file_sha256  # one sha256 helper for every recorded dataset

__all__ = ["VideoEpisodes", "file_sha256", "load_episodes", "record_episodes", "save_episodes"]


@dataclass
class VideoEpisodes:
    """Episodes of one task. ``frames[camera][i]`` is ``(T_i + 1, H, W, 3)`` uint8 (the frame before every
    action and the last one); ``actions[i]`` ``(T_i, 4)`` float32 (``None`` for action-free data);
    ``proprio[i]`` ``(T_i + 1, 4)``; ``success[i]`` ``(T_i,)`` bool (``info["success"]`` after each step)."""

    task: str
    frames: dict[str, list[np.ndarray]]
    actions: list[np.ndarray] | None
    proprio: list[np.ndarray]
    success: list[np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.proprio)

    @property
    def cameras(self) -> list[str]:
        """Cameras recorded."""
        return list(self.frames)

    def lengths(self) -> np.ndarray:
        """Number of actions of every episode."""
        return np.asarray([len(s) for s in self.success], np.int64)

    def solved(self) -> np.ndarray:
        """Whether each episode reached success at some step."""
        return np.asarray([bool(s.any()) for s in self.success])

    def without_actions(self) -> "VideoEpisodes":
        """The same videos with the actions dropped (action-free data)."""
        return VideoEpisodes(self.task, self.frames, None, self.proprio, self.success, {**self.meta, "actions": False})


def record_episodes(
    task: str, n_episodes: int, *, cameras: tuple[str, ...] = ("corner",), behaviour_kind: str = "expert",
    size: int = 64, seed: int = 0, max_steps: int = 200, task_seed: int = 0, stop_on_success: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> VideoEpisodes:
    """Play ``n_episodes`` of ``task`` with a behaviour policy and record every camera in ``cameras``.

    Episode ``i`` resets with seed ``seed * 100_003 + i`` (so the task configuration is a function of the
    seed) and runs until success (``stop_on_success``) or ``max_steps``. ``behaviour_kind`` is ``expert``,
    ``noisy`` or ``slow`` (``gymgen.video.experts``); its randomness comes from ``seed`` too.
    """
    from gymgen.video.env import MetaWorldVideoEnv

    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    env = MetaWorldVideoEnv(task=task, camera=cameras[0], size=size, task_seed=task_seed,
                            terminate_on_success=stop_on_success, **(env_kwargs or {}))
    rng = np.random.default_rng([seed, 7919])
    frames: dict[str, list[np.ndarray]] = {c: [] for c in cameras}
    actions, proprio, success = [], [], []
    try:
        for i in range(n_episodes):
            obs, _ = env.reset(seed=seed * 100_003 + i)
            pol = behaviour(task, behaviour_kind, rng)
            fr = {c: [env.render_camera(c)] for c in cameras}
            acts, props, succ = [], [obs["proprio"]], []
            for _ in range(max_steps):
                a = pol(obs["state"])
                obs, _, terminated, truncated, info = env.step(a)
                acts.append(a)
                props.append(obs["proprio"])
                succ.append(info["success"])
                for c in cameras:
                    fr[c].append(obs["image"] if c == env.camera else env.render_camera(c))
                if terminated or truncated:
                    break
            for c in cameras:
                frames[c].append(np.stack(fr[c]))
            actions.append(np.stack(acts).astype(np.float32))
            proprio.append(np.stack(props).astype(np.float32))
            success.append(np.asarray(succ, bool))
    finally:
        env.close()
    meta = {"task": task, "n_episodes": n_episodes, "cameras": list(cameras), "behaviour": behaviour_kind,
            "size": size, "seed": seed, "max_steps": max_steps, "task_seed": task_seed, "actions": True}
    return VideoEpisodes(task, frames, actions, proprio, success, meta)


def save_episodes(ep: VideoEpisodes, path: str | Path) -> str:
    """Write ``ep`` to a compressed ``.npz`` (no pickles) and return the file's sha256."""
    arrays: dict[str, np.ndarray] = {"lengths": ep.lengths()}
    for c in ep.cameras:
        arrays[f"frames/{c}"] = np.concatenate(ep.frames[c])
    if ep.actions is not None:
        arrays["actions"] = np.concatenate(ep.actions)
    arrays["proprio"] = np.concatenate(ep.proprio)
    arrays["success"] = np.concatenate(ep.success)
    arrays["meta"] = np.asarray(json.dumps({**ep.meta, "task": ep.task, "cameras": ep.cameras}, sort_keys=True))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:  # a file object keeps numpy from appending ".npz" to the name
        np.savez_compressed(f, **arrays)
    return file_sha256(path)


def load_episodes(path: str | Path) -> VideoEpisodes:
    """Inverse of ``save_episodes``; a file that is not such a dataset raises ``ValueError`` naming it."""
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{str(path)!r} is not a readable video dataset (.npz): {exc}") from None
    with z:
        missing = [k for k in ("lengths", "proprio", "success", "meta") if k not in z.files]
        if missing:
            raise ValueError(f"{str(path)!r}: not a gymgen video dataset, missing arrays {missing}")
        meta = json.loads(str(z["meta"]))
        lengths = z["lengths"]
        f_off = np.concatenate([[0], np.cumsum(lengths + 1)])
        a_off = np.concatenate([[0], np.cumsum(lengths)])
        n = len(lengths)
        cut = lambda arr, off: [arr[off[i]:off[i + 1]] for i in range(n)]  # noqa: E731
        frames = {c: cut(z[f"frames/{c}"], f_off) for c in meta["cameras"]}
        actions = cut(z["actions"], a_off) if "actions" in z.files else None
        return VideoEpisodes(meta["task"], frames, actions, cut(z["proprio"], f_off), cut(z["success"], a_off), meta)
