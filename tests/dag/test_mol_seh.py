"""The sEH proxy: parameter mapping, batching, an independent per-molecule reference, and sane scores.

No published per-molecule reference scores of the original proxy were found, so the checks are: the
batched network equals an independent, loop-by-loop re-derivation of the architecture; scores are
deterministic and batch-independent; known sEH inhibitors (urea/amide scaffolds) score above trivial
molecules; random 9-block fragment molecules stay inside the literature's 0-8 range; and a pinned
regression value (computed by this implementation, not an external reference).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("rdkit")

from gymgen.dag.mol.seh import PARAM_SHAPES, atom_graph, load_seh_arrays, seh_proxy, seh_reward  # noqa: E402

INHIBITORS = [
    "CCC(=O)N1CCC(CC1)NC(=O)Nc1ccc(cc1)OC(F)(F)F",  # TPPU
    "O=C(NC1CCCCC1)Nc1ccc(cc1)C(F)(F)F",
    "O=C(NC1CCCCC1)NC1CCCCC1",  # DCU
]
TRIVIAL = ["C", "O", "N", "CCCCCC", "CCO"]


def _reference_score(smiles: str) -> float:
    """The architecture re-derived per molecule with explicit loops over atoms and edges (float64)."""
    from rdkit import Chem

    p = [torch.tensor(a, dtype=torch.float64) for a in load_seh_arrays()]
    x, ei, ea = (torch.tensor(v) for v in atom_graph(Chem.MolFromSmiles(smiles)))
    x, ea = x.double(), ea.double()
    h = F.leaky_relu(x @ p[0].T + p[1])
    n = h.shape[0]
    for _ in range(12):
        new = []
        for i in range(n):
            msgs = []
            for e in range(ei.shape[1]):
                if int(ei[1, e]) == i:
                    w = (F.leaky_relu(ea[e] @ p[4].T + p[5]) @ p[6].T + p[7]).view(64, 64)
                    msgs.append(h[int(ei[0, e])] @ w)
            agg = torch.stack(msgs).mean(0) if msgs else torch.zeros(64, dtype=torch.float64)
            new.append(F.leaky_relu(agg + h[i] @ p[2].T + p[3]))
        m = torch.stack(new)
        gi, gh = m @ p[8].T + p[10], h @ p[9].T + p[11]
        r = torch.sigmoid(gi[:, :64] + gh[:, :64])
        z = torch.sigmoid(gi[:, 64:128] + gh[:, 64:128])
        cand = torch.tanh(gi[:, 128:] + r * gh[:, 128:])
        h = (1 - z) * cand + z * h
    q_star = torch.zeros(128, dtype=torch.float64)
    hh, cc = torch.zeros(64, dtype=torch.float64), torch.zeros(64, dtype=torch.float64)
    for _ in range(3):
        g = q_star @ p[16].T + p[18] + hh @ p[17].T + p[19]
        i_, f_, g_, o_ = g[:64].sigmoid(), g[64:128].sigmoid(), g[128:192].tanh(), g[192:].sigmoid()
        cc = f_ * cc + i_ * g_
        hh = o_ * cc.tanh()
        a = torch.softmax(h @ hh, 0)
        q_star = torch.cat([hh, (a.unsqueeze(1) * h).sum(0)])
    return float(q_star @ p[20][0] + p[21][0])


def test_stored_arrays_match_the_documented_shapes():
    arrays = load_seh_arrays()
    assert [a.shape for a in arrays] == [s for _, s in PARAM_SHAPES]
    assert sum(a.size for a in arrays) == 699_690


@pytest.mark.parametrize("smiles", ["C", "c1ccccc1", "O=C(NC1CCCCC1)Nc1ccc(cc1)C(F)(F)F", "Clc1ccncc1C(=O)O"])
def test_batched_network_equals_loop_reference(smiles):
    assert seh_proxy([smiles]).item() == pytest.approx(_reference_score(smiles), abs=2e-4)


def test_featurisation_columns():
    from rdkit import Chem

    x, ei, ea = atom_graph(Chem.MolFromSmiles("c1ccncc1Cl"))
    assert x.shape == (7, 71) and ea.shape == (14, 4) and ei.shape == (2, 14)
    n = 3  # aromatic N
    assert x[n, 2] == 1 and x[n, 9] == 1 and x[n, 11] == 1 and x[n, 13 + 7] == 1 and x[n, 13] == 0
    cl = 6
    assert x[cl, 5] == 1 and x[cl, 13 + 17] == 1 and x[cl, 12] == 1
    assert (ea[:, 3] == 1).sum() == 12 and (ea[:, 0] == 1).sum() == 2
    x1, ei1, ea1 = atom_graph(Chem.MolFromSmiles("C"))
    assert ei1.tolist() == [[0], [0]] and ea1.sum() == 0 and x1[0, 13] == 4


def test_scores_are_deterministic_and_batch_independent():
    smis = INHIBITORS + TRIVIAL
    together = seh_proxy(smis)
    alone = torch.cat([seh_proxy([s]) for s in smis])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(seh_proxy(smis[::-1]).flip(0), together, atol=1e-5, rtol=0)


def test_known_inhibitors_score_above_trivial_molecules():
    inh, triv = seh_proxy(INHIBITORS), seh_proxy(TRIVIAL)
    assert inh.min() > triv.max() + 2.0
    assert (inh > 3.0).all() and (triv < 1.0).all()


def test_regression_pin_of_this_implementation():
    # values produced by this implementation when it was written (a regression pin, not an external reference)
    got = seh_proxy(["O=C(NC1CCCCC1)Nc1ccc(cc1)C(F)(F)F", "c1ccccc1", "C"])
    torch.testing.assert_close(got, torch.tensor([4.8438, 0.9288, -0.4156]), atol=1e-3, rtol=0)


def test_reward_is_clipped_score_over_8():
    s = seh_proxy(["C", "O=C(NC1CCCCC1)NC1CCCCC1"])
    r = seh_reward(["C", "O=C(NC1CCCCC1)NC1CCCCC1"])
    torch.testing.assert_close(r, s.clamp(1e-4, 100) / 8)
    assert r[0] == pytest.approx(1e-4 / 8)


def test_bad_input_raises_clearly():
    with pytest.raises(ValueError, match="invalid SMILES at position 1: 'C1CC'"):
        seh_proxy(["CCO", "C1CC"])
    with pytest.raises(TypeError, match="expected SMILES strings or rdkit Mol"):
        seh_proxy([3])


def test_weights_load_without_pickle(tmp_path, monkeypatch):
    calls = []
    real = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: (calls.append(k.get("allow_pickle")), real(*a, **k))[1])
    load_seh_arrays()
    assert calls == [False]


def test_matches_torch_geometric_layers_when_installed():
    """Cross-check against PyG's own NNConv(aggr="mean"), GRU and Set2Set loaded with the same arrays
    (the layers the original proxy was built from). Runs only where torch_geometric is installed."""
    pyg = pytest.importorskip("torch_geometric")
    from torch import nn
    from torch_geometric.nn import NNConv, Set2Set

    from gymgen.dag.mol.seh import batch_graphs

    p = [torch.tensor(a) for a in load_seh_arrays()]
    act = nn.LeakyReLU()
    lin0 = nn.Linear(71, 64)
    conv = NNConv(64, 64, nn.Sequential(nn.Linear(4, 128), act, nn.Linear(128, 64 * 64)), aggr="mean")
    gru, s2s, lin3 = nn.GRU(64, 64), Set2Set(64, processing_steps=3), nn.Linear(128, 1)
    params = {
        lin0.weight: p[0], lin0.bias: p[1], conv.lin.weight: p[2], conv.bias: p[3],
        conv.nn[0].weight: p[4], conv.nn[0].bias: p[5], conv.nn[2].weight: p[6], conv.nn[2].bias: p[7],
        gru.weight_ih_l0: p[8], gru.weight_hh_l0: p[9], gru.bias_ih_l0: p[10], gru.bias_hh_l0: p[11],
        s2s.lstm.weight_ih_l0: p[16], s2s.lstm.weight_hh_l0: p[17], s2s.lstm.bias_ih_l0: p[18],
        s2s.lstm.bias_hh_l0: p[19], lin3.weight: p[20], lin3.bias: p[21],
    }
    with torch.no_grad():
        for dst, src in params.items():
            dst.copy_(src)
    from rdkit import Chem

    mols = [Chem.MolFromSmiles(s) for s in INHIBITORS + TRIVIAL + ["Clc1ccncc1C(=O)O"]]
    x, ei, ea, batch = batch_graphs(mols)
    with torch.no_grad():
        out = act(lin0(x))
        h = out.unsqueeze(0)
        for _ in range(12):
            m = act(conv(out, ei, ea))
            out, h = gru(m.unsqueeze(0), h)
            out = out.squeeze(0)
        ref = lin3(s2s(out, batch)).squeeze(-1)
    assert pyg.__version__
    torch.testing.assert_close(seh_proxy(mols), ref, atol=1e-4, rtol=1e-4)


def test_data_ship_as_package_data_with_license():
    from importlib import resources

    names = {p.name for p in resources.files("gymgen.dag.mol.data").iterdir()}
    assert {"LICENSE", "README.md", "blocks_PDB_105.json", "seh_proxy_params.npz"} <= names
