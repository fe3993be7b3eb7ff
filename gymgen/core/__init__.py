"""Batched torch core shared by every gymgen family: the TorchRL env base and its Gymnasium views."""

from gymgen.core.adapters import single_env_view, vector_env_view
from gymgen.core.batched import BatchedEnv, InvalidActionError

__all__ = ["BatchedEnv", "InvalidActionError", "single_env_view", "vector_env_view"]
