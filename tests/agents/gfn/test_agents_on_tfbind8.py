"""Every GFlowNet agent trains on TFBind8 (append order, 65,536 exactly enumerable sequences)."""

import importlib

import pytest

import gymgen

METHODS = [("tb", "TBConfig"), ("db", "DBConfig"), ("subtb", "SubTBConfig"), ("fm", "FMConfig"), ("bn", "BNConfig"), ("rpe", "RPEConfig"), ("qgfn", "QGFNConfig"), ("egfn", "EGFNConfig")]


@pytest.mark.parametrize("name,cfg_name", METHODS, ids=[m[0] for m in METHODS])
def test_agent_runs_on_tfbind8_with_exact_metrics(name, cfg_name):
    mod = importlib.import_module(f"gymgen.agents.gfn.{name}")
    env = gymgen.make_batched("gymgen/TFBind8-v0", batch_size=1, reward_exponent=3.0)
    pol = mod.train(env, getattr(mod, cfg_name)(n_iterations=8, batch_size=16, hidden=64, seed=0, lr=3e-3))
    last = pol.history[-1]
    assert 0.0 < last["tv_exact"] < 1.0 and last["reward_evaluations"] >= 8 * 16
    assert pol.sample(4).shape == (4, 8)


def test_tb_moves_toward_target_on_tfbind8():
    from gymgen.agents.gfn import tb

    env = gymgen.make_batched("gymgen/TFBind8-v0", batch_size=1, reward_exponent=3.0)
    pol = tb.train(env, tb.TBConfig(n_iterations=40, batch_size=32, hidden=128, seed=0, lr=3e-3, eval_every=20))
    assert pol.history[-1]["tv_exact"] < pol.history[0]["tv_exact"]
