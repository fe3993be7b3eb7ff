"""GFlowNet training speed, gymgen's TorchRL pieces against torchgfn 2.4.1 in the same run.

- ``test_tb_training_iteration``: one TB iteration (sample 64 trajectories + one gradient step) on the
  same 2x8 HyperGrid, MLP 256x2 with a shared trunk: gymgen's TB agent pieces (``ForwardPolicy``,
  the fused sampler, ``TrajectoryBalanceLoss``, Adam) vs torchgfn's ``TBGFlowNet`` (goal: gymgen <= 0.5x).
  ``gymgen_torchrl_rollout`` is the same iteration with trajectories from TorchRL's
  ``env.rollout(policy=ForwardPolicy)`` on a batch-64 env instead of the fused sampler.
- ``test_sampling``: sampling alone (64 trajectories of an untrained policy): fused sampler vs TorchRL
  ``env.rollout`` of the same actor vs torchgfn's sampler -- where the fused fast path pays off.
- ``test_tb_cuda_speedup``: TB iteration at batch 256 on an 8x8x8 grid on CPU and on CUDA (skipped
  without a GPU; goal: CUDA >= 5x faster).

Run with ``pytest tests/benchmarks/test_gfn_training.py --benchmark-enable``; ratios are means of rows.
"""

from __future__ import annotations

import pytest
import torch

import gymgen
from gymgen.agents.gfn.common import make_model
from gymgen.agents.gfn.modules import forward_policy
from gymgen.agents.gfn.objectives import TrajectoryBalanceLoss
from gymgen.agents.gfn.sampler import sample_trajectories
from gymgen.agents.gfn.tb import TBConfig

NDIM, HEIGHT, BATCH = 2, 8, 64


def gymgen_tb_iteration(ndim: int = NDIM, height: int = HEIGHT, batch: int = BATCH, device: str = "cpu", rollout: bool = False):
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=ndim, height=height, batch_size=batch if rollout else 1, device=device)
    model = make_model(env, TBConfig(seed=0, device=device))
    actor, loss_fn = forward_policy(model), TrajectoryBalanceLoss(model)
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": 1e-3}, {"params": [loss_fn.log_z], "lr": 0.1}])
    gen = torch.Generator(device=device).manual_seed(0)

    def step():
        if rollout:
            with torch.no_grad():
                td = env.rollout(env.max_trajectory_length, actor, break_when_any_done=False, break_when_all_done=True)
        else:
            td = sample_trajectories(env, actor, batch, generator=gen)
        loss = loss_fn(td)["loss_tb"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def torchgfn_tb_iteration():
    pytest.importorskip("gfn.gflownet")  # torchgfn (a bare "gfn" could match a namespace folder)
    from gfn.estimators import DiscretePolicyEstimator
    from gfn.gflownet import TBGFlowNet
    from gfn.gym import HyperGrid
    from gfn.preprocessors import KHotPreprocessor
    from gfn.utils.modules import MLP

    torch.manual_seed(0)
    env = HyperGrid(ndim=NDIM, height=HEIGHT)
    pre = KHotPreprocessor(height=HEIGHT, ndim=NDIM)
    pf_mod = MLP(input_dim=pre.output_dim, output_dim=env.n_actions, hidden_dim=256, n_hidden_layers=2)
    pb_mod = MLP(input_dim=pre.output_dim, output_dim=env.n_actions - 1, hidden_dim=256, n_hidden_layers=2, trunk=pf_mod.trunk)
    pf = DiscretePolicyEstimator(pf_mod, env.n_actions, is_backward=False, preprocessor=pre)
    pb = DiscretePolicyEstimator(pb_mod, env.n_actions, is_backward=True, preprocessor=pre)
    gfn = TBGFlowNet(pf=pf, pb=pb)
    opt = torch.optim.Adam(gfn.pf_pb_parameters(), lr=1e-3)
    opt.add_param_group({"params": gfn.logz_parameters(), "lr": 0.1})

    def step():
        traj = gfn.sample_trajectories(env, n=BATCH, save_logprobs=True)
        loss = gfn.loss(env, gfn.to_training_samples(traj))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step, gfn, env


@pytest.mark.parametrize("impl", ["gymgen", "gymgen_torchrl_rollout", "torchgfn"])
def test_tb_training_iteration(benchmark, impl):
    torch.set_num_threads(1)
    if impl == "torchgfn":
        step = torchgfn_tb_iteration()[0]
    else:
        step = gymgen_tb_iteration(rollout=impl == "gymgen_torchrl_rollout")
    step()  # warm-up
    benchmark.group = f"TB iteration HyperGrid {NDIM}x{HEIGHT} batch {BATCH}"
    loss = benchmark(step)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("impl", ["gymgen_fused", "torchrl_rollout", "torchgfn"])
def test_sampling(benchmark, impl):
    """64 trajectories of an untrained policy (same MLP), no gradient step."""
    torch.set_num_threads(1)
    if impl == "torchgfn":
        _, gfn, tenv = torchgfn_tb_iteration()

        def run():
            return gfn.sample_trajectories(tenv, n=BATCH, save_logprobs=False).terminating_states.tensor
    else:
        env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=NDIM, height=HEIGHT, batch_size=BATCH if impl == "torchrl_rollout" else 1)
        actor = forward_policy(make_model(env, TBConfig(seed=0)))
        gen = torch.Generator().manual_seed(0)

        def run():
            with torch.no_grad():
                if impl == "torchrl_rollout":
                    return env.rollout(env.max_trajectory_length, actor, break_when_any_done=False, break_when_all_done=True)["next", "state"][:, -1]
                return sample_trajectories(env, actor, BATCH, generator=gen)["next", "state"][:, -1]
    benchmark.group = f"sample {BATCH} trajectories HyperGrid {NDIM}x{HEIGHT}"
    terminal = benchmark(run)
    assert terminal.shape == (BATCH, NDIM)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_tb_cuda_speedup(benchmark, device):
    """TB iteration at batch 256 on an 8x8x8 grid; compare the cuda row with the cpu row (goal >= 5x)."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device: the CUDA speed-up is measured only where a GPU is present")
    torch.set_num_threads(1)
    step = gymgen_tb_iteration(ndim=3, height=8, batch=256, device=device)
    step()

    def run():
        loss = step()
        if device == "cuda":
            torch.cuda.synchronize()
        return loss

    benchmark.group = "TB iteration HyperGrid 3x8 (8x8x8) batch 256, cpu vs cuda"
    assert torch.isfinite(benchmark(run))
