"""Exact enumeration of a small DAG env and the metrics that need ground truth.

``DAGEnumeration.build(env)`` walks the DAG from ``s0`` level by level (all states, every forward
edge, longest-path levels), which gives the true distribution ``R(x)^beta / Z``, ``log Z``, and --
by dynamic programming over the edges -- the exact terminating distribution of any forward policy.
Metric names say what they compute (``tv_exact`` is half the L1 sum; ``l1_sum`` is the L1 sum).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from gymgen.dag.base import DAGEnv

MAX_ENUMERABLE_STATES = 5_000_000


class NotEnumerableError(RuntimeError):
    """The env's state space is too large (or not finite) for exact enumeration."""


def state_keys(states: torch.Tensor, low: int, base: int) -> torch.Tensor:
    """One int64 key per state row (mixed radix with digits ``state - low`` in ``[0, base)``)."""
    d = states.shape[-1]
    if d * math.log2(base) > 62:
        raise NotEnumerableError(f"states of dim {d} with {base} values per entry do not fit an int64 key")
    weights = base ** torch.arange(d, device=states.device, dtype=torch.int64)
    return ((states.long() - low) * weights).sum(-1)


@dataclass
class DAGEnumeration:
    """All reachable states of a DAG env, sorted by key, with forward edges and terminal states."""

    env: DAGEnv
    states: torch.Tensor  # (N, d) sorted by key
    keys: torch.Tensor  # (N,)
    edge_src: torch.Tensor  # (E,) index of parent
    edge_dst: torch.Tensor  # (E,) index of child
    edge_action: torch.Tensor  # (E,) forward action taking src to dst
    level: torch.Tensor  # (N,) longest path length from s0
    terminal_idx: torch.Tensor  # (T,) states where exit is legal, ascending
    log_rewards: torch.Tensor  # (T,) beta * log R at terminal states (float64)

    @classmethod
    def build(cls, env: DAGEnv, max_states: int = MAX_ENUMERABLE_STATES) -> DAGEnumeration:
        if not env.is_enumerable():
            raise NotEnumerableError(f"{type(env).__name__} with these settings is not enumerable")
        dev = env.device
        low, base = -1, env.state_high + 1
        frontier = env.s0.unsqueeze(0)
        seen = [frontier]
        seen_keys = state_keys(frontier, low, base)
        src_rows, act_rows, dst_rows = [], [], []
        total = 1
        while frontier.shape[0] > 0:
            masks = env.forward_masks(frontier)[:, :-1]
            p_idx, acts = torch.nonzero(masks, as_tuple=True)
            if p_idx.numel() == 0:
                break
            children = env.forward_step(frontier[p_idx], acts)
            ckeys = state_keys(children, low, base)
            src_rows.append(state_keys(frontier[p_idx], low, base))
            act_rows.append(acts)
            dst_rows.append(ckeys)
            uniq, first = _unique_first(ckeys)
            new = ~torch.isin(uniq, seen_keys)
            frontier = children[first[new]]
            seen.append(frontier)
            seen_keys = torch.cat([seen_keys, uniq[new]])
            total += frontier.shape[0]
            if total > max_states:
                raise NotEnumerableError(f"more than {max_states} states; too large to enumerate exactly")
        states = torch.cat(seen)
        keys = state_keys(states, low, base)
        order = torch.argsort(keys)
        states, keys = states[order], keys[order]
        e_src = torch.searchsorted(keys, torch.cat(src_rows)) if src_rows else torch.zeros(0, dtype=torch.long, device=dev)
        e_dst = torch.searchsorted(keys, torch.cat(dst_rows)) if dst_rows else torch.zeros(0, dtype=torch.long, device=dev)
        e_act = torch.cat(act_rows) if act_rows else torch.zeros(0, dtype=torch.long, device=dev)
        level = _longest_path_levels(states.shape[0], e_src, e_dst, int(torch.searchsorted(keys, state_keys(env.s0[None], low, base))[0]))
        terminal_idx = torch.nonzero(env.forward_masks(states)[:, -1]).flatten()
        log_r = env.log_reward(states[terminal_idx]).double()
        return cls(env, states, keys, e_src, e_dst, e_act, level, terminal_idx, log_r)

    # ---- ground truth ------------------------------------------------------------------------
    def log_partition(self) -> float:
        return float(torch.logsumexp(self.log_rewards, 0))

    def true_distribution(self) -> torch.Tensor:
        return torch.softmax(self.log_rewards, 0)

    def index_of(self, states: torch.Tensor) -> torch.Tensor:
        """Index into ``states`` of each row (raises if a row is not a reachable state)."""
        k = state_keys(states.to(self.keys.device), -1, self.env.state_high + 1)
        idx = torch.searchsorted(self.keys, k).clamp(max=self.keys.numel() - 1)
        if not bool((self.keys[idx] == k).all()):
            raise KeyError("some states are not reachable states of this env")
        return idx

    def terminal_index_of(self, states: torch.Tensor) -> torch.Tensor:
        """Position in ``terminal_states()`` order of each terminal state row."""
        idx = self.index_of(states)
        pos = torch.searchsorted(self.terminal_idx, idx)
        if not bool((self.terminal_idx[pos.clamp(max=self.terminal_idx.numel() - 1)] == idx).all()):
            raise KeyError("some states are not terminal states")
        return pos

    # ---- exact terminating distribution of a policy ------------------------------------------
    def terminating_distribution(
        self, log_pf: Callable[[torch.Tensor], torch.Tensor], chunk: int = 65_536
    ) -> torch.Tensor:
        """Exact ``P(x)`` of sampling terminal ``x`` with forward policy ``log_pf``.

        ``log_pf(states) -> (N, n_actions)`` log-probabilities (illegal actions ignored). Dynamic
        programming over the DAG in level order: ``u(s0) = 1``, ``u(s') = sum u(s) P_F(s'|s)``,
        ``P(x) = u(x) P_F(exit|x)``. Returned in ``terminal_states()`` order.
        """
        n = self.states.shape[0]
        logp = torch.empty(n, self.env.n_actions, dtype=torch.float64, device=self.states.device)
        with torch.no_grad():
            for i in range(0, n, chunk):
                block = self.states[i : i + chunk]
                lp = log_pf(block).double()
                mask = self.env.forward_masks(block)
                lp = torch.where(mask, lp, torch.full_like(lp, float("-inf")))
                logp[i : i + chunk] = lp - torch.logsumexp(lp, -1, keepdim=True)
        p = logp.exp()
        u = torch.zeros(n, dtype=torch.float64, device=self.states.device)
        u[self.level == 0] = 1.0
        edge_p = p[self.edge_src, self.edge_action]
        dst_level = self.level[self.edge_dst]
        order = torch.argsort(dst_level, stable=True)
        src, dst, ep, lv = self.edge_src[order], self.edge_dst[order], edge_p[order], dst_level[order]
        bounds = torch.searchsorted(lv, torch.arange(int(self.level.max()) + 2, device=lv.device))
        for k in range(1, int(self.level.max()) + 1):
            a, b = int(bounds[k]), int(bounds[k + 1])
            if a < b:
                u.index_add_(0, dst[a:b], u[src[a:b]] * ep[a:b])
        return u[self.terminal_idx] * p[self.terminal_idx, -1]


