"""Expand a suite into runs and execute one run function through serial, process or Ray backends.

``run_one`` is the only place an agent is trained and evaluated; every backend calls it with the same
JSON-able ``RunSpec``, so results are identical across backends for the same seeds.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import numpy as np

from gymgen.leaderboards.contract import Budget, env_spec, load_factory, make_env
from gymgen.leaderboards.serial_timeout import call_with_timeout
from gymgen.leaderboards.queue import RunQueue
from gymgen.leaderboards.suite import Suite

MAX_EPISODE_STEPS = 100_000


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs for one (agent, env, seed) run; JSON-able and picklable."""

    suite: str
    agent_name: str
    agent_target: str
    agent_config: dict[str, Any]
    agent_hash: str
    env_id: str
    env_kwargs: dict[str, Any]
    env_key: str
    seed_index: int
    seed: int
    budget: dict[str, Any]

    @property
    def key(self) -> str:
        """Store key: suite / agent name + config hash / env id + kwargs / seed index."""
        return f"{self.suite}|{self.agent_name}@{self.agent_hash}|{self.env_key}|seed{self.seed_index}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand(suite: Suite) -> list[RunSpec]:
    """All runs of ``suite`` (agent x env x seed) in a fixed order."""
    from gymgen.leaderboards.agents import resolve

    runs = []
    for agent in suite.agents:
        try:
            target = resolve(agent.id)
        except KeyError:
            target = agent.id  # stored as a failed run with the lookup error
        for env in suite.envs:
            if env.agents is not None and agent.name not in env.agents and agent.name not in suite.extra_agents:
                continue
            budget = (env.budget or suite.budget).as_dict()
            for s in range(suite.seeds):
                runs.append(RunSpec(suite.name, agent.name, target, agent.config, agent.config_hash, env.id,
                                    env.kwargs, env.key, s, suite.run_seed(env, s), budget))
    return runs


