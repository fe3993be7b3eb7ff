"""Record real Atari episodes (frames, actions, rewards, life losses, terminals) with ale-py.

Frames are cropped to the playing field and max-pooled to ``size x size`` RGB (max-pooling keeps the
one-pixel ball visible). A mixed policy (per-episode epsilon between a ball-tracking script and
uniform random actions) gives both purposeful paddle motion and action coverage.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Playing-field crop (rows, cols) of the 210x160 ALE screen, per game.
CROPS = {"Breakout": (slice(36, 196), slice(0, 160)),
         # BattleZone: the first-person view with the radar and the score, without the lives/reserve rows
         "BattleZone": (slice(16, 176), slice(0, 160))}
# RAM addresses used by the scripted policy (ball x, paddle x) for Breakout.
_BREAKOUT_BALL_X, _BREAKOUT_PADDLE_X = 99, 72


def _require_ale():
    try:
        import ale_py
        import gymnasium
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError('recording WorldSim data needs ale-py: pip install "gymgen[worldsim]"') from exc
    gymnasium.register_envs(ale_py)
    return gymnasium


def make_real_env(game: str = "Breakout", frameskip: int = 4):
    """The real ale-py game the simulator imitates (deterministic: no sticky actions)."""
    if game not in CROPS:
        raise ValueError(f"unknown game {game!r}; expected one of {sorted(CROPS)}")
    gym = _require_ale()
    return gym.make(f"ALE/{game}-v5", frameskip=frameskip, repeat_action_probability=0.0)


def preprocess(screen: np.ndarray, game: str = "Breakout", size: int = 64) -> np.ndarray:
    """Crop a 210x160x3 uint8 screen to the playing field and max-pool it to ``size x size x 3``.

    When the crop is not a multiple of ``size`` (160 -> 64), pixels are first repeated ``u`` times
    (the smallest ``u`` making ``u * crop`` a multiple of ``size``), so each output pixel is the max
    over a window of ``u * crop / size`` input pixels (2.5 for 160 -> 64).
    """
    rows, cols = CROPS[game]
    field = screen[rows, cols]
    h, w = field.shape[:2]
    if size < 1 or size > min(h, w):
        raise ValueError(f"size must be in [1, {min(h, w)}], got {size}")
    u = size // math.gcd(size, math.gcd(h, w))
    if u > 1:
        field = field.repeat(u, axis=0).repeat(u, axis=1)
        h, w = h * u, w * u
    fh, fw = h // size, w // size
    return field.reshape(size, fh, size, fw, 3).max(axis=(1, 3))


@dataclass
class Episodes:
    """Concatenated episodes: ``frames[i]`` has ``len(actions[i]) + 1`` frames."""

    frames: list[np.ndarray]  # each (T+1, H, W, 3) uint8
    actions: list[np.ndarray]  # each (T,) int64
    rewards: list[np.ndarray]  # each (T,) float32
    life_loss: list[np.ndarray]  # each (T,) bool
    terminals: list[np.ndarray]  # each (T,) bool


def record_episodes(
    game: str = "Breakout", n_episodes: int = 40, size: int = 64, frameskip: int = 4,
    max_steps: int = 600, seed: int = 0,
) -> Episodes:
    """Play ``n_episodes`` with the mixed random/scripted policy and return the downsampled data."""
    env = make_real_env(game, frameskip)
    n_act = env.action_space.n
    rng = np.random.default_rng(seed)
    out = Episodes([], [], [], [], [])
    for ep in range(n_episodes):
        eps = float(rng.uniform(0.2, 1.0))
        screen, info = env.reset(seed=seed * 10_000 + ep)
        lives = info["lives"]
        frames, acts, rews, lost, terms = [preprocess(screen, game, size)], [], [], [], []
        need_fire, hold, held = True, 0, 0
        for _ in range(max_steps):
            if need_fire:
                a, need_fire = 1, False
            elif hold > 0:
                a, hold = held, hold - 1
            elif game != "Breakout" or rng.random() < eps:  # scripted play only for Breakout
                # random actions held for a few frames so the paddle actually travels
                held, hold = int(rng.integers(n_act)), int(rng.integers(0, 4))
                a = held
            else:
                ram = env.unwrapped.ale.getRAM()
                diff = int(ram[_BREAKOUT_BALL_X]) - int(ram[_BREAKOUT_PADDLE_X]) - 8
                a = 2 if diff > 4 else 3 if diff < -4 else 0
            screen, r, term, trunc, info = env.step(a)
            life_lost = info["lives"] < lives
            lives = info["lives"]
            need_fire = life_lost
            frames.append(preprocess(screen, game, size))
            acts.append(a)
            rews.append(r)
            lost.append(life_lost or term)
            terms.append(term)
            if term or trunc:
                break
        out.frames.append(np.stack(frames))
        out.actions.append(np.asarray(acts, np.int64))
        out.rewards.append(np.asarray(rews, np.float32))
        out.life_loss.append(np.asarray(lost, bool))
        out.terminals.append(np.asarray(terms, bool))
    env.close()
    return out


def save_episodes(ep: Episodes, path: str | Path, meta: dict) -> str:
    """Save to a compressed .npz and return its sha256 (stored in the checkpoint metadata)."""
    lengths = np.asarray([len(a) for a in ep.actions], np.int64)
    np.savez_compressed(
        path, frames=np.concatenate(ep.frames), actions=np.concatenate(ep.actions),
        rewards=np.concatenate(ep.rewards), life_loss=np.concatenate(ep.life_loss),
        terminals=np.concatenate(ep.terminals), lengths=lengths,
        meta=np.asarray(repr(sorted(meta.items()))),
    )
    return file_sha256(path)


def load_episodes(path: str | Path) -> Episodes:
    """Inverse of ``save_episodes``; raises ``ValueError`` naming a missing array."""
    with np.load(path, allow_pickle=False) as z:
        need = ("frames", "actions", "rewards", "life_loss", "terminals", "lengths")
        missing = [k for k in need if k not in z.files]
        if missing:
            raise ValueError(f"{path}: not a WorldSim dataset, missing arrays {missing}")
        lengths = z["lengths"]
        f_off = np.concatenate([[0], np.cumsum(lengths + 1)])
        a_off = np.concatenate([[0], np.cumsum(lengths)])
        cut = lambda arr, off, i: arr[off[i]:off[i + 1]]  # noqa: E731
        data = {k: z[k] for k in need}
    n = len(lengths)
    return Episodes(
        [cut(data["frames"], f_off, i) for i in range(n)],
        [cut(data["actions"], a_off, i) for i in range(n)],
        [cut(data["rewards"], a_off, i) for i in range(n)],
        [cut(data["life_loss"], a_off, i) for i in range(n)],
        [cut(data["terminals"], a_off, i) for i in range(n)],
    )


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
