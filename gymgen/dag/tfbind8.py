"""TFBind8: design a DNA 8-mer that binds the transcription factor SIX6 (exact, 65,536 candidates)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import numpy as np
import torch

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.validation import check_float, check_int
from gymgen.dag.base import DAGEnv, InvalidActionPolicy

ALPHABET = "ACGT"
LENGTH = 8
N_MODES = 328  # top 0.5 % of 4^8 (327.68 rounded up); the 328th score (0.9469) is not tied with the 329th
ORDERS = ("append", "prepend_append")
Order = Literal["append", "prepend_append"]
REWARDS = ("normalized", "shen")


@lru_cache(maxsize=1)
def _scores_np() -> np.ndarray:
    path = resources.files("gymgen.dag.data").joinpath("tfbind8_scores.npy")
    with resources.as_file(path) as p:
        y = np.load(p, allow_pickle=False)
    if y.shape != (4**LENGTH,) or y.dtype != np.float32 or not np.isfinite(y).all():
        raise ValueError(f"{path}: corrupt TFBind8 table (shape {y.shape}, dtype {y.dtype}); rebuild it with scripts/build_tfbind8.py")
    return y


def encode(sequences: Sequence[str] | str) -> np.ndarray:
    """Letters (case-insensitive) -> ``(N, 8)`` int64 codes (A=0, C=1, G=2, T=3); raises on a wrong alphabet or length."""
    seqs = [sequences] if isinstance(sequences, str) else list(sequences)
    out = np.empty((len(seqs), LENGTH), dtype=np.int64)
    for i, s in enumerate(seqs):
        if not isinstance(s, str) or len(s) != LENGTH:
            raise ValueError(f"sequence {i} = {s!r} must be a string of length {LENGTH} over {ALPHABET!r}")
        bad = [c for c in s.upper() if c not in ALPHABET]
        if bad:
            raise ValueError(f"sequence {i} = {s!r} has letters {sorted(set(bad))} outside the alphabet {ALPHABET!r}")
        out[i] = [ALPHABET.index(c) for c in s.upper()]
    return out


def decode(states: torch.Tensor | np.ndarray) -> list[str]:
    """``(N, 8)`` codes -> strings (``-1`` entries, i.e. empty positions, are written as ``.``)."""
    arr = np.asarray(states.cpu() if isinstance(states, torch.Tensor) else states)
    return ["".join(ALPHABET[v] if v >= 0 else "." for v in row) for row in arr.reshape(-1, LENGTH)]


def score(sequences: Sequence[str] | str) -> np.ndarray:
    """Min-max normalised SIX6 E-score ``y`` in [0, 1] of each 8-mer (batched lookup, float32)."""
    codes = encode(sequences)
    return _scores_np()[codes @ (4 ** np.arange(LENGTH - 1, -1, -1))]


class TFBind8(DAGEnv):
    """TFBind8: write a DNA 8-mer letter by letter; reward = its measured binding to SIX6.

    ## Description
    The candidate space is all 4^8 = 65,536 strings over ``ACGT``. The score ``y(x)`` is the
    min-max normalised E-score of the SIX6 protein-binding-microarray table (Barrera et al. 2016),
    the labels of design-bench ``TFBind8-Exact-v0``; a sequence and its reverse complement share a
    score. The table ships in the package (``gymgen/dag/data/tfbind8_scores.npy``) and
    ``gymgen.dag.tfbind8.score(["ACGTACGT", ...])`` looks up a batch of strings. Everything is exact:
    ``terminal_states()``, ``true_distribution()``, ``log_partition()``.

    ## Action space (``order=``)
    - ``"append"`` (default; a tree, as in gfnx and the RPE "tree" setting): letters are appended
      left to right. Forward actions ``0..3`` append ``A, C, G, T``; action ``4`` exits.
    - ``"prepend_append"`` (a DAG with many paths per sequence, Shen et al. 2023 / RPE): actions
      ``0..3`` append, ``4..7`` prepend ``A, C, G, T``, action ``8`` exits. Prepend is masked in the
      empty state (so the first letter has a single edge; no parallel edges).
    Exit is legal only once all 8 letters are written (and is then the only legal action).
    Backward action ``i`` undoes forward action ``i``: remove the last letter if it is letter ``i``
    (or, with ``prepend_append``, remove the first letter if it is letter ``i - 4``, when at
    least 2 letters are present).

    ## Observation space
    ``Dict(state=Box(-1, 3, (8,), int64), action_mask, backward_mask)``. The state holds the letter
    codes (A=0, C=1, G=2, T=3) left-aligned, ``-1`` for positions not yet written.

    ## Rewards
    0 until exit; then ``R(x)^beta`` with ``beta = reward_exponent`` (``info["log_reward"]`` =
    ``beta * log R``). ``reward="normalized"`` (default): ``R = max(y, reward_floor)``, the floor
    (default 1e-3) only keeps ``log R`` finite for the single sequence with ``y = 0``.
    ``reward="shen"``: ``R = max(10 * y^3, 1e-3)`` (Shen et al. 2023's transform, max y = 1).

    ## Modes
    ``mode_mask(states)``: the top 0.5 % by ``y`` -- the 328 sequences with ``y >= 0.9469`` (the
    328th score is strictly above the 329th, so the set is well defined; it is closed under reverse
    complement). ``modes_found(states)`` counts distinct modes among sampled terminal states.
    ``mode_top_k`` (328) changes ``k``; ``mode_threshold`` (None) instead sets the threshold on ``y``
    directly (ties at the ``k``-th score, if any, are all modes).

    ## Starting state
    The empty sequence (all ``-1``).

    ## Episode end
    Terminated on exit (9 forward actions per trajectory). Stepping a finished episode raises.

    ## Arguments
    ``order`` ("append"), ``reward`` ("normalized"), ``reward_exponent`` (1.0), ``reward_floor``
    (1e-3), ``mode_top_k`` (328), ``mode_threshold`` (None), ``invalid_action`` ("raise" | "terminate" | "ignore"), ``device`` ("cpu").

    ## Version history
    - v0: first release.

    ## Source
    Barrera et al., Science 351 (2016) (data); Trabucco et al., "Design-Bench" (ICML 2022);
    Shen et al., "Towards understanding and improving GFlowNet training" (ICML 2023). Used by the
    seed papers RPE and RBS.
    """

    _read_only_params = DAGEnv._read_only_params + ("order", "reward_kind", "reward_floor")

    def __init__(
        self,
        order: Order = "append",
        reward: Literal["normalized", "shen"] = "normalized",
        reward_exponent: float = 1.0,
        reward_floor: float = 1e-3,
        mode_top_k: int = N_MODES,
        mode_threshold: float | None = None,
        invalid_action: InvalidActionPolicy = "raise",
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(batch_size=batch_size, device=device, invalid_action=invalid_action, reward_exponent=reward_exponent)
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        reward_floor = check_float("reward_floor", reward_floor, low=0, high=1, low_open=True, high_open=True, owner="TFBind8")
        self.order, self.reward_kind, self.reward_floor = order, reward, float(reward_floor)
        self.scores = torch.as_tensor(_scores_np(), device=self.device)
        mode_top_k = check_int("mode_top_k", mode_top_k, low=1, high=4**LENGTH, owner="TFBind8")
        mode_threshold = check_float("mode_threshold", mode_threshold, low=0, high=1, optional=True, owner="TFBind8")
        top = float(torch.topk(self.scores, mode_top_k).values[-1])
        self.mode_threshold = top if mode_threshold is None else float(mode_threshold)
        self._weights = 4 ** torch.arange(LENGTH - 1, -1, -1, device=self.device)
        self.s0 = torch.full((LENGTH,), -1, dtype=torch.int64)
        self.n_actions = (8 if order == "prepend_append" else 4) + 1
        self.state_high = 4
        self.max_trajectory_length = LENGTH + 1
        self._finish_dag_init()

    # ---- stateless DAG API --------------------------------------------------------------------
    @staticmethod
    def lengths(states: torch.Tensor) -> torch.Tensor:
        """Number of letters written in each state."""
        return (states >= 0).sum(-1)

    def forward_masks(self, states: torch.Tensor) -> torch.Tensor:
        n = self.lengths(states)
        full = (n == LENGTH).unsqueeze(-1)
        grow = (~full).expand(-1, 4)
        parts = [grow]
        if self.order == "prepend_append":
            parts.append(grow & (n > 0).unsqueeze(-1))
        return torch.cat([*parts, full], dim=-1)

    def backward_masks(self, states: torch.Tensor) -> torch.Tensor:
        n = self.lengths(states)
        rows = torch.arange(states.shape[0], device=states.device)
        last = states[rows, (n - 1).clamp(min=0)]
        letters = torch.arange(4, device=states.device)
        masks = [(n > 0).unsqueeze(-1) & (last.unsqueeze(-1) == letters)]
        if self.order == "prepend_append":
            masks.append((n > 1).unsqueeze(-1) & (states[:, :1] == letters))
        return torch.cat(masks, dim=-1)

    def forward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        out = states.clone()
        rows = torch.arange(states.shape[0], device=states.device)
        n = self.lengths(states)
        app = actions < 4
        if bool(app.any()):
            out[rows[app], n[app]] = actions[app]
        pre = ~app
        if bool(pre.any()):
            out[pre, 1:] = states[pre, :-1]
            out[pre, 0] = actions[pre] - 4
        return out

    def backward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        out = states.clone()
        rows = torch.arange(states.shape[0], device=states.device)
        n = self.lengths(states)
        app = actions < 4
        if bool(app.any()):
            out[rows[app], n[app] - 1] = -1
        pre = ~app
        if bool(pre.any()):
            out[pre, :-1] = states[pre, 1:]
            out[pre, -1] = -1
        return out

    def score_states(self, states: torch.Tensor) -> torch.Tensor:
        """Normalised E-score ``y`` of complete states ``(N, 8)`` (raises on incomplete or bad codes)."""
        if states.ndim != 2 or states.shape[1] != LENGTH:
            raise ValueError(f"states must have shape (N, {LENGTH}), got {tuple(states.shape)}")
        bad = (states < 0) | (states > 3)
        if bool(bad.any()):
            i = int(torch.nonzero(bad.any(-1))[0])
            raise ValueError(f"state {states[i].tolist()} is not a complete 8-mer (codes must be in 0..3)")
        return self.scores[(states.long() * self._weights).sum(-1)]

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        y = self.score_states(states).double()
        r = 10 * y**3 if self.reward_kind == "shen" else y
        floor = 1e-3 if self.reward_kind == "shen" else self.reward_floor
        return (self.reward_exponent * r.clamp(min=floor).log()).to(torch.float32)

    def is_enumerable(self) -> bool:
        return True

    # ---- modes --------------------------------------------------------------------------------
    def mode_mask(self, states: torch.Tensor) -> torch.Tensor:
        """True where ``y >= mode_threshold`` (by default the top-328, 0.5 %, sequences by ``y``)."""
        return self.score_states(states) >= self.mode_threshold

    def mode_keys(self, states: torch.Tensor) -> list[int]:
        return (states.long() * self._weights).sum(-1).tolist()

    def modes_found(self, states: torch.Tensor) -> int:
        """Number of distinct modes among complete ``states`` (e.g. all samples so far)."""
        modes = states[self.mode_mask(states)]
        return int(torch.unique((modes.long() * self._weights).sum(-1)).numel())

    def _describe(self, index: int) -> str:
        return f"{decode(self.states[index:index + 1])[0]} done={bool(self.finished[index])}"

    def _draw(self, index: int, goal: torch.Tensor | None = None) -> Any:
        """The 8-mer as a strip of letters in sequence-logo colours (A green, C blue, G orange, T red)."""
        from gymgen.dag import render

        return render.strip_image([self.states[index].tolist()], render.DNA_COLORS)


TFBind8Env = single_env_view(TFBind8)
TFBind8VectorEnv = vector_env_view(TFBind8)