def evaluate(agent: Any, spec: dict[str, Any], episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of ``episodes`` episodes of ``agent.act`` on a fresh env seeded ``seed``.

    On PettingZoo parallel envs the return is the sum over steps of the mean reward over live agents.
    ``agent.begin_episode()`` (optional) is called after every reset.
    """
    env = make_env(spec)
    parallel = spec.get("api") == "parallel"
    begin = getattr(agent, "begin_episode", None)  # optional hook: recurrent agents reset their state
    returns = []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        if callable(begin):
            begin()
        total, done, n = 0.0, False, 0
        while not done:
            actions = agent.act(obs, info)
            if parallel and isinstance(actions, dict):
                # obs also holds the last observation of a unit that died on the previous step (PettingZoo's
                # parallel API); the env steps its live agents only, as `{a: ... for a in env.agents}` does
                actions = {a: actions[a] for a in actions if a in env.agents}
            obs, r, term, trunc, info = env.step(actions)
            if parallel:
                total += float(np.mean([float(v) for v in r.values()])) if r else 0.0
                done = not env.agents
            else:
                total += float(r)
                done = term or trunc
            n += 1
            if n >= MAX_EPISODE_STEPS:
                raise RuntimeError(f"evaluation episode exceeded {MAX_EPISODE_STEPS} steps without ending")
        returns.append(total)
    env.close()
    return returns


def _rss_mb() -> float:
    """Resident memory of this process in MB (``/proc/self/statm``; peak RSS where there is no /proc)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(run: RunSpec) -> dict[str, Any]:
    """Train and evaluate one run; returns ``{status, points, error, duration_s}`` and never raises
    (except ``KeyboardInterrupt``, which belongs to the caller)."""
    t0 = time.perf_counter()
    points: list[dict[str, Any]] = []
    try:
        budget = Budget(**run.budget)
        spec = env_spec(run.env_id, run.env_kwargs)
        from gymgen.leaderboards.agents import check_compatible

        check_compatible(run.agent_name, run.agent_target, spec)
        factory = load_factory(run.agent_target)
        agent = factory(spec, run.seed, budget, dict(run.agent_config))
        missing = [m for m in ("train", "act") if not callable(getattr(agent, m, None))]
        if missing:
            raise TypeError(f"agent factory {run.agent_target!r} returned a {type(agent).__name__} without "
                            f"{' or '.join(m + '()' for m in missing)}; an agent needs train(amount) and act(obs, info) "
                            "(docs/agents.md)")
        eval_seed = int(np.random.SeedSequence([run.seed, 1]).generate_state(1, dtype=np.uint32)[0]) % (2**31 - 1024)
        done = 0
        for amount in budget.chunks():
            if budget.wall_clock_s is not None and time.perf_counter() - t0 > budget.wall_clock_s:
                break
            agent.train(amount)
            done += amount
            returns = evaluate(agent, spec, budget.eval_episodes, eval_seed)
            metrics = {"return": float(np.mean(returns))}
            extra = agent.metrics() if callable(getattr(agent, "metrics", None)) else {}
            if extra is not None and not isinstance(extra, dict):
                raise TypeError(f"agent.metrics() must return a dict of numbers, got {type(extra).__name__} {extra!r:.80}")
            for name, value in (extra or {}).items():
                if name == "return":
                    raise ValueError("agent.metrics() must not override the harness metric 'return'")
                try:
                    metrics[str(name)] = float(value)
                except (TypeError, ValueError):
                    raise TypeError(f"agent.metrics()[{name!r}] must be a number, got {value!r}") from None
            points.append({"step": done, "wall_s": time.perf_counter() - t0, "metrics": metrics})
        return {"status": "ok", "points": points, "error": None, "duration_s": time.perf_counter() - t0}
    except BaseException as exc:  # noqa: BLE001 - a crashing agent becomes a failed row
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.format_exc(limit=6)
        return {"status": "failed", "points": points, "error": f"{type(exc).__name__}: {exc}\n{tb}",
                "duration_s": time.perf_counter() - t0}


def check_timeout(timeout_s: float) -> float:
    """``timeout_s`` as a float: a finite number >= 0, where 0 means no timeout (the same in every backend)."""
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not math.isfinite(timeout_s) or timeout_s < 0:
        raise ValueError(f"timeout_s must be a finite number >= 0 (0: no timeout), got {timeout_s!r}")
    return float(timeout_s)


def timed_out(timeout_s: float, elapsed: float) -> bool:
    """Whether a run that has been going for ``elapsed`` seconds exceeded ``timeout_s`` (0: never)."""
    return timeout_s > 0 and elapsed > timeout_s


def timeout_result(timeout_s: float, elapsed: float) -> dict[str, Any]:
    """The failed row every backend stores for a run that exceeded ``timeout_s``."""
    return {"status": "failed", "points": [], "error": f"TimeoutError: run exceeded timeout_s={timeout_s:g}",
            "duration_s": elapsed}


def _as_queue(runs: RunQueue | list[RunSpec]) -> RunQueue:
    return runs if isinstance(runs, RunQueue) else RunQueue(runs)


def _next_run(queue: RunQueue) -> RunSpec | None:
    """Block until ``queue`` hands out a run (None once it never will)."""
    while True:
        run = queue.take()
        if run is not None or queue.exhausted():
            return run
        time.sleep(0.05)


def serial_backend(runs: RunQueue | list[RunSpec], timeout_s: float, workers: int = 1,
                   **_: Any) -> Iterator[tuple[RunSpec, dict]]:
    """Run in this process, one after another. With a timeout each run executes in a helper thread that
    the runner stops waiting for after ``timeout_s`` (:mod:`gymgen.leaderboards.serial_timeout`), so an agent that
    hangs or swallows exceptions cannot hang the runner."""
    timeout_s = check_timeout(timeout_s)
    queue = _as_queue(runs)
    while (run := _next_run(queue)) is not None:
        yield run, run_with_timeout(run, timeout_s)


def run_with_timeout(run: RunSpec, timeout_s: float) -> dict[str, Any]:
    """``run_one(run)``, or the timeout row if it does not finish within ``timeout_s`` (0: no timeout)."""
    t0 = time.perf_counter()
    status, value = call_with_timeout(lambda: run_one(run), timeout_s, name=f"run {run.key}")
    if status == "timeout":
        return timeout_result(timeout_s, time.perf_counter() - t0)
    if status == "error":  # run_one passes only KeyboardInterrupt through; here the agent raised it itself
        return {"status": "failed", "points": [], "duration_s": time.perf_counter() - t0,
                "error": f"{type(value).__name__} raised by the agent: {value}"}
    return value


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker exit when the runner dies, even by ``kill -9`` and even while its agent hangs:
    the kernel's parent-death signal on Linux, plus a thread that watches the parent pid elsewhere."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was set up
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="gymgen-parent-watch", daemon=True).start()


