"""Goal-conditioned DAG envs for RBS: a goal sampled per episode, reward 1 only for exiting at it."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.batched import InfoField, Obs, StepResult
from gymgen.dag.base import DAGEnv, InvalidActionPolicy
from gymgen.dag.bitseq import BitOrder, BitWords
from gymgen.dag.hypergrid import HyperGrid

#: ``log R`` of exiting anywhere but the goal (R = 0)
FAIL_LOG_REWARD = float("-inf")
GC_BITSEQ_SIZES = {"small": (40, 2), "medium": (60, 3), "large": (100, 5)}


def success_rate(final_states: torch.Tensor, goals: torch.Tensor) -> float:
    """Fraction of episodes whose final (exited) state equals its goal (RBS's success rate)."""
    if final_states.shape != goals.shape or final_states.ndim != 2:
        raise ValueError(f"final_states and goals must both be (N, d), got {tuple(final_states.shape)} and {tuple(goals.shape)}")
    if final_states.shape[0] == 0:
        raise ValueError("success_rate of zero episodes is undefined")
    return float((final_states == goals.to(final_states.device)).all(-1).double().mean())


class GoalConditioned(DAGEnv):
    """Mixin over a DAG env: per-row ``goals`` sampled from ``self.rng`` at reset, observed under
    ``goal``; ``log R = 0`` (R = 1) when exiting at the goal, ``-inf`` (R = 0) elsewhere."""

    goals: torch.Tensor

    def sample_goals(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` goals ``(n, d)`` drawn uniformly from the terminal states with ``generator`` (default:
        the env's seeded ``self.rng``; pass your own so that, e.g., evaluation does not shift training)."""
        raise NotImplementedError

    def _finish_goal_init(self) -> None:
        d = self.state_dim
        self.single_observation_space = spaces.Dict(
            {**self.single_observation_space.spaces, "goal": spaces.Box(0, self.state_high - 1, shape=(d,), dtype="int64")}
        )
        self.goals = self.sample_goals(self.num_envs)
        self.info_fields = {**self.info_fields, "success": InfoField(torch.bool)}
        self._finish_init()

    def reset_tensors(self, mask: torch.Tensor | None = None) -> Obs:
        if mask is None:
            self.goals = self.sample_goals(self.num_envs)
        else:
            m = mask.to(self.device)
            self.goals[m] = self.sample_goals(int(m.sum()))
        return super().reset_tensors(mask)

    def _observe(self) -> Obs:
        return {**super()._observe(), "goal": self.goals.clone()}

    def set_goals(self, goals: torch.Tensor, mask: torch.Tensor | None = None) -> Obs:
        """Replace the goals of the rows in ``mask`` (all rows if None), e.g. to evaluate fixed goals
        or to pair a forward rollout with a backward synthesis from a chosen goal (RBS)."""
        goals = torch.as_tensor(goals, dtype=torch.int64, device=self.device)
        rows = self.num_envs if mask is None else int(mask.sum())
        if goals.shape != (rows, self.state_dim) or bool(((goals < 0) | (goals >= self.state_high)).any()):
            raise ValueError(
                f"goals must be an int tensor of shape ({rows}, {self.state_dim}) with entries in "
                f"[0, {self.state_high}), got shape {tuple(goals.shape)}: {goals.tolist()[:4]}"
            )
        if mask is None:
            self.goals = goals.clone()
        else:
            self.goals[mask.to(self.device)] = goals
        return self._observe()

    def goal_log_reward(self, states: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """``0`` where ``states == goals`` row-wise, else ``-inf`` (float ``(N,)``)."""
        if states.shape != goals.shape or states.ndim != 2 or states.shape[1] != self.state_dim:
            raise ValueError(f"states and goals must both be (N, {self.state_dim}), got {tuple(states.shape)} and {tuple(goals.shape)}")
        hit = (states == goals.to(states.device)).all(-1)
        return torch.where(hit, 0.0, FAIL_LOG_REWARD).to(torch.float32)

    def log_reward(self, states: torch.Tensor, goals: torch.Tensor | None = None) -> torch.Tensor:
        """``log R(x | goal)``; ``goals=None`` uses the env's current goals (one row per env)."""
        if goals is None:
            if states.shape[0] != self.num_envs:
                raise ValueError(
                    f"{type(self).__name__} is goal-conditioned: pass goals= for a batch of {states.shape[0]} states "
                    f"(goals=None means the env's current goals, which needs exactly {self.num_envs} rows)"
                )
            goals = self.goals
        return self.goal_log_reward(states, goals)

    def _exit_log_reward(self, rows: torch.Tensor) -> torch.Tensor:
        return self.goal_log_reward(self.states[rows], self.goals[rows])

    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None) -> StepResult:
        obs, reward, terminated, truncated, info = super().step_tensors(action, active)
        info["success"] = terminated & ~info["invalid_action"] & (self.states == self.goals).all(-1)
        return obs, reward, terminated, truncated, info

    def is_enumerable(self) -> bool:
        return False  # the target is a point mass on the goal; there is no goal-free distribution

    def mode_mask(self, states: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} is goal-conditioned: it has no modes, measure success_rate")

    def _describe(self, index: int) -> str:
        return f"{super()._describe(index)} goal={self.goals[index].tolist()}"

    def _draw(self, index: int, goal: torch.Tensor | None = None) -> Any:
        """The base env's picture with this row's goal drawn in (outlined cell / second strip)."""
        return super()._draw(index, self.goals[index] if goal is None else goal)


class GCHyperGrid(GoalConditioned, HyperGrid):
    """GCHyperGrid: reach a goal cell of a 2-D ``height x height`` grid (sparse reward; RBS).

    ## Description
    The 2-D HyperGrid DAG (start at ``(0, 0)``, increment one coordinate per step, exit anywhere),
    with a goal cell drawn uniformly from the grid at every reset (from the env's seeded generator:
    ``reset(seed=...)`` fixes it). The reward is 1 only if the episode exits exactly at the goal --
    the extremely sparse outcome-conditioned setting of Pan et al. (2024) used by RBS. The paper
    sizes are ``height`` 32, 64 and 128 (any ``height >= 2`` works; small ones are handy in tests).

    ## Action space
    ``Discrete(3)``: 0 increments x, 1 increments y, 2 exits (legal everywhere). Backward action
    ``i`` decrements coordinate ``i``.

    ## Observation space
    ``Dict(state=Box(0, H-1, (2,), int64), goal=Box(0, H-1, (2,), int64), action_mask, backward_mask)``.

    ## Rewards
    0 on every step; on exit 1 if ``state == goal`` else 0. ``info["success"]`` says which;
    ``info["log_reward"]`` is 0 on success and ``-inf`` on failure (R = 0 exactly). Agents that train
    on ``log R`` (TB, DB) must handle ``-inf``: clamp it (e.g. ``max(log R, -100)``) or, as RBS does,
    learn from successful (goal-reaching or relabelled) trajectories only. ``log_reward(states,
    goals)`` scores any batch against given goals; ``success_rate(final_states, goals)`` (module
    function) is the metric.

    ## Starting state
    ``(0, 0)`` with a fresh goal.

    ## Episode end
    Terminated on exit (at most ``2 * (H - 1) + 1`` actions).

    ## Arguments
    ``height`` (32), ``invalid_action`` ("raise" | "terminate" | "ignore"), ``device`` ("cpu").

    ## Version history
    - v0: first release.

    ## Source
    He et al., "Looking backward: retrospective backward synthesis for goal-conditioned GFlowNets"
    (ICLR 2025); Pan et al., "Pre-training and fine-tuning generative flow networks" (ICLR 2024).
    """

    def __init__(
        self,
        height: int = 32,
        invalid_action: InvalidActionPolicy = "raise",
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        HyperGrid.__init__(self, ndim=2, height=height, semantics="exit_anywhere", invalid_action=invalid_action,
                           batch_size=batch_size, device=device)
        self._finish_goal_init()

    def sample_goals(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randint(0, self.height, (n, 2), generator=self.rng if generator is None else generator, device=self.device)


class GCBitSequence(GoalConditioned, BitWords):
    """GCBitSequence: write a given target bit string word by word (sparse reward; RBS).

    ## Description
    The BitSequence DAG (``n`` bits in ``L = n/k`` words of ``k`` bits, ``order`` autoregressive or
    any_slot; see ``gymgen/BitSequence-v0``), with a target string drawn uniformly at every reset
    and given as the goal (as words). Reward 1 only for an exact match.

    ## Sizes (``size=``)
    ``"small"`` n=40, k=2; ``"medium"`` n=60, k=3; ``"large"`` n=100, k=5 (RBS's three settings,
    read as n bits in k-bit words). Passing both ``n`` and ``k`` overrides ``size``.

    ## Action space
    ``Discrete(2^k + 1)`` (autoregressive: append word ``w``; last = exit) or
    ``Discrete(L * 2^k + 1)`` (any_slot: ``slot * 2^k + w``). Exit is legal only when full.

    ## Observation space
    ``Dict(state=Box(-1, 2^k-1, (L,), int64), goal=Box(0, 2^k-1, (L,), int64), action_mask, backward_mask)``.

    ## Rewards
    On exit 1 if ``state == goal`` else 0; ``info["success"]``; ``info["log_reward"]`` 0 or ``-inf``
    (see ``GCHyperGrid`` for how agents should treat ``-inf``).

    ## Starting state
    All slots empty (``-1``) with a fresh goal.

    ## Episode end
    Terminated on exit (``L + 1`` actions).

    ## Arguments
    ``size`` ("small"), ``n``/``k`` (None), ``order`` ("autoregressive"), ``invalid_action``,
    ``device`` ("cpu").

    ## Version history
    - v0: first release.

    ## Source
    He et al., "Looking backward: retrospective backward synthesis for goal-conditioned GFlowNets"
    (ICLR 2025).
    """

    def __init__(
        self,
        size: str = "small",
        n: int | None = None,
        k: int | None = None,
        order: BitOrder = "autoregressive",
        invalid_action: InvalidActionPolicy = "raise",
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        DAGEnv.__init__(self, batch_size=batch_size, device=device, invalid_action=invalid_action)
        if (n is None) != (k is None):
            raise ValueError(f"pass both n and k (or neither, to use size=), got n={n!r}, k={k!r}")
        if n is None:
            if size not in GC_BITSEQ_SIZES:
                raise ValueError(f"size must be one of {tuple(GC_BITSEQ_SIZES)}, got {size!r}")
            n, k = GC_BITSEQ_SIZES[size]
        self.size = size
        self._init_words(n, k, order)
        self._finish_dag_init()
        self._finish_goal_init()

    def sample_goals(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randint(0, self.word_values, (n, self.n_words), generator=self.rng if generator is None else generator, device=self.device)


GCHyperGridEnv = single_env_view(GCHyperGrid)
GCHyperGridVectorEnv = vector_env_view(GCHyperGrid)
GCBitSequenceEnv = single_env_view(GCBitSequence)
GCBitSequenceVectorEnv = vector_env_view(GCBitSequence)
