"""FragMol and AtomMol: invariant kit, Gymnasium check_env, masks, forward/backward consistency, errors, rewards."""

from __future__ import annotations

import gymnasium
import pytest
import torch

pytest.importorskip("rdkit")

import gymgen  # noqa: E402
from gymgen.core.batched import InvalidActionError  # noqa: E402
from gymgen.dag.mol.atommol import AtomMol  # noqa: E402
from gymgen.dag.mol.fragmol import FragMol  # noqa: E402
from gymgen.testing import check_env, check_exact_distribution  # noqa: E402


def _random_states(env, n: int, seed: int = 0, exit_early: bool = True) -> list[torch.Tensor]:
    """Every state visited by ``n`` uniform random trajectories (batched)."""
    g = torch.Generator().manual_seed(seed)
    s = env.s0.expand(n, -1).clone()
    seen = [s.clone()]
    live = torch.ones(n, dtype=torch.bool)
    for _ in range(env.max_trajectory_length):
        fm = env.forward_masks(s[live]).float()
        if not exit_early:
            fm[:, -1] = torch.where(fm[:, :-1].sum(-1) > 0, 0.0, 1.0)
        a = torch.multinomial(fm, 1, generator=g).squeeze(1)
        idx = torch.nonzero(live).flatten()
        ex = a == env.exit_action
        live[idx[ex]] = False
        if not live.any():
            break
        s[live] = env.forward_step(s[live], a[~ex])
        seen.append(s[live].clone())
    return seen


@pytest.mark.parametrize("env_id", ["gymgen/FragMol-v0", "gymgen/AtomMol-v0"])
def test_invariant_kit_and_gymnasium_check_env(env_id):
    ran = check_env(env_id, max_examples=4, max_len=12)
    assert "gymnasium.check_env" in ran and any(r.startswith("dag_") for r in ran)


def test_invariant_kit_on_small_enumerable_atommol():
    ran = check_env(lambda: gymgen.make("gymgen/AtomMol-v0", max_atoms=3), max_examples=4, max_len=8, gymnasium_checker=False)
    assert "dag_exact_distribution" in ran
    env = AtomMol(max_atoms=3)
    check_exact_distribution(env, n_samples=2000)


@pytest.mark.parametrize("make", [lambda: FragMol(max_blocks=5), lambda: AtomMol(max_atoms=6)])
def test_forward_backward_consistency_on_random_batches(make):
    env = make()
    for s in _random_states(env, 64, exit_early=False)[1:]:
        bm = env.backward_masks(s)
        assert bm.any(-1).all(), "every non-initial state needs a parent"
        rows, acts = torch.nonzero(bm, as_tuple=True)
        parents = env.backward_step(s[rows], acts)
        assert env.forward_masks(parents)[torch.arange(len(rows)), acts].all()
        assert torch.equal(env.forward_step(parents, acts), s[rows])


def test_fragmol_state_is_canonical_for_any_insertion_order():
    env = FragMol()
    nb, rr = env.n_blocks, env.max_stems
    att = lambda p, k, b: nb + (p * rr + k) * nb + b  # noqa: E731
    s = env.forward_step(env.s0.unsqueeze(0), torch.tensor([0]))  # benzene root, 6 stems
    a = env.forward_step(env.forward_step(s, torch.tensor([att(0, 1, 7)])), torch.tensor([att(0, 4, 8)]))
    b = env.forward_step(env.forward_step(s, torch.tensor([att(0, 4, 8)])), torch.tensor([att(0, 1, 7)]))
    assert torch.equal(a, b)
    from rdkit import Chem

    assert Chem.CanonSmiles(env.smiles(a)[0]) == Chem.CanonSmiles("Oc1ccc(C)cc1")  # atoms 1 and 4: para
    # removing either leaf and adding it back is exact, whatever the order it was added in
    for act in torch.nonzero(env.backward_masks(a)[0]).flatten():
        assert torch.equal(env.forward_step(env.backward_step(a, act.view(1)), act.view(1)), a)


