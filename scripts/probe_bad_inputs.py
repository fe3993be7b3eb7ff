"""Probe gymgen as a careful user would, with bad input everywhere, and classify what happens.

Every case is one bad input (or one hostile situation) and lands in exactly one bin:

- ``clear``: rejected with an error that names the bad value or field (and, for files, the file), or the
  harness handled the situation as documented (a failed row with a clear message, NaN stored as NaN, ...);
- ``obscure``: rejected, but by an error that does not say what was wrong (a bare ``KeyError``, a torch
  ``TypeError``, a traceback from deep inside a library, a misleading message);
- ``hung``: no answer within the case's time limit (or a process left running that should have exited);
- ``silent``: accepted although it is wrong (NaN rewards, a run executed twice, a corrupt file used);
- ``lost``: a computed result that ends up stored nowhere.

Sections: ``kwargs`` (bad constructor kwargs over every id in ``gymgen.list_envs()``), ``actions``,
``seeds``, ``batch`` (batch sizes), ``checkpoints`` (hostile WorldSim files), ``suites`` (broken suite
files), ``agents`` (misbehaving external agents, every backend), ``runners`` (kill -9, two runners on one
database), ``databases`` (corrupt results files). Each case is tagged with the issue-12 item it belongs to.
Each section runs in its own subprocess, so a crash or hang in one cannot take the probe down.

    python scripts/probe_bad_inputs.py                      # everything (about 10-15 min on 2 cores)
    python scripts/probe_bad_inputs.py --sections kwargs,suites --json out/probe.json

Prints a table ``cases tried / clear / obscure / hung / silent / lost`` per section and in total, and
writes every case (input, bin, what happened) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

BINS = ("clear", "obscure", "hung", "silent", "lost")
SECTIONS = ("kwargs", "actions", "seeds", "batch", "checkpoints", "suites", "agents", "runners", "databases")
ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
NAN, INF = float("nan"), float("inf")


@dataclass
class Case:
    section: str
    item: str  # issue-12 item this case belongs to
    target: str
    input: str
    bin: str
    detail: str


# ---- running one in-process case ------------------------------------------------------------------
def _call(fn: Callable[[], Any], timeout_s: float) -> tuple[str, Any]:
    """``("ok", value)``, ``("raised", exc)`` or ``("hung", None)`` for ``fn()`` run in a daemon thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - the probe records everything
            box["exc"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        return "hung", None
    return ("raised", box["exc"]) if "exc" in box else ("ok", box.get("value"))


CLEAR_TYPES = (ValueError, TypeError, KeyError, FileNotFoundError, IsADirectoryError, NotImplementedError)


def _clear_types() -> tuple[type, ...]:
    """User-facing error types: the builtins above plus Gymnasium's own ``gymnasium.error.Error``."""
    try:
        from gymnasium.error import Error as GymnasiumError
    except ImportError:
        return CLEAR_TYPES
    return (*CLEAR_TYPES, GymnasiumError)


def judge(status: str, value: Any, needles: tuple[str, ...], bad: bool = True,
          internal_types: tuple[type, ...] = (), also_clear: tuple[type, ...] = ()) -> tuple[str, str]:
    """The bin of an in-process case: an error is clear when it is a user-facing type (or one of
    ``also_clear``) and names one of ``needles``; ``bad=False`` cases are valid edge inputs that must be
    accepted."""
    if status == "hung":
        return "hung", "no answer within the time limit"
    if status == "ok":
        return ("silent", "accepted") if bad else ("clear", "accepted (valid input)")
    exc = value
    msg = f"{type(exc).__name__}: {exc}"
    if not bad:
        return "obscure", f"valid input rejected: {msg[:300]}"
    named = any(n.lower() in str(exc).lower() for n in needles)
    if isinstance(exc, (*_clear_types(), *also_clear)) and not isinstance(exc, internal_types) and named:
        return "clear", msg[:300]
    return "obscure", msg[:300]


def _quiet_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _extra_missing(entry: Any) -> str | None:
    import importlib.util

    mod = {"mol": "rdkit", "marl": "mpe2", "worldsim": "safetensors", "control": "mujoco", "dmc": "dm_control",
           "video": "metaworld"}.get(entry.extra or "", entry.extra)
    return None if mod is None or importlib.util.find_spec(mod) else f"needs the [{entry.extra}] extra"


# ---- section: kwargs (item 9) ---------------------------------------------------------------------
def _kwarg_table(entry: Any) -> list[tuple[str, str, Any]]:
    """``(name, kind, default)`` for each constructor kwarg; kind is int, float, str, bool or path."""
    import inspect

    from gymgen.registry import accepted_kwargs, load_entry_point

    target = load_entry_point(entry.batched_entry_point or entry.entry_point)
    params = inspect.signature(target.__init__ if inspect.isclass(target) else target).parameters
    out = []
    for name in accepted_kwargs(entry):
        ann, default = str(params[name].annotation), entry.kwargs.get(name, params[name].default)
        if "bool" in ann:
            kind = "bool"
        elif "int" in ann.replace("Literal", ""):
            kind = "int"
        elif "float" in ann:
            kind = "float"
        elif name == "checkpoint":
            kind = "path"
        else:
            kind = "str"
        # an annotation that admits None (``phases: list | None``) makes None a valid value, like a None default
        out.append((name, kind, None if "None" in ann else default))
    return out


def _bad_kwarg_values(name: str, kind: str, default: Any) -> list[Any]:
    optional = default is None
    vals: list[Any]
    if kind in ("int", "float"):
        vals = [NAN, INF, -INF, -1, "abc", True, [1]] + ([1.5] if kind == "int" else [])
    elif kind == "bool":
        vals = ["yes", 2]
    elif kind == "path":
        vals = [123, "/nonexistent/x.safetensors", "/tmp"]
    else:
        vals = [3, "no-such-choice"]
    return vals + ([] if optional or name in NONE_IS_VALID else [None])


NONE_IS_VALID = {"agent_conf"}  # gymnasium-robotics: agent_conf=None is the single-agent (unfactorised) robot


def _build(env_id: str, kwargs: dict[str, Any]) -> Any:
    import gymgen

    entry = gymgen.get_entry(env_id)
    if entry.batched_entry_point is not None:
        return gymgen.make_batched(env_id, batch_size=1, **kwargs)
    return gymgen.parallel_env(env_id, **kwargs) if entry.api == "parallel" else gymgen.make(env_id, **kwargs)


def section_kwargs(quick: bool) -> Iterator[Case]:
    import gymgen

    for entry in gymgen.list_envs():
        if (why := _extra_missing(entry)) is not None:
            continue
        for name, kind, default in _kwarg_table(entry):
            for v in _bad_kwarg_values(name, kind, default):
                status, value = _call(lambda: _build(entry.id, {name: v}), 60)
                b, detail = judge(status, value, (name, name.removesuffix("_name")))  # map_name: "unknown map"
                item = "9" if kind in ("int", "float") else ("12" if entry.family == "worldsim" else "9 (non-numeric)")
                yield Case("kwargs", item, entry.id, f"{name}={v!r}", b, detail)


# ---- sections: actions (item 10), seeds and batch sizes (item 11) -------------------------------------
def _bad_actions(space: Any) -> list[tuple[str, Any]]:
    import numpy as np
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return [("1.7", 1.7), ("-1", -1), ("n", int(space.n)), ("'a'", "a"), ("None", None),
                ("[0, 1]", np.array([0, 1])), ("nan", NAN)]
    shape = space.shape
    return [("nan vector", np.full(shape, NAN, dtype=np.float32)), ("wrong shape", np.zeros((*shape, 2), np.float32)),
            ("'a'", "a"), ("None", None), ("1e9 vector", np.full(shape, 1e9, dtype=np.float32))]


def _gym_or_parallel(entry: Any) -> Any:
    import gymgen

    return gymgen.parallel_env(entry.id) if entry.api == "parallel" else gymgen.make(entry.id)


def section_actions(quick: bool) -> Iterator[Case]:
    import gymgen
    import torch

    for entry in gymgen.list_envs():
        if _extra_missing(entry) is not None:
            continue
        env = _gym_or_parallel(entry)
        if entry.api == "parallel":
            env.reset(seed=0)
            agent = env.agents[0]
            legal = {a: env.action_space(a).sample() for a in env.agents}
            for label, bad in _bad_actions(env.action_space(agent)):
                env.reset(seed=0)
                status, value = _call(lambda: env.step({**legal, agent: bad}), 30)
                yield Case("actions", "10", entry.id, f"parallel {agent}={label}", *judge(status, value, ("action",)))
            for label, acts in (("missing agent", {a: v for a, v in legal.items() if a != agent}),
                                ("unknown agent", {**legal, "nobody": legal[agent]})):
                env.reset(seed=0)
                status, value = _call(lambda: env.step(acts), 30)
                yield Case("actions", "10", entry.id, f"parallel {label}", *judge(status, value, ("agent", "nobody")))
        else:
            for label, bad in _bad_actions(env.action_space):
                env.reset(seed=0)
                status, value = _call(lambda: env.step(bad), 30)
                yield Case("actions", "10", entry.id, f"gymnasium step({label})", *judge(status, value, ("action",)))
        env.close()
        if entry.batched_entry_point is not None and entry.api == "gymnasium":
            b = gymgen.make_batched(entry.id, batch_size=2)
            b.reset_tensors()
            for label, bad in (("float 1.7", torch.tensor([1.7, 0.0])), ("shape (3,)", torch.zeros(3, dtype=torch.long)),
                               ("bool", torch.tensor([True, False]))):
                b.reset_tensors()
                status, value = _call(lambda: b.step_tensors(bad), 30)
                yield Case("actions", "10", entry.id, f"make_batched step_tensors({label})", *judge(status, value, ("action",)))


def section_seeds(quick: bool) -> Iterator[Case]:
    import gymgen
    import numpy as np

    for entry in gymgen.list_envs():
        if _extra_missing(entry) is not None:
            continue
        env = _gym_or_parallel(entry)
        for label, seed, bad in (("2**64", 2**64, False), ("np.int64(3)", np.int64(3), False), ("-1", -1, True),
                                 ("'abc'", "abc", True), ("1.5", 1.5, True), ("True", True, True)):
            status, value = _call(lambda: env.reset(seed=seed), 30)
            yield Case("seeds", "11", entry.id, f"reset(seed={label})", *judge(status, value, ("seed",), bad=bad))
        env.close()


def section_batch(quick: bool) -> Iterator[Case]:
    import gymgen
    import numpy as np

    for entry in gymgen.list_envs():
        if entry.batched_entry_point is None or _extra_missing(entry) is not None:
            continue
        for label, bs, bad in (("True", True, True), ("0", 0, True), ("-1", -1, True), ("1.5", 1.5, True),
                               ("'4'", "4", True), ("np.int64(4)", np.int64(4), False), ("10**12", 10**12, True)):
            status, value = _call(lambda: gymgen.make_batched(entry.id, batch_size=bs), 30)
            yield Case("batch", "11", entry.id, f"make_batched(batch_size={label})",
                       # a MemoryError is clear when gymgen raised it up front naming batch_size (its estimate),
                       # not when torch's allocator raised it (that message names no argument)
                       *judge(status, value, ("batch_size",), bad=bad, also_clear=(MemoryError,)))


# ---- section: checkpoints (item 12) ---------------------------------------------------------------
def _hostile_checkpoints(tmp: Path) -> Iterator[tuple[str, Path | Any, tuple[str, ...]]]:
    """``(label, path, needles)``: every way we know to make a WorldSim checkpoint file wrong."""
    import pickle

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from gymgen.worldsim.checkpoint import SHIPPED

    src = SHIPPED["Breakout"]
    raw = src.read_bytes()
    with safe_open(str(src), "pt") as f:
        tensors, md = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())

    def write(name: str, data: bytes) -> Path:
        p = tmp / f"{name}.safetensors"
        p.write_bytes(data)
        return p

    def variant(name: str, t: dict, m: dict) -> Path:
        p = tmp / f"{name}.safetensors"
        save_file(t, str(p), metadata=m)
        return p

    marker = tmp / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (Path.touch, (marker,))

    yield "empty file", write("empty", b""), ()
    yield "garbage", write("garbage", os.urandom(4096)), ()
    yield "truncated half", write("trunc", raw[: len(raw) // 2]), ()
    yield "truncated header", write("trunc8", raw[:8]), ()
    yield "header length 2**60", write("hugehdr", (2**60).to_bytes(8, "little") + b"{}"), ()
    yield "pickle (code execution attempt)", write("evil", pickle.dumps(Evil())), ()
    yield "torch.save file", (lambda p: (torch.save({"x": torch.zeros(2)}, p), p)[1])(tmp / "torchsave.safetensors"), ()
    yield "directory", tmp, ("directory",)
    yield "missing file", tmp / "missing.safetensors", ("does not exist",)
    yield "non-path 123", 123, ("path",)
    yield "other format", variant("other", {"x": torch.zeros(2)}, {"format": "something-else"}), ("format",)
    yield "format_version 1", variant("v1", tensors, {**md, "format_version": "1"}), ("format_version",)
    for key in ("model_config", "reward_values", "action_meanings", "head_calibration", "game"):
        yield f"metadata {key} missing", variant(f"no_{key}", tensors, {k: v for k, v in md.items() if k != key}), (key,)
    yield "metadata not JSON", variant("notjson", tensors, {**md, "reward_values": "[0, 1,"}), ("reward_values",)
    cfg = json.loads(md["model_config"])
    for label, mc in (("model_config a list", [1, 2]), ("model_config width 'wide'", {**cfg, "width": "wide"}),
                      ("model_config width -3", {**cfg, "width": -3}), ("model_config width 16 (lie)", {**cfg, "width": 16}),
                      ("model_config unknown field", {**cfg, "widht": 16}), ("model_config size 63", {**cfg, "size": 63})):
        yield label, variant(label.replace(" ", "_").replace("'", ""), tensors, {**md, "model_config": json.dumps(mc)}), ("model_config", "width", "size", "shape")
    for label, key, val in (("reward_values wrong length", "reward_values", [0.0, 1.0]),
                            ("reward_values with a string", "reward_values", [0.0, 1.0, "x", 7.0]),
                            ("reward_values NaN", "reward_values", [0.0, 1.0, NAN, 7.0]),
                            ("action_meanings too short", "action_meanings", ["NOOP"]),
                            ("head_calibration threshold 'high'", "head_calibration",
                             {"reward_nonzero_threshold": "high", "done_logit_threshold": 0.1}),
                            ("head_calibration empty", "head_calibration", {}),
                            ("game a number", "game", 3)):
        yield label, variant(label.replace(" ", "_").replace("'", ""), tensors, {**md, key: json.dumps(val)}), (key,)
    name = next(k for k, v in tensors.items() if k.startswith("model.") and v.is_floating_point() and v.numel() > 4)
    for label, fill in (("NaN weight", NAN), ("inf weight", INF)):
        t = dict(tensors)
        t[name] = t[name].clone()
        t[name].view(-1)[3] = fill
        yield label, variant(label.replace(" ", "_"), t, md), (name, "non-finite")
    t = dict(tensors)
    t[name] = t[name].double()
    yield "float64 weight", variant("f64", t, md), (name,)
    t = {k: v for k, v in tensors.items() if k != name}
    yield "missing weight tensor", variant("missing_w", t, md), (name.split(".", 1)[1],)
    yield "extra tensor", variant("extra", {**tensors, "model.extra.weight": torch.zeros(3)}, md), ("extra",)
    t = dict(tensors)
    t[name] = torch.zeros(3)
    yield "mis-shaped tensor", variant("shape", t, md), ("shape",)
    yield "bank missing", variant("nobank", {k: v for k, v in tensors.items() if k != "bank"}, md), ("bank",)
    yield "bank float32", variant("bankf", {**tensors, "bank": tensors["bank"].float()}, md), ("bank",)
    yield "bank token out of range", variant("banktok", {**tensors, "bank": torch.full_like(tensors["bank"], 9999)}, md), ("bank",)
    yield "bank empty", variant("bank0", {**tensors, "bank": tensors["bank"][:0]}, md), ("bank",)


def section_checkpoints(quick: bool) -> Iterator[Case]:
    try:
        from gymgen.worldsim.checkpoint import CheckpointError, load_checkpoint
        from gymgen.worldsim.env import WorldSim
    except ImportError as exc:
        yield Case("checkpoints", "12", "WorldSim", "import", "obscure", f"cannot import WorldSim: {exc}")
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for label, path, needles in _hostile_checkpoints(tmp):
            for via, fn in (("load_checkpoint", lambda: load_checkpoint(path)), ("WorldSim", lambda: WorldSim(checkpoint=path))):
                status, value = _call(fn, 60)
                names_file = status == "raised" and (not isinstance(path, Path) or str(path) in str(value))
                b, detail = judge(status, value, needles or (str(path),))
                if b == "clear" and not names_file:
                    b, detail = "obscure", f"does not name the file: {detail}"
                if b == "clear" and needles and not isinstance(value, (CheckpointError, FileNotFoundError, TypeError)):
                    b, detail = "obscure", f"not a CheckpointError: {detail}"
                yield Case("checkpoints", "12", via, label, b, detail)
        if (tmp / "pwned").exists():
            yield Case("checkpoints", "12", "load_checkpoint", "pickle executed code", "silent", "a checkpoint ran code")


# ---- section: suites (item 4) ---------------------------------------------------------------------
GOOD_SUITE = """
[suite]
name = "probe"
seeds = 1
root_seed = 0
timeout_s = 60
retries = 0

[budget]
unit = "env_steps"
total = 20
eval_every = 10
eval_episodes = 1

[[envs]]
id = "gymgen/HyperGrid-v0"
kwargs = { ndim = 2, height = 4 }
metric = "return"

[[agents]]
id = "random"
"""


def _suite_mutations() -> Iterator[tuple[str, str]]:
    g = GOOD_SUITE
    rep = lambda a, b: g.replace(a, b, 1)  # noqa: E731
    yield "not TOML", g + "\n[[[ broken"
    yield "empty file", ""
    yield "missing [suite]", g.replace('[suite]\nname = "probe"\nseeds = 1\nroot_seed = 0\ntimeout_s = 60\nretries = 0\n', "")
    yield "missing [budget]", g[: g.index("[budget]")] + g[g.index("[[envs]]"):]
    yield "no [[agents]]", g[: g.index("[[agents]]")]
    yield "no [[envs]]", g[: g.index("[[envs]]")] + g[g.index("[[agents]]"):]
    yield "unknown top-level key", g + "\n[extras]\nx = 1\n"
    yield "unknown suite key", rep("retries = 0", "retries = 0\nretrys = 1")
    yield "seeds = 0", rep("seeds = 1", "seeds = 0")
    yield "seeds = 'two'", rep("seeds = 1", 'seeds = "two"')
    yield "seeds = 1.5", rep("seeds = 1", "seeds = 1.5")
    yield "root_seed = -1", rep("root_seed = 0", "root_seed = -1")
    yield "root_seed = 'x'", rep("root_seed = 0", 'root_seed = "x"')
    yield "timeout_s = -1", rep("timeout_s = 60", "timeout_s = -1")
    yield "timeout_s = nan", rep("timeout_s = 60", "timeout_s = nan")
    yield "timeout_s = inf", rep("timeout_s = 60", "timeout_s = inf")
    yield "retries = -1", rep("retries = 0", "retries = -1")
    yield "retries = true", rep("retries = 0", "retries = true")
    yield "unit = 'hours'", rep('unit = "env_steps"', 'unit = "hours"')
    yield "total = -5", rep("total = 20", "total = -5")
    yield "eval_every = 0", rep("eval_every = 10", "eval_every = 0")
    yield "eval_episodes = 0", rep("eval_episodes = 1", "eval_episodes = 0")
    yield "wall_clock_s = 0", rep("eval_episodes = 1", "eval_episodes = 1\nwall_clock_s = 0")
    yield "wall_clock_s = -5", rep("eval_episodes = 1", "eval_episodes = 1\nwall_clock_s = -5.0")
    yield "wall_clock_s = nan", rep("eval_episodes = 1", "eval_episodes = 1\nwall_clock_s = nan")
    yield "unknown env id", rep("gymgen/HyperGrid-v0", "gymgen/HyperGird-v0")
    yield "misspelt env kwarg", rep("height = 4", "heigth = 4")
    yield "env kwarg R0 = nan", rep("height = 4", "height = 4, R0 = nan")
    yield "env kwarg R1 = inf", rep("height = 4", "height = 4, R1 = inf")
    yield "env kwarg height = 'x'", rep("height = 4", 'height = "x"')
    yield "kwargs not a table", rep("kwargs = { ndim = 2, height = 4 }", 'kwargs = "ndim=2"')
    yield "duplicate [[envs]]", g.replace('metric = "return"\n', 'metric = "return"\n\n[[envs]]\nid = "gymgen/HyperGrid-v0"\n'
                                            'kwargs = { height = 4, ndim = 2 }\nmetric = "return"\n', 1)
    yield "misspelt metric", rep('metric = "return"', 'metric = "tv_exactt"')
    yield "metric = 3", rep('metric = "return"', "metric = 3")
    yield "reference = 'x'", rep('metric = "return"', 'metric = "return"\nreference = "x"')
    yield "reference = nan", rep('metric = "return"', 'metric = "return"\nreference = nan')
    yield "higher_is_better = 'yes'", rep('metric = "return"', 'metric = "return"\nhigher_is_better = "yes"')
    yield "envs.agents names nobody", rep('metric = "return"', 'metric = "return"\nagents = ["nobody"]')
    yield "unknown agent id", rep('id = "random"', 'id = "randon"')
    yield "duplicate agent names", g + '\n[[agents]]\nid = "random"\n'
    yield "GFlowNet agent on a MARL env", g.replace('[[agents]]', '[[envs]]\nid = "gymgen/SMACLite-3m-v0"\n\n[[agents]]\nid = "gfn.tb"\n\n[[agents]]')
    yield "agent config not a table", g + 'config = 3\n'
    yield "env budget not a table", rep('metric = "return"', 'metric = "return"\nbudget = 5')
    yield "env budget unknown key", rep('metric = "return"', 'metric = "return"\nbudget = { totl = 5 }')


def section_suites(quick: bool) -> Iterator[Case]:
    from gymgen.leaderboards.runner import expand
    from gymgen.leaderboards.suite import SuiteError, load_suite

    with tempfile.TemporaryDirectory() as d:
        for label, text in _suite_mutations():
            p = Path(d) / "probe.toml"
            p.write_text(text)
            status, value = _call(lambda: expand(load_suite(str(p))), 60)
            if status == "raised" and isinstance(value, SuiteError) and f"{p}:" in str(value):
                yield Case("suites", "4", "load_suite", label, "clear", str(value)[:300])
            elif status == "raised" and isinstance(value, SuiteError) and label in ("not TOML", "empty file"):
                yield Case("suites", "4", "load_suite", label, "clear", str(value)[:300])
            else:
                yield Case("suites", "4", "load_suite", label, *judge(status, value, (str(p),)))
        for label, path in (("directory", Path(d)), ("binary file", Path(d) / "bin.toml")):
            if label == "binary file":
                path.write_bytes(os.urandom(256))
            status, value = _call(lambda: load_suite(str(path)), 30)
            yield Case("suites", "4", "load_suite", label, *judge(status, value, (str(path),)))


# ---- sections that run the harness in subprocesses ----------------------------------------------------
AGENTS_MODULE = '''
"""Misbehaving agents for the probe (imported by spawned workers as probe_agents:...)."""
import os, sys, time
import numpy as np
from gymgen.leaderboards.contract import make_env

class Base:
    def __init__(self, spec, seed, config):
        self.env = make_env(spec)
        self.rng = np.random.default_rng(seed)
        self.config = config
    def log(self):
        if self.config.get("log"):
            with open(self.config["log"], "a") as fh:
                fh.write(f"{os.getpid()}\\n")
    def train(self, amount):
        self.log()
        time.sleep(float(self.config.get("delay", 0)))
    def act(self, obs, info):
        return int(self.rng.choice(np.flatnonzero(obs["action_mask"])))
    def metrics(self):
        return {}

class InitCrash(Base):
    def __init__(self, *a):
        raise RuntimeError("boom in __init__")
class TrainCrash(Base):
    def train(self, amount):
        raise RuntimeError("boom in train")
class Hang(Base):
    def train(self, amount):
        self.log()
        time.sleep(3600)
class Swallow(Base):
    def train(self, amount):
        while True:
            try:
                try:
                    time.sleep(0.5)
                except BaseException:
                    time.sleep(0.5)
            except BaseException:
                pass
class Spin(Base):
    def train(self, amount):
        while True:
            pass
class NaNMetric(Base):
    def metrics(self):
        return {"score": float("nan"), "up": float("inf")}
class StrMetric(Base):
    def metrics(self):
        return {"score": "abc"}
class ListMetrics(Base):
    def metrics(self):
        return [1, 2]
class BadAction(Base):
    def act(self, obs, info):
        return 10**6
class NoneAction(Base):
    def act(self, obs, info):
        return None
class Exit(Base):
    def train(self, amount):
        sys.exit(3)
class HardExit(Base):
    def train(self, amount):
        os._exit(7)
class Interrupt(Base):
    def train(self, amount):
        raise KeyboardInterrupt
class ReturnOverride(Base):
    def metrics(self):
        return {"return": 1.0}
class NotAnAgent:
    pass

def factory(cls):
    return lambda spec, seed, budget, config: cls(spec, seed, config)

for _n in ("Base InitCrash TrainCrash Hang Swallow Spin NaNMetric StrMetric ListMetrics BadAction NoneAction "
           "Exit HardExit Interrupt ReturnOverride").split():
    globals()["make_" + _n.lower()] = factory(globals()[_n])
make_notanagent = lambda spec, seed, budget, config: NotAnAgent()
not_callable = 3
'''


def _suite_file(tmp: Path, agent: str, config: str = "{}", timeout: float = 3, seeds: int = 1, name: str = "probe") -> Path:
    text = GOOD_SUITE.replace('name = "probe"', f'name = "{name}"').replace("timeout_s = 60", f"timeout_s = {timeout}")
    text = text.replace("seeds = 1", f"seeds = {seeds}")
    text = text.replace('[[agents]]\nid = "random"\n', f'[[agents]]\nid = "{agent}"\nname = "a"\nconfig = {config}\n')
    p = tmp / f"{name}-{abs(hash((agent, config, timeout, seeds))) % 10**8}.toml"
    p.write_text(text)
    return p


def _pythonpath(tmp: Path) -> str:
    """``tmp`` (the probe's agent module) ahead of whatever PYTHONPATH the probe itself runs with."""
    return os.pathsep.join(p for p in (str(tmp), os.environ.get("PYTHONPATH", "")) if p)


def _runner(tmp: Path, suite: Path, db: Path, backend: str, **optional: Any) -> subprocess.Popen:
    """A runner subprocess; ``optional`` run_suite kwargs are passed only where this gymgen accepts them
    (so the probe also runs against older versions, e.g. to measure a baseline)."""
    code = (f"import inspect, sys; sys.path.insert(0, {str(tmp)!r});"
            "from gymgen.leaderboards.harness import run_suite; from gymgen.leaderboards.store import Store;"
            "from gymgen.leaderboards.suite import load_suite;"
            f"opt = {{k: v for k, v in {optional!r}.items() if k in inspect.signature(run_suite).parameters}};"
            f"print('COUNTS', run_suite(load_suite({str(suite)!r}), Store({str(db)!r}), backend={backend!r}, workers=1, "
            "progress=False, **opt))")
    return subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": _pythonpath(tmp)}, start_new_session=True)


def _rows(db: Path) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as c:
            c.row_factory = sqlite3.Row
            return [dict(r) for r in c.execute("SELECT * FROM runs")]
    except sqlite3.Error:
        return []


def _points(db: Path) -> list[tuple]:
    try:
        with sqlite3.connect(db) as c:
            return list(c.execute("SELECT metric, value FROM points"))
    except sqlite3.Error:
        return []


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the probe's own runner and everything it started (its own session, started by this probe)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


AGENT_CASES = [
    # (factory, what should happen, needle in the stored error (None: the run must be ok))
    ("initcrash", "failed row", "boom in __init__"),
    ("traincrash", "failed row", "boom in train"),
    ("hang", "timeout row", "TimeoutError: run exceeded timeout_s=3"),
    ("swallow", "timeout row", "TimeoutError: run exceeded timeout_s=3"),
    ("spin", "timeout row", "TimeoutError: run exceeded timeout_s=3"),
    ("nanmetric", "ok, NaN stored", None),
    ("strmetric", "failed row", "score"),
    ("listmetrics", "failed row", "metrics"),
    ("badaction", "failed row", "action"),
    ("noneaction", "failed row", "action"),
    ("exit", "failed row", "SystemExit"),
    ("hardexit", "failed row", "exit"),
    ("interrupt", "failed row or clean stop", "KeyboardInterrupt"),
    ("returnoverride", "failed row", "return"),
    ("notanagent", "failed row", "train"),
]


def section_agents(quick: bool) -> Iterator[Case]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "probe_agents.py").write_text(AGENTS_MODULE)
        factories = [(f"probe_agents:make_{n}", exp, needle) for n, exp, needle in AGENT_CASES]
        factories += [("probe_agents:not_callable", "failed row", "callable"),
                      ("probe_agents:no_such_name", "failed row", "no_such_name"),
                      ("no_such_module_xyz:make", "failed row", "no_such_module_xyz")]
        for backend in ("serial", "process"):
            for target, expect, needle in factories:
                log = tmp / f"{backend}-{target.split(':')[1]}.log"
                suite = _suite_file(tmp, target, f'{{ log = "{log}" }}')
                db = tmp / f"{backend}-{target.split(':')[1]}.sqlite"
                proc = _runner(tmp, suite, db, backend)
                try:
                    out, err = proc.communicate(timeout=90)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    yield Case("agents", "3", f"{backend} backend", target, "hung", "runner did not finish in 90 s")
                    continue
                rows = _rows(db)
                label = f"{target} -> expect {expect}"
                if not rows:
                    # nothing stored: a result is lost when the agent trained (it logs in train) and the
                    # runner then crashed or "succeeded" anyway; a runner killed before (os._exit in the
                    # serial backend takes the runner itself down) at least computed nothing
                    why = (err.strip().splitlines() or ["no output"])[-1][:200]
                    trained = log.exists() and log.read_text().strip() != "" and not target.endswith(("hardexit", "interrupt"))
                    b = "lost" if proc.returncode == 0 or trained else "obscure"
                    yield Case("agents", "1-3", f"{backend} backend", label, b, f"nothing stored (rc={proc.returncode}): {why}")
                    continue
                r = rows[0]
                if needle is None:
                    pts = _points(db)
                    nan_ok = any(m == "score" and v is None for m, v in pts) and any(m == "up" and v == INF for m, v in pts)
                    b = "clear" if r["status"] == "ok" and nan_ok else "obscure"
                    yield Case("agents", "1", f"{backend} backend", label, b, f"status={r['status']} points={pts[:4]}")
                elif r["status"] == "ok":
                    yield Case("agents", "3", f"{backend} backend", label, "silent", "stored ok")
                else:
                    first = (r["error"] or "").splitlines()[0] if r["error"] else ""
                    good = needle in first and not first.startswith("_Timeout")  # the message itself, not the traceback
                    yield Case("agents", "3", f"{backend} backend", label, "clear" if good else "obscure", first[:200])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def section_runners(quick: bool) -> Iterator[Case]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "probe_agents.py").write_text(AGENTS_MODULE)
        # kill -9 of a process-backend runner whose workers hang
        pid_log = tmp / "pids.log"
        suite = _suite_file(tmp, "probe_agents:make_hang", f'{{ log = "{pid_log}" }}', timeout=600, seeds=2)
        proc = _runner(tmp, suite, tmp / "k9.sqlite", "process")
        deadline = time.time() + 120
        while time.time() < deadline and not (pid_log.exists() and pid_log.read_text().strip()):
            time.sleep(0.2)
        workers = [int(x) for x in pid_log.read_text().split()] if pid_log.exists() else []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        time.sleep(5)
        left = [w for w in workers if _alive(w)]
        for w in left:
            os.kill(w, signal.SIGKILL)  # workers this probe started
        yield Case("runners", "2", "process backend", "kill -9 runner with a hanging worker",
                   "clear" if workers and not left else ("hung" if left else "obscure"),
                   f"workers {workers}, alive 5 s after the kill: {left}")
        # kill -9 of a serial runner mid-suite loses nothing stored
        slow = _suite_file(tmp, "probe_agents:make_base", "{ delay = 0.4 }", seeds=6, name="k9s")
        db = tmp / "k9s.sqlite"
        proc = _runner(tmp, slow, db, "serial")
        deadline = time.time() + 120
        while time.time() < deadline and len(_rows(db)) < 2:
            time.sleep(0.1)
        before = {r["run_key"]: r["finished_at"] for r in _rows(db)}
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc = _runner(tmp, slow, db, "serial", lease_s=2.0)
        proc.communicate(timeout=180)
        after = {r["run_key"]: r for r in _rows(db)}
        kept = all(k in after and after[k]["finished_at"] == v for k, v in before.items())
        yield Case("runners", "5", "serial backend", "kill -9 mid-suite, then rerun",
                   "clear" if kept and len(after) == 6 else "lost", f"{len(before)} stored before, {len(after)} of 6 after")
        # two runners on one database
        log = tmp / "exec.log"
        shared = _suite_file(tmp, "probe_agents:make_base", f'{{ log = "{log}", delay = 0.3 }}', seeds=4, name="two")
        db = tmp / "two.sqlite"
        procs = [_runner(tmp, shared, db, "serial") for _ in range(2)]
        for p in procs:
            p.communicate(timeout=300)
        rows = _rows(db)
        runs = len(log.read_text().split()) // 2 if log.exists() else 0  # two train() calls per run
        yield Case("runners", "5", "serial backend", "two runners on one database",
                   "clear" if runs == 4 and all(r["attempts"] == 1 for r in rows) else "silent",
                   f"{runs} executions of 4 runs, attempts {[r['attempts'] for r in rows]}")


