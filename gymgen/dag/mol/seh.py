"""The sEH binding proxy of Bengio et al. (2021): a 12-step NNConv+GRU MPNN with a Set2Set readout.

Written from the architecture description (no torch_geometric): the pretrained arrays in
``data/seh_proxy_params.npz`` are loaded without pickle. ``seh_proxy(smiles_or_mols)`` returns the raw
proxy score (roughly 0-8 for drug-like fragment assemblies); the GFlowNet literature uses
``clip(score, 1e-4, 100) / 8`` as the reward (``seh_reward``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gymgen.dag.mol._rdkit import require_rdkit, to_mols

N_ATOMIC_NUMBERS = 56  # one-hot over atomic numbers 1..56
N_ATOM_FEATURES = 14 + N_ATOMIC_NUMBERS + 1  # 71 = lin0 input width
N_BOND_FEATURES = 4  # single, double, triple, aromatic
SEH_NORM = 8.0
_TYPE_IDX = {"H": 0, "C": 1, "N": 2, "O": 3, "F": 4}  # anything else -> column 5

#: expected shape of each stored array, in file order, and its role in the network
PARAM_SHAPES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("lin0.weight", (64, 71)), ("lin0.bias", (64,)),
    ("conv.root", (64, 64)), ("conv.bias", (64,)),
    ("edge_nn.0.weight", (128, 4)), ("edge_nn.0.bias", (128,)),
    ("edge_nn.2.weight", (4096, 128)), ("edge_nn.2.bias", (4096,)),
    ("gru.weight_ih", (192, 64)), ("gru.weight_hh", (192, 64)), ("gru.bias_ih", (192,)), ("gru.bias_hh", (192,)),
    ("unused.stem_hidden.weight", (512, 64)), ("unused.stem_hidden.bias", (512,)),
    ("unused.stem_out.weight", (105, 512)), ("unused.stem_out.bias", (105,)),
    ("set2set.weight_ih", (256, 128)), ("set2set.weight_hh", (256, 64)),
    ("set2set.bias_ih", (256,)), ("set2set.bias_hh", (256,)),
    ("lin3.weight", (1, 128)), ("lin3.bias", (1,)),
)


def atom_graph(mol: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Featurise a molecule as the proxy was trained: ``(x (n,71), edge_index (2,E), edge_attr (E,4))``.

    Node columns: 0-4 one-hot H,C,N,O,F (5 = other element), 6-8 unused (zeros), 9 aromatic, 10-12
    sp/sp2/sp3, 13 total H count, 13+Z one-hot atomic number Z (1..56), 70 stem flag (0). Each bond
    is sent both ways; a molecule without bonds gets one zero-feature self loop on atom 0.
    """
    Chem = require_rdkit()
    hyb = Chem.rdchem.HybridizationType
    bt = Chem.rdchem.BondType
    bond_col = {bt.SINGLE: 0, bt.DOUBLE: 1, bt.TRIPLE: 2, bt.AROMATIC: 3}
    n = mol.GetNumAtoms()
    x = np.zeros((n, N_ATOM_FEATURES), dtype=np.float32)
    for i, atom in enumerate(mol.GetAtoms()):
        z = atom.GetAtomicNum()
        if not 1 <= z <= N_ATOMIC_NUMBERS:
            raise ValueError(f"atomic number {z} ({atom.GetSymbol()}) outside the proxy's range 1..{N_ATOMIC_NUMBERS}")
        x[i, _TYPE_IDX.get(atom.GetSymbol(), 5)] = 1.0
        x[i, 9] = float(atom.GetIsAromatic())
        h = atom.GetHybridization()
        x[i, 10], x[i, 11], x[i, 12] = float(h == hyb.SP), float(h == hyb.SP2), float(h == hyb.SP3)
        x[i, 13] = atom.GetTotalNumHs(includeNeighbors=True)
        x[i, 13 + z] = 1.0
    bonds = list(mol.GetBonds())
    if not bonds:
        return x, np.zeros((2, 1), dtype=np.int64), np.zeros((1, N_BOND_FEATURES), dtype=np.float32)
    src, dst, attr = [], [], []
    for b in bonds:
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        col = bond_col.get(b.GetBondType(), 0)  # the training code mapped unspecified bonds to single
        one = np.zeros(N_BOND_FEATURES, dtype=np.float32)
        one[col] = 1.0
        src += [i, j]
        dst += [j, i]
        attr += [one, one]
    return x, np.array([src, dst], dtype=np.int64), np.stack(attr)


