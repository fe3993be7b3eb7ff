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

from tensordict import TensorDict
from torchrl.data import Unbounded

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
    #: attributes that define the DAG and its reward; read-only once the env is built, because the
    #: exact enumeration (``log_partition``, ``true_distribution``), reward tables and caches are
    #: computed from them (subclasses extend the tuple)
    _read_only_params: tuple[str, ...] = ("reward_exponent", "n_actions", "state_high", "max_trajectory_length", "auto_exit")

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

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._read_only_params and self.__dict__.get("_params_frozen", False):
            raise AttributeError(
                f"{type(self).__name__}.{name} is read-only after construction: the exact enumeration "
                f"(log_partition, true_distribution), reward tables and caches were computed from it. "
                f"Make a new env instead, e.g. gymgen.make_batched(env_id, {name}={value!r})."
            )
        super().__setattr__(name, value)

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
        self._init_step_cache()
        self._finish_init()
        self._params_frozen = True

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

    # ---- modes (what "modes found" counts) ---------------------------------------------------
    def mode_mask(self, states: torch.Tensor) -> torch.Tensor:
        """Bool ``(N,)``: which terminal ``states`` count as modes (high-reward objects). Every DAG env
        defines it (HyperGrid: top-reward cells; TFBind8: top-328 8-mers; BitSequence: within
        ``mode_delta`` of a reference mode; molecules: flat reward >= ``mode_reward_threshold``)."""
        raise NotImplementedError(f"{type(self).__name__} defines no modes")

    def mode_keys(self, states: torch.Tensor) -> list[Any]:
        """One hashable identity per mode state (``states`` already pass ``mode_mask``); "modes found"
        counts distinct identities. Default: the state itself."""
        return [tuple(row) for row in states.tolist()]

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
    # Hot path, written for few tensor ops per step (at batch 1 each op costs microseconds):
    # ``self.states`` / ``self.finished`` are replaced, never written in place, and the masks of
    # the current states are cached (``_fmask`` already False on finished rows), so a step checks
    # legality against the cache, advances with ``advance`` (one table lookup on HyperGrid) and computes
    # the new states' masks once. Observations hand out clones, so callers cannot corrupt the cache.
    # ``tests/benchmarks/test_hypergrid_step.py`` measures it against torchgfn's step (2026-12-01, 4x8 grid,
    # one thread: reset + step 70 / 85 / 205 us vs torchgfn's step alone 85 / 105 / 330 us at batch 1 / 256 / 4096).

    def _init_step_cache(self) -> None:
        """Masks of ``s0`` repeated over the batch (reset hands them out without recomputing)."""
        s0 = self.s0.unsqueeze(0)
        n = self.num_envs
        self._s0_rows = self.s0.expand(n, -1).clone()
        self._fmask0 = self.forward_masks(s0).expand(n, -1).clone()
        self._bmask0 = self.backward_masks(s0).expand(n, -1).clone()
        self._no_rows = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.states, self.finished = self._s0_rows, self._no_rows
        self._fmask, self._bmask = self._fmask0, self._bmask0

    def _set_runtime(self, states: torch.Tensor, finished: torch.Tensor, fmask: torch.Tensor, bmask: torch.Tensor) -> None:
        """Replace the current states, finished flags and cached masks. Written to ``__dict__``:
        ``nn.Module.__setattr__`` (TorchRL envs are modules) costs ~1.7 us per tensor attribute, 4 per
        reset and 4 per step, ~15 % of a batch-1 reset + step; these names are never parameters or buffers."""
        self.__dict__.update(states=states, finished=finished, _fmask=fmask, _bmask=bmask)

    def _observe(self) -> Obs:
        return {"state": self.states.clone(), "action_mask": self._fmask.clone(), "backward_mask": self._bmask.clone()}

    @staticmethod
    def _without_finished(fmask: torch.Tensor, finished: torch.Tensor) -> torch.Tensor:
        """``fmask`` with the rows of finished episodes cleared (no legal action after the end).

        Clears only those rows: a broadcast ``fmask & ~finished[:, None]`` over every row costs ~0.1 ms
        per step at batch 256 with 241 actions on CPU, and most steps have no finished row."""
        if not bool(finished.any()):
            return fmask
        return fmask.index_fill(0, torch.nonzero(finished).squeeze(1), False)

    def reset_tensors(self, mask: torch.Tensor | None = None) -> Obs:
        if mask is None:
            self._set_runtime(self._s0_rows, self._no_rows, self._fmask0, self._bmask0)
        else:
            m = mask.to(self.device).reshape(self.num_envs).bool()
            col = m.unsqueeze(-1)
            self._set_runtime(torch.where(col, self._s0_rows, self.states), self.finished & ~m,
                              torch.where(col, self._fmask0, self._fmask), torch.where(col, self._bmask0, self._bmask))
        return self._observe()

    def action_masks(self) -> Any:
        """Legal actions of the current states as numpy bools (row 0 for a batch-1 env); for MaskablePPO."""
        m = self._fmask.cpu().numpy().copy()
        return m[0] if self.num_envs == 1 else m

    def advance(self, states: torch.Tensor, actions: torch.Tensor, moving: torch.Tensor | None) -> torch.Tensor:
        """``states`` with ``forward_step`` applied to the rows in ``moving`` (a new tensor; the other rows
        are unchanged and their action is not used); ``moving=None`` means every non-exit row moves.

        Part of the stateless API (samplers step a batch where some rows exit). Envs whose step is
        safe on every row override it without the row selection (HyperGrid)."""
        if moving is None:
            moving = actions != self.n_actions - 1
        n_moving = int(moving.sum())
        if n_moving == 0:
            return states
        if n_moving == moving.numel():
            return self.forward_step(states, actions)
        rows = torch.nonzero(moving).squeeze(1)
        return states.index_put((rows,), self.forward_step(states[rows], actions[rows]))

    def _exit_log_rewards(self, exiting: torch.Tensor) -> torch.Tensor:
        """``beta * log R`` of the current states on the ``exiting`` rows, ``-inf`` elsewhere (``(N,)``)."""
        log_r = torch.full((self.num_envs,), float("-inf"), device=self.device)
        if bool(exiting.any()):
            log_r[exiting] = self._exit_log_reward(exiting).float()
        return log_r

    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None) -> StepResult:
        a = action.to(self.device).reshape(self.num_envs)
        if a.dtype != torch.int64:
            a = a.long()
        A = self.n_actions
        idx = a.clamp(0, A - 1)
        legal = self._fmask.gather(1, idx.unsqueeze(1)).squeeze(1) & (idx == a)
        act = None if active is None else active.to(self.device).reshape(self.num_envs).bool()
        ok = legal if act is None else legal | ~act
        if bool(ok.all()):  # fast path: every stepped row takes a legal action
            illegal = torch.zeros_like(legal)
            if act is None:
                exiting = a == A - 1
                states = self.advance(self.states, a, None)
            else:
                exiting = act & (a == A - 1)
                states = self.advance(self.states, a, act & ~exiting)
        else:
            illegal = self._check_illegal(a, legal, act)
            stepped = legal if act is None else legal & act
            exiting = stepped & (a == A - 1)
            states = self.advance(self.states, a, stepped & ~exiting)
        fmask = self.forward_masks(states)
        if self.auto_exit:
            moved = (states != self.states).any(-1)
            exiting = exiting | (moved & ~fmask[:, :-1].any(-1))
        terminated = exiting | illegal if self.invalid_action == "terminate" else exiting
        finished = self.finished | terminated
        self._set_runtime(states, finished, self._without_finished(fmask, finished), self.backward_masks(states))
        log_r = self._exit_log_rewards(exiting)
        info = {"log_reward": log_r, "invalid_action": illegal}
        return self._observe(), log_r.exp(), terminated, torch.zeros_like(terminated), info

    def _check_illegal(self, a: torch.Tensor, legal: torch.Tensor, act: torch.Tensor | None) -> torch.Tensor:
        """The slow path of ``step_tensors``: raise for finished rows and (``invalid_action="raise"``)
        illegal actions; otherwise return the bool rows whose action is illegal."""
        stepped = torch.ones_like(legal) if act is None else act
        if bool((self.finished & stepped).any()):
            rows = torch.nonzero(self.finished & stepped).flatten().tolist()
            raise RuntimeError(f"step() called on finished episode(s) in rows {rows[:8]}; call reset() first")
        illegal = stepped & ~legal
        if self.invalid_action == "raise":
            i = int(torch.nonzero(illegal)[0])
            allowed = torch.nonzero(self._fmask[i]).flatten().tolist()
            raise InvalidActionError(
                f"action {int(a[i])} is not legal in state {self.states[i].tolist()} (row {i}); "
                f"legal actions: {allowed} (exit = {self.exit_action}). {INVALID_ACTION_HINT}"
            )
        return illegal

    def _exit_log_reward(self, rows: torch.Tensor) -> torch.Tensor:
        """``log_reward`` of the current states in ``rows`` (bool mask) that exit now; goal-conditioned
        envs override it to score each row against its own goal."""
        return self.log_reward(self.states[rows])

    # ---- TorchRL view: partial steps and the log-reward entry ---------------------------------
    def _finish_init(self) -> None:
        super()._finish_init()
        # ``log_reward`` (beta * log R on the step that ends an episode, -inf elsewhere) rides along
        # in TorchRL tensordicts: GFlowNet losses need log R exactly, R itself can underflow.
        self.observation_spec["log_reward"] = Unbounded(shape=self.batch_size, dtype=torch.float32, device=self.device)

    def _reset(self, tensordict: TensorDict | None = None, **kwargs: Any) -> TensorDict:
        out = super()._reset(tensordict, **kwargs)
        out.set("log_reward", torch.full(self.batch_size, float("-inf"), device=self.device))
        return out

    def _step(self, tensordict: TensorDict) -> TensorDict:
        # ``_step`` (rows to advance) is what TorchRL's rollout(break_when_all_done=True) sends
        # once some rows are done; those rows must not be stepped again.
        active = tensordict.get("_step", None)
        obs, reward, terminated, truncated, info = self.step_tensors(tensordict.get("action"), active)
        self._sync_action_mask(obs)
        truncated = self._time_limit(terminated, truncated)
        out = TensorDict(
            {
                **obs,
                "log_reward": info["log_reward"],
                "reward": reward.unsqueeze(-1),
                "done": (terminated | truncated).unsqueeze(-1),
                "terminated": terminated.unsqueeze(-1),
                "truncated": truncated.unsqueeze(-1),
            },
            batch_size=self.batch_size, device=self.device,
        )
        out.set("info", self._info_td(info))  # ("info", "log_reward" / "invalid_action"), as every gymgen env
        return out

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
