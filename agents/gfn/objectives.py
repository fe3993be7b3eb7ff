"""GFlowNet objectives as ``torchrl.objectives.LossModule`` subclasses.

Every loss reads a tensordict of **complete trajectories** with batch ``[B, T]`` -- what
``env.rollout(env.max_trajectory_length, policy, break_when_any_done=False, break_when_all_done=True)``
returns on a gymgen DAG env, and what ``sampler.sample_trajectories`` returns. Keys (defaults; rename
them with ``loss.set_keys(state=..., condition="goal", ...)``):

=============================  ==============  ==========================================================
key                            shape           meaning
=============================  ==============  ==========================================================
``"state"``                    ``(B, T, d)``   state before step ``t`` (int)
``"action"``                   ``(B, T)``      forward action of step ``t`` (``A - 1`` = exit)
``"action_mask"``              ``(B, T, A)``   legal forward actions at ``"state"``
``("next", "state")``          ``(B, T, d)``   state after step ``t`` (after an exit: the same state)
``("next", "backward_mask")``  ``(B, T, A-1)`` legal backward actions at ``("next", "state")``
``("next", "done")``           ``(B, T, 1)``   step ``t`` ends the trajectory (exit, or an env that exits itself)
``("next", "log_reward")``     ``(B, T)``      ``beta * log R(x)`` on the step that ends the trajectory
``condition`` (optional)       ``(B, T, c)``   e.g. ``"goal"``: input of a goal-conditioned model
=============================  ==============  ==========================================================

Steps after a trajectory's end are ignored (the rollout repeats the last step there), and so are steps
where ``("collector", "mask")`` is False when that key is present. Every row must contain its end:
cut trajectories (e.g. a ``Collector`` batch boundary) raise a clear error; keep only complete ones
(``torchrl.collectors.utils.split_trajectories`` and a ``("next", "done")`` filter).

Each loss returns a ``TensorDict`` with ``"loss_<name>"`` entries (sum them for the gradient step)
and diagnostics (``"log_z"``). The network is an ``nn.Module`` with
``forward(state, condition=None) -> (pf_logits (N, A), pb_logits (N, A-1), log_flow (N,))`` --
``nets.GFNModel`` or any module with that signature. FM, BN and RPE also need the env (parents and
children of states through its stateless DAG API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tensordict import NestedKey, TensorDict, TensorDictBase
from tensordict.nn import TensorDictParams
from torch import nn
from torchrl.objectives import LossModule

from gymgen.agents.gfn.nets import masked_log_softmax


@dataclass
class Trajectories:
    """The tensors of a trajectory batch that every objective uses (see ``GFlowNetLoss.read``)."""

    state: torch.Tensor  # (B, T, d)
    action: torch.Tensor  # (B, T), clamped into [0, A-1]
    fmask: torch.Tensor  # (B, T, A), all True where the step is not valid
    next_state: torch.Tensor  # (B, T, d)
    nbmask: torch.Tensor  # (B, T, A-1), all True where the step is not a move
    valid: torch.Tensor  # (B, T) the step was taken
    move: torch.Tensor  # (B, T) valid and not the exit action
    length: torch.Tensor  # (B,) number of valid steps
    log_reward: torch.Tensor  # (B,) beta * log R of each trajectory's terminal state
    end_is_move: torch.Tensor  # (B,) the last step is a move (the env exited by itself)
    condition: torch.Tensor | None  # (B, c) or None

    @property
    def positions(self) -> torch.Tensor:
        """States at positions ``0..T`` (``(B, T+1, d)``): position ``t`` is the state before step ``t``,
        position ``length`` the terminal state."""
        return torch.cat([self.state[:, :1], self.next_state], 1)

    def terminal(self) -> torch.Tensor:
        """The terminal state of each trajectory ``(B, d)``."""
        B, _, d = self.next_state.shape
        return self.next_state.gather(1, (self.length - 1).view(B, 1, 1).expand(B, 1, d)).squeeze(1)


class GFlowNetLoss(LossModule):
    """Base of the GFlowNet objectives: reads the trajectory keys and evaluates the network.

    Subclasses implement ``forward(tensordict) -> TensorDict`` with ``loss_*`` entries.
    """

    @dataclass
    class _AcceptedKeys:
        """Tensordict keys the GFlowNet losses read (see the module docstring)."""

        state: NestedKey = "state"
        action: NestedKey = "action"
        action_mask: NestedKey = "action_mask"
        next_state: NestedKey = ("next", "state")
        next_backward_mask: NestedKey = ("next", "backward_mask")
        done: NestedKey = ("next", "done")
        log_reward: NestedKey = ("next", "log_reward")
        condition: NestedKey | None = None
        step_mask: NestedKey = ("collector", "mask")

    default_keys = _AcceptedKeys
    out_keys = ["loss"]

    def __init__(self, model: nn.Module, *, condition_key: NestedKey | None = None, uniform_pb: bool = False) -> None:
        super().__init__()
        self.model = model
        self.uniform_pb = uniform_pb
        if condition_key is not None:
            self.set_keys(condition=condition_key)

    @property
    def in_keys(self) -> list[NestedKey]:
        k = self.tensor_keys
        keys = [k.state, k.action, k.action_mask, k.next_state, k.next_backward_mask, k.done, k.log_reward]
        return keys + ([k.condition] if k.condition is not None else [])

    def _forward_value_estimator_keys(self, **kwargs: Any) -> None:
        pass

    # ---- reading the batch --------------------------------------------------------------------
    def read(self, td: TensorDictBase) -> Trajectories:
        """The trajectory tensors of ``td`` with validity masks; raises on an incomplete trajectory."""
        k = self.tensor_keys
        if td.batch_dims == 1:
            td = td.unsqueeze(0)
        if td.batch_dims != 2:
            raise ValueError(f"GFlowNet losses take trajectories with batch [B, T], got batch {tuple(td.batch_size)}")
        done = td.get(k.done)
        done = done.reshape(done.shape[:2])
        valid = ~((done.long().cumsum(1) - done.long()) > 0)
        step_mask = td.get(k.step_mask, None)
        if step_mask is not None:
            valid = valid & step_mask.reshape(valid.shape).bool()
        end = done & valid
        if not bool(end.any(1).all()):
            rows = torch.nonzero(~end.any(1)).flatten().tolist()
            raise ValueError(
                f"trajectory rows {rows[:8]} have no end (no {k.done} step): GFlowNet losses need complete "
                "trajectories, e.g. env.rollout(env.max_trajectory_length, policy, break_when_any_done=False, "
                "break_when_all_done=True), or keep only the finished ones of a Collector batch"
            )
        state, action = td.get(k.state), td.get(k.action).reshape(valid.shape)
        A = td.get(k.action_mask).shape[-1]
        action = action.clamp(0, A - 1)
        move = valid & (action != A - 1)
        fmask = td.get(k.action_mask) | ~valid.unsqueeze(-1)
        nbmask = td.get(k.next_backward_mask) | ~move.unsqueeze(-1)
        log_r = td.get(k.log_reward)
        log_r = torch.where(end, log_r.reshape(end.shape), torch.zeros((), device=end.device)).sum(1)
        cond = None
        if k.condition is not None:
            cond = td.get(k.condition)[:, 0]
        return Trajectories(
            state=state, action=action, fmask=fmask, next_state=td.get(k.next_state), nbmask=nbmask, valid=valid,
            move=move, length=valid.sum(1), log_reward=log_r, end_is_move=(end & move).any(1), condition=cond,
        )

    # ---- evaluating the network ---------------------------------------------------------------
    def heads(self, states: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(pf_logits, pb_logits, log_flow)`` of the network on ``states (N, d)``."""
        return self.model(states) if condition is None else self.model(states, condition)

    def position_terms(self, tr: Trajectories) -> dict[str, torch.Tensor]:
        """Per step ``lpf``, ``lpb`` ``(B, T)`` (0 off valid steps / moves) and per position log flows
        ``flow (B, T+1)`` with ``flow[length] = log R`` (the network runs once, on the states it needs)."""
        B, T, d = tr.state.shape
        pos = torch.arange(T + 1, device=tr.state.device).unsqueeze(0)
        L = tr.length.unsqueeze(1)
        need = (pos < L) | ((pos == L) & tr.end_is_move.unsqueeze(1))
        cond = None if tr.condition is None else tr.condition.unsqueeze(1).expand(B, T + 1, tr.condition.shape[-1])[need]
        pf_n, pb_n, lf_n = self.heads(tr.positions[need], cond)
        A = pf_n.shape[-1]
        pf = pf_n.new_zeros(B, T + 1, A).index_put((need,), pf_n)
        lf = lf_n.new_zeros(B, T + 1).index_put((need,), lf_n)
        zero = torch.zeros((), device=pf.device)
        lpf = torch.where(tr.valid, masked_log_softmax(pf[:, :T], tr.fmask).gather(-1, tr.action.unsqueeze(-1)).squeeze(-1), zero)
        back = tr.action.clamp(max=A - 2).unsqueeze(-1)
        if self.uniform_pb:
            lpb_all = -tr.nbmask.sum(-1).clamp(min=1).float().log()
            lpb = torch.where(tr.move, lpb_all, zero)
        else:
            pb = pb_n.new_zeros(B, T + 1, A - 1).index_put((need,), pb_n)
            lpb = torch.where(tr.move, masked_log_softmax(pb[:, 1:], tr.nbmask).gather(-1, back).squeeze(-1), zero)
        flow = torch.where(pos == L, tr.log_reward.unsqueeze(1), lf)
        return {"lpf": lpf, "lpb": lpb, "flow": flow}


