"""``MolDAGEnv``: what the fragment and atom molecule envs share (rewards with a SMILES cache, graph obs, SMILES in info)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from gymnasium import spaces

from gymgen.core.batched import InfoField, InvalidActionError, Obs, StepResult
from gymgen.core.validation import check_float
from gymgen.dag.base import INVALID_ACTION_HINT, DAGEnv, InvalidActionPolicy
from gymgen.dag.mol._rdkit import require_rdkit
from gymgen.dag.mol.rewards import REWARDS, flat_reward

_CACHE_SIZE = 200_000


class MolDAGEnv(DAGEnv):
    """A DAG env whose terminal states are molecules; subclasses implement ``state_to_mol`` and ``graph_obs``.

    ``log_reward`` = ``beta * log(max(R(x), min_reward))`` where ``R`` is the flat reward named by
    ``reward`` (``"seh"``, ``"qed"``, ``"sa"``); a state RDKit cannot sanitise gets ``min_reward``.
    """

    _read_only_params = DAGEnv._read_only_params + ("reward_name", "min_reward")

    def __init__(
        self,
        *,
        reward: str,
        reward_exponent: float,
        min_reward: float,
        invalid_action: InvalidActionPolicy,
        batch_size: int,
        device: str | torch.device,
    ) -> None:
        require_rdkit()
        super().__init__(batch_size=batch_size, device=device, invalid_action=invalid_action, reward_exponent=reward_exponent)
        if reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {reward!r}")
        min_reward = check_float("min_reward", min_reward, low=0, high=1, low_open=True, high_open=True, owner=type(self).__name__)
        self.reward_name, self.min_reward = reward, float(min_reward)
        self._smiles_cache: OrderedDict[tuple[int, ...], str | None] = OrderedDict()
        self._reward_cache: OrderedDict[str, float] = OrderedDict()

    # ---- chemistry ----------------------------------------------------------------------------
    def state_to_mol(self, state: list[int]) -> Any:
        """The sanitised RDKit Mol of one state (a list of ints), or None if RDKit rejects it."""
        raise NotImplementedError

    def smiles(self, states: torch.Tensor) -> list[str | None]:
        """Canonical SMILES of each state (None for the empty state or one RDKit cannot sanitise)."""
        Chem = require_rdkit()
        out: list[str | None] = []
        for row in states.tolist():
            key = tuple(row)
            if key in self._smiles_cache:
                out.append(self._smiles_cache[key])
                continue
            mol = self.state_to_mol(row)
            smi = Chem.MolToSmiles(mol) if mol is not None and mol.GetNumAtoms() > 0 else None
            self._smiles_cache[key] = smi
            if len(self._smiles_cache) > _CACHE_SIZE:
                self._smiles_cache.popitem(last=False)
            out.append(smi)
        return out

    def flat_reward(self, states: torch.Tensor) -> torch.Tensor:
        """``R(x)`` before the exponent, float64 ``(N,)``; invalid molecules get ``min_reward``."""
        smis = self.smiles(states)
        todo = sorted({s for s in smis if s is not None and s not in self._reward_cache})
        if todo:
            vals = flat_reward(self.reward_name, todo, self.device).tolist()
            for s, v in zip(todo, vals):
                self._reward_cache[s] = float(v)
            while len(self._reward_cache) > _CACHE_SIZE:
                self._reward_cache.popitem(last=False)
        r = [self._reward_cache.get(s, self.min_reward) if s is not None else self.min_reward for s in smis]
        return torch.tensor(r, dtype=torch.float64, device=self.device).clamp(min=self.min_reward)

    def log_reward(self, states: torch.Tensor) -> torch.Tensor:
        return (self.reward_exponent * self.flat_reward(states).log()).to(torch.float32)

    #: a molecule is a mode when its flat reward is at least this (QGFN's sEH modes: flat R > 0.9,
    #: i.e. proxy score 7.2); ``gymgen.dag.mol.metrics.num_modes`` adds the Tanimoto-diversity rule
    mode_reward_threshold: float = 0.9

    def mode_mask(self, states: torch.Tensor) -> torch.Tensor:
        return self.flat_reward(states) >= self.mode_reward_threshold

    def mode_keys(self, states: torch.Tensor) -> list[str]:
        """Canonical SMILES: two states that build the same molecule are one mode."""
        return [s or "" for s in self.smiles(states)]

    # ---- observations -------------------------------------------------------------------------
    def graph_spaces(self) -> dict[str, spaces.Space]:
        """Extra observation entries (the graph encoding) added to DAGEnv's ``state``/masks."""
        raise NotImplementedError

    def graph_obs(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _finish_mol_init(self) -> None:
        self._finish_dag_init()
        self.single_observation_space = spaces.Dict({**self.single_observation_space.spaces, **self.graph_spaces()})
        self.info_fields = {**self.info_fields, "smiles": InfoField(str)}
        self._finish_init()

    def _observe(self) -> Obs:
        obs = super()._observe()
        obs.update(self.graph_obs(self.states))
        return obs

    def decode_action(self, action: int) -> str:
        """A readable name for forward action ``action``."""
        raise NotImplementedError

    def _explain_illegal(self, action: torch.Tensor, active: torch.Tensor | None) -> str:
        """Name the first illegal action, the molecule it was taken in, and what is legal there."""
        a = action.to(self.device).reshape(self.num_envs).long()
        act = torch.ones_like(a, dtype=torch.bool) if active is None else active.to(self.device)
        masks = self.forward_masks(self.states)
        ok = (a >= 0) & (a < self.n_actions) & masks.gather(1, a.clamp(0, self.n_actions - 1).unsqueeze(1)).squeeze(1)
        i = int(torch.nonzero(act & ~ok)[0])
        ai = int(a[i])
        what = self.decode_action(ai) if 0 <= ai < self.n_actions else f"outside [0, {self.n_actions})"
        legal = torch.nonzero(masks[i]).flatten().tolist()
        smi = self.smiles(self.states[i : i + 1])[0] or "<empty>"
        return (
            f"action {ai} ({what}) is not legal in row {i}, molecule {smi} (state {self.states[i].tolist()}); "
            f"{len(legal)} legal actions there: {self._legal_summary(i, legal)}; exit = {self.exit_action}. "
            f"{INVALID_ACTION_HINT}"
        )

    def _legal_summary(self, row: int, legal: list[int]) -> str:
        """A short description of the legal actions ``legal`` of row ``row`` for error messages."""
        return f"{legal[:12]}{' ...' if len(legal) > 12 else ''}"

    def step_tensors(self, action: torch.Tensor, active: torch.Tensor | None = None) -> StepResult:
        try:
            obs, reward, terminated, truncated, info = super().step_tensors(action, active)
        except InvalidActionError as exc:
            raise InvalidActionError(self._explain_illegal(action, active)) from exc
        smis = self.smiles(self.states[terminated]) if bool(terminated.any()) else []
        it = iter(smis)
        info["smiles"] = [(next(it) or "") if t else "" for t in terminated.tolist()]
        return obs, reward, terminated, truncated, info

    def _describe(self, index: int) -> str:
        smi = self.smiles(self.states[index : index + 1])[0]
        return f"{smi or '<empty>'} done={bool(self.finished[index])}"

    def _draw(self, index: int, goal: Any = None) -> Any:
        """RDKit's 2-D depiction of the molecule built so far (300x300; blank while empty)."""
        from gymgen.dag.render import molecule_image

        return molecule_image(self.state_to_mol(self.states[index].tolist()))