def _worker(conn: Any, parent_pid: int) -> None:
    """Long-lived worker: receive RunSpecs, send ``(result, rss_mb)``, until it receives ``None``."""
    _die_with_parent(parent_pid)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch  # noqa: F401 - pay the heavy imports before the first run's clock starts

        from gymgen.threads import apply_worker_threads

        apply_worker_threads()  # 1 torch thread per worker unless gymgen.set_worker_threads / GYMGEN_WORKER_THREADS says otherwise
    except ImportError:
        pass
    import gymgen.core.batched  # noqa: F401 - torchrl: seconds of import on a loaded machine

    conn.send("ready")
    while True:
        run = conn.recv()
        if run is None:
            return
        try:
            result = run_one(run)
        except KeyboardInterrupt:  # raised by the agent (a Ctrl-C stops the runner, which then kills us anyway)
            result = {"status": "failed", "points": [], "duration_s": 0.0, "error": "KeyboardInterrupt raised during the run"}
        conn.send((result, _rss_mb()))


class _Slot:
    """One spawned worker process, the run it is busy with (if any) and how many runs it has done."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.run: RunSpec | None = None
        self.t0 = 0.0
        self.ready = False
        self.runs_done = 0
        self.rss_mb = 0.0

    def poll_ready(self) -> bool:
        """True once the worker has finished importing (its startup does not count against a run)."""
        if not self.ready and self.conn.poll():
            try:
                self.ready = self.conn.recv() == "ready"
            except EOFError:
                return False
        return self.ready

    def submit(self, run: RunSpec) -> None:
        self.run, self.t0 = run, time.perf_counter()
        self.conn.send(run)

    def stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
                self.proc.join(2)
            except (OSError, BrokenPipeError):
                pass
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


DEFAULT_WORKER_MAX_RUNS = 20
DEFAULT_WORKER_MAX_RSS_MB = 4096.0


def process_backend(runs: RunQueue | list[RunSpec], timeout_s: float, workers: int = 2,
                    worker_max_runs: int = DEFAULT_WORKER_MAX_RUNS, worker_max_rss_mb: float = DEFAULT_WORKER_MAX_RSS_MB,
                    **_: Any) -> Iterator[tuple[RunSpec, dict]]:
    """``workers`` long-lived spawned processes. A run past ``timeout_s`` (or whose worker dies) is a failed
    row, and its worker is killed and replaced, so a hanging agent never blocks the rest. A worker is
    also replaced after ``worker_max_runs`` runs or when its resident memory exceeds ``worker_max_rss_mb``
    after a run (agents that leak). Workers exit when this process dies (``kill -9`` included)."""
    timeout_s = check_timeout(timeout_s)
    if isinstance(worker_max_runs, bool) or not isinstance(worker_max_runs, int) or worker_max_runs < 1:
        raise ValueError(f"worker_max_runs must be an int >= 1, got {worker_max_runs!r}")
    if not (isinstance(worker_max_rss_mb, (int, float)) and worker_max_rss_mb > 0):
        raise ValueError(f"worker_max_rss_mb must be a number > 0, got {worker_max_rss_mb!r}")
    queue = _as_queue(runs)
    ctx = mp.get_context("spawn")
    slots = [_Slot(ctx) for _ in range(max(1, workers))]
    try:
        while not queue.exhausted() or any(s.run is not None for s in slots):
            for i, slot in enumerate(slots):
                if slot.run is None:
                    if not slot.proc.is_alive():
                        slot.stop(kill=True)
                        slots[i] = _Slot(ctx)  # died while idle (e.g. killed from outside): replace it
                    elif slot.poll_ready() and (run := queue.take()) is not None:
                        try:
                            slot.submit(run)
                        except OSError:  # the worker died between the check and the send
                            slot.run = None
                            queue.retry(run)
                    continue
                result = None
                elapsed = time.perf_counter() - slot.t0
                if slot.conn.poll():
                    try:
                        result, slot.rss_mb = slot.conn.recv()
                    except (EOFError, OSError):
                        result = {"status": "failed", "points": [], "duration_s": elapsed,
                                  "error": f"WorkerDied: worker exited with code {slot.proc.exitcode}"}
                elif not slot.proc.is_alive():
                    result = {"status": "failed", "points": [], "duration_s": elapsed,
                              "error": f"WorkerDied: worker process exited with code {slot.proc.exitcode} before reporting"}
                elif timed_out(timeout_s, elapsed):
                    result = timeout_result(timeout_s, elapsed)
                if result is None:
                    continue
                run, slot.run = slot.run, None
                slot.runs_done += 1
                broken = result["error"] is not None and result["error"].startswith(("TimeoutError: run exceeded", "WorkerDied"))
                if broken or slot.runs_done >= worker_max_runs or slot.rss_mb > worker_max_rss_mb:
                    slot.stop(kill=broken)
                    slots[i] = _Slot(ctx)
                yield run, result
            time.sleep(0.01)
    finally:
        for slot in slots:
            slot.stop(kill=slot.run is not None)


def _ray_init(address: str | None, workers: int) -> bool:
    """Connect to (``address``) or start a local Ray; True when this call started it.

    A local cluster runs with token authentication disabled (it only listens inside this machine) and
    sees this process's ``sys.path``. Attaching to a cluster leaves Ray's authentication settings alone:
    Ray 2.60 clusters started with ``ray start --head`` use token auth when a token exists, and the
    client finds the same token (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``).
    """
    import ray

    if ray.is_initialized():
        return False
    # factories importable here import in the workers too (on this machine; install them on remote nodes)
    path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    runtime_env = {"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}}
    if address:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
        except Exception as exc:  # noqa: BLE001 - name the address and the usual fixes
            raise RuntimeError(
                f"cannot attach to the Ray cluster at --address {address!r}: {type(exc).__name__}: {exc}. "
                "Check that `ray status` works from this shell; a cluster with token authentication needs its "
                "token here (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)."
            ) from None
        return True
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)
    finally:
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
    return True


def _import_run_one(module: str) -> bool:
    """Import ``module`` (the one holding ``run_one``) in a Ray worker, so its first run starts warm."""
    import importlib

    importlib.import_module(module)
    return True


def ray_backend(runs: RunQueue | list[RunSpec], timeout_s: float, workers: int = 2, address: str | None = None,
                worker_max_runs: int = DEFAULT_WORKER_MAX_RUNS, **_: Any) -> Iterator[tuple[RunSpec, dict]]:
    """Ray tasks (``pip install 'gymgen[ray]'``); starts a local Ray with ``workers`` CPUs or attaches to
    ``address``. The workers are started and import gymgen before any run is submitted; then at most
    ``workers`` runs are in flight, each claimed just before it is submitted; a task past ``timeout_s`` is cancelled (force) and recorded as failed; a Ray worker process is replaced after
    ``worker_max_runs`` tasks (Ray's ``max_calls``; memory is left to Ray's own memory monitor)."""
    timeout_s = check_timeout(timeout_s)
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the ray backend needs `pip install 'gymgen[ray]'`") from exc
    queue = _as_queue(runs)
    started = _ray_init(address, workers)
    # Warm the workers first (start the processes, import torch and gymgen): on a busy 2-core machine that
    # alone took over a minute, and a run's timeout_s must measure the run, not Ray's worker start-up.
    warm = ray.remote(num_cpus=1, max_retries=0)(_import_run_one)
    ray.get([warm.remote(run_one.__module__) for _ in range(max(1, workers))])
    remote = ray.remote(num_cpus=1, max_retries=0, max_calls=worker_max_runs)(run_one)
    try:
        refs: dict[Any, RunSpec] = {}
        t_start: dict[Any, float] = {}
        while not queue.exhausted() or refs:
            while len(refs) < max(1, workers) and (run := queue.take()) is not None:
                ref = remote.remote(run)
                refs[ref], t_start[ref] = run, time.perf_counter()
            if not refs:
                time.sleep(0.05)
                continue
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            for ref in ready:
                run = refs.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a dead worker is a failed run
                    result = {"status": "failed", "points": [], "duration_s": time.perf_counter() - t_start[ref],
                              "error": f"{type(exc).__name__}: {exc}"}
                yield run, result
            now = time.perf_counter()
            for ref in [r for r in refs if timed_out(timeout_s, now - t_start[r])]:
                ray.cancel(ref, force=True)
                yield refs.pop(ref), timeout_result(timeout_s, now - t_start[ref])
    finally:
        if started:
            ray.shutdown()


BACKENDS: dict[str, Callable[..., Iterator[tuple[RunSpec, dict]]]] = {
    "serial": serial_backend, "process": process_backend, "ray": ray_backend,
}