class TrajectoryBalanceLoss(GFlowNetLoss):
    """Trajectory Balance (Malkin et al., NeurIPS 2022): ``(log Z + sum log P_F - log R - sum log P_B)^2``,
    batch mean. Owns the learned ``log_z`` parameter (give it its own learning rate, e.g. 0.1).

    Output: ``loss_tb``, ``log_z``. The objective of TB and of EGFN's star agent.
    """

    def __init__(self, model: nn.Module, *, condition_key: NestedKey | None = None, uniform_pb: bool = False, init_log_z: float = 0.0) -> None:
        super().__init__(model, condition_key=condition_key, uniform_pb=uniform_pb)
        dev = next(model.parameters()).device
        self.log_z = nn.Parameter(torch.full((), float(init_log_z), device=dev))

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        return self.tb(self.read(tensordict))

    def tb(self, tr: Trajectories) -> TensorDict:
        t = self.position_terms(tr)
        res = self.log_z + t["lpf"].sum(1) - tr.log_reward - t["lpb"].sum(1)
        return TensorDict({"loss_tb": res.pow(2).mean(), "log_z": self.log_z.detach()}, [])


class DetailedBalanceLoss(GFlowNetLoss):
    """Detailed Balance (Bengio et al., JMLR 2023) on every step:
    ``log F(s) + log P_F(s'|s) = log F(s') + log P_B(s|s')`` with ``F(s') := R(x)`` on the step that
    ends the trajectory; mean over steps. Output: ``loss_db``, ``log_z`` (= ``log F(s0)``).

    With ``condition_key`` (e.g. ``"goal"``) it is the conditional DB of goal-conditioned GFlowNets (RBS).
    """

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        tr = self.read(tensordict)
        t = self.position_terms(tr)
        f = t["flow"]
        res = f[:, :-1] + t["lpf"] - t["lpb"] - f[:, 1:]
        loss = (res.pow(2) * tr.valid).sum() / tr.valid.sum()
        return TensorDict({"loss_db": loss, "log_z": f[:, 0].detach().mean()}, [])


