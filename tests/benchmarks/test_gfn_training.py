"""TB training iteration (sample a batch of trajectories + one TB gradient step) on the same 8x8
HyperGrid, batch 64, MLP 256x2 with a shared trunk: gymgen's TB agent vs torchgfn's TBGFlowNet.

Run with ``pytest tests/benchmarks/test_gfn_training.py --benchmark-enable``; the ratio is the mean
of the ``gymgen`` row over the ``torchgfn`` row (goal <= 0.5).
"""

import pytest
import torch

import gymgen
from gymgen.agents.gfn.common import make_model, model_log_pf
from gymgen.agents.gfn.losses import tb_loss, trajectory_terms
from gymgen.agents.gfn.sampler import sample_trajectories
from gymgen.agents.gfn.tb import TBConfig

NDIM, HEIGHT, BATCH = 2, 8, 64


def gymgen_tb_iteration():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=NDIM, height=HEIGHT, batch_size=1)
    model = make_model(env, TBConfig(seed=0))
    log_z = torch.nn.Parameter(torch.zeros(()))
    opt = torch.optim.Adam([{"params": model.parameters(), "lr": 1e-3}, {"params": [log_z], "lr": 0.1}])
    lp, gen = model_log_pf(model, env), torch.Generator().manual_seed(0)

    def step():
        td = sample_trajectories(env, lp, BATCH, generator=gen)
        loss = tb_loss(trajectory_terms(model, td), td["log_reward"], log_z)
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

    return step


@pytest.mark.parametrize("impl", ["gymgen", "torchgfn"])
def test_tb_training_iteration(benchmark, impl):
    torch.set_num_threads(1)
    step = gymgen_tb_iteration() if impl == "gymgen" else torchgfn_tb_iteration()
    step()  # warm-up
    benchmark.group = f"TB iteration HyperGrid {NDIM}x{HEIGHT} batch {BATCH}"
    loss = benchmark(step)
    assert torch.isfinite(loss)
