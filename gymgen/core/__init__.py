"""Batched torch core shared by every gymgen family: the TorchRL env base and its Gymnasium views."""

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.batched import BatchedEnv
from gymgen.core.errors import ConcurrentUseError, InvalidActionError, UnsupportedRenderMode

__all__ = ["BatchedEnv", "ConcurrentUseError", "InvalidActionError", "UnsupportedRenderMode", "single_env_view",
           "vector_env_view"]
