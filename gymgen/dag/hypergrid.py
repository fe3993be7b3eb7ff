"""HyperGrid: the standard GFlowNet benchmark grid, in all the semantics the literature uses."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.validation import check_float, check_int
from gymgen.dag.base import DAGEnv, InvalidActionPolicy

Semantics = Literal["exit_anywhere", "edge_terminates"]
SEMANTICS = ("exit_anywhere", "edge_terminates")


class HyperGrid(DAGEnv):
    """HyperGrid: build a cell of a ``height^ndim`` grid by unit steps, rewarded at 2^ndim corner modes.

    ## Description
    A GFlowNet starts at the origin ``(0, ..., 0)`` and repeatedly increments one coordinate by 1;
    the *exit* action stops and the final cell ``x`` is scored. With ``a_d = |x_d / (H-1) - 0.5|``:

    ``R(x) = R0 + R1 * prod_d 1[0.25 < a_d] + R2 * prod_d 1[0.3 < a_d < 0.4]``

    so high reward sits in the 2^D corners with a thin ring of highest reward inside each corner.
    The env is a DAG (every step increases ``sum(x)``), so everything is exactly enumerable for small
    grids: ``terminal_states()``, ``true_distribution()`` (``R^beta / Z``), ``log_partition()``.

    ## Semantics (``semantics=``)
    - ``"exit_anywhere"`` (default; torchgfn and gfnx): exit is legal in every state, including the
      origin; an increment that would leave the grid is masked. Terminal set = all ``H^D`` cells.
    - ``"edge_terminates"`` (the original grid of Bengio et al. 2021, used by EGFN): as above, but
      the episode also ends as soon as any coordinate reaches ``H-1`` (only exit is legal there, and
      the env exits for you). Cells with two or more coordinates at ``H-1`` are unreachable.
    The goal-conditioned 2-D grid of RBS is a separate id (``gymgen/GCHyperGrid-v0``).

    ## Action space
    ``Discrete(ndim + 1)``: action ``i < ndim`` increments coordinate ``i``; action ``ndim`` exits.
    Backward action ``i`` decrements coordinate ``i`` (legal when ``x_i > 0``).

    ## Observation space
    ``Dict(state=Box(0, H-1, (ndim,), int64), action_mask=MultiBinary(ndim+1),
    backward_mask=MultiBinary(ndim))``. ``env.action_masks()`` returns the mask (MaskablePPO).

    ## Rewards
    0 on every step but the last; ``R(x)^beta`` when the episode ends (``info["log_reward"]`` holds
    ``beta * log R(x)``). ``beta`` is ``reward_exponent`` (default 1).

    ## Episode end
    Terminated on exit (or on reaching the edge with ``"edge_terminates"``). Trajectories have at
    most ``ndim * (H-1) + 1`` actions. Stepping a finished episode raises until ``reset()``.

    ## Arguments
    ``ndim`` (2), ``height`` (8), ``R0`` (0.1), ``R1`` (0.5), ``R2`` (2.0), ``semantics``
    (``"exit_anywhere"``), ``reward_exponent`` (1.0), ``invalid_action`` (``"raise"``: an illegal
    action raises ``InvalidActionError``; ``"terminate"``: the episode ends with reward 0;
    ``"ignore"``: the state is unchanged and the reward is 0), ``device`` ("cpu").

    ## Version history
    - v0: first release.

    ## Source
    Bengio et al., "Flow Network based Generative Models for Non-Iterative Diverse Candidate
    Generation" (NeurIPS 2021); Malkin et al., "Trajectory balance" (NeurIPS 2022). Used by the seed
    papers BN, RPE, QGFN and EGFN.
    """

    _read_only_params = DAGEnv._read_only_params + ("R0", "R1", "R2", "dim", "height", "semantics")

    def __init__(
        self,
        ndim: int = 2,
        height: int = 8,
        R0: float = 0.1,
        R1: float = 0.5,
        R2: float = 2.0,
        semantics: Semantics = "exit_anywhere",
        reward_exponent: float = 1.0,
        invalid_action: InvalidActionPolicy = "raise",
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        who = type(self).__name__
        ndim, height = check_int("ndim", ndim, low=1, owner=who), check_int("height", height, low=2, owner=who)
        R0, R1, R2 = (check_float(k, v, low=0, owner=who) for k, v in (("R0", R0), ("R1", R1), ("R2", R2)))
        super().__init__(batch_size=batch_size, device=device, invalid_action=invalid_action, reward_exponent=reward_exponent)
        if semantics not in SEMANTICS:
            raise ValueError(f"semantics must be one of {SEMANTICS}, got {semantics!r}")
        if R0 + R1 + R2 <= 0:
            raise ValueError(f"rewards must be >= 0 with a positive sum, got R0={R0}, R1={R1}, R2={R2}")
        self.dim, self.height, self.semantics = ndim, height, semantics  # EnvBase owns .ndim (batch dims)
        self.R0, self.R1, self.R2 = float(R0), float(R1), float(R2)
        self.auto_exit = semantics == "edge_terminates"
        self.s0 = torch.zeros(ndim, dtype=torch.int64)
        self.n_actions = ndim + 1
        self.state_high = height
        self.max_trajectory_length = ndim * (height - 1) + 1
        self._finish_dag_init()

    def forward_masks(self, states: torch.Tensor) -> torch.Tensor:
        inc = states < self.height - 1
        if self.semantics == "edge_terminates":
            inc = inc & ~(~inc).any(-1, keepdim=True)
        return F.pad(inc, (0, 1), value=True)  # exit is always legal (one op, cheaper than a cat)

    def backward_masks(self, states: torch.Tensor) -> torch.Tensor:
        back = states > 0
        if self.semantics == "edge_terminates":
            # a parent must not itself be an edge state (the episode would have ended there)
            at_edge = states == self.height - 1
            back = back & ~((at_edge.sum(-1, keepdim=True) - at_edge.long()) > 0)
        return back

    def forward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return states + self._unit_rows()[actions]

    def backward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return states - self._unit_rows()[actions]

    def _unit_rows(self) -> torch.Tensor:
        """Row ``i < ndim`` is the unit vector of coordinate ``i``; row ``ndim`` (exit) is zero."""
        rows = self.__dict__.get("_unit_rows_table")
        if rows is None:
            rows = torch.cat([torch.eye(self.dim, dtype=torch.int64), torch.zeros(1, self.dim, dtype=torch.int64)]).to(self.device)
            self._unit_rows_table = rows
        return rows

    def advance(self, states: torch.Tensor, actions: torch.Tensor, moving: torch.Tensor | None) -> torch.Tensor:
        # safe on every row: the exit row of the table is zero, so non-moving rows add nothing
        if moving is not None:
            actions = torch.where(moving, actions, self.dim)
        return states + self._unit_rows()[actions]

    def _band_code(self) -> torch.Tensor:
        """Per coordinate value ``v``: 0 outside both bands, 1 if ``a = |v/(H-1) - 0.5| > 0.25``,
        2 if also ``0.3 < a < 0.4`` (the second band lies inside the first)."""
        code = self.__dict__.get("_band_code_table")
        if code is None:
            eps = 1e-12
            a = (torch.arange(self.height, dtype=torch.float64) / (self.height - 1) - 0.5).abs()
            code = ((a > 0.25 + eps).long() + ((a > 0.3 + eps) & (a < 0.4 - eps)).long()).to(self.device)
            r = torch.tensor([self.R0, self.R0 + self.R1, self.R0 + self.R1 + self.R2], dtype=torch.float64)
            self._log_r_table = (self.reward_exponent * r.log()).to(torch.float32).to(self.device)
            self._band_code_table = code
        return code

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        # R0 + R1 * prod 1[a_d > 0.25] + R2 * prod 1[0.3 < a_d < 0.4] depends only on the smallest
        # per-coordinate band code: 0 -> R0, 1 -> R0 + R1, 2 -> R0 + R1 + R2 (a 3-entry table).
        # (``min`` rather than ``amin``: torch's int64 ``amin`` over a short last dim is ~20x slower on CPU)
        code = self._band_code().take(states).min(-1).values
        return self._log_r_table[code]

    def is_enumerable(self) -> bool:
        return self.height**self.dim <= 5_000_000

    def mode_mask(self, states: torch.Tensor) -> torch.Tensor:
        """True where ``R(x) = R0 + R1 + R2`` (the highest-reward cells)."""
        return self._band_code().take(states).min(-1).values == 2

    def _draw(self, index: int, goal: torch.Tensor | None = None) -> Any:
        """2-D grids: the grid shaded by ``R(x)`` with the current cell (and the goal) marked; other
        dimensions: one bar per coordinate."""
        from gymgen.dag import render

        s, done = self.states[index].tolist(), bool(self.finished[index])
        if self.dim != 2:
            return render.meters_image(s, self.height, done)
        shading = self.__dict__.get("_reward_shading")
        if shading is None:  # drawn once per env, on the first render; a goal-conditioned grid is unshaded
            r = torch.zeros(self.height, self.height)
            if goal is None:
                ij = torch.cartesian_prod(torch.arange(self.height), torch.arange(self.height)).to(self.device)
                r = self.log_reward(ij).exp().reshape(self.height, self.height)
            shading = self._reward_shading = render.reward_shading(r.cpu().numpy())
        return render.grid_image(shading, (s[0], s[1]), None if goal is None else tuple(goal.tolist()), done)

    def mode_region(self, states: torch.Tensor) -> torch.Tensor:
        """Which of the 2^D corner regions each state lies in (int), as in the legacy grid code."""
        bits = (states.double() / (self.height - 1) > 0.5).long()
        return (bits * (2 ** torch.arange(self.dim, device=states.device))).sum(-1)


HyperGridEnv = single_env_view(HyperGrid)
HyperGridVectorEnv = vector_env_view(HyperGrid)
