"""Invariant checks for GFlowNet DAG envs (anything with gymgen's stateless DAG API).

The env passed here is the batched object (``gymgen.make_batched(id)`` or ``env.unwrapped.batched``)
or any object with ``s0``, ``n_actions``, ``forward_masks``, ``backward_masks``, ``forward_step``,
``backward_step``, ``log_reward`` and ``max_trajectory_length``.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def is_dag_env(env: Any) -> bool:
    """Whether ``env`` exposes the stateless DAG API these checks need."""
    names = ("s0", "n_actions", "forward_masks", "backward_masks", "forward_step", "backward_step", "log_reward")
    return all(hasattr(env, n) for n in names)


def _fail(name: str, seed: int, choices: list[int], msg: str) -> AssertionError:
    return AssertionError(f"[{name}] {msg}\n  replay: seed={seed}, choices={choices}")


def check_forward_backward(env: Any, seed: int, choices: list[int]) -> None:
    """Along a trajectory: masks non-empty, step-then-backward returns the parent and vice versa,
    ``s0`` has no parent, and trajectories are no longer than ``max_trajectory_length`` (acyclic)."""
    s = env.s0.unsqueeze(0).clone()
    if bool(env.backward_masks(s).any()):
        raise _fail("s0_has_no_parent", seed, choices, f"s0={s[0].tolist()} has legal backward actions")
    exit_a = env.n_actions - 1
    for t in range(env.max_trajectory_length + 1):
        fm = env.forward_masks(s)[0]
        if not bool(fm.any()):
            raise _fail("nonterminal_has_action", seed, choices, f"state {s[0].tolist()} has no legal forward action")
        for a in torch.nonzero(fm[:-1]).flatten().tolist():
            child = env.forward_step(s, torch.tensor([a], device=s.device))
            if not bool(env.backward_masks(child)[0, a]):
                raise _fail("backward_mask", seed, choices, f"{s[0].tolist()} -a{a}-> {child[0].tolist()} but backward action {a} is masked there")
            back = env.backward_step(child, torch.tensor([a], device=s.device))
            if not torch.equal(back, s):
                raise _fail("forward_backward", seed, choices, f"{s[0].tolist()} -a{a}-> {child[0].tolist()} -back-> {back[0].tolist()}")
        for b in torch.nonzero(env.backward_masks(s)[0]).flatten().tolist():
            parent = env.backward_step(s, torch.tensor([b], device=s.device))
            if not bool(env.forward_masks(parent)[0, b]):
                raise _fail("forward_mask", seed, choices, f"parent {parent[0].tolist()} of {s[0].tolist()} cannot take forward action {b}")
            if not torch.equal(env.forward_step(parent, torch.tensor([b], device=s.device)), s):
                raise _fail("backward_forward", seed, choices, f"parent {parent[0].tolist()} -a{b}-> does not return to {s[0].tolist()}")
        legal = torch.nonzero(fm).flatten().tolist()
        a = legal[(choices[t] if t < len(choices) else len(legal) - 1) % len(legal)]
        if a == exit_a:
            lr = env.log_reward(s)
            if not bool(torch.isfinite(lr).all()) and not bool((lr == float("-inf")).all()):
                raise _fail("log_reward", seed, choices, f"log_reward({s[0].tolist()}) = {lr.tolist()} is NaN or +inf")
            return
        s = env.forward_step(s, torch.tensor([a], device=s.device))
    raise _fail("acyclic", seed, choices, f"trajectory longer than max_trajectory_length={env.max_trajectory_length}")


def check_exact_distribution(env: Any, n_samples: int = 20_000, seed: int = 0) -> None:
    """For enumerable envs: the true distribution sums to 1 and matches ``log Z``; the exact DP
    terminating distribution of the uniform policy sums to 1 and agrees with Monte-Carlo sampling."""
    if not (hasattr(env, "is_enumerable") and env.is_enumerable()):
        raise ValueError(f"{type(env).__name__} is not enumerable: there is no exact distribution to check")
    target = env.true_distribution()
    if abs(float(target.sum()) - 1) > 1e-6:
        raise AssertionError(f"[true_distribution] sums to {float(target.sum())}, expected 1")
    brute = float(torch.logsumexp(env.log_reward(env.terminal_states()).double(), 0))
    if not math.isclose(env.log_partition(), brute, rel_tol=1e-6, abs_tol=1e-6):
        raise AssertionError(f"[log_partition] {env.log_partition()} != logsumexp(log_reward(terminal_states())) = {brute}")
    enum = env.enumeration
    uniform = lambda st: torch.zeros(st.shape[0], env.n_actions, device=st.device)  # noqa: E731
    p = enum.terminating_distribution(uniform)
    if abs(float(p.sum()) - 1) > 1e-6:
        raise AssertionError(f"[dp_sums_to_one] exact terminating distribution sums to {float(p.sum())}")
    positions = sample_uniform_terminals(env, n_samples, seed)
    emp = torch.bincount(positions, minlength=p.numel()).double() / n_samples
    tv = 0.5 * float((emp - p.cpu()).abs().sum())
    floor = float((2 * p * (1 - p) / (math.pi * n_samples)).sqrt().sum()) / 2  # expected TV of exact sampling
    if tv > 3 * floor + 0.01:
        raise AssertionError(f"[dp_matches_sampling] TV(DP, Monte-Carlo) = {tv:.4f} > {3 * floor + 0.01:.4f} ({n_samples} samples)")


def sample_uniform_terminals(env: Any, n: int, seed: int = 0) -> torch.Tensor:
    """Positions (in ``terminal_states()`` order) of ``n`` terminals sampled by the uniform forward policy."""
    g = torch.Generator(device=env.s0.device).manual_seed(seed)
    s = env.s0.expand(n, -1).clone()
    done = torch.zeros(n, dtype=torch.bool, device=s.device)
    for _ in range(env.max_trajectory_length + 1):
        live = ~done
        if not bool(live.any()):
            break
        m = env.forward_masks(s[live]).float()
        a = torch.multinomial(m, 1, generator=g).squeeze(1)
        ex = a == env.n_actions - 1
        idx = torch.nonzero(live).flatten()
        done[idx[ex]] = True
        mv = idx[~ex]
        if mv.numel():
            s[mv] = env.forward_step(s[mv], a[~ex])
    return env.enumeration.terminal_index_of(s)


DAG_CHECKS = {"forward_backward": check_forward_backward}
