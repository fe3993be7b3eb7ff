"""Longer GFlowNet reproductions (``pytest -m slow tests/agents/gfn``): minutes on one CPU core."""

import pytest

import gymgen
from gymgen.agents.gfn import bn, db, rbs, rpe, subtb, tb

pytestmark = pytest.mark.slow


def test_tb_4x8_reaches_tv_exact_005():
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=4, height=8, R0=0.1, batch_size=1)
    pol = tb.train(env, tb.TBConfig(n_iterations=1000, batch_size=128, seed=0))
    assert pol.history[-1]["tv_exact"] < 0.05  # measured 0.031 (seed 0)


@pytest.mark.parametrize("mod,cfg", [(db, db.DBConfig), (subtb, subtb.SubTBConfig), (bn, bn.BNConfig), (rpe, rpe.RPEConfig)])
def test_flow_methods_match_tb_on_8x8(mod, cfg):
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8, R0=0.1, batch_size=1)
    pol = mod.train(env, cfg(n_iterations=300, batch_size=64, seed=0))
    assert pol.history[-1]["tv_exact"] < 0.06


def test_rbs_success_rate_above_plain_and_her_on_gc_grid_16():
    rates = {}
    for mode in rbs.MODES:
        env = gymgen.make_batched("gymgen/GCHyperGrid-v0", height=16, batch_size=1)
        rates[mode] = rbs.train(env, rbs.RBSConfig(mode=mode, n_iterations=300, batch_size=64, seed=0)).history[-1]["success_rate"]
    assert rates["rbs"] > rates["plain"] and rates["rbs"] > rates["her"], rates
