"""MAPPO probes on SpreadBatched behind the "MAPPO on Spread" table of docs/marl_agents.md.

    python scripts/mappo_spread_probe.py '{"steps": 1000000, "critic_time": true, "bootstrap_truncated": false}'
    python scripts/mappo_spread_probe.py '{"steps": 400000, "N": 1}'
    python scripts/mappo_spread_probe.py '{"steps": 50000, "critic_check": true}'

The JSON holds ``steps`` (env steps), optional ``N`` (agents = landmarks, default 3), optional
``critic_check`` and any ``MAPPOConfig`` field. Prints one dict per evaluation (1024 greedy test
episodes every 100k env steps: critic explained variance, entropy, test return, landmark distance).
With ``critic_check`` it then collects one more rollout and prints how much of the variance of its GAE
targets the critic explains, against the best predictor that knows only the step within the episode
(the per-step mean): the measurement that showed the critic learning nothing before the value-norm fix.
"""

from __future__ import annotations

import json
import sys
import time

import torch

import gymgen
from gymgen.agents.marl import mappo


def critic_check(t: mappo.PPOTrainer, limit: int) -> dict[str, float]:
    """Explained variance of the critic and of the per-step mean on one fresh rollout's GAE targets."""
    batch = next(t._iter)
    with torch.no_grad():
        t.loss.value_estimator(batch, params=t.loss.critic_network_params, target_params=t.loss.target_critic_network_params)
    target, value = batch["value_target"], batch["agents", "state_value"]
    ev_critic = 1 - float((target - value).var() / target.var())
    # the step within the episode of every sample (all rows of the batched env start together)
    steps = batch["step_count"][..., 0] if "step_count" in batch.keys() else None
    if steps is None:
        first = batch["is_init"][..., 0].float().argmax(-1, keepdim=True)
        steps = (torch.arange(batch.shape[1]).expand(batch.shape[0], -1) - first) % limit
    per_step = target.mean((-2, -1))
    pred = torch.zeros_like(per_step)
    for s in steps.unique():
        pred[steps == s] = per_step[steps == s].mean()
    return {"critic_explained_variance": ev_critic,
            "per_step_mean_explained_variance": 1 - float((per_step - pred).var() / per_step.var())}


def main(argv: list[str]) -> None:
    kw = json.loads(argv[0]) if argv else {}
    steps, n, check = int(kw.pop("steps", 300_000)), int(kw.pop("N", 3)), bool(kw.pop("critic_check", False))
    torch.set_num_threads(1)
    cfg = mappo.MAPPOConfig(total_env_steps=steps, eval_every_steps=100_000, eval_episodes=1024, **kw)
    env = gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=cfg.n_envs, N=n)
    t = mappo.trainer(env, cfg, eval_env=gymgen.make_batched("gymgen/SpreadBatched-v0", batch_size=1024, N=n))
    t0 = time.time()
    t.train(steps)
    for h in t.history:
        print({k: round(float(v), 4) for k, v in h.items()
               if k in ("env_steps", "explained_variance", "entropy", "test_return", "test_landmark_distance")})
    if check:
        print(critic_check(t, env.max_episode_steps or 25))
    print("wall_s", round(time.time() - t0, 1))


if __name__ == "__main__":
    main(sys.argv[1:])
