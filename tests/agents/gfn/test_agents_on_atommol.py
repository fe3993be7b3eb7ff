"""Every GFlowNet agent also trains on a molecule env: AtomMol with <= 3 heavy atoms (QED reward,
360 terminal molecules, exactly enumerable), so exact metrics apply."""

import importlib

import pytest

pytest.importorskip("rdkit")

import gymgen  # noqa: E402

METHODS = [("tb", "TBConfig"), ("db", "DBConfig"), ("subtb", "SubTBConfig"), ("fm", "FMConfig"), ("bn", "BNConfig"), ("rpe", "RPEConfig"), ("qgfn", "QGFNConfig"), ("egfn", "EGFNConfig")]


def atommol():
    return gymgen.make_batched("gymgen/AtomMol-v0", max_atoms=3, batch_size=1)


@pytest.mark.parametrize("name,cfg_name", METHODS, ids=[m[0] for m in METHODS])
def test_agent_learns_on_atommol(name, cfg_name):
    mod = importlib.import_module(f"gymgen.agents.gfn.{name}")
    extra = {"p": 0.2, "n_iterations": 60} if name == "qgfn" else {"n_iterations": 40}
    cfg = getattr(mod, cfg_name)(batch_size=32, hidden=128, eval_every=4, seed=0, lr=3e-3, **extra)
    pol = mod.train(atommol(), cfg)
    first, last = pol.history[0], pol.history[-1]
    assert last["tv_exact"] < 0.85 * first["tv_exact"], (first["tv_exact"], last["tv_exact"])
