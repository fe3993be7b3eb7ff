"""Expand a suite into runs and execute one run function through serial, process or Ray backends.

``run_one`` is the only place an agent is trained and evaluated; every backend calls it with the same
JSON-able ``RunSpec``, so results are identical across backends for the same seeds.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import numpy as np

from gymgen.leaderboards.contract import Budget, env_spec, load_factory, make_env
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
    """
    env = make_env(spec)
    parallel = spec.get("api") == "parallel"
    returns = []
    for ep in range(episodes):
        obs, info = env.reset(seed=seed + ep)
        total, done, n = 0.0, False, 0
        while not done:
            obs, r, term, trunc, info = env.step(agent.act(obs, info))
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


def run_one(run: RunSpec) -> dict[str, Any]:
    """Train and evaluate one run; returns ``{status, points, error, duration_s}`` and never raises."""
    t0 = time.perf_counter()
    points: list[dict[str, Any]] = []
    try:
        budget = Budget(**run.budget)
        spec = env_spec(run.env_id, run.env_kwargs)
        factory = load_factory(run.agent_target)
        agent = factory(spec, run.seed, budget, dict(run.agent_config))
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
            for name, value in (extra or {}).items():
                if name == "return":
                    raise ValueError("agent.metrics() must not override the harness metric 'return'")
                metrics[str(name)] = float(value)
            points.append({"step": done, "wall_s": time.perf_counter() - t0, "metrics": metrics})
        return {"status": "ok", "points": points, "error": None, "duration_s": time.perf_counter() - t0}
    except BaseException as exc:  # noqa: BLE001 - a crashing agent becomes a failed row
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.format_exc(limit=6)
        return {"status": "failed", "points": points, "error": f"{type(exc).__name__}: {exc}\n{tb}",
                "duration_s": time.perf_counter() - t0}


class _Timeout(BaseException):
    pass


def _run_with_alarm(run: RunSpec, timeout_s: float) -> dict[str, Any]:
    """Serial backend: enforce the timeout with SIGALRM when on the main thread of a Unix process."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return run_one(run)

    def _raise(signum: int, frame: Any) -> None:
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    t0 = time.perf_counter()
    try:
        return run_one(run)
    except _Timeout:
        return _timeout_result(timeout_s, time.perf_counter() - t0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _timeout_result(timeout_s: float, elapsed: float) -> dict[str, Any]:
    return {"status": "failed", "points": [], "error": f"TimeoutError: run exceeded timeout_s={timeout_s:g}",
            "duration_s": elapsed}


def _worker(conn: Any) -> None:
    """Long-lived worker: receive RunSpecs, send results, until it receives ``None``."""
    import os

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
        conn.send(run_one(run))


class _Slot:
    """One spawned worker process and the run it is busy with (if any)."""

    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.run: RunSpec | None = None
        self.t0 = 0.0
        self.ready = False

    def poll_ready(self) -> bool:
        """True once the worker has finished importing (its startup does not count against a run)."""
        if not self.ready and self.conn.poll():
            self.ready = self.conn.recv() == "ready"
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


def serial_backend(runs: list[RunSpec], timeout_s: float, workers: int, **_: Any) -> Iterator[tuple[RunSpec, dict]]:
    """Run in this process, one after another."""
    for run in runs:
        yield run, _run_with_alarm(run, timeout_s)


def process_backend(runs: list[RunSpec], timeout_s: float, workers: int, **_: Any) -> Iterator[tuple[RunSpec, dict]]:
    """``workers`` long-lived spawned processes; a run past ``timeout_s`` (or whose worker dies) is a failed
    row, and its worker is killed and replaced, so a hanging agent never blocks the rest."""
    ctx = mp.get_context("spawn")
    pending = list(runs)
    slots = [_Slot(ctx) for _ in range(max(1, min(workers, len(runs))))]
    try:
        while pending or any(s.run is not None for s in slots):
            for i, slot in enumerate(slots):
                if slot.run is None:
                    if pending and slot.poll_ready():
                        slot.submit(pending.pop(0))
                    continue
                result = None
                if slot.conn.poll():
                    try:
                        result = slot.conn.recv()
                    except EOFError:
                        result = None
                    if result is None:
                        result = {"status": "failed", "points": [], "duration_s": time.perf_counter() - slot.t0,
                                  "error": f"WorkerDied: worker exited with code {slot.proc.exitcode}"}
                elif not slot.proc.is_alive():
                    result = {"status": "failed", "points": [], "duration_s": time.perf_counter() - slot.t0,
                              "error": f"WorkerDied: worker process exited with code {slot.proc.exitcode} before reporting"}
                elif time.perf_counter() - slot.t0 > timeout_s:
                    result = _timeout_result(timeout_s, time.perf_counter() - slot.t0)
                if result is None:
                    continue
                run = slot.run
                if result["error"] and (result["error"].startswith(("TimeoutError: run exceeded", "WorkerDied"))):
                    slot.stop(kill=True)
                    slots[i] = slot = _Slot(ctx)
                slot.run = None
                yield run, result
            time.sleep(0.01)
    finally:
        for slot in slots:
            slot.stop(kill=slot.run is not None)


def ray_backend(runs: list[RunSpec], timeout_s: float, workers: int, address: str | None = None,
                **_: Any) -> Iterator[tuple[RunSpec, dict]]:
    """Ray tasks (``pip install 'gymgen[ray]'``); starts a local Ray with ``workers`` CPUs or attaches to
    ``address``. A task past ``timeout_s`` is cancelled (force) and recorded as failed."""
    import os

    try:
        import ray
    except ImportError as exc:
        raise ImportError("the ray backend needs `pip install 'gymgen[ray]'`") from exc
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            import sys

            # a local cluster sees what this process sees: factories importable here import in workers too
            path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}})
        started = True
    remote = ray.remote(num_cpus=1, max_retries=0)(run_one)
    try:
        pending = list(runs)
        refs: dict[Any, RunSpec] = {}
        t_start: dict[Any, float] = {}
        while pending or refs:
            while pending and len(refs) < max(1, workers):  # at most `workers` in flight: start ~ submit
                run = pending.pop(0)
                ref = remote.remote(run)
                refs[ref], t_start[ref] = run, time.perf_counter()
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
            for ref in [r for r in refs if now - t_start[r] > timeout_s]:
                ray.cancel(ref, force=True)
                yield refs.pop(ref), _timeout_result(timeout_s, now - t_start[ref])
    finally:
        if started:
            ray.shutdown()


BACKENDS: dict[str, Callable[..., Iterator[tuple[RunSpec, dict]]]] = {
    "serial": serial_backend, "process": process_backend, "ray": ray_backend,
}