class SubTrajectoryBalanceLoss(GFlowNetLoss):
    """Sub-Trajectory Balance (Madan et al., ICML 2023): balance every sub-trajectory ``s_i .. s_j`` of
    each trajectory, weighted ``lamda^(j-i)`` and normalised per trajectory (geometric weighting).
    Output: ``loss_subtb``, ``log_z`` (= ``log F(s0)``)."""

    def __init__(self, model: nn.Module, *, lamda: float = 0.9, condition_key: NestedKey | None = None, uniform_pb: bool = False) -> None:
        super().__init__(model, condition_key=condition_key, uniform_pb=uniform_pb)
        if not lamda > 0:
            raise ValueError(f"lamda must be > 0, got {lamda!r}")
        self.lamda = float(lamda)

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        tr = self.read(tensordict)
        t = self.position_terms(tr)
        flows = t["flow"]  # positions 0..T
        step = t["lpf"] - t["lpb"]
        cum = torch.cat([step.new_zeros(step.shape[0], 1), step.cumsum(1)], 1)
        res = flows.unsqueeze(2) + cum.unsqueeze(1) - cum.unsqueeze(2) - flows.unsqueeze(1)  # [b, i, j]
        idx = torch.arange(flows.shape[1], device=flows.device)
        gap = idx.unsqueeze(0) - idx.unsqueeze(1)  # j - i
        ok = (gap > 0).unsqueeze(0) & (idx.view(1, 1, -1) <= tr.length.view(-1, 1, 1))
        w = torch.where(ok, self.lamda ** gap.clamp(min=0).float().unsqueeze(0), torch.zeros((), device=flows.device))
        per = (w * res.pow(2)).sum((1, 2)) / w.sum((1, 2))
        return TensorDict({"loss_subtb": per.mean(), "log_z": flows[:, 0].detach().mean()}, [])


