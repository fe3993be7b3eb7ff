"""The ``gymgen`` command: list, inspect, roll out and time registered environments; run leaderboards."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

import gymgen
from gymgen.registry import PAPERS, EnvEntry

app = typer.Typer(help="gymgen: environments, reference agents and leaderboards for ten recent RL papers.",
                  no_args_is_help=True, add_completion=False)
console = Console()


def _parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--kwargs must be a JSON object, e.g. '{{\"ndim\": 4}}'; got {text!r} ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter(f"--kwargs must be a JSON object, got {type(value).__name__}")
    return value


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """Bad ids, kwargs or devices met while building an env become usage errors, not tracebacks."""
    try:
        yield
    except (TypeError, ValueError, KeyError) as exc:
        raise typer.BadParameter(str(exc)) from None


@contextlib.contextmanager
def _third_party_output_to_stderr() -> Iterator[None]:
    """While building envs for a listing: third-party warnings are silenced and anything a dependency
    prints to stdout (e.g. MuJoCo or gymnasium-robotics notices) goes to stderr, so stdout holds the table."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        yield


def _batch_sizes(text: str) -> list[int]:
    """``--batch`` as positive ints: ``"1,256,4096"`` -> ``[1, 256, 4096]``; a usage error otherwise."""
    sizes = []
    for part in text.split(","):
        try:
            size = int(part.strip())
        except ValueError:
            raise typer.BadParameter(f"expected comma-separated positive ints such as 1,256,4096; got {part.strip()!r} in {text!r}") from None
        if size < 1:
            raise typer.BadParameter(f"batch sizes must be >= 1; got {size} in {text!r}")
        sizes.append(size)
    return sizes


def _device(name: str) -> Any:
    """``--device`` as a ``torch.device`` that exists on this machine; a usage error otherwise."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise typer.BadParameter(f"{name!r} is not a torch device ({exc}); e.g. cpu, cuda, cuda:1") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter(f"device {name!r}: CUDA is not available on this machine; use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise typer.BadParameter(f"device {name!r}: MPS is not available on this machine; use --device cpu")
    return dev


def _entry(env_id: str) -> EnvEntry:
    try:
        return gymgen.get_entry(env_id)
    except KeyError as exc:
        raise typer.BadParameter(str(exc)) from None


def short_space(space: Any) -> str:
    """A one-line summary of a Gymnasium space, e.g. ``Dict(state[2] int64, action_mask[3])``."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}{list(v.shape) if v.shape else ''}" + (f" {v.dtype}" if isinstance(v, spaces.Box) else "")
                                   for k, v in space.spaces.items()) + ")"
    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})"
    dtype = f" {space.dtype}" if isinstance(space, spaces.Box) else ""
    return f"{type(space).__name__}{list(space.shape) if space.shape else ''}{dtype}"


def _spaces(entry: EnvEntry, kwargs: dict[str, Any] | None = None, short: bool = False) -> tuple[str, str]:
    """(observation space, action space) as text; says which extra is missing instead of failing."""
    try:
        if entry.api == "parallel":
            env = gymgen.parallel_env(entry.id, **(kwargs or {}))
            agent = env.possible_agents[0]
            obs, act = env.observation_space(agent), env.action_space(agent)
        else:
            env = gymgen.make(entry.id, **(kwargs or {}))
            obs, act = env.observation_space, env.action_space
        fmt = short_space if short else str
        prefix = f"{len(env.possible_agents)} agents x " if entry.api == "parallel" else ""
        return prefix + fmt(obs), fmt(act)
    except ImportError as exc:
        return f"(needs gymgen[{entry.extra}]: {exc})" if entry.extra else f"({exc})", ""