def test_fragmol_masks_forbid_illegal_attachments_and_raise():
    env = gymgen.make("gymgen/FragMol-v0").unwrapped
    env.reset(seed=0)
    fm = env.action_masks()
    assert fm[: env.batched.n_blocks].all() and not fm[env.batched.n_blocks :].any()
    env.step(3)  # C=O_0 root: one stem (atom 0)
    fm = env.action_masks()
    nb, rr = env.batched.n_blocks, env.batched.max_stems
    allowed_stems = {(a - nb) // nb for a in range(nb, len(fm) - 1) if fm[a]}
    assert allowed_stems == {0} and fm[-1]
    with pytest.raises(InvalidActionError, match=r"action 211 \(attach block 1 \(CO_0\) at stem 1 of position 0\) is not legal in row 0, molecule C=O"):
        env.step(nb + 1 * nb + 1)  # stem 1 of the root does not exist
    env.step(nb + 0 * nb + 3)  # attach another C=O_0: no stem left
    fm = env.action_masks()
    assert fm.sum() == 1 and fm[-1]
    with pytest.raises(InvalidActionError):
        env.step(nb + 0 * nb + 3)  # stem already used


def test_fragmol_episode_gives_smiles_and_seh_reward():
    env = gymnasium.make("gymgen/FragMol-v0", reward_exponent=1.0)
    obs, _ = env.reset(seed=0)
    assert obs["node_mask"].sum() == 0 and obs["edge_mask"].sum() == 0
    fm = FragMol()
    nb, rr = fm.n_blocks, fm.max_stems
    obs, *_ = env.step(0)  # benzene
    obs, *_ = env.step(nb + (0 * rr + 2) * nb + 4)  # piperidine joined at its atom 0
    assert obs["node_mask"].tolist()[:2] == [1, 1] and obs["edge_mask"][0] == 1
    assert obs["edge_index"][:, 0].tolist() == [0, 1]
    obs, r, term, trunc, info = env.step(fm.exit_action)
    assert term and not trunc
    from rdkit import Chem

    assert Chem.CanonSmiles(info["smiles"]) == Chem.CanonSmiles("c1ccc(C2CCNCC2)cc1")  # the row's string
    from gymgen.dag.mol.seh import seh_reward

    assert r == pytest.approx(float(seh_reward(["c1ccc(C2CCNCC2)cc1"])[0]), rel=1e-5)


def test_fragmol_random_molecules_are_valid_and_in_the_literature_range():
    env = FragMol(reward_exponent=1.0)
    final = _random_states(env, 128, seed=1, exit_early=False)
    s = final[-1]
    smis = env.smiles(s)
    assert all(x is not None for x in smis)
    scores = env.flat_reward(s) * 8
    assert 0 < scores.median() < 8 and scores.max() < 10


@pytest.mark.parametrize("reward,lo,hi", [("qed", 0.0, 1.0), ("sa", 0.0, 1.0), ("seh", 0.0, 12.5)])
def test_reward_choices(reward, lo, hi):
    env = AtomMol(max_atoms=5, reward=reward, reward_exponent=2.0)
    s = _random_states(env, 32, seed=2, exit_early=False)[-1]
    r = env.flat_reward(s)
    assert ((r >= lo) & (r <= hi)).all()
    torch.testing.assert_close(env.log_reward(s).double(), 2.0 * r.log(), atol=1e-5, rtol=1e-5)


def test_atommol_known_molecule_and_qed():
    from rdkit import Chem
    from rdkit.Chem import QED

    env = AtomMol()
    s = env.s0.unsqueeze(0)
    t = 4
    for a in [0, t + (0 * 3 + 0) * t + 0, t + (1 * 3 + 1) * t + 2]:  # C, C-C, C=O  -> acetaldehyde
        s = env.forward_step(s, torch.tensor([a]))
    assert Chem.CanonSmiles(env.smiles(s)[0]) == "CC=O"
    assert float(env.flat_reward(s)) == pytest.approx(QED.qed(Chem.MolFromSmiles("CC=O")), rel=1e-6)


def test_atommol_valence_masks():
    env = AtomMol(max_atoms=4)
    t = 4
    s = env.forward_step(env.s0.unsqueeze(0), torch.tensor([3]))  # F
    fm = env.forward_masks(s)[0]
    allowed = [env.decode_action(a) for a in torch.nonzero(fm).flatten().tolist()]
    assert all("order 1" in x for x in allowed if x.startswith("add")) and "exit" in allowed
    s = env.forward_step(s, torch.tensor([t + (0 * 3 + 0) * t + 0]))  # F-C
    fm = env.forward_masks(s)[0]
    assert not fm[t + (0 * 3 + 0) * t : t + 3 * t].any(), "F has no valence left"
    with pytest.raises(InvalidActionError):
        e = gymgen.make("gymgen/AtomMol-v0").unwrapped
        e.reset(seed=0)
        e.step(3)
        e.step(t + (0 * 3 + 1) * t + 0)  # double bond to F


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="reward must be one of"):
        FragMol(reward="logp")
    with pytest.raises(ValueError, match="max_blocks"):
        FragMol(max_blocks=0)
    with pytest.raises(ValueError, match="max_atoms"):
        AtomMol(max_atoms=40)


