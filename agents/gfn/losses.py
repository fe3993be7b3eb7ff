"""GFlowNet objectives, vectorised over a sampled tensordict batch (see ``sampler.py`` for its layout).

``trajectory_terms`` runs the model once over every state of the batch and returns per-step
``log P_F`` and ``log P_B`` and per-position log flows; TB, DB and SubTB are then a few tensor ops.
FM and the state-flow objectives (BN) use ``env.parents`` for the inflow of each visited state.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict

from gymgen.agents.gfn.nets import GFNModel, masked_log_softmax


def trajectory_terms(model: GFNModel, td: TensorDict, uniform_pb: bool = False, extra: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Per-step ``lpf (B,T)``, ``lpb (B,T)`` (0 on exit/padding) and log flows ``logf (B,T+1)``."""
    states, actions, valid = td["states"], td["actions"], td["valid"]
    B, T1, d = states.shape
    # the model runs once, only on positions 0..length-1 (every state an action was taken from)
    keep = torch.arange(T1, device=states.device).unsqueeze(0) < td["length"].unsqueeze(1)
    ex = None if extra is None else extra.unsqueeze(1).expand(B, T1, extra.shape[-1])[keep]
    pf_k, pb_k, logf_k = model(states[keep], ex)
    A = pf_k.shape[-1]
    pf = pf_k.new_zeros(B, T1, A).index_put((keep,), pf_k)
    pb = pb_k.new_zeros(B, T1, A - 1).index_put((keep,), pb_k)
    logf = logf_k.new_zeros(B, T1).index_put((keep,), logf_k)
    a = actions.clamp(min=0)
    lpf_all = masked_log_softmax(pf[:, :-1], td["forward_masks"][:, :-1])
    lpf = torch.where(valid, lpf_all.gather(-1, a.unsqueeze(-1)).squeeze(-1), torch.zeros_like(valid, dtype=pf.dtype))
    exit_a = pf.shape[-1] - 1
    moved = valid & (actions != exit_a)
    bm = td["backward_masks"][:, 1:]
    if uniform_pb:
        lpb_all = -bm.sum(-1, keepdim=True).clamp(min=1).float().log().expand(bm.shape)
    else:
        lpb_all = masked_log_softmax(pb[:, 1:], bm)
    ab = a.clamp(max=exit_a - 1)
    lpb = torch.where(moved, lpb_all.gather(-1, ab.unsqueeze(-1)).squeeze(-1), torch.zeros_like(lpf))
    return {"lpf": lpf, "lpb": lpb, "logf": logf}


def tb_loss(terms: dict[str, torch.Tensor], log_reward: torch.Tensor, log_z: torch.Tensor) -> torch.Tensor:
    """Trajectory balance: ``(log Z + sum log P_F - log R - sum log P_B)^2``, batch mean."""
    return (log_z + terms["lpf"].sum(1) - log_reward - terms["lpb"].sum(1)).pow(2).mean()


def _position_flows(terms: dict[str, torch.Tensor], td: TensorDict) -> torch.Tensor:
    """Log flow at positions ``0..T+1``: the network's ``log F`` before the exit, ``log R`` at it."""
    logf = terms["logf"]
    B, T1 = logf.shape
    flows = torch.cat([logf, logf.new_zeros(B, 1)], 1)
    pos = torch.arange(T1 + 1, device=logf.device)
    at_end = pos.unsqueeze(0) == td["length"].unsqueeze(1)
    return torch.where(at_end, td["log_reward"].unsqueeze(1).expand_as(flows), flows)


def db_loss(terms: dict[str, torch.Tensor], td: TensorDict) -> torch.Tensor:
    """Detailed balance on every transition: ``log F(s) + log P_F(s'|s) = log F(s') + log P_B(s|s')``,
    with ``F(s') := R(x)`` on the exit transition; mean over transitions."""
    flows = _position_flows(terms, td)
    res = flows[:, :-2] + terms["lpf"] - terms["lpb"] - flows[:, 1:-1]
    v = td["valid"]
    return (res.pow(2) * v).sum() / v.sum()


def subtb_loss(terms: dict[str, torch.Tensor], td: TensorDict, lamda: float = 0.9) -> torch.Tensor:
    """Sub-trajectory balance over every sub-trajectory ``i < j``, weighted ``lamda^(j-i)`` and normalised
    per trajectory (the geometric weighting of Madan et al. 2023)."""
    flows = _position_flows(terms, td)[:, :-1]  # positions 0..T (T = max length)
    step = terms["lpf"] - terms["lpb"]
    cum = torch.cat([step.new_zeros(step.shape[0], 1), step.cumsum(1)], 1)  # (B, T+1)
    res = flows.unsqueeze(2) + cum.unsqueeze(1) - cum.unsqueeze(2) - flows.unsqueeze(1)  # [b, i, j]
    n = flows.shape[1]
    idx = torch.arange(n, device=flows.device)
    gap = idx.unsqueeze(0) - idx.unsqueeze(1)  # j - i
    L = td["length"].view(-1, 1, 1)
    ok = (gap > 0).unsqueeze(0) & (idx.view(1, 1, -1) <= L)
    w = torch.where(ok, lamda ** gap.clamp(min=0).float().unsqueeze(0), torch.zeros(1, device=flows.device))
    per = (w * res.pow(2)).sum((1, 2)) / w.sum((1, 2))
    return per.mean()


def visited_states(td: TensorDict) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-initial states visited before the exit (``(M, d)``) and which trajectory each is from."""
    B, T1, d = td["states"].shape
    pos = torch.arange(T1, device=td.device)
    keep = (pos.unsqueeze(0) >= 1) & (pos.unsqueeze(0) < td["length"].unsqueeze(1))
    rows = torch.arange(B, device=td.device).unsqueeze(1).expand(B, T1)
    return td["states"][keep], rows[keep]


def inflow_outflow(env, log_edge_fn, states: torch.Tensor, extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``log sum_{p in Par(s)} F(p -> s)`` and ``log sum_a F(s -> .)`` for each of ``states``.

    ``log_edge_fn(states, extra) -> (N, A)`` log edge flows of every forward action (exit included).
    """
    par, acts, valid = env.parents(states)
    M, P, d = par.shape
    ex_p = None if extra is None else extra.unsqueeze(1).expand(M, P, extra.shape[-1]).reshape(M * P, -1)
    le_par = log_edge_fn(par.reshape(M * P, d), ex_p).reshape(M, P, -1)
    into = le_par.gather(-1, acts.view(1, P, 1).expand(M, P, 1)).squeeze(-1)
    inflow = torch.logsumexp(into.masked_fill(~valid, float("-inf")), -1)
    le = log_edge_fn(states, extra)
    outflow = torch.logsumexp(le.masked_fill(~env.forward_masks(states), float("-inf")), -1)
    return inflow, outflow


def flow_matching_loss(env, log_edge_fn, td: TensorDict, extra: torch.Tensor | None = None) -> torch.Tensor:
    """Flow matching: inflow = outflow at every visited non-initial state, plus
    ``log F(x -> exit) = log R(x)`` at the sampled terminal states."""
    s, rows = visited_states(td)
    ex = None if extra is None else extra[rows]
    inflow, outflow = inflow_outflow(env, log_edge_fn, s, ex)
    term = td["terminal"]
    le_t = log_edge_fn(term, extra)[:, -1]
    match = (inflow - outflow).pow(2).sum() if s.shape[0] else term.new_zeros((), dtype=torch.float)
    return (match + (le_t - td["log_reward"]).pow(2).sum()) / (s.shape[0] + term.shape[0])