@app.command("list")
def list_cmd(family: Optional[str] = typer.Option(None, help="only this family (dag, marl, worldsim, ...)"),
             spaces: bool = typer.Option(True, help="build each env to show its spaces")) -> None:
    """Every registered id with its family, papers and spaces (fits the terminal width)."""
    try:
        entries = gymgen.list_envs(family)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    rows = []
    for e in entries:
        if spaces:
            with _third_party_output_to_stderr():
                obs, act = _spaces(e, short=True)
        rows.append((e, (obs, act) if spaces else None))
    title = f"gymgen {gymgen.__version__}: {len(entries)} environments"
    wide = _wide_table(title, rows)
    fits = Measurement.get(console, console.options.update_width(10_000), wide).maximum <= console.width
    console.print(wide if fits else _narrow_table(title, rows))


def _wide_table(title: str, rows: list[tuple[EnvEntry, tuple[str, str] | None]]) -> Table:
    """One column per field, nothing wrapped (used when it fits the terminal)."""
    table = Table(title=title)
    with_spaces = bool(rows) and rows[0][1] is not None
    for col in ("id", "family", "api", "papers", "exact") + (("observation", "action") if with_spaces else ()):
        table.add_column(col, no_wrap=True)
    for e, sp in rows:
        table.add_row(e.id, e.family, e.api, ", ".join(e.papers), "yes" if e.exact else "no", *(sp or ()))
    return table


def _narrow_table(title: str, rows: list[tuple[EnvEntry, tuple[str, str] | None]]) -> Table:
    """Two columns for narrow terminals: the id, and the other fields stacked on lines that wrap."""
    table = Table(title=title, show_lines=True)
    table.add_column("id", no_wrap=True, overflow="fold")
    table.add_column("family / api / papers / exact" + (" / spaces" if rows and rows[0][1] else ""),
                     overflow="fold", ratio=1)
    for e, sp in rows:
        about = f"{e.family}, {e.api}; {', '.join(e.papers) or '-'}; exact: {'yes' if e.exact else 'no'}"
        if sp is not None:
            about += f"\nobs: {sp[0]}" + (f"\nact: {sp[1]}" if sp[1] else "")
        table.add_row(e.id, escape(about))
    return table


@app.command()
def info(env_id: str, kwargs: Optional[str] = typer.Option(None, help="JSON object of constructor kwargs")) -> None:
    """Spaces, kwargs, source papers and exact-enumerability of one env id."""
    entry = _entry(env_id)
    kw = _parse_kwargs(kwargs)
    with _usage_errors():
        obs, act = _spaces(entry, kw)
    console.print(f"[bold]{entry.id}[/bold]  ({entry.family}, {entry.api})")
    console.print(entry.description)
    console.print(f"papers: " + "; ".join(f"{p} - {PAPERS[p]}" for p in entry.papers))
    console.print(f"observation space: {obs}\naction space: {act}")
    console.print(f"default kwargs: {json.dumps(entry.kwargs)}")
    try:
        from gymgen.registry import accepted_kwargs

        console.print(f"accepted kwargs: {', '.join(accepted_kwargs(entry))}")
    except ImportError:
        pass
    if entry.batched_entry_point:
        try:
            with _usage_errors():
                env = gymgen.make_batched(entry.id, **kw)
            enumerable = bool(getattr(env, "is_enumerable", lambda: False)())
            line = "exact-enumerable: " + ("yes" if enumerable else "no")
            if enumerable:
                line += f" ({env.terminal_states().shape[0]} terminal states, log Z = {env.log_partition():.6f})"
            console.print(line)
        except ImportError as exc:
            console.print(f"exact-enumerable: unknown ({exc})")
    if entry.extra:
        console.print(escape(f'optional extra: pip install "gymgen[{entry.extra}]"'))