def test_missing_rdkit_message(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("rdkit"):
            raise ImportError("No module named 'rdkit'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r'pip install "gymgen\[mol\]"'):
        AtomMol()


def test_invalid_action_policies_terminate_and_ignore():
    env = FragMol(batch_size=2, invalid_action="terminate")
    env.reset_tensors()
    obs, r, term, _, info = env.step_tensors(torch.tensor([0, env.n_blocks + 7]))  # row 1: attach with no molecule
    assert term.tolist() == [False, True] and r.tolist() == [0.0, 0.0] and info["invalid_action"].tolist() == [False, True]
    assert info["smiles"] == ["", ""]
    env = AtomMol(batch_size=2, invalid_action="ignore")
    env.reset_tensors()
    before = env.states.clone()
    obs, r, term, _, info = env.step_tensors(torch.tensor([0, 100]))
    assert not term.any() and torch.equal(env.states[1], before[1]) and env.states[0, 0] == 0


def _path(i: int, blk: list[int], par: list[int], pst: list[int]) -> list[tuple[int, int]]:
    """(stem, block) pairs from block ``i`` up to the root: identifies a block independently of positions."""
    out = []
    while par[i] >= 0:
        out.append((pst[i], blk[i]))
        i = par[i]
    return out


def test_fragmol_any_insertion_order_gives_the_same_state():
    """Rebuild random trees in random parent-before-child orders: the canonical state must not change."""
    import random

    env = FragMol()
    nb, rr, m = env.n_blocks, env.max_stems, env.max_blocks
    final = _random_states(env, 32, seed=3, exit_early=False)[-1]
    rnd = random.Random(0)
    for row in final:
        blk, par, pst = row[:m].tolist(), row[m : 2 * m].tolist(), row[2 * m :].tolist()
        n = sum(b >= 0 for b in blk)
        for _ in range(3):
            order, todo = [0], set(range(1, n))
            while todo:  # a random topological order of the tree
                j = rnd.choice(sorted(i for i in todo if par[i] in order))
                order.append(j)
                todo.remove(j)
            s = env.forward_step(env.s0.unsqueeze(0), torch.tensor([blk[0]]))
            for j in order[1:]:
                cb, cp, cs = s[0, :m].tolist(), s[0, m : 2 * m].tolist(), s[0, 2 * m :].tolist()
                want = _path(par[j], blk, par, pst)
                p_now = next(i for i in range(m) if cb[i] >= 0 and _path(i, cb, cp, cs) == want)
                a = nb + (p_now * rr + pst[j]) * nb + blk[j]
                assert env.forward_masks(s)[0, a]
                s = env.forward_step(s, torch.tensor([a]))
            assert torch.equal(s[0], row)