class SEHProxy(nn.Module):
    """The MPNN: ``lin0`` -> 12 x (NNConv(mean) -> LeakyReLU -> GRU) -> Set2Set(3 steps) -> ``lin3``.

    NNConv: ``m_i = mean_{j->i} x_j W(e_ij) + x_i R + b`` with ``W(e) = Linear(128->4096)(LeakyReLU(Linear(4->128)(e)))``
    reshaped to 64x64. The stored arrays also hold a per-stem head (512 and 105 wide) of the original
    model that the scalar sEH score does not use; it is not loaded into the network.
    """

    def __init__(self, dim: int = 64, steps: int = 12, set2set_steps: int = 3) -> None:
        super().__init__()
        self.dim, self.steps, self.s2s_steps = dim, steps, set2set_steps
        self.lin0 = nn.Linear(N_ATOM_FEATURES, dim)
        self.edge_nn = nn.Sequential(nn.Linear(N_BOND_FEATURES, 128), nn.LeakyReLU(), nn.Linear(128, dim * dim))
        self.root = nn.Parameter(torch.zeros(dim, dim))
        self.conv_bias = nn.Parameter(torch.zeros(dim))
        self.gru = nn.GRUCell(dim, dim)
        self.lstm = nn.LSTMCell(2 * dim, dim)
        self.lin3 = nn.Linear(2 * dim, 1)

    def load_arrays(self, arrays: list[np.ndarray]) -> None:
        """Copy the 22 stored arrays (file order, shapes in ``PARAM_SHAPES``) into the network."""
        if len(arrays) != len(PARAM_SHAPES):
            raise ValueError(f"expected {len(PARAM_SHAPES)} parameter arrays, got {len(arrays)}")
        for (name, shape), a in zip(PARAM_SHAPES, arrays):
            if tuple(a.shape) != shape:
                raise ValueError(f"parameter {name}: expected shape {shape}, got {tuple(a.shape)}")
        t = [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]
        targets = [
            self.lin0.weight, self.lin0.bias, self.root, self.conv_bias,
            self.edge_nn[0].weight, self.edge_nn[0].bias, self.edge_nn[2].weight, self.edge_nn[2].bias,
            self.gru.weight_ih, self.gru.weight_hh, self.gru.bias_ih, self.gru.bias_hh,
        ]
        with torch.no_grad():
            for dst, src in zip(targets, t[:12]):
                dst.copy_(src)
            for dst, src in zip([self.lstm.weight_ih, self.lstm.weight_hh, self.lstm.bias_ih, self.lstm.bias_hh], t[16:20]):
                dst.copy_(src)
            self.lin3.weight.copy_(t[20])
            self.lin3.bias.copy_(t[21])
        # the original NNConv stores its root weight as a Linear (out x in): x @ R^T
        with torch.no_grad():
            self.root.copy_(t[2].T.contiguous())

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor, batch: torch.Tensor, n_graphs: int) -> torch.Tensor:
        """Scores ``(n_graphs,)`` of a disjoint union of graphs (``batch[i]`` = graph of node ``i``)."""
        n, d = x.shape[0], self.dim
        out = F.leaky_relu(self.lin0(x))
        h = out
        src, dst = edge_index[0], edge_index[1]
        # bond features take a handful of distinct values (one-hot types): run the edge network once per
        # distinct row and transform every node by each resulting matrix, instead of one 64x64 matrix per edge
        uniq, kind = torch.unique(edge_attr, dim=0, return_inverse=True)
        w = self.edge_nn(uniq).view(-1, d, d)  # (U, in, out)
        deg = torch.zeros(n, device=x.device).index_add_(0, dst, torch.ones_like(dst, dtype=x.dtype)).clamp(min=1)
        for _ in range(self.steps):
            msg = torch.einsum("ni,uio->uno", out, w)[kind, src]
            agg = torch.zeros(n, d, device=x.device, dtype=x.dtype).index_add_(0, dst, msg) / deg.unsqueeze(1)
            m = F.leaky_relu(agg + out @ self.root + self.conv_bias)
            h = self.gru(m, h)
            out = h
        # Set2Set readout
        q_star = torch.zeros(n_graphs, 2 * d, device=x.device, dtype=x.dtype)
        hc = (torch.zeros(n_graphs, d, device=x.device, dtype=x.dtype), torch.zeros(n_graphs, d, device=x.device, dtype=x.dtype))
        for _ in range(self.s2s_steps):
            hc = self.lstm(q_star, hc)
            q = hc[0]
            e = (out * q[batch]).sum(-1)
            emax = torch.full((n_graphs,), float("-inf"), device=x.device, dtype=x.dtype).scatter_reduce(0, batch, e, "amax")
            a = (e - emax[batch]).exp()
            asum = torch.zeros(n_graphs, device=x.device, dtype=x.dtype).index_add_(0, batch, a)
            a = a / asum[batch]
            r = torch.zeros(n_graphs, d, device=x.device, dtype=x.dtype).index_add_(0, batch, a.unsqueeze(1) * out)
            q_star = torch.cat([q, r], -1)
        return self.lin3(q_star).squeeze(-1)


