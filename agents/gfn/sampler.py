"""Batched trajectory sampler over the stateless DAG API, producing a tensordict batch.

Layout of the returned ``TensorDict`` (batch ``[B]``; ``T = env.max_trajectory_length``):
``states (B, T+1, d)`` (``states[:, t]`` is the state before action ``t``; after the exit the terminal
state is repeated), ``actions (B, T)`` (-1 = padding), ``valid (B, T)`` (action ``t`` was taken),
``forward_masks (B, T+1, A)``, ``backward_masks (B, T+1, A-1)``, ``log_pf (B, T)`` under the
*untempered* policy (exploration with ``epsilon``/``temperature`` changes only which actions are
drawn), ``length (B,)`` (number of actions, exit included), ``terminal (B, d)``, ``log_reward (B,)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tensordict import TensorDict

LogPF = Callable[..., torch.Tensor]  # (states, mask=None) -> masked log-probs (N, A)


def draw_actions(
    log_pf: torch.Tensor, mask: torch.Tensor, epsilon: float, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Sample from ``softmax(log_pf / temperature)`` mixed with ``epsilon`` * uniform-over-legal."""
    probs = torch.softmax(log_pf / temperature, -1) if temperature != 1.0 else log_pf.exp()
    probs = probs.masked_fill(~mask, 0.0)
    if epsilon > 0:
        uni = mask.float() / mask.sum(-1, keepdim=True).clamp(min=1)
        probs = (1 - epsilon) * probs + epsilon * uni
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample_trajectories(
    env,
    log_pf_fn: LogPF,
    n: int,
    *,
    epsilon: float = 0.0,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    action_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    evaluate_reward: bool = True,
) -> TensorDict:
    """Roll out ``n`` forward trajectories of ``log_pf_fn(states, mask)`` (masked log-probs ``(N, A)``) on ``env``.

    ``action_fn(states, log_pf, mask) -> actions`` replaces the default draw (QGFN mixing uses it).
    """
    dev = env.device
    T, d, A = env.max_trajectory_length, env.state_dim, env.n_actions
    states = torch.empty(n, T + 1, d, dtype=torch.long, device=dev)
    fmasks = torch.zeros(n, T + 1, A, dtype=torch.bool, device=dev)
    actions = torch.full((n, T), -1, dtype=torch.long, device=dev)
    log_pf = torch.zeros(n, T, device=dev)
    cur = env.s0.expand(n, d).clone()
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    length = torch.zeros(n, dtype=torch.long, device=dev)
    states[:, 0] = cur
    for t in range(T):
        mask = env.forward_masks(cur)
        fmasks[:, t] = mask
        if bool(done.all()):
            states[:, t + 1 :] = cur.unsqueeze(1)
            break
        lp = log_pf_fn(cur, mask)
        a = action_fn(cur, lp, mask) if action_fn is not None else draw_actions(lp, mask, epsilon, temperature, generator)
        a = a.masked_fill(done, -1)
        actions[:, t] = a
        log_pf[:, t] = lp.gather(1, a.clamp(min=0).unsqueeze(1)).squeeze(1).masked_fill(done, 0.0)
        moving = ~done & (a != env.exit_action)
        nxt = cur.clone()
        if bool(moving.any()):
            nxt[moving] = env.forward_step(cur[moving], a[moving])
        length += (~done).long()
        done = done | (a == env.exit_action)
        cur = nxt
        states[:, t + 1] = cur
    fmasks[:, T] = env.forward_masks(cur)
    if not bool(done.all()):
        raise RuntimeError("a trajectory did not exit within env.max_trajectory_length actions")
    valid = actions >= 0
    bmasks = env.backward_masks(states.reshape(-1, d)).reshape(n, T + 1, A - 1)
    log_reward = env.log_reward(cur).float() if evaluate_reward else torch.full((n,), float("nan"), device=dev)
    return TensorDict(
        {
            "states": states,
            "actions": actions,
            "valid": valid,
            "forward_masks": fmasks,
            "backward_masks": bmasks,
            "log_pf": log_pf,
            "length": length,
            "terminal": cur,
            "log_reward": log_reward,
        },
        batch_size=[n],
        device=dev,
    )


@torch.no_grad()
def sample_backward_trajectories(
    env, log_pb_fn: Callable[[torch.Tensor], torch.Tensor], terminals: torch.Tensor, generator: torch.Generator | None = None
) -> TensorDict:
    """Walk ``P_B`` from each terminal state back to ``s0`` and return the *reversed* (forward) trajectories,
    ending with the exit, in the layout of ``sample_trajectories`` (``log_pf`` is zero, ``log_reward`` NaN).

    ``log_pb_fn(states) -> (N, A-1)`` masked backward log-probs. Used by retrospective backward synthesis.
    """
    dev = env.device
    n, d = terminals.shape
    T = env.max_trajectory_length
    back = torch.empty(n, T, d, dtype=torch.long, device=dev)
    back_a = torch.full((n, T), -1, dtype=torch.long, device=dev)
    cur = terminals.clone()
    back[:, 0] = cur
    steps = torch.zeros(n, dtype=torch.long, device=dev)
    for k in range(T - 1):
        at0 = env.is_initial(cur)
        if bool(at0.all()):
            back[:, k + 1 :] = cur.unsqueeze(1)
            break
        mask = env.backward_masks(cur)
        probs = torch.where(mask, log_pb_fn(cur).exp(), torch.zeros(mask.shape, device=dev))
        probs = torch.where(at0.unsqueeze(1), torch.ones_like(probs), probs)
        a = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        mv = ~at0
        nxt = cur.clone()
        nxt[mv] = env.backward_step(cur[mv], a[mv])
        back_a[:, k] = torch.where(mv, a, torch.full_like(a, -1))
        steps += mv.long()
        cur = nxt
        back[:, k + 1] = cur
    if not bool(env.is_initial(cur).all()):
        raise RuntimeError("a backward trajectory did not reach s0 within env.max_trajectory_length steps")
    j = torch.arange(T + 1, device=dev).unsqueeze(0)
    m = steps.unsqueeze(1)
    src = (m - j).clamp(min=0, max=T - 1)
    states = back.gather(1, src.unsqueeze(-1).expand(n, T + 1, d))
    fa = back_a.gather(1, (m - 1 - j[:, :T]).clamp(min=0))
    actions = torch.where(j[:, :T] < m, fa, torch.full_like(fa, -1))
    actions = torch.where(j[:, :T] == m, torch.full_like(fa, env.exit_action), actions)
    fm = env.forward_masks(states.reshape(-1, d)).reshape(n, T + 1, -1)
    bm = env.backward_masks(states.reshape(-1, d)).reshape(n, T + 1, -1)
    return TensorDict(
        {
            "states": states, "actions": actions, "valid": actions >= 0, "forward_masks": fm, "backward_masks": bm,
            "log_pf": torch.zeros(n, T, device=dev), "length": steps + 1, "terminal": terminals.clone(),
            "log_reward": torch.full((n,), float("nan"), device=dev),
        },
        batch_size=[n],
        device=dev,
    )
