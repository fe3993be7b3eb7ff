"""How many torch threads gymgen's envs use in *worker* processes (never in your own process).

Several processes that each run torch with its default intra-op thread pool (one thread per core)
oversubscribe the cores: four processes stepping ``WorldSim-v0`` on two cores ran at 7-13 frames/s
each against 608 for one process. Worker processes are what ``gymnasium.vector.AsyncVectorEnv``,
Stable-Baselines3's ``SubprocVecEnv`` and the leaderboard's process backend start, so in a process
started by ``multiprocessing`` (a child: ``multiprocessing.parent_process()`` is set) the first gymgen
env built sets torch's intra-op threads to the *worker thread count*:

- ``GYMGEN_WORKER_THREADS=N`` (environment variable, inherited by the workers) or
  ``gymgen.set_worker_threads(N)`` in the parent before the workers start: ``N`` threads per worker;
- default ``1`` (what ``OMP_NUM_THREADS=1`` gives; Ray sets that for its workers itself);
- ``GYMGEN_WORKER_THREADS=0`` / ``set_worker_threads(None)``: leave torch's setting alone;
- an ``OMP_NUM_THREADS`` you set yourself is respected (torch already uses it).

The main process (the one you run) is never changed. ``tests/benchmarks/test_multiprocess.py``
measures 1, 2 and 4 processes.
"""

from __future__ import annotations

import multiprocessing
import os

ENV_VAR = "GYMGEN_WORKER_THREADS"
DEFAULT_WORKER_THREADS = 1
_applied = False


def set_worker_threads(n: int | None) -> None:
    """Torch threads per worker process started *after* this call (``None``: leave torch's default).

    Stored in the environment variable ``GYMGEN_WORKER_THREADS`` so that worker processes inherit
    it (fork and spawn alike); does not change the calling process.
    """
    if n is None:
        os.environ[ENV_VAR] = "0"
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"worker threads must be a positive int or None, got {n!r}")
    os.environ[ENV_VAR] = str(n)


def worker_threads() -> int | None:
    """The thread count workers get (``None`` = leave torch alone), from the environment."""
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None if "OMP_NUM_THREADS" in os.environ else DEFAULT_WORKER_THREADS
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be an int (0 = leave torch's setting alone), got {raw!r}") from None
    if n < 0:
        raise ValueError(f"{ENV_VAR} must be >= 0, got {n}")
    return n or None


def in_worker_process() -> bool:
    """Whether this process was started by ``multiprocessing`` (AsyncVectorEnv, SubprocVecEnv, pools)."""
    return multiprocessing.parent_process() is not None


def report() -> dict[str, object]:
    """This process's torch intra-op threads and whether gymgen treats it as a worker (diagnostics)."""
    import torch

    return {"pid": os.getpid(), "worker": in_worker_process(), "torch_threads": torch.get_num_threads(),
            "worker_threads": worker_threads()}


def apply_worker_threads() -> int | None:
    """In a worker process, set torch's intra-op threads once to ``worker_threads()``; return it.

    A no-op in the main process, after the first call, or when the count is ``None``.
    """
    global _applied
    if _applied or not in_worker_process():
        return None
    _applied = True
    n = worker_threads()
    if n is not None:
        import torch

        torch.set_num_threads(n)
    return n
