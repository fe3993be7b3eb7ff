"""BitSequence: build an n-bit string in k-bit words, rewarded by closeness to a seeded set of modes."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.validation import check_int
from gymgen.dag.base import DAGEnv, InvalidActionPolicy
from gymgen.dag.metrics import hamming_to_set, modes_found_within

#: the 8-bit building blocks of the mode set (Malkin et al. 2022, Appendix; torchgfn's ``H``)
MOTIFS = ("00000000", "11111111", "11110000", "00001111", "00111100")
BITSEQ_ORDERS = ("autoregressive", "any_slot")
BitOrder = Literal["autoregressive", "any_slot"]
REWARD_FORMS = ("exp_neg", "tb")
ENUMERABLE_MAX_STATES = 5_000_000


def make_modes(n: int, n_modes: int, mode_seed: int) -> np.ndarray:
    """``n_modes`` distinct n-bit modes (uint8 ``(n_modes, n)``), each a concatenation of 8-bit
    motifs drawn by ``numpy.random.Generator(mode_seed)`` (truncated to ``n`` bits)."""
    per = math.ceil(n / 8)
    if n_modes < 1 or n_modes > len(MOTIFS) ** per:
        raise ValueError(f"n_modes must be in [1, {len(MOTIFS) ** per}] for n={n} ({per} motifs of 5 kinds), got {n_modes!r}")
    motifs = np.array([[int(c) for c in m] for m in MOTIFS], dtype=np.uint8)
    rng = np.random.default_rng(mode_seed)
    picked: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    while len(picked) < n_modes:
        for row in rng.integers(0, len(MOTIFS), size=(n_modes, per)):
            key = tuple(int(v) for v in row)
            if key not in seen and len(picked) < n_modes:
                seen.add(key)
                picked.append(key)
    return motifs[np.array(picked)].reshape(n_modes, per * 8)[:, :n]


class BitWords(DAGEnv):
    """The word-by-word DAG shared by ``BitSequence`` and ``GCBitSequence`` (no reward of its own).

    ``L = n / k`` slots hold words in ``0 .. 2^k - 1`` (``-1`` = empty); ``order`` is
    ``"autoregressive"`` (append, a tree) or ``"any_slot"`` (fill any empty slot). See
    ``BitSequence`` for the action layout.
    """

    _read_only_params = DAGEnv._read_only_params + ("n", "k", "order", "n_words", "word_values")

    def _init_words(self, n: int, k: int, order: str) -> None:
        """Validate ``n, k, order`` and set the word layout, actions and ``s0``."""
        who = type(self).__name__
        k = check_int("k (bits per word)", k, low=1, high=16, owner=who)
        n = check_int("n (bits)", n, low=1, owner=who)
        if n < k or n % k:
            raise ValueError(f"n must be a positive multiple of k={k}, got {n!r}")
        if order not in BITSEQ_ORDERS:
            raise ValueError(f"order must be one of {BITSEQ_ORDERS}, got {order!r}")
        self.n, self.k, self.order = n, k, order
        self.n_words, self.word_values = n // k, 2**k
        self.s0 = torch.full((self.n_words,), -1, dtype=torch.int64)
        self.n_actions = (self.n_words if order == "any_slot" else 1) * self.word_values + 1
        self.state_high = self.word_values
        self.max_trajectory_length = self.n_words + 1
        self._bit_shifts = torch.arange(k - 1, -1, -1, device=self.device)

    # ---- stateless DAG API --------------------------------------------------------------------
    def forward_masks(self, states: torch.Tensor) -> torch.Tensor:
        empty = states < 0
        full = ~empty.any(-1, keepdim=True)
        if self.order == "any_slot":
            grow = empty.repeat_interleave(self.word_values, dim=-1)
        else:
            grow = (~full).expand(-1, self.word_values)
        return torch.cat([grow, full], dim=-1)

    def backward_masks(self, states: torch.Tensor) -> torch.Tensor:
        words = torch.arange(self.word_values, device=states.device)
        if self.order == "any_slot":
            if self.word_values >= 64:  # one row lookup per slot: ~10x faster than the broadcast == at 2^k >= 64
                return self._word_one_hot()[states + 1].reshape(states.shape[0], -1)
            return (states.unsqueeze(-1) == words).reshape(states.shape[0], -1)
        n = (states >= 0).sum(-1)
        last = states.gather(1, (n - 1).clamp(min=0).unsqueeze(1))
        return (n > 0).unsqueeze(-1) & (last == words)

    def _word_one_hot(self) -> torch.Tensor:
        """Row ``w + 1`` is the one-hot of word ``w``; row 0 (an empty slot, -1) is all False."""
        table = self.__dict__.get("_word_one_hot_table")
        if table is None:
            eye = torch.eye(self.word_values, dtype=torch.bool, device=self.device)
            table = self._word_one_hot_table = torch.cat([torch.zeros_like(eye[:1]), eye])
        return table

    def _slot_word(self, states: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.order == "any_slot":
            return actions // self.word_values, actions % self.word_values
        return (states >= 0).sum(-1), actions

    def forward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        slot, word = self._slot_word(states, actions)
        return states.scatter(1, slot.unsqueeze(1), word.unsqueeze(1))

    def backward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        slot, _ = self._slot_word(states, actions)
        if self.order == "autoregressive":
            slot = slot - 1
        return states.scatter(1, slot.unsqueeze(1), torch.full_like(slot, -1).unsqueeze(1))

    def to_bits(self, states: torch.Tensor) -> torch.Tensor:
        """Complete word states ``(N, L)`` -> bits ``(N, n)`` uint8 (raises on empty slots)."""
        if states.ndim != 2 or states.shape[1] != self.n_words:
            raise ValueError(f"states must have shape (N, {self.n_words}), got {tuple(states.shape)}")
        bad = (states < 0) | (states >= self.word_values)
        if bool(bad.any()):
            i = int(torch.nonzero(bad.any(-1))[0])
            raise ValueError(f"state {states[i].tolist()} is not complete: every slot must hold a word in [0, {self.word_values - 1}]")
        return ((states.unsqueeze(-1) >> self._bit_shifts) & 1).reshape(states.shape[0], self.n).to(torch.uint8)

    def from_bits(self, bits: torch.Tensor) -> torch.Tensor:
        """Bits ``(N, n)`` (0/1) -> word states ``(N, L)``."""
        if bits.ndim != 2 or bits.shape[1] != self.n or bool(((bits != 0) & (bits != 1)).any()):
            raise ValueError(f"bits must be a 0/1 tensor of shape (N, {self.n}), got shape {tuple(bits.shape)}")
        return (bits.long().reshape(-1, self.n_words, self.k) << self._bit_shifts).sum(-1)

    def _draw(self, index: int, goal: torch.Tensor | None = None) -> Any:
        """The n bits as a strip (black = 1, white = 0, grey = empty slot); a goal is a second strip
        with a green mark under every bit the state already matches."""
        from gymgen.dag import render

        def bits(words: list[int]) -> list[int]:
            return [(w >> (self.k - 1 - j)) & 1 if w >= 0 else -1 for w in words for j in range(self.k)]

        rows = [bits(self.states[index].tolist())]
        marks = None
        if goal is not None:
            rows.append(bits(goal.tolist()))
            marks = [[a == b for a, b in zip(rows[0], rows[1])], [False] * len(rows[1])]
        return render.strip_image(rows, render.BIT_COLORS, marks)

    def is_enumerable(self) -> bool:
        base = self.word_values + (1 if self.order == "any_slot" else 0)
        n_states = base**self.n_words if self.order == "any_slot" else sum(base**i for i in range(self.n_words + 1))
        fits_key = self.n_words * math.log2(self.word_values + 2) <= 62
        return fits_key and n_states <= ENUMERABLE_MAX_STATES


class BitSequence(BitWords):
    """BitSequence: write an n-bit string as n/k words of k bits; reward = closeness to a mode set.

    ## Description
    The target is a set ``M`` of ``n_modes`` n-bit strings, each a concatenation of 8-bit motifs
    from ``{00000000, 11111111, 11110000, 00001111, 00111100}`` chosen by
    ``numpy.random.default_rng(mode_seed)`` (reproducible; ``env.modes`` holds them as bits). With
    ``d(x) = min_{m in M} Hamming(x, m)``:

    ``R(x) = exp(-d(x) / n)``, so ``R(x)^beta = exp(-beta * d(x) / n)``

    (the gfnx form). The trajectory-balance paper (Malkin et al. 2022) writes ``exp(1 - d/n)``,
    which is the same up to the constant factor ``e`` (``e^beta`` after the exponent): distributions,
    rankings and mode counts are identical; only ``log Z`` shifts by ``beta``. Pass
    ``reward_form="tb"`` for that form (``log R = 1 - d/n``) when ``log Z`` must match the paper's. TB uses edit distance
    where gymgen uses Hamming distance (equal-length strings; torchgfn and gfnx do the same).

    ## Action space (``order=``)
    ``L = n / k`` slots, each holding a word in ``0 .. 2^k - 1`` (the word's bits, most significant
    first, are bits ``k*j .. k*j+k-1`` of x).
    - ``"autoregressive"`` (default; a tree): forward action ``w < 2^k`` appends word ``w``;
      backward action ``w`` removes the last word if it is ``w``.
    - ``"any_slot"`` (non-autoregressive, a DAG with ``L!`` orders per string): forward action
      ``slot * 2^k + w`` writes word ``w`` into an empty ``slot``; backward action ``slot * 2^k + w``
      clears ``slot`` and is legal exactly when that slot holds ``w``.
    The last forward action (``2^k`` or ``L * 2^k``) exits, legal only when every slot is filled.

    ## Observation space
    ``Dict(state=Box(-1, 2^k - 1, (L,), int64), action_mask, backward_mask)``; ``-1`` = empty slot.

    ## Rewards
    0 until exit; then ``R(x)^beta`` (``info["log_reward"] = -beta * d(x) / n``).

    ## Metrics
    ``modes_found(states, delta)`` = number of modes with a sample within Hamming distance
    ``delta`` (TB paper: ``delta = 28`` for n=120); ``test_set(...)`` = modes with random bit flips,
    for the Spearman correlation of ``log p(x)`` and ``log R(x)`` (``gymgen.dag.metrics``). Small
    settings (e.g. ``n=8, k=2``; ``gymgen/BitSequence-Small-v0``) are exactly enumerable.

    ## Starting state
    All slots empty (``-1``).

    ## Episode end
    Terminated on exit (``L + 1`` forward actions). Stepping a finished episode raises.

    ## Arguments
    ``n`` (120), ``k`` (8), ``n_modes`` (60), ``mode_seed`` (0), ``order`` ("autoregressive"),
    ``reward_form`` ("exp_neg" | "tb"),
    ``reward_exponent`` (beta, 3.0 as in the TB/QGFN configs), ``invalid_action`` ("raise" |
    "terminate" | "ignore"), ``device`` ("cpu").

    ## Version history
    - v0: first release.

    ## Source
    Malkin et al., "Trajectory balance" (NeurIPS 2022); Tiapkin et al., "Generative flow networks as
    entropy-regularized RL" (AISTATS 2024, non-autoregressive variant). Used by QGFN (and, goal-
    conditioned, RBS: ``gymgen/GCBitSequence-v0``).
    """

    _read_only_params = BitWords._read_only_params + ("n_modes", "mode_seed", "reward_form", "modes")

    def __init__(
        self,
        n: int = 120,
        k: int = 8,
        n_modes: int = 60,
        mode_seed: int = 0,
        order: BitOrder = "autoregressive",
        reward_exponent: float = 3.0,
        reward_form: Literal["exp_neg", "tb"] = "exp_neg",
        invalid_action: InvalidActionPolicy = "raise",
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(batch_size=batch_size, device=device, invalid_action=invalid_action, reward_exponent=reward_exponent)
        self._init_words(n, k, order)
        mode_seed = check_int("mode_seed", mode_seed, low=0, owner="BitSequence")
        n_modes = check_int("n_modes", n_modes, low=1, owner="BitSequence")
        if reward_form not in REWARD_FORMS:
            raise ValueError(f"reward_form must be one of {REWARD_FORMS}, got {reward_form!r}")
        self.n_modes, self.mode_seed, self.reward_form = n_modes, mode_seed, reward_form
        self.modes = torch.as_tensor(make_modes(n, n_modes, mode_seed), device=self.device)
        self._finish_dag_init()

    def min_hamming(self, states: torch.Tensor) -> torch.Tensor:
        """``d(x)``: Hamming distance of each complete state to the nearest mode (int64 ``(N,)``)."""
        return hamming_to_set(self.to_bits(states), self.modes).min(-1).values

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        log_r = -self.min_hamming(states).double() / self.n + (1.0 if self.reward_form == "tb" else 0.0)
        return (self.reward_exponent * log_r).to(torch.float32)

    # ---- modes and test set -------------------------------------------------------------------
    def mode_states(self) -> torch.Tensor:
        """The modes as word states ``(n_modes, L)``."""
        return self.from_bits(self.modes)

    #: Hamming radius within which a sample counts as having found a reference mode (``mode_mask``);
    #: ``None`` = the TB paper's 28 bits for n = 120, scaled to ``n`` (``28 * n // 120``)
    mode_delta: int | None = None

    def _mode_delta(self) -> int:
        return self.n * 28 // 120 if self.mode_delta is None else int(self.mode_delta)

    def mode_mask(self, states: torch.Tensor) -> torch.Tensor:
        """True where a complete state lies within ``mode_delta`` bits of a reference mode."""
        return self.min_hamming(states) <= self._mode_delta()

    def mode_keys(self, states: torch.Tensor) -> list[int]:
        """The index of the nearest reference mode: "modes found" counts reference modes reached, as in
        the TB paper (``modes_found_within(samples, modes, mode_delta)``)."""
        return hamming_to_set(self.to_bits(states), self.modes).argmin(-1).tolist()

    def modes_found(self, states: torch.Tensor, delta: int = 0) -> int:
        """Number of modes with at least one of ``states`` within Hamming distance ``delta``."""
        return modes_found_within(self.to_bits(states), self.modes, delta)

    def test_set(self, per_mode: int = 10, max_flips: int | None = None, seed: int = 0) -> torch.Tensor:
        """Word states of each mode with ``1..max_flips`` random bits flipped (default ``n // 4``),
        ``per_mode`` per mode: the test set for the ``log p`` vs ``log R`` correlation."""
        max_flips = max(1, self.n // 4) if max_flips is None else max_flips
        if not 1 <= max_flips <= self.n:
            raise ValueError(f"max_flips must be in [1, {self.n}], got {max_flips!r}")
        g = torch.Generator(device="cpu").manual_seed(seed)
        bits = self.modes.cpu().repeat_interleave(per_mode, 0).clone()
        n_flip = torch.randint(1, max_flips + 1, (bits.shape[0],), generator=g)
        order = torch.argsort(torch.rand(bits.shape, generator=g), dim=-1)
        flip = torch.zeros_like(bits, dtype=torch.bool).scatter(1, order, torch.arange(self.n).expand_as(order) < n_flip[:, None])
        return self.from_bits((bits ^ flip.to(torch.uint8)).to(self.device))


BitSequenceEnv = single_env_view(BitSequence)
BitSequenceVectorEnv = vector_env_view(BitSequence)
