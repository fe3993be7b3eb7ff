"""FragMol: build a molecule as a tree of fragments from the 105-block vocabulary of Bengio et al. (2021)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import torch
from gymnasium import spaces

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.validation import check_int
from gymgen.dag.base import InvalidActionPolicy
from gymgen.dag.mol._rdkit import require_rdkit
from gymgen.dag.mol.base import MolDAGEnv


@lru_cache(maxsize=1)
def load_blocks() -> tuple[list[str], list[str], list[list[int]]]:
    """The packaged vocabulary: ``(names, smiles, attachment atoms)``; ``block_r[b][0]`` joins the parent."""
    path = resources.files("gymgen.dag.mol") / "data" / "blocks_PDB_105.json"
    raw = json.loads(path.read_text())
    for key in ("block_name", "block_smi", "block_r"):
        if key not in raw:
            raise ValueError(f"{path}: missing key {key!r}; expected block_name, block_smi, block_r")
    idx = sorted(raw["block_smi"], key=int)
    return [raw["block_name"][i] for i in idx], [raw["block_smi"][i] for i in idx], [list(raw["block_r"][i]) for i in idx]


class FragMol(MolDAGEnv):
    """FragMol: assemble up to ``max_blocks`` fragments into a molecule, rewarded by the sEH proxy.

    ## Description
    The GFlowNet fragment environment of Bengio et al. (2021). A molecule is a rooted tree of
    fragments ("blocks") from the 105-block vocabulary: each block has attachment atoms ``r_0..r_m``
    ("stems"). The first action picks the root block (all its stems are free). Each later action picks
    a free stem ``(p, k)`` (stem ``k`` of the block at position ``p``) and a block ``b``; ``b`` joins with
    its atom ``r_0`` by a single bond and brings its stems ``r_1..r_m``. The vocabulary lists the same
    fragment once per joining atom (``C1CCNCC1_0``, ``C1CCNCC1_1``, ...), so "which block" also picks
    the block's attachment atom. RDKit builds and sanitises the molecule only when it is scored.

    The state is a canonical integer vector (blocks in depth-first order, children by stem index), so
    each molecule-tree has one state and removing a leaf block is the exact inverse of adding it.
    Not enumerable (about 10^16 trees).

    ## Action space
    ``Discrete(105 * (1 + max_blocks * 6) + 1)``: action ``b < 105`` places root block ``b`` (only
    from the empty state); action ``105 + (p * 6 + k) * 105 + b`` attaches block ``b`` at stem ``k``
    of position ``p``; the last action exits (legal once ``min_blocks`` blocks are placed). Backward
    action ``i`` removes the leaf block that forward action ``i`` added (the root only when alone).
    ``env.decode_action(a)`` names an action.

    ## Observation space
    ``state``: int64 ``(3 * max_blocks,)`` = block ids, parent positions, parent stem indices (``-1`` =
    empty); ``action_mask`` / ``backward_mask``; and the block graph for torch models:
    ``node_block`` (block id per position, ``-1`` pad), ``node_mask``, ``edge_index`` ``(2, max_blocks-1)``
    (parent, child) positions (``0`` pad), ``edge_stem`` (parent stem index, child joining atom), ``edge_mask``.
    ``info["smiles"]`` holds the SMILES of molecules that just terminated (``""`` for other rows).
    ``env.smiles(states)`` / ``env.state_to_mol(state)`` give SMILES/RDKit Mols of any states.

    ## Rewards
    0 until exit, then ``R(x)^beta`` with ``R`` chosen by ``reward``: ``"seh"`` (default; sEH proxy
    score / 8 clipped to ``[1e-4/8, 12.5]``), ``"qed"``, or ``"sa"`` ((10 - SA)/9). Molecules RDKit
    cannot sanitise get ``min_reward``. ``info["log_reward"]`` = ``beta * log R``. Default ``beta`` =
    ``reward_exponent`` = 10, the exponent of the original fragment experiments (QGFN/EGFN condition on
    or sweep larger ones, up to 32-64: pass them explicitly).

    ## Starting state
    The empty molecule.

    ## Episode end
    Terminated on exit, which is the only legal action once ``max_blocks`` blocks are placed or no
    stem is free. Trajectories have at most ``max_blocks + 1`` actions.

    ## Arguments
    ``max_blocks`` (9), ``min_blocks`` (1), ``reward`` (``"seh"``), ``reward_exponent`` (10.0),
    ``min_reward`` (1e-8), ``invalid_action`` (``"raise"``: an illegal attachment raises
    ``InvalidActionError`` naming it; ``"terminate"``; ``"ignore"``), ``device``.

    ## Version history
    - v0: first release.

    ## Paper settings
    - Bengio et al. 2021 / EGFN (``mols/``): ``max_blocks=8, min_blocks=2, reward_exponent=10``; EGFN
      counts modes at sEH > 7.5 and > 8.0 (``metrics.num_modes(..., threshold=7.5/8)``).
    - QGFN: ``max_blocks=9, reward_exponent=32``, modes = flat reward > 0.9 (sEH > 7.2). QGFN's code uses
      recursionpharma's 72-fragment vocabulary and a junction-tree action space, which gymgen does not
      ship: this env (105 blocks, stem x block actions) is the closest setting, not the same one.

    ## Source
    Bengio et al., "Flow Network based Generative Models for Non-Iterative Diverse Candidate
    Generation" (NeurIPS 2021), vocabulary and sEH proxy (MIT, see ``gymgen/dag/mol/data``). Used
    by the seed papers EGFN (same vocabulary) and QGFN (see above).
    """

    def __init__(
        self,
        max_blocks: int = 9,
        min_blocks: int = 1,
        reward: str = "seh",
        reward_exponent: float = 10.0,
        min_reward: float = 1e-8,
        invalid_action: InvalidActionPolicy = "raise",
        *,
        batch_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(
            reward=reward, reward_exponent=reward_exponent, min_reward=min_reward,
            invalid_action=invalid_action, batch_size=batch_size, device=device,
        )
        max_blocks = check_int("max_blocks", max_blocks, low=1, high=16, owner="FragMol")
        min_blocks = check_int(f"min_blocks (max_blocks={max_blocks})", min_blocks, low=1, high=max_blocks, owner="FragMol")
        self.names, self.block_smiles, self.block_r = load_blocks()
        self.n_blocks = len(self.names)
        self.max_stems = max(len(r) for r in self.block_r)
        self.max_blocks, self.min_blocks = max_blocks, min_blocks
        dev = self.device
        self.n_stems = torch.tensor([len(r) for r in self.block_r], device=dev)
        self._attach0 = torch.tensor([r[0] for r in self.block_r], device=dev)
        m, nb, rr = max_blocks, self.n_blocks, self.max_stems
        self.n_actions = nb * (1 + m * rr) + 1
        self.state_high = max(nb, m, rr)
        self.max_trajectory_length = m + 1
        self.s0 = torch.full((3 * m,), -1, dtype=torch.long)
        self._base = rr + 1
        self._pow = torch.tensor([self._base ** (m - 1 - d) for d in range(m)] + [0], dtype=torch.long, device=dev)
        Chem = require_rdkit()
        self._block_mols = [Chem.MolFromSmiles(s) for s in self.block_smiles]
        self._finish_mol_init()

    # ---- layout helpers ------------------------------------------------------------------------
    def _split(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.max_blocks
        return states[:, :m], states[:, m : 2 * m], states[:, 2 * m :]

    def decode_action(self, action: int) -> str:
        """A readable name for forward action ``action``."""
        nb, rr = self.n_blocks, self.max_stems
        if not 0 <= action < self.n_actions:
            raise ValueError(f"action {action} outside [0, {self.n_actions})")
        if action == self.exit_action:
            return "exit"
        if action < nb:
            return f"root block {action} ({self.names[action]})"
        stem, b = divmod(action - nb, nb)
        p, k = divmod(stem, rr)
        return f"attach block {b} ({self.names[b]}) at stem {k} of position {p}"

    def _legal_summary(self, row: int, legal: list[int]) -> str:
        if legal and legal[0] < self.n_blocks:
            return f"root blocks 0..{self.n_blocks - 1}"
        free = torch.nonzero(self._free_stems(self.states[row : row + 1])[0]).flatten().tolist()
        if len(legal) == 1:  # only exit: all blocks placed or no free stem
            return f"only exit ({len(free)} free stems, max_blocks={self.max_blocks})"
        return f"free stems (position, stem) {[divmod(x, self.max_stems) for x in free]} x any of the {self.n_blocks} blocks"

    def _free_stems(self, states: torch.Tensor) -> torch.Tensor:
        """Bool ``(N, max_blocks * max_stems)``: stem ``(p, k)`` exists and has no child."""
        blk, par, pst = self._split(states)
        n, m, rr = states.shape[0], self.max_blocks, self.max_stems
        present = blk >= 0
        ns = torch.where(present, self.n_stems[blk.clamp(min=0)], 0)
        k = torch.arange(rr, device=states.device)
        exists = k.view(1, 1, rr) < ns.unsqueeze(-1)
        not_root = torch.arange(m, device=states.device).view(1, m, 1) > 0
        exists = exists & ~(not_root & (k.view(1, 1, rr) == 0))
        occ = torch.zeros(n, m * rr + 1, dtype=torch.bool, device=states.device)
        child = par >= 0
        slot = torch.where(child, par * rr + pst, m * rr)
        occ.scatter_(1, slot, True)
        return exists.reshape(n, m * rr) & ~occ[:, : m * rr]

    # ---- DAG API --------------------------------------------------------------------------------
    def forward_masks(self, states: torch.Tensor) -> torch.Tensor:
        blk = states[:, : self.max_blocks]
        n_placed = (blk >= 0).sum(-1)
        nb = self.n_blocks
        empty = n_placed == 0
        room = (n_placed < self.max_blocks) & ~empty
        free = self._free_stems(states) & room.unsqueeze(-1)
        attach = free.unsqueeze(-1).expand(-1, -1, nb).reshape(states.shape[0], -1)
        root = empty.unsqueeze(-1).expand(-1, nb)
        exit_ = (n_placed >= self.min_blocks).unsqueeze(-1)
        return torch.cat([root, attach, exit_], -1)

    def backward_masks(self, states: torch.Tensor) -> torch.Tensor:
        blk, par, pst = self._split(states)
        n, m, nb, rr = states.shape[0], self.max_blocks, self.n_blocks, self.max_stems
        out = torch.zeros(n, self.n_actions - 1 + 1, dtype=torch.bool, device=states.device)
        n_placed = (blk >= 0).sum(-1)
        alone = n_placed == 1
        rows = torch.arange(n, device=states.device)
        out[rows[alone], blk[alone, 0]] = True
        has_child = torch.zeros(n, m + 1, dtype=torch.bool, device=states.device)
        has_child.scatter_(1, torch.where(par >= 0, par, m), True)
        leaf = (par >= 0) & ~has_child[:, :m]
        idx = torch.where(leaf, nb + (par * rr + pst) * nb + blk, self.n_actions - 1)
        out.scatter_(1, idx, leaf)
        return out[:, : self.n_actions - 1]

    def _canonical(self, states: torch.Tensor) -> torch.Tensor:
        """Reorder blocks depth-first (children by stem index); parents must precede children on input."""
        blk, par, pst = self._split(states)
        n, m = states.shape[0], self.max_blocks
        big = torch.iinfo(torch.long).max
        key = torch.full((n, m), big, dtype=torch.long, device=states.device)
        depth = torch.zeros(n, m, dtype=torch.long, device=states.device)
        key[:, 0] = torch.where(blk[:, 0] >= 0, 0, big)
        for j in range(1, m):
            ok = par[:, j] >= 0
            pj = par[:, j].clamp(min=0)
            d = depth.gather(1, pj.unsqueeze(1)).squeeze(1) + 1
            kp = key.gather(1, pj.unsqueeze(1)).squeeze(1)
            depth[:, j] = torch.where(ok, d, 0)
            key[:, j] = torch.where(ok, kp + (pst[:, j] + 1) * self._pow[(d - 1).clamp(0, m)], big)
        order = torch.argsort(key, dim=1, stable=True)
        inv = torch.argsort(order, dim=1)
        nblk = blk.gather(1, order)
        npar = par.gather(1, order)
        npar = torch.where(npar >= 0, inv.gather(1, npar.clamp(min=0)), -1)
        npst = pst.gather(1, order)
        return torch.cat([nblk, npar, npst], -1)

    def forward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        out = states.clone()
        nb, rr, m = self.n_blocks, self.max_stems, self.max_blocks
        actions = actions.to(states.device)
        is_root = actions < nb
        out[is_root, 0] = actions[is_root]
        att = ~is_root
        if bool(att.any()):
            a = actions[att] - nb
            stem, b = a // nb, a % nb
            p, k = stem // rr, stem % rr
            sub = out[att]
            pos = (sub[:, :m] >= 0).sum(-1)
            rows = torch.arange(sub.shape[0], device=states.device)
            sub[rows, pos] = b
            sub[rows, m + pos] = p
            sub[rows, 2 * m + pos] = k
            out[att] = self._canonical(sub)
        return out

    def backward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        out = states.clone()
        nb, rr, m = self.n_blocks, self.max_stems, self.max_blocks
        actions = actions.to(states.device)
        is_root = actions < nb
        out[is_root] = -1
        att = ~is_root
        if bool(att.any()):
            stem = (actions[att] - nb) // nb
            sub = out[att]
            par, pst = sub[:, m : 2 * m], sub[:, 2 * m :]
            hit = (par * rr + pst == stem.unsqueeze(1)) & (par >= 0)
            sub = torch.where(hit.repeat(1, 3), -1, sub)
            out[att] = self._canonical(sub)
        return out

    # ---- chemistry --------------------------------------------------------------------------------
    def state_to_mol(self, state: list[int]) -> Any:
        Chem = require_rdkit()
        m = self.max_blocks
        blk, par, pst = state[:m], state[m : 2 * m], state[2 * m :]
        used = [j for j in range(m) if blk[j] >= 0]
        if not used:
            return None
        mol = Chem.RWMol()
        offset = []
        for j in used:
            offset.append(mol.GetNumAtoms())
            mol.InsertMol(self._block_mols[blk[j]])
        joins = []
        for j in used[1:]:
            a = offset[par[j]] + self.block_r[blk[par[j]]][pst[j]]
            b = offset[j] + self.block_r[blk[j]][0]
            mol.AddBond(a, b, Chem.BondType.SINGLE)
            joins += [a, b]
        for a in joins:  # a joining atom gives up one explicit H (e.g. aromatic [nH])
            atom = mol.GetAtomWithIdx(a)
            if atom.GetNumExplicitHs() > 0:
                atom.SetNumExplicitHs(atom.GetNumExplicitHs() - 1)
        out = mol.GetMol()
        try:
            Chem.SanitizeMol(out)
        except Exception:  # noqa: BLE001 - RDKit raises several exception types for bad valence/kekulisation
            return None
        return out

    # ---- observation ------------------------------------------------------------------------------
    def graph_spaces(self) -> dict[str, spaces.Space]:
        m = self.max_blocks
        e = max(m - 1, 1)
        return {
            "node_block": spaces.Box(-1, self.n_blocks - 1, shape=(m,), dtype="int64"),
            "node_mask": spaces.MultiBinary(m),
            "edge_index": spaces.Box(0, m - 1, shape=(2, e), dtype="int64"),
            "edge_stem": spaces.Box(0, max(self.max_stems - 1, int(self._attach0.max())), shape=(e, 2), dtype="int64"),
            "edge_mask": spaces.MultiBinary(e),
        }

    def graph_obs(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        blk, par, pst = self._split(states)
        m = self.max_blocks
        e = max(m - 1, 1)
        n = states.shape[0]
        child = torch.arange(1, m, device=states.device).expand(n, -1)
        emask = par[:, 1:] >= 0
        src = torch.where(emask, par[:, 1:], 0)
        dst = torch.where(emask, child, 0)
        a0 = torch.where(emask, self._attach0[blk[:, 1:].clamp(min=0)], 0)
        k = torch.where(emask, pst[:, 1:], 0)
        if m == 1:
            src = dst = k = a0 = torch.zeros(n, 1, dtype=torch.long, device=states.device)
            emask = torch.zeros(n, 1, dtype=torch.bool, device=states.device)
        return {
            "node_block": blk.clone(),
            "node_mask": blk >= 0,
            "edge_index": torch.stack([src, dst], 1),
            "edge_stem": torch.stack([k, a0], -1),
            "edge_mask": emask[:, :e],
        }


FragMolEnv = single_env_view(FragMol)
FragMolVectorEnv = vector_env_view(FragMol)
