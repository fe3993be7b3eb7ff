"""AtomMol: build a small (QM9-sized) molecule atom by atom, with valence-checked bonds."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.validation import check_int
from gymgen.dag.base import InvalidActionPolicy
from gymgen.dag.mol._rdkit import require_rdkit
from gymgen.dag.mol.base import MolDAGEnv

ELEMENTS = ("C", "N", "O", "F")
VALENCE = (4, 3, 2, 1)
MAX_ORDER = 3


class AtomMol(MolDAGEnv):
    """AtomMol: grow a molecule of at most ``max_atoms`` heavy atoms (C, N, O, F) one atom or bond at a time.

    ## Description
    A QM9-style atom-level graph-building DAG. Atoms are labelled by the order they were added. The
    first action places atom 0; each later action either adds a new atom bonded to an existing atom
    ``i`` with bond order 1-3, or adds a bond (order 1-3) between two existing unbonded atoms (closing
    a ring). Masks enforce neutral valences (C 4, N 3, O 2, F 1); hydrogens are implicit. Backward
    actions undo a forward action exactly: remove the last atom when it has a single bond, or remove a
    bond whose later atom keeps another bond to an earlier atom. Enumerable only for ``max_atoms <= 3``.

    ## Action space
    ``Discrete(4 + N*3*4 + N(N-1)/2*3 + 1)`` with ``N = max_atoms``: action ``t < 4`` places the first
    atom of element ``t``; ``4 + (i*3 + o-1)*4 + t`` adds an atom of element ``t`` bonded to atom ``i`` with
    order ``o``; ``4 + 12N + p*3 + o-1`` bonds the ``p``-th atom pair (``torch.triu_indices(N, N, 1)``
    order) with order ``o``; the last action exits (legal from one atom on). ``env.decode_action(a)``.

    ## Observation space
    ``state``: int64 ``(N + N(N-1)/2,)`` = element per atom (``-1`` empty), then bond order per pair;
    ``action_mask`` / ``backward_mask``; and a graph for torch models: ``node_type`` (``-1`` pad),
    ``node_mask``, ``edge_index`` ``(2, N(N-1)/2)`` (all pairs, fixed), ``edge_order`` and ``edge_mask``
    (pairs that are bonded). ``info["smiles"]`` holds the SMILES of molecules that just terminated.

    ## Rewards
    0 until exit, then ``R(x)^beta``: ``reward="qed"`` (default, RDKit QED), ``"seh"`` (sEH proxy / 8)
    or ``"sa"`` ((10 - SA)/9); floored at ``min_reward``. ``beta = reward_exponent`` (default 1).

    ## Starting state
    The empty molecule.

    ## Episode end
    Terminated on exit (the only legal action once nothing can be added). At most
    ``N + N(N-1)/2 + 1`` actions.

    ## Arguments
    ``max_atoms`` (9), ``reward`` (``"qed"``), ``reward_exponent`` (1.0), ``min_reward`` (1e-8),
    ``invalid_action`` (``"raise"``), ``device``.

    ## Version history
    - v0: first release.

    ## Source
    Atom-level molecule graph building as in the GFlowNet QM9 task (Jain et al. 2023, "Multi-objective
    GFlowNets"; Bengio et al. 2023, "GFlowNet Foundations"); QM9: Ramakrishnan et al. (2014).
    """

    def __init__(
        self,
        max_atoms: int = 9,
        reward: str = "qed",
        reward_exponent: float = 1.0,
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
        max_atoms = check_int("max_atoms", max_atoms, low=1, high=16, owner="AtomMol")
        n, t = max_atoms, len(ELEMENTS)
        self.max_atoms = n
        dev = self.device
        iu = torch.triu_indices(n, n, 1, device=dev)
        self.pair_i, self.pair_j = iu[0], iu[1]
        self.n_pairs = int(iu.shape[1])
        pid = torch.full((n, n), -1, dtype=torch.long, device=dev)
        pid[self.pair_i, self.pair_j] = torch.arange(self.n_pairs, device=dev)
        pid[self.pair_j, self.pair_i] = torch.arange(self.n_pairs, device=dev)
        self.pair_id = pid
        self.valence = torch.tensor(VALENCE, device=dev)
        self._add_off = t
        self._bond_off = t + n * MAX_ORDER * t
        self.n_actions = self._bond_off + self.n_pairs * MAX_ORDER + 1
        self.state_high = max(t, MAX_ORDER + 1)
        self.max_trajectory_length = n + self.n_pairs + 1
        self.s0 = torch.cat([torch.full((n,), -1, dtype=torch.long), torch.zeros(self.n_pairs, dtype=torch.long)])
        self._finish_mol_init()

    # ---- helpers ----------------------------------------------------------------------------------
    def decode_action(self, action: int) -> str:
        """A readable name for forward action ``action``."""
        if not 0 <= action < self.n_actions:
            raise ValueError(f"action {action} outside [0, {self.n_actions})")
        t = len(ELEMENTS)
        if action == self.exit_action:
            return "exit"
        if action < self._add_off:
            return f"first atom {ELEMENTS[action]}"
        if action < self._bond_off:
            rest, e = divmod(action - self._add_off, t)
            i, o = divmod(rest, MAX_ORDER)
            return f"add {ELEMENTS[e]} bonded to atom {i} with order {o + 1}"
        p, o = divmod(action - self._bond_off, MAX_ORDER)
        return f"bond atoms {int(self.pair_i[p])}-{int(self.pair_j[p])} with order {o + 1}"

    def _parts(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(types (B,N), adjacency orders (B,N,N), atoms placed (B,), free valence (B,N))``."""
        n = self.max_atoms
        types, bonds = states[:, :n], states[:, n:]
        b = states.shape[0]
        adj = torch.zeros(b, n, n, dtype=torch.long, device=states.device)
        adj[:, self.pair_i, self.pair_j] = bonds
        adj[:, self.pair_j, self.pair_i] = bonds
        placed = (types >= 0).sum(-1)
        cap = torch.where(types >= 0, self.valence[types.clamp(min=0)], 0)
        return types, adj, placed, cap - adj.sum(-1)

    # ---- DAG API ----------------------------------------------------------------------------------
    def forward_masks(self, states: torch.Tensor) -> torch.Tensor:
        types, adj, placed, free = self._parts(states)
        b, n, t = states.shape[0], self.max_atoms, len(ELEMENTS)
        present = types >= 0
        first = (placed == 0).unsqueeze(-1).expand(b, t)
        o = torch.arange(1, MAX_ORDER + 1, device=states.device)
        ok_i = present.unsqueeze(-1) & (o.view(1, 1, -1) <= free.unsqueeze(-1))  # (B, N, 3)
        ok_t = o.view(-1, 1) <= self.valence.view(1, -1)  # (3, T)
        room = ((placed >= 1) & (placed < n)).view(b, 1, 1, 1)
        add = (ok_i.unsqueeze(-1) & ok_t.view(1, 1, MAX_ORDER, t) & room).reshape(b, -1)
        pi, pj = self.pair_i, self.pair_j
        both = present[:, pi] & present[:, pj] & (adj[:, pi, pj] == 0)
        fmin = torch.minimum(free[:, pi], free[:, pj])
        bond = (both.unsqueeze(-1) & (o.view(1, 1, -1) <= fmin.unsqueeze(-1))).reshape(b, -1)
        exit_ = (placed >= 1).unsqueeze(-1)
        return torch.cat([first, add, bond, exit_], -1)

    def backward_masks(self, states: torch.Tensor) -> torch.Tensor:
        types, adj, placed, _ = self._parts(states)
        b, n, t = states.shape[0], self.max_atoms, len(ELEMENTS)
        dev = states.device
        out = torch.zeros(b, self.n_actions, dtype=torch.bool, device=dev)
        rows = torch.arange(b, device=dev)
        alone = placed == 1
        out[rows[alone], types[alone, 0]] = True
        # remove the last atom when it has exactly one bond
        last = (placed - 1).clamp(min=0)
        last_row = adj[rows, last]  # (B, N)
        deg = (last_row > 0).sum(-1)
        nb = last_row.argmax(-1)
        order = last_row.gather(1, nb.unsqueeze(1)).squeeze(1)
        ok = (placed >= 2) & (deg == 1)
        idx = self._add_off + (nb * MAX_ORDER + (order - 1).clamp(min=0)) * t + types[rows, last].clamp(min=0)
        out[rows[ok], idx[ok]] = True
        # remove bond (i, j), i < j, when j keeps another bond to an earlier atom
        earlier = torch.tril(torch.ones(n, n, dtype=torch.bool, device=dev), -1)  # [j, i] = i < j
        n_earlier = ((adj > 0) & earlier).sum(-1)  # (B, N) earlier neighbours of each atom
        pj = self.pair_j
        bonded = self.state_bonds(states) > 0
        removable = bonded & (n_earlier[:, pj] >= 2)
        bidx = self._bond_off + torch.arange(self.n_pairs, device=dev) * MAX_ORDER + (self.state_bonds(states) - 1).clamp(min=0)
        out.scatter_(1, torch.where(removable, bidx, self.n_actions - 1), removable)
        return out[:, : self.n_actions - 1]

    def state_bonds(self, states: torch.Tensor) -> torch.Tensor:
        return states[:, self.max_atoms :]

    def _apply(self, states: torch.Tensor, actions: torch.Tensor, forward: bool) -> torch.Tensor:
        """Do (``forward``) or undo forward ``actions``: the undo writes -1/0 where the do writes the element/order."""
        out = states.clone()
        n, t = self.max_atoms, len(ELEMENTS)
        a = actions.to(states.device)
        rows = torch.arange(states.shape[0], device=states.device)
        placed = (states[:, :n] >= 0).sum(-1)
        first = a < self._add_off
        if forward:
            out[rows[first], 0] = a[first]
        else:
            out[first] = self.s0.to(states.device)
        add = (a >= self._add_off) & (a < self._bond_off)
        if bool(add.any()):
            rest, e = (a[add] - self._add_off) // t, (a[add] - self._add_off) % t
            i, o = rest // MAX_ORDER, rest % MAX_ORDER + 1
            r, pos = rows[add], placed[add] if forward else placed[add] - 1
            out[r, pos] = e if forward else -1
            out[r, n + self.pair_id[i, pos]] = o if forward else 0
        bond = a >= self._bond_off
        if bool(bond.any()):
            p, o = (a[bond] - self._bond_off) // MAX_ORDER, (a[bond] - self._bond_off) % MAX_ORDER + 1
            out[rows[bond], n + p] = o if forward else 0
        return out

    def forward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self._apply(states, actions, forward=True)

    def backward_step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self._apply(states, actions, forward=False)

    def is_enumerable(self) -> bool:
        return self.max_atoms <= 3

    # ---- chemistry ------------------------------------------------------------------------------
    def state_to_mol(self, state: list[int]) -> Any:
        Chem = require_rdkit()
        n = self.max_atoms
        types, bonds = state[:n], state[n:]
        if types[0] < 0:
            return None
        bt = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
        mol = Chem.RWMol()
        for e in types:
            if e >= 0:
                mol.AddAtom(Chem.Atom(ELEMENTS[e]))
        for p, o in enumerate(bonds):
            if o > 0:
                mol.AddBond(int(self.pair_i[p]), int(self.pair_j[p]), bt[o])
        out = mol.GetMol()
        try:
            Chem.SanitizeMol(out)
        except Exception:  # noqa: BLE001 - RDKit raises several exception types
            return None
        return out

    # ---- observation ----------------------------------------------------------------------------
    def graph_spaces(self) -> dict[str, spaces.Space]:
        n, p = self.max_atoms, max(self.n_pairs, 1)
        return {
            "node_type": spaces.Box(-1, len(ELEMENTS) - 1, shape=(n,), dtype="int64"),
            "node_mask": spaces.MultiBinary(n),
            "edge_index": spaces.Box(0, n - 1, shape=(2, p), dtype="int64"),
            "edge_order": spaces.Box(0, MAX_ORDER, shape=(p,), dtype="int64"),
            "edge_mask": spaces.MultiBinary(p),
        }

    def graph_obs(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        n, b = self.max_atoms, states.shape[0]
        bonds = self.state_bonds(states)
        ei = torch.stack([self.pair_i, self.pair_j]).expand(b, 2, -1).clone()
        if self.n_pairs == 0:
            ei = torch.zeros(b, 2, 1, dtype=torch.long, device=states.device)
            bonds = torch.zeros(b, 1, dtype=torch.long, device=states.device)
        return {
            "node_type": states[:, :n].clone(),
            "node_mask": states[:, :n] >= 0,
            "edge_index": ei,
            "edge_order": bonds.clone(),
            "edge_mask": bonds > 0,
        }


AtomMolEnv = single_env_view(AtomMol)
AtomMolVectorEnv = vector_env_view(AtomMol)
