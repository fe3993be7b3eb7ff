"""Action masks through TorchRL: the action spec that follows the env's mask, and ``ActionMask`` after partial resets.

``LiveMaskCategorical`` is how TorchRL's random actions stay legal on masked gymgen envs. TorchRL's
wrappers keep their own *copies* of the action spec: ``TransformedEnv`` clones the base env's spec,
``Collector(policy=None)`` builds ``RandomPolicy(env.full_action_spec)`` (another clone), and
``RandomPolicy``/``rand_action`` sample from that copy without ever seeing the tensordict. A plain
``Categorical`` clones its mask, so every copy freezes the mask of the moment it was made and later
draws illegal actions. ``LiveMaskCategorical`` keeps the mask in one shared cell: ``clone()`` and
``to()`` return specs that read the same cell, and ``update_mask`` (called by the env after every
reset and step, and by TorchRL's ``ActionMask`` transform) replaces the cell's tensor, so every copy
in the process samples from the current mask. A row with no legal action (a finished episode) is
stored as all-legal: TorchRL resets it before its action is used.

``SerialEnv``/``ParallelEnv`` rebuild their specs from a throw-away metadata env (``expand``), and a
``ParallelEnv``'s envs live in other processes, so no cell can follow them. Such a detached copy
raises a clear error from ``rand()`` until something feeds it in the main process: TorchRL's
``ActionMask`` transform does, from every observation. TorchRL's ``ActionMask`` however reads the
mask of a *reset* from the batched env's reset output, which after a partial reset holds stale rows
for the workers that did not reset (TorchRL 0.14.1), so random actions there turn illegal after the
first episode end. ``PartialResetActionMask`` is ``ActionMask`` with that fixed (rows that were not
reset keep the mask of their last step):

    env = TransformedEnv(SerialEnv(4, make_env), PartialResetActionMask.for_env(make_env()))

Without such a transform the detached spec's ``rand()`` raises instead of drawing illegal actions.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.data import Categorical
from torchrl.envs.transforms import ActionMask

#: what a detached (never fed) ``LiveMaskCategorical`` says when asked for a random action
DETACHED_MASK_HELP = (
    "this copy of a gymgen action spec was rebuilt outside its env (TorchRL's SerialEnv/ParallelEnv copy specs "
    "from a metadata env, and a ParallelEnv's envs run in other processes), so its action mask cannot follow the "
    "env and a random action could be illegal. Wrap the batched env in gymgen's PartialResetActionMask (TorchRL's "
    "ActionMask, correct after partial resets): TransformedEnv(SerialEnv(n, make_env), "
    "gymgen.core.masks.PartialResetActionMask(action_key={action_key!r}, mask_key={mask_key!r})), "
    "or use a policy that reads the observation's action mask"
)


class _MaskCell:
    """The one place a ``LiveMaskCategorical`` and all its clones read their mask from."""

    __slots__ = ("mask", "fed", "action_key", "mask_key")

    def __init__(self, mask: torch.Tensor | None, fed: bool, action_key: Any = "action", mask_key: Any = "action_mask") -> None:
        self.mask, self.fed, self.action_key, self.mask_key = mask, fed, action_key, mask_key

    def __getstate__(self) -> tuple:
        return (self.mask, self.fed, self.action_key, self.mask_key)

    def __setstate__(self, state: tuple) -> None:
        self.mask, self.fed, self.action_key, self.mask_key = state


class LiveMaskCategorical(Categorical):
    """A ``Categorical`` action spec whose copies (``clone``/``to``) share one live mask (see the module doc).

    ``update_mask(mask)`` replaces the shared mask (rows without a legal action become all-legal);
    ``rand()`` samples from it. Specs that TorchRL derives with a new shape (``expand``, indexing,
    ``squeeze`` ...) get their own cell, unfed until ``update_mask`` is called: sampling from one
    before that raises ``RuntimeError`` with what to do instead of drawing a possibly illegal action.
    """

    def __init__(
        self,
        n: int,
        shape: torch.Size | None = None,
        device: Any = None,
        dtype: str | torch.dtype = torch.long,
        mask: torch.Tensor | None = None,
        *,
        cell: _MaskCell | None = None,
    ) -> None:
        # Categorical.__init__ calls update_mask(mask) on a scratch cell; a new spec is fed only by a mask
        object.__setattr__(self, "_cell", _MaskCell(None, fed=False))
        super().__init__(n, shape=shape, device=device, dtype=dtype, mask=mask if cell is None else None)
        if cell is not None:
            object.__setattr__(self, "_cell", cell)
        elif mask is None:
            self._cell.fed = False

    @classmethod
    def owned(cls, n: int, shape: torch.Size, device: torch.device, action_key: Any, mask_key: Any) -> LiveMaskCategorical:
        """The spec an env owns: fed from the start (no mask = every action legal until the first reset)."""
        return cls(n, shape=shape, device=device, dtype=torch.int64,
                   cell=_MaskCell(None, fed=True, action_key=action_key, mask_key=mask_key))

    @property
    def mask(self) -> torch.Tensor | None:  # type: ignore[override]
        m = self._cell.mask
        if m is not None and m.device != self.device:
            m = m.to(self.device)
        return m

    @mask.setter
    def mask(self, value: torch.Tensor | None) -> None:
        self._set_cell_mask(value)

    def _set_cell_mask(self, value: torch.Tensor | None) -> None:
        if value is not None:
            value = value | ~value.any(-1, keepdim=True)  # a finished row (no legal action) samples anything
        self._cell.mask = value
        self._cell.fed = True

    def update_mask(self, mask: Any) -> None:
        if mask is None:
            self._set_cell_mask(None)
            return
        mask = torch.as_tensor(mask, device=self.device)
        if mask.dtype != torch.bool:
            raise ValueError(f"action masks must be boolean, got dtype {mask.dtype}")
        want = (*self.shape, self.space.n)
        if mask.shape != want:
            try:
                mask = mask.expand(want)
            except RuntimeError as err:
                raise RuntimeError(f"cannot expand an action mask of shape {tuple(mask.shape)} to {want}") from err
        self._set_cell_mask(mask)

    def _check_fed(self) -> None:
        if not self._cell.fed:
            raise RuntimeError(DETACHED_MASK_HELP.format(action_key=self._cell.action_key, mask_key=self._cell.mask_key))

    def rand(self, shape: torch.Size | None = None) -> torch.Tensor:
        self._check_fed()
        return super().rand(shape)

    def clone(self) -> LiveMaskCategorical:
        return type(self)(self.space.n, shape=self.shape, device=self.device, dtype=self.dtype, cell=self._cell)

    def to(self, dest: Any) -> LiveMaskCategorical:
        dtype = dest if isinstance(dest, torch.dtype) else self.dtype
        device = self.device if dest is None or isinstance(dest, torch.dtype) else torch.device(dest)
        if device == self.device and dtype == self.dtype:
            return self
        return type(self)(self.space.n, shape=self.shape, device=device, dtype=dtype, cell=self._cell)

    def expand(self, *shape: Any) -> LiveMaskCategorical:
        out = super().expand(*shape)
        out._cell.action_key, out._cell.mask_key = self._cell.action_key, self._cell.mask_key
        return out


class PartialResetActionMask(ActionMask):
    """TorchRL's ``ActionMask`` whose reset keeps, for rows that were not reset, the mask of their last step.

    ``ActionMask._reset`` takes the mask from the reset output; a ``SerialEnv``/``ParallelEnv`` reset
    output holds stale data for workers that did not reset, so the spec would be fed old masks. Here
    the rows flagged by ``"_reset"`` take the new mask and the others keep the current one. Works on
    any env whose action spec carries a mask (gymgen's or not).
    """

    @classmethod
    def for_env(cls, env: Any) -> PartialResetActionMask:
        """The transform for ``env``'s (first) masked action: keys read from its live action spec."""
        for key in env.full_action_spec.keys(True, True):
            spec = env.full_action_spec[key]
            if isinstance(spec, LiveMaskCategorical):
                return cls(action_key=spec._cell.action_key, mask_key=spec._cell.mask_key)
        raise ValueError(f"{type(env).__name__} has no masked discrete action (no LiveMaskCategorical in its action spec)")

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        reset = tensordict.get("_reset", None) if tensordict is not None else None
        spec = self.action_spec
        current = spec.mask
        new = tensordict_reset.get(self.in_keys[1])
        if reset is None or current is None or bool(reset.all()):
            spec.update_mask(new.to(spec.device))
            return tensordict_reset
        batch = self.parent.batch_size if self.parent is not None else reset.shape[:-1]
        rows = reset.reshape(*batch, -1).any(-1)
        rows = rows.reshape(*rows.shape, *([1] * (new.ndim - rows.ndim)))
        spec.update_mask(torch.where(rows.to(spec.device), new.to(spec.device), current))
        return tensordict_reset
