"""``DAGEnv``: the GFlowNet side of gymgen's batched core.

A DAG env is a stateless description of a directed acyclic graph over integer state tensors --
forward and backward actions with masks, ``forward_step``/``backward_step`` and a terminal reward --
plus the stateful ``BatchedEnv`` machinery (current states, reset/step, invalid-action policy) written
here once. Forward action ``n_actions - 1`` is always *exit*; backward action ``i`` undoes forward
action ``i``. GFlowNet agents use the stateless methods on whole batches; RL agents use the env.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

import torch
from gymnasium import spaces

from gymgen.core.batched import BatchedEnv, InfoField, InvalidActionError, Obs, StepResult
from gymgen.core.validation import check_float

InvalidActionPolicy = Literal["raise", "terminate", "ignore"]
INVALID_ACTION_POLICIES = ("raise", "terminate", "ignore")
#: how the loud default's error tells learners that cannot mask (DQN, plain PPO) to opt in
INVALID_ACTION_HINT = (
    "Mask actions with the observation's action_mask (or env.action_masks()), or, for a learner that cannot mask "
    "(DQN, plain PPO), opt in with invalid_action='terminate' (an illegal action ends the episode with reward 0) "
    "or 'ignore' (the state stays, reward 0), e.g. gymnasium.make(env_id, invalid_action='terminate') or "
    "gymgen.make_batched(env_id, invalid_action='ignore')."
)


class DAGEnv(BatchedEnv):
    """Base class of gymgen's GFlowNet environments (see the module docstring for the contract).

    Subclasses set ``s0`` (1-D int64 tensor), ``n_actions``, ``state_high`` (exclusive upper bound of
    every state entry, for the observation space), ``max_trajectory_length`` (forward actions
    including the exit), and implement ``forward_masks``, ``backward_masks``, ``forward_step``,
    ``backward_step`` and ``log_reward``. ``auto_exit=True`` ends an episode as soon as exit is
    the only legal action (the "edge terminates" semantics of the original grid).

    Rendering: ``render_mode="ansi"`` (the state as text) or ``"rgb_array"`` (a picture drawn by the
    family's ``_draw``: grids, bit/letter strips, molecules, goals; constant size per env, so
    ``RecordVideo`` works). Drawing happens only in ``render()``, never in ``step``.
    """

    s0: torch.Tensor
    n_actions: int
    state_high: int
    max_trajectory_length: int
    auto_exit: bool = False
    #: forward masks are lists of allowed actions; states are integer vectors
    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
        invalid_action: InvalidActionPolicy = "raise",
        reward_exponent: float = 1.0,
    ) -> None:
        super().__init__(batch_size=batch_size, device=device)
        if invalid_action not in INVALID_ACTION_POLICIES:
            raise ValueError(f"invalid_action must be one of {INVALID_ACTION_POLICIES}, got {invalid_action!r}")
        reward_exponent = check_float("reward_exponent (beta)", reward_exponent, low=0, low_open=True, owner=type(self).__name__)
        self.invalid_action = invalid_action
        self.reward_exponent = float(reward_exponent)
        # log R of the rows that exited this step (-inf elsewhere), and which rows took an illegal action
        self.info_fields = {"log_reward": InfoField(torch.float32), "invalid_action": InfoField(torch.bool)}

    def _finish_dag_init(self) -> None:
        """Build spaces and state buffers; call at the end of a subclass ``__init__``."""
        self.s0 = self.s0.to(self.device)
        d = self.s0.shape[0]
        self.single_observation_space = spaces.Dict(
            {
                "state": spaces.Box(-1, self.state_high - 1, shape=(d,), dtype="int64"),
                "action_mask": spaces.MultiBinary(self.n_actions),
                "backward_mask": spaces.MultiBinary(self.n_actions - 1),
            }
        )
        self.single_action_space = spaces.Discrete(self.n_actions)
        self.states = self.s0.expand(self.num_envs, d).clone()
        self.finished = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self._finish_init()

    # ---- the stateless DAG API each env implements --------------------------------------------
    @property
    def exit_action(self) -> int:
        return self.n_actions - 1

    @property
    def n_backward_actions(self) -> int:
        return self.n_actions - 1

    @property
    def state_dim(self) -> int:
        return int(self.s0.shape[0])

    def forward_masks(self, states: torch.Tensor) -> torch.Tensor:
        """Bool ``(N, n_actions)``: legal forward actions (the last one is exit)."""
        raise NotImplementedError

    def backward_masks(self, states: torch.Tensor) -> torch.Tensor:
        """Bool ``(N, n_actions - 1)``: legal backward actions (all False at ``s0``)."""
        raise NotImplementedError

    def forward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Children of ``states`` under non-exit ``actions`` (masks are not checked here)."""
        raise NotImplementedError

    def backward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Parents of ``states`` under backward ``actions`` (masks are not checked here)."""
        raise NotImplementedError

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        """``beta * log R(x)`` for terminal candidates ``states`` (float ``(N,)``)."""
        raise NotImplementedError

    def reward(self, states: torch.Tensor) -> torch.Tensor:
        return self.log_reward(states).exp()

    def is_initial(self, states: torch.Tensor) -> torch.Tensor:
        return (states == self.s0).all(-1)

    def num_children(self, states: torch.Tensor) -> torch.Tensor:
        """``|A(s)|``: number of legal forward actions (exit included)."""
        return self.forward_masks(states).sum(-1)

    def num_parents(self, states: torch.Tensor) -> torch.Tensor:
        """``|B(s)|``: number of legal backward actions."""
        return self.backward_masks(states).sum(-1)

    def parents(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All parents: ``(parent_states (N, A-1, d), forward_action (A-1,), valid (N, A-1))``.

        Row ``j`` is ``backward_step(s, j)``; the forward action from that parent back to ``s`` is ``j``.
        """
        n, a = states.shape[0], self.n_backward_actions
        valid = self.backward_masks(states)
        rep = states.unsqueeze(1).expand(n, a, -1).reshape(n * a, -1)
        acts = torch.arange(a, device=states.device).repeat(n)
        par = rep.clone()
        ok = valid.reshape(-1)
        if ok.any():
            par[ok] = self.backward_step(rep[ok], acts[ok])
        return par.reshape(n, a, -1), torch.arange(a, device=states.device), valid

    # ---- enumeration (exact metrics) -----------------------------------------------------------
    @cached_property
    def enumeration(self) -> Any:
        """The enumerated DAG (all states, edges, terminal states); raises if too large."""
        from gymgen.dag.exact import DAGEnumeration

        return DAGEnumeration.build(self)

    def is_enumerable(self) -> bool:
        """Whether ``terminal_states()``/``true_distribution()``/``log_partition()`` are available."""
        return False

    def terminal_states(self) -> torch.Tensor:
        """Every terminal state, in the order used by ``true_distribution()`` (sorted by state key)."""
        return self.enumeration.states[self.enumeration.terminal_idx]

    def true_distribution(self) -> torch.Tensor:
        """``R(x)^beta / Z`` over ``terminal_states()`` (sums to 1)."""
        return self.enumeration.true_distribution()

    def log_partition(self) -> float:
        """``log Z = log sum_x R(x)^beta`` over terminal states."""
        return self.enumeration.log_partition()

    # ---- stateful env (BatchedEnv tensor API) -------------------------------------------------
    def _observe(self) -> Obs:
        fm = self.forward_masks(self.states)
        bm = self.backward_masks(self.states)
        fm = fm & ~self.finished.unsqueeze(-1)
        return {"state": self.states.clone(), "action_mask": fm, "backward_mask": bm}

    def reset_tensors(self, mask: torch.Tensor | None = None) -> Obs:
        if mask is None:
            self.states = self.s0.expand(self.num_envs, -1).clone()
            self.finished.zero_()
        else:
            mask = mask.to(self.device)
            self.states[mask] = self.s0
            self.finished[mask] = False
        return self._observe()

    def action_masks(self) -> Any:
        """Legal actions of the current states as numpy bools (row 0 for a batch-1 env); for MaskablePPO."""
        m = self._observe()["action_mask"].cpu().numpy()
        return m[0] if self.num_envs == 1 else m

    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None) -> StepResult:
        action = action.to(self.device).reshape(self.num_envs).long()
        act = torch.ones(self.num_envs, dtype=torch.bool, device=self.device) if active is None else active.to(self.device)
        if bool((self.finished & act).any()):
            rows = torch.nonzero(self.finished & act).flatten().tolist()
            raise RuntimeError(f"step() called on finished episode(s) in rows {rows[:8]}; call reset() first")
        masks = self.forward_masks(self.states)
        in_range = (action >= 0) & (action < self.n_actions)
        legal = in_range & masks.gather(1, action.clamp(0, self.n_actions - 1).unsqueeze(1)).squeeze(1)
        illegal = act & ~legal
        if bool(illegal.any()) and self.invalid_action == "raise":
            i = int(torch.nonzero(illegal)[0])
            allowed = torch.nonzero(masks[i]).flatten().tolist()
            raise InvalidActionError(
                f"action {int(action[i])} is not legal in state {self.states[i].tolist()} (row {i}); "
                f"legal actions: {allowed} (exit = {self.exit_action}). {INVALID_ACTION_HINT}"
            )
        moving = act & legal & (action != self.exit_action)
        exiting = act & legal & (action == self.exit_action)
        if bool(moving.any()):
            new = self.forward_step(self.states[moving], action[moving])
            self.states[moving] = new
        if self.auto_exit:
            only_exit = self.forward_masks(self.states)[:, :-1].sum(-1) == 0
            exiting = exiting | (moving & only_exit)
        terminated = exiting.clone()
        reward = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        log_r = torch.full((self.num_envs,), float("-inf"), device=self.device)
        if bool(exiting.any()):
            log_r[exiting] = self._exit_log_reward(exiting).float()
            reward[exiting] = log_r[exiting].exp()
        if self.invalid_action == "terminate":
            terminated = terminated | illegal
        self.finished = self.finished | terminated
        info = {"log_reward": log_r, "invalid_action": illegal}
        truncated = torch.zeros_like(terminated)
        return self._observe(), reward, terminated, truncated, info

    def _exit_log_reward(self, rows: torch.Tensor) -> torch.Tensor:
        """``log_reward`` of the current states in ``rows`` (bool mask) that exit now; goal-conditioned
        envs override it to score each row against its own goal."""
        return self.log_reward(self.states[rows])

    def render_frame(self, index: int = 0, mode: str = "ansi") -> Any:
        """Row ``index`` as text (``"ansi"``) or as a picture (``"rgb_array"``, HxWx3 uint8; see ``_draw``)."""
        if mode == "ansi":
            return self._describe(index)
        if mode == "rgb_array":
            return self._draw(index)
        from gymgen.core.errors import UnsupportedRenderMode

        raise UnsupportedRenderMode(f"{type(self).__name__} renders {self.metadata['render_modes']}, got {mode!r}")

    def _describe(self, index: int) -> str:
        return f"state={self.states[index].tolist()} done={bool(self.finished[index])}"

    def _draw(self, index: int, goal: Any = None) -> Any:
        """The ``rgb_array`` picture of row ``index``: its state vector as a strip of cells shaded by value
        (families draw something more natural: a grid, bits, letters, a molecule); ``goal`` adds a goal."""
        import numpy as np

        from gymgen.dag.render import reward_shading, strip_image

        colors = reward_shading(np.arange(max(self.state_high, 2), dtype=np.float64)[None, :])[0]
        rows = [self.states[index].tolist()] + ([goal.tolist()] if goal is not None else [])
        return strip_image(rows, colors)