def load_seh_arrays() -> list[np.ndarray]:
    """The 22 pretrained arrays ``p00..p21`` from the packaged npz (loaded with ``allow_pickle=False``)."""
    path = resources.files("gymgen.dag.mol") / "data" / "seh_proxy_params.npz"
    with resources.as_file(path) as f:
        try:
            with np.load(f, allow_pickle=False) as z:
                names = sorted(z.files)
                want = [f"p{i:02d}" for i in range(len(PARAM_SHAPES))]
                if names != want:
                    raise ValueError(f"{f}: expected arrays {want}, found {names}")
                return [z[k] for k in want]
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the sEH proxy parameters at {f}: {exc}") from exc


@lru_cache(maxsize=4)
def load_seh_model(device: str = "cpu") -> SEHProxy:
    """The pretrained proxy in eval mode on ``device`` (cached per device)."""
    model = SEHProxy()
    model.load_arrays(load_seh_arrays())
    return model.eval().to(torch.device(device))


def batch_graphs(mols: list[Any], device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """Featurise ``mols`` and stack them into one disjoint graph: ``(x, edge_index, edge_attr, batch)``."""
    xs, eis, eas, bs = [], [], [], []
    offset = 0
    for g, mol in enumerate(mols):
        x, ei, ea = atom_graph(mol)
        xs.append(x)
        eis.append(ei + offset)
        eas.append(ea)
        bs.append(np.full(x.shape[0], g, dtype=np.int64))
        offset += x.shape[0]
    dev = torch.device(device)
    return (
        torch.from_numpy(np.concatenate(xs)).to(dev),
        torch.from_numpy(np.concatenate(eis, axis=1)).to(dev),
        torch.from_numpy(np.concatenate(eas)).to(dev),
        torch.from_numpy(np.concatenate(bs)).to(dev),
    )


def seh_proxy(molecules: Any, device: str | torch.device = "cpu", batch_size: int = 256) -> torch.Tensor:
    """Raw sEH proxy scores (float32 ``(N,)``) of SMILES strings or RDKit Mols; bad SMILES raise ``ValueError``."""
    mols = to_mols(molecules)
    model = load_seh_model(str(torch.device(device)))
    outs = []
    with torch.no_grad():
        for i in range(0, len(mols), batch_size):
            chunk = mols[i : i + batch_size]
            x, ei, ea, b = batch_graphs(chunk, device)
            outs.append(model(x, ei, ea, b, len(chunk)))
    return torch.cat(outs) if outs else torch.zeros(0)


def seh_reward(molecules: Any, device: str | torch.device = "cpu") -> torch.Tensor:
    """The literature's sEH reward ``clip(score, 1e-4, 100) / 8`` (flat reward before the exponent beta)."""
    return seh_proxy(molecules, device).clamp(1e-4, 100.0) / SEH_NORM