def section_databases(quick: bool) -> Iterator[Case]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "probe_agents.py").write_text(AGENTS_MODULE)
        dblog = tmp / "db.log"
        suite = _suite_file(tmp, "probe_agents:make_base", f'{{ log = "{dblog}" }}', seeds=2, name="db")

        def good_db(p: Path) -> Path:
            proc = _runner(tmp, suite, p, "serial")
            proc.communicate(timeout=120)
            c = sqlite3.connect(p, isolation_level=None)
            for i in range(200):  # make it big enough for a mid-file hole to land in the tables
                c.execute("INSERT INTO points VALUES ((SELECT run_key FROM runs WHERE seed_index = 0), ?, 0.0, ?, ?)",
                          (1000 + i, f"pad{i}" * 20, float(i)))
            c.execute("DELETE FROM runs WHERE seed_index = 1")  # one run left to compute
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            c.close()
            return p

        cases: list[tuple[str, Callable[[Path], None]]] = [
            ("garbage file", lambda p: p.write_bytes(os.urandom(16384))),
            ("truncated database", lambda p: (good_db(p), p.write_bytes(p.read_bytes()[:6000]))),
            ("4 KiB garbage mid-file", lambda p: (good_db(p), _overwrite(p, p.stat().st_size // 2 // 4096 * 4096, 4096))),
            ("header overwritten", lambda p: (good_db(p), _overwrite(p, 0, 100))),
            ("a directory", lambda p: p.mkdir()),
            ("another app's SQLite file", lambda p: _other_sqlite(p)),
        ]
        if os.geteuid() != 0:  # root writes to a read-only file anyway
            cases.append(("read-only database", lambda p: (good_db(p), p.chmod(0o444))))
        for label, make in cases:
            db = tmp / f"{label.replace(' ', '_')}.sqlite"
            make(db)
            dblog.unlink(missing_ok=True)
            cli = subprocess.run([str(Path(PY).parent / "gymgen"), "leaderboard", "run", str(suite), "--backend", "serial",
                                  "--db", str(db), "--no-report"], capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "PYTHONPATH": _pythonpath(tmp)}, cwd=tmp)
            text = cli.stdout + cli.stderr
            unsaved = Path(str(db) + ".unsaved.jsonl")
            flat = text.replace("\n", "")
            computed = dblog.exists()  # the remaining run trained, so it had a result to store
            kept = unsaved.exists() or (not db.is_dir() and _readable_runs(db) == 2)
            if computed and not kept:
                b = "lost"
            elif "Traceback" in text:
                b = "obscure"
            elif cli.returncode != 0 and str(db) in flat:
                b = "clear"
            elif cli.returncode == 0 and unsaved.exists() and str(unsaved) in flat:
                b = "clear"  # the database refused the write; the result is kept beside it and the CLI said where
            elif cli.returncode == 0:
                b = "silent" if label != "read-only database" else "lost"
            else:
                b = "obscure"
            yield Case("databases", "6", "gymgen leaderboard run", label, b, f"rc={cli.returncode}: {text.strip()[-300:]}")
            if db.exists() and not db.is_dir():
                db.chmod(0o644)
        yield _corrupted_mid_run(tmp)


def _corrupted_mid_run(tmp: Path) -> Case:
    """4 KiB of garbage written into the results file while a run is computing: the run's result must
    end up somewhere readable (the database, or the unsaved-results file the CLI names)."""
    log = tmp / "mid.log"
    suite = _suite_file(tmp, "probe_agents:make_base", f'{{ log = "{log}", delay = 1.5 }}', seeds=2, name="mid")
    db = tmp / "midrun.sqlite"
    _runner(tmp, suite, db, "serial").communicate(timeout=300)
    c = sqlite3.connect(db, isolation_level=None)
    for i in range(300):
        c.execute("INSERT INTO points VALUES ((SELECT run_key FROM runs WHERE seed_index = 0), ?, 0.0, ?, ?)",
                  (1000 + i, f"pad{i}" * 20, float(i)))
    c.execute("DELETE FROM runs WHERE seed_index = 1")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    log.unlink()
    cli = subprocess.Popen([str(Path(PY).parent / "gymgen"), "leaderboard", "run", str(suite), "--backend", "serial",
                            "--db", str(db), "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": _pythonpath(tmp)}, cwd=tmp)
    deadline = time.time() + 120
    while time.time() < deadline and not log.exists():
        time.sleep(0.1)
    _overwrite(db, db.stat().st_size // 2 // 4096 * 4096, 4096)
    out, err = cli.communicate(timeout=300)
    text = (out + err).replace("\n", "")
    unsaved = Path(str(db) + ".unsaved.jsonl")
    try:
        damaged = sqlite3.connect(db).execute("PRAGMA quick_check").fetchone()[0] != "ok"
    except sqlite3.DatabaseError:
        damaged = True
    if unsaved.exists() and str(unsaved) in text:
        b, why = "clear", "result kept beside the file, and the CLI said where"
    elif "Traceback" in out + err:
        b, why = "obscure", (out + err)[-300:]
    elif damaged:
        b, why = "silent", "reported success into a damaged file"
    else:
        b, why = "clear", "the garbage missed the live pages; the run is stored"
    return Case("databases", "6", "gymgen leaderboard run", "4 KiB garbage written while a run computes", b,
                f"rc={cli.returncode}, damaged={damaged}: {why}")


def _readable_runs(db: Path) -> int:
    """Run rows an SQLite reader can still get out of ``db`` (-1 when it cannot be read)."""
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return -1


def _overwrite(p: Path, offset: int, n: int) -> None:
    with p.open("r+b") as fh:
        fh.seek(offset)
        fh.write(os.urandom(n))


def _other_sqlite(p: Path) -> None:
    with sqlite3.connect(p) as c:
        c.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")
        c.execute("INSERT INTO runs (name) VALUES ('not gymgen')")


# ---- driver ------------------------------------------------------------------------------------------
RUNNERS: dict[str, Callable[[bool], Iterator[Case]]] = {
    "kwargs": section_kwargs, "actions": section_actions, "seeds": section_seeds, "batch": section_batch,
    "checkpoints": section_checkpoints, "suites": section_suites, "agents": section_agents,
    "runners": section_runners, "databases": section_databases,
}
SECTION_LIMIT_S = {"kwargs": 900, "actions": 900, "seeds": 600, "batch": 600, "checkpoints": 600, "suites": 600,
                   "agents": 1800, "runners": 900, "databases": 900}


def _child(section: str, quick: bool, out: Path) -> None:
    _quiet_warnings()
    with out.open("w") as fh:
        try:
            for case in RUNNERS[section](quick):
                fh.write(json.dumps(asdict(case)) + "\n")
                fh.flush()
        except BaseException:  # noqa: BLE001 - recorded as one obscure case of the section
            fh.write(json.dumps(asdict(Case(section, "-", "probe", "section crashed", "obscure",
                                            traceback.format_exc(limit=3)[-400:]))) + "\n")
    sys.stdout.flush()
    os._exit(0)  # daemon threads of hung cases must not keep the child alive


def run_section(section: str, quick: bool) -> list[Case]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "cases.jsonl"
        proc = subprocess.Popen([PY, __file__, "--child", section, "--child-out", str(out)] + (["--quick"] if quick else []),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=SECTION_LIMIT_S[section])
            hung = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            err, hung = "", True
        cases = [Case(**json.loads(line)) for line in out.read_text().splitlines()] if out.exists() else []
        if hung:
            cases.append(Case(section, "-", "probe", "section time limit", "hung", f"stopped after {SECTION_LIMIT_S[section]} s"))
        elif proc.returncode != 0:
            cases.append(Case(section, "-", "probe", "section process died", "obscure", (err or "")[-400:]))
        return cases


def table(cases: list[Case], key: Callable[[Case], str]) -> str:
    groups: dict[str, Counter] = {}
    for c in cases:
        groups.setdefault(key(c), Counter())[c.bin] += 1
    rows = ["| | cases tried | clear error | obscure | hung | silently accepted | lost |", "|---|---|---|---|---|---|---|"]
    total: Counter = Counter()
    for name, cnt in groups.items():
        total.update(cnt)
        rows.append(f"| {name} | {sum(cnt.values())} | " + " | ".join(str(cnt[b]) for b in BINS) + " |")
    rows.append(f"| **total** | {sum(total.values())} | " + " | ".join(str(total[b]) for b in BINS) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--json", type=Path, default=Path("gymgen-results/probe_bad_inputs.json"), help="write every case here")
    ap.add_argument("--quick", action="store_true", help="fewer cases where a section supports it")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.quick, args.child_out)
        return
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s) {unknown}; expected some of {list(SECTIONS)}")
    cases: list[Case] = []
    for s in chosen:
        t0 = time.perf_counter()
        got = run_section(s, args.quick)
        cases += got
        bad = sum(c.bin != "clear" for c in got)
        print(f"[{s}] {len(got)} cases, {bad} not clear ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    print("## By section\n\n" + table(cases, lambda c: c.section))
    print("\n## By issue-12 item\n\n" + table(cases, lambda c: f"item {c.item}"))
    problems = [c for c in cases if c.bin != "clear"]
    if problems:
        print("\n## Cases that are not a clear error\n")
        for c in problems:
            print(f"- [{c.bin}] ({c.section}, item {c.item}) {c.target}: {c.input} -> {textwrap.shorten(c.detail, 200)}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"bins": BINS, "cases": [asdict(c) for c in cases]}, indent=1))
    print(f"\nJSON: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