@app.command()
def rollout(env_id: str, episodes: int = typer.Option(3, min=1), seed: int = 0,
            kwargs: Optional[str] = typer.Option(None, help="JSON object of constructor kwargs"),
            max_steps: int = typer.Option(1000, min=1, help="cap per episode")) -> None:
    """Play episodes with a uniformly random legal policy and print returns."""
    import numpy as np

    from gymgen.testing.strategies import action_mask_of, pick_action

    entry = _entry(env_id)
    kw = _parse_kwargs(kwargs)
    rng = np.random.default_rng(seed)
    if entry.api == "parallel":
        with _usage_errors():
            env = gymgen.parallel_env(entry.id, **kw)
        for ep in range(episodes):
            obs, infos = env.reset(seed=seed + ep)
            total, steps = 0.0, 0
            while env.agents and steps < max_steps:
                acts = {a: pick_action(env.action_space(a), int(rng.integers(2**16)),
                                       np.asarray(obs[a]["action_mask"], bool) if isinstance(obs[a], dict) and "action_mask" in obs[a] else None)
                        for a in env.agents}
                obs, rew, _, _, infos = env.step(acts)
                total += sum(rew.values())
                steps += 1
            console.print(f"episode {ep}: team return {total:.3f}, {steps} steps")
        return
    with _usage_errors():
        env = gymgen.make(entry.id, **kw)
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, steps, done = 0.0, 0, False
        while not done and steps < max_steps:
            action = pick_action(env.action_space, int(rng.integers(2**16)), action_mask_of(env, obs))
            obs, r, term, trunc, info = env.step(action)
            total += r
            steps += 1
            done = term or trunc
        last = obs["state"].tolist() if isinstance(obs, dict) and "state" in obs else ""  # an image obs: none
        console.print(f"episode {ep}: return {total:.4f}, {steps} steps {('final state ' + str(last)) if last else ''}")


@app.command()
def bench(env_id: str,
          batch: str = typer.Option("1,256,4096", help="comma-separated positive batch sizes", callback=_batch_sizes),
          steps: int = typer.Option(200, min=1), device: str = typer.Option("cpu", help="torch device, e.g. cpu, cuda"),
          kwargs: Optional[str] = typer.Option(None, help="JSON object of constructor kwargs")) -> None:
    """Batched env steps per second with random legal actions (a quick look; see tests/benchmarks for the real comparisons)."""
    import torch

    entry = _entry(env_id)
    kw = _parse_kwargs(kwargs)
    dev = _device(device)
    if entry.batched_entry_point is None:
        raise typer.BadParameter(f"{entry.id} has no batched torch implementation to benchmark "
                                 "(it wraps an external simulator); `gymgen info ID` says whether an id has one")
    table = Table(title=f"{entry.id} on {dev}")
    for col in ("batch", "env steps/s", "ms per batched step"):
        table.add_column(col)
    sizes: list[int] = batch  # type: ignore[assignment]  # parsed by the _batch_sizes callback
    for b in sizes:
        with _usage_errors():
            env = gymgen.make_batched(entry.id, batch_size=b, device=dev, **kw)
        obs = env.reset_tensors()
        gen = torch.Generator(device=env.device).manual_seed(0)
        t0, n = time.perf_counter(), 0
        for _ in range(steps):
            mask = obs.get("action_mask")
            if mask is None:
                action = env.action_spec.rand()
            else:
                dead = ~mask.any(-1, keepdim=True)
                action = torch.multinomial((mask | dead).float().reshape(-1, mask.shape[-1]), 1, generator=gen).reshape(mask.shape[:-1])
            obs, _, term, trunc, _ = env.step_tensors(action)
            done = term | trunc
            if bool(done.any()):
                obs = env.reset_tensors(done)
            n += b
        dt = time.perf_counter() - t0
        table.add_row(str(b), f"{n / dt:,.0f}", f"{1000 * dt / steps:.3f}")
    console.print(table)


def _mount_optional_subcommands() -> None:
    """``gymgen leaderboard ...`` and ``gymgen worldsim ...`` live in their own packages."""
    for module, name in (("gymgen.leaderboards.cli", "leaderboard"), ("gymgen.worldsim.cli", "worldsim")):
        try:
            sub = __import__(module, fromlist=["app"]).app
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that part of gymgen is not installed in this checkout
            raise
        app.add_typer(sub, name=name)


_mount_optional_subcommands()

if __name__ == "__main__":
    app()