def _unique_first(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique keys and the index of one occurrence of each."""
    uniq, inv = torch.unique(keys, return_inverse=True)
    first = torch.full((uniq.numel(),), keys.numel(), dtype=torch.long, device=keys.device)
    first.scatter_reduce_(0, inv, torch.arange(keys.numel(), device=keys.device), reduce="amin")
    return uniq, first


def _longest_path_levels(n: int, src: torch.Tensor, dst: torch.Tensor, root: int) -> torch.Tensor:
    """Longest-path distance from ``root`` for every node (a topological level for the DP)."""
    level = torch.full((n,), -1, dtype=torch.long, device=src.device)
    level[root] = 0
    for _ in range(n):
        cand = torch.where(level[src] >= 0, level[src] + 1, torch.full_like(src, -1))
        new = level.clone().scatter_reduce_(0, dst, cand, reduce="amax")
        if torch.equal(new, level):
            return level
        level = new
    raise RuntimeError("the env's forward graph has a cycle")


# ---- metrics ---------------------------------------------------------------------------------

def tv_exact(p: torch.Tensor, target: torch.Tensor) -> float:
    """Total variation distance ``0.5 * sum |p - target|`` (torchgfn's ``l1_dist`` is twice this)."""
    return float(0.5 * (p.double() - target.double()).abs().sum())


def l1_sum(p: torch.Tensor, target: torch.Tensor) -> float:
    """``sum |p - target|`` (= 2 * TV)."""
    return float((p.double() - target.double()).abs().sum())


def kl(target: torch.Tensor, p: torch.Tensor) -> float:
    """``KL(target || p)`` in nats; ``inf`` if ``p`` misses mass that ``target`` has."""
    t, q = target.double(), p.double()
    m = t > 0
    if bool((q[m] <= 0).any()):
        return math.inf
    return float((t[m] * (t[m].log() - q[m].log())).sum())


def jsd(p: torch.Tensor, target: torch.Tensor) -> float:
    """Jensen-Shannon divergence in nats (0 log 0 = 0)."""
    p, t = p.double(), target.double()
    m = 0.5 * (p + t)

    def _kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        s = a > 0
        return (a[s] * (a[s].log() - b[s].log())).sum()

    return float(0.5 * _kl(p, m) + 0.5 * _kl(t, m))


def log_z_error(log_z_estimate: float, log_z_true: float) -> float:
    """``|log Z_hat - log Z|``."""
    return abs(float(log_z_estimate) - float(log_z_true))


def empirical_distribution(terminal_positions: torch.Tensor, n_terminal: int) -> torch.Tensor:
    """Histogram of sampled terminal positions (in ``terminal_states()`` order), normalised."""
    counts = torch.bincount(terminal_positions.long().cpu(), minlength=n_terminal).double()
    return counts / counts.sum().clamp(min=1)


def l1_mean_legacy(terminal_positions: torch.Tensor, target: torch.Tensor) -> float:
    """Legacy grid metric: mean over terminal states of ``|p_hat - target|``, ``p_hat`` from samples.

    This is what the original GFlowNet grid code and EGFN report as "L1" (computed there on the last
    200,000 *training* samples); it is ``l1_sum / |X|`` and shrinks with the number of states.
    """
    p_hat = empirical_distribution(terminal_positions, target.numel())
    return float((p_hat - target.double().cpu()).abs().mean())