# ---- state-level objectives: FM and BN need the parents of every visited state -------------------

def visited_and_terminal(tr: Trajectories) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Non-initial states visited up to the terminal ``(M, d)`` with their row, and the terminals ``(B, d)``."""
    B, T, d = tr.state.shape
    pos = torch.arange(T + 1, device=tr.state.device).unsqueeze(0)
    L = tr.length.unsqueeze(1)
    keep = (pos >= 1) & ((pos < L) | ((pos == L) & tr.end_is_move.unsqueeze(1)))
    rows = torch.arange(B, device=tr.state.device).unsqueeze(1).expand(B, T + 1)
    return tr.positions[keep], rows[keep], tr.terminal(), keep


class StateFlowLoss(GFlowNetLoss):
    """Flow matching over visited states with a pluggable edge-flow parameterisation ``log_edge``:
    inflow ``log sum_{p in Par(s)} F(p -> s)`` equals outflow ``log sum_a F(s -> .)`` at every visited
    non-initial state, and ``log F(x -> exit) = log R(x)`` at the terminals. Squared errors are averaged
    over all those terms. Needs ``env`` (``env.parents``, ``env.forward_masks``)."""

    name = "fm"

    def __init__(self, model: nn.Module, env: Any, *, condition_key: NestedKey | None = None) -> None:
        super().__init__(model, condition_key=condition_key)
        self.env = env

    def log_edge(self, states: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, A)`` log edge flows of every forward action (exit included)."""
        raise NotImplementedError

    def inflow_outflow(self, states: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        env = self.env
        par, acts, valid = env.parents(states)
        M, P, d = par.shape
        cp = None if condition is None else condition.unsqueeze(1).expand(M, P, condition.shape[-1]).reshape(M * P, -1)
        le_par = self.log_edge(par.reshape(M * P, d), cp).reshape(M, P, -1)
        into = le_par.gather(-1, acts.view(1, P, 1).expand(M, P, 1)).squeeze(-1)
        inflow = torch.logsumexp(into.masked_fill(~valid, float("-inf")), -1)
        outflow = torch.logsumexp(self.log_edge(states, condition).masked_fill(~env.forward_masks(states), float("-inf")), -1)
        return inflow, outflow

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        tr = self.read(tensordict)
        s, rows, term, _ = visited_and_terminal(tr)
        cond = tr.condition
        inflow, outflow = self.inflow_outflow(s, None if cond is None else cond[rows])
        le_t = self.log_edge(term, cond)[:, -1]
        match = (inflow - outflow).pow(2).sum() if s.shape[0] else le_t.new_zeros(())
        loss = (match + (le_t - tr.log_reward).pow(2).sum()) / (s.shape[0] + term.shape[0])
        return TensorDict({f"loss_{self.name}": loss, "log_z": self.log_z_estimate(cond)}, [])

    def log_z_estimate(self, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Total outflow of ``s0``."""
        s0 = self.env.s0.unsqueeze(0)
        with torch.no_grad():
            c = None if condition is None else condition[:1]
            le = self.log_edge(s0, c).masked_fill(~self.env.forward_masks(s0), float("-inf"))
            return torch.logsumexp(le, -1)[0]


class FlowMatchingLoss(StateFlowLoss):
    """Flow Matching (Bengio et al., NeurIPS 2021): the PF head holds the log edge flows
    ``F(s -> s')`` (exit edge included); the policy is their softmax. Output: ``loss_fm``, ``log_z``."""

    name = "fm"

    def log_edge(self, states: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self.heads(states, condition)[0]


class BifurcatedFlowLoss(StateFlowLoss):
    """Bifurcated GFlowNets (BN): the edge flow is factorised ``F(s -> s') = F(s) A(s'|s)`` -- the
    log-flow head is the state flow, the PF head softmax-normalised over the legal children is the
    allocation ``A`` (and the forward policy); state-level flow matching, no backward policy.
    Output: ``loss_bn``, ``log_z`` (= ``log F(s0)``)."""

    name = "bn"

    def log_edge(self, states: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        pf, _, logf = self.heads(states, condition)
        return logf.unsqueeze(-1) + masked_log_softmax(pf, self.env.forward_masks(states))

    def log_z_estimate(self, condition: torch.Tensor | None = None) -> torch.Tensor:
        with torch.no_grad():
            c = None if condition is None else condition[:1]
            return self.heads(self.env.s0.unsqueeze(0), c)[2][0]


class RectifiedPolicyEvaluationLoss(GFlowNetLoss):
    """Rectified (random) Policy Evaluation (RPE; He, Bengio, Cai, Pan, ICML 2025), reconstructed.

    A GFlowNet is obtained by evaluating the *uniform* policy with a rectified reward. With the
    g-factor ``g(s_{t+1}) = g(s_t) |A(s_t)| / |B(s_{t+1})|`` the uniform policy's value is
    ``V(s) = g(s) F(s)`` and its Bellman equation ``g(s) F(s) = sum_a g(s_a) F(s_a) / |A(s)|`` (the exit
    child's value is ``g(s) R(s)``) reduces, after dividing by ``g(s)``, to
    ``F(s) = sum_{s'} F(s') / |B(s')| + R(s)`` -- the state flow under the uniform backward policy. The
    loss is that Bellman residual in log space, ``(log F(s) - log sum_a score_a(s))^2``, at every state
    the batch took an action from (gradients through both sides; ``semi_gradient=True`` detaches the
    target as in TD learning).

    ``exit_reward``: ``"visited"`` (default) uses the true ``R(s)`` for the exit child of every visited
    state where exit is legal -- the paper's evaluation needs it, and it costs one reward call per such
    state (reported as ``reward_evaluations``); ``"head"`` replaces it by the PF head's exit logit, a learned
    ``log R_hat(s)`` fitted only at the sampled terminals (one reward call per trajectory), which lets
    the Bellman loss move ``R_hat`` and leaves the fixed point biased (the "about 2.5x worse than TB"
    of the first reconstruction; ``seeds/RPE.toml``). In both modes the exit logit is regressed onto
    the rewards the loss saw and is what the *policy* uses for the exit (``P_F(exit|s) ∝ R_hat(s)``,
    ``P_F(s_a|s) ∝ F(s_a)/|B(s_a)|``), so sampling makes no reward calls.

    Output: ``loss_rpe`` (Bellman), ``loss_reward`` (exit-logit fit), ``log_z`` (``log F(s0)``),
    ``reward_evaluations``. Needs ``env`` (children via ``forward_step``, ``num_parents``, ``log_reward``).
    """

    def __init__(self, model: nn.Module, env: Any, *, exit_reward: str = "visited", semi_gradient: bool = False) -> None:
        super().__init__(model)
        if exit_reward not in ("visited", "head"):
            raise ValueError(f"exit_reward must be 'visited' or 'head', got {exit_reward!r}")
        self.env, self.exit_reward, self.semi_gradient = env, exit_reward, semi_gradient

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        tr = self.read(tensordict)
        B, T, d = tr.state.shape
        pos = torch.arange(T + 1, device=tr.state.device).unsqueeze(0)
        L = tr.length.unsqueeze(1)
        need = (pos < L) | ((pos == L) & tr.end_is_move.unsqueeze(1))
        s = tr.positions[need]
        scores, mask, logf, exit_logit = rpe_child_scores(self.model, self.env, s)
        n_rewards = 0
        if self.exit_reward == "visited":
            can_exit = mask[:, -1]
            log_r = self.env.log_reward(s[can_exit]).float()
            n_rewards = int(can_exit.sum())
            scores = scores.clone()
            scores[can_exit, -1] = log_r
            fit = (exit_logit[can_exit] - log_r).pow(2).mean()
        else:
            fit = (self.model(tr.terminal())[0][:, -1] - tr.log_reward).pow(2).mean()
        target = torch.logsumexp(scores.masked_fill(~mask, float("-inf")), -1)
        if self.semi_gradient:
            target = target.detach()
        bellman = (logf - target).pow(2).mean()
        with torch.no_grad():
            log_z = self.model(self.env.s0.unsqueeze(0))[2][0]
        return TensorDict({"loss_rpe": bellman, "loss_reward": fit, "log_z": log_z, "reward_evaluations": torch.tensor(n_rewards)}, [])


def rpe_child_scores(model: nn.Module, env: Any, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per forward action of each state: ``log F(s_a) - log |B(s_a)|`` (exit: the PF head's exit logit),
    the forward mask, ``log F(s)`` and the exit logit."""
    n, A = states.shape[0], env.n_actions
    mask = env.forward_masks(states)
    pf, _, logf = model(states)
    rows, acts = torch.nonzero(mask[:, :-1], as_tuple=True)
    scores = torch.full((n, A), float("-inf"), device=states.device)
    if rows.numel():
        ch = env.forward_step(states[rows], acts)
        _, _, logf_ch = model(ch)
        scores = scores.index_put((rows, acts), logf_ch - env.num_parents(ch).clamp(min=1).float().log())
    scores = torch.cat([scores[:, :-1], pf[:, -1:]], -1)
    return scores, mask, logf, pf[:, -1]


class RPELogits(nn.Module):
    """RPE's forward policy logits: ``log F(s_a) - log |B(s_a)|`` per child, the exit logit for exit."""

    def __init__(self, model: nn.Module, env: Any) -> None:
        super().__init__()
        self.model, self.env = model, env

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return rpe_child_scores(self.model, self.env, state)[0]


class QGFNLoss(TrajectoryBalanceLoss):
    """QGFN's two objectives on the same trajectories (Lau et al. 2024): Trajectory Balance for the
    GFlowNet and n-step Double DQN for ``Q`` (gamma = 1, reward ``R(x) = exp(log_reward)`` on the last
    step, 0 before). ``Q`` is held the TorchRL way (``convert_to_functional`` with target parameters),
    so ``torchrl.objectives.SoftUpdate(loss, tau=...)`` updates the target network.

    Output: ``loss_tb``, ``loss_q``, ``log_z``.
    """

    q_network: nn.Module
    q_network_params: TensorDictParams
    target_q_network_params: TensorDictParams

    def __init__(self, model: nn.Module, q_network: nn.Module, *, n_step: int = 8, uniform_pb: bool = False) -> None:
        super().__init__(model, uniform_pb=uniform_pb)
        if not isinstance(n_step, int) or n_step < 1:
            raise ValueError(f"n_step must be an int >= 1, got {n_step!r}")
        self.n_step = n_step
        self.convert_to_functional(q_network, "q_network", create_target_params=True)

    def forward(self, tensordict: TensorDictBase) -> TensorDict:
        tr = self.read(tensordict)
        out = self.tb(tr)
        out["loss_q"] = self.n_step_double_dqn(tr)
        return out

    def n_step_double_dqn(self, tr: Trajectories) -> torch.Tensor:
        B, T, d = tr.state.shape
        flat = tr.state.reshape(B * T, d)
        with self.q_network_params.to_module(self.q_network):
            q = self.q_network(flat).reshape(B, T, -1)
        with torch.no_grad():
            with self.target_q_network_params.to_module(self.q_network):
                q_tgt = self.q_network(flat).reshape(B, T, -1)
            greedy = q.detach().masked_fill(~tr.fmask, float("-inf")).argmax(-1, keepdim=True)
            boot = q_tgt.gather(-1, greedy).squeeze(-1)  # value of the state before step t
            ahead = torch.arange(T, device=flat.device).unsqueeze(0) + self.n_step
            ends = ahead >= tr.length.unsqueeze(1)
            reward = tr.log_reward.exp().unsqueeze(1).expand(B, T)
            target = torch.where(ends, reward, boot.gather(1, ahead.clamp(max=T - 1)))
        q_sa = q.gather(-1, tr.action.unsqueeze(-1)).squeeze(-1)
        return ((q_sa - target).pow(2) * tr.valid).sum() / tr.valid.sum()
