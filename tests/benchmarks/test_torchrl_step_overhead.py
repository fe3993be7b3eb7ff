"""Cost of the core's per-step bookkeeping on the TorchRL path: ``env.step(td)`` vs ``step_tensors``.

``env.step`` adds TorchRL's tensordict handling, the thread guard, the action dtype/shape check, the
live action-mask update and the ``info`` tensordict to the dynamics; ``step_tensors`` is the bare
tensor API (guard + action check only). Run with ``--benchmark-enable -p no:randomly`` under
``/work/tools/cpu-slot --exclusive``; compare ``env_steps_per_s`` of the two paths (and of the same
file on an older commit for before/after).
"""

from __future__ import annotations

import pytest
import torch

import gymgen

CASES = [("gymgen/HyperGrid-v0", 4096, {"ndim": 4, "height": 8}), ("gymgen/SMACLite-3m-v0", 1024, {})]
STEPS = 20


def _legal(mask: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    m = mask | ~mask.any(-1, keepdim=True)
    return torch.multinomial(m.reshape(-1, m.shape[-1]).float(), 1, generator=gen).reshape(m.shape[:-1])


@pytest.mark.parametrize("path", ["torchrl_step", "step_tensors"])
@pytest.mark.parametrize(("env_id", "batch", "kwargs"), CASES, ids=[c[0].split("/")[1] for c in CASES])
def test_step_path(benchmark, torch_threads, env_id: str, batch: int, kwargs: dict, path: str) -> None:
    torch_threads(1)
    env = gymgen.make_batched(env_id, batch_size=batch, max_episode_steps=None, **kwargs)
    env.set_seed(0)
    gen = torch.Generator().manual_seed(0)
    marl = gymgen.get_entry(env_id).family == "marl"
    akey, mkey = (("agents", "action"), ("agents", "action_mask")) if marl else ("action", "action_mask")

    def run_torchrl() -> None:
        td = env.reset()
        for _ in range(STEPS):
            td.set(akey, _legal(td.get(mkey), gen))
            td = env.step(td)["next"]
            done = td["done"].squeeze(-1)
            if bool(done.any()):
                td = env.reset(td.set("_reset", done.unsqueeze(-1)))

    def run_tensors() -> None:
        obs = env.reset_tensors()
        for _ in range(STEPS):
            obs, _, te, tr, _ = env.step_tensors(_legal(obs["action_mask"], gen))
            done = te | tr
            if bool(done.any()):
                obs = env.reset_tensors(done)

    benchmark.group = f"step-path-{env_id.split('/')[1]}"
    benchmark.extra_info.update(batch=batch, path=path)
    benchmark(run_torchrl if path == "torchrl_step" else run_tensors)
    if benchmark.stats is not None:
        benchmark.extra_info["env_steps_per_s"] = STEPS * batch / benchmark.stats.stats.mean
