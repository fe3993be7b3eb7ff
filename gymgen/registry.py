"""The one table of gymgen environment ids, and the functions that register, list and make them.

Entry points are strings so that ``import gymgen`` registers every id with Gymnasium (and the
multi-agent ids with PettingZoo) without importing torch or any family's dependencies.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from typing import Any, Literal

FAMILIES = ("dag", "marl", "control", "worldsim", "video")
PAPERS = {
    "GFN": "GFlowNet literature baseline (Bengio et al. 2021; Malkin et al. 2022, trajectory balance)",
    "BN": "Bifurcated GFlowNets",
    "RPE": "Rectified Policy Evaluation: GFlowNets as policy evaluation",
    "RBS": "Retrospective Backward Synthesis for goal-conditioned GFlowNets",
    "QGFN": "QGFN: controllable greediness with action values",
    "EGFN": "Evolution guided generative flow networks",
    "MAST": "MAST: multi-agent sparse training",
    "Kaleidoscope": "Kaleidoscope: learnable masks for heterogeneous multi-agent RL",
    "NE": "Neuroplastic Expansion in deep RL",
    "DWS": "Dynamic World Simulation: pre-trained video models as world simulators",
    "VPDD": "Video pre-trained discrete diffusion policies",
}


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment id and everything gymgen knows about it.

    ``entry_point`` builds the Gymnasium env (``api="gymnasium"``) or the PettingZoo parallel env
    (``api="parallel"``); ``batched_entry_point`` builds the torch-batched TorchRL env that holds the
    dynamics; ``vector_entry_point`` builds the native Gymnasium ``VectorEnv`` used by ``make_vec``.
    """

    id: str
    family: str
    api: Literal["gymnasium", "parallel"]
    entry_point: str
    papers: tuple[str, ...]
    description: str
    batched_entry_point: str | None = None
    vector_entry_point: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    max_episode_steps: int | None = None
    exact: bool = False
    extra: str | None = None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.id}: family {self.family!r} is not one of {FAMILIES}")
        unknown = [p for p in self.papers if p not in PAPERS]
        if unknown:
            raise ValueError(f"{self.id}: unknown paper keys {unknown}; known: {sorted(PAPERS)}")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able view, for ``gymgen info`` and stored leaderboard rows."""
        return {
            "id": self.id,
            "family": self.family,
            "api": self.api,
            "papers": list(self.papers),
            "description": self.description,
            "entry_point": self.entry_point,
            "batched_entry_point": self.batched_entry_point,
            "vector_entry_point": self.vector_entry_point,
            "kwargs": dict(self.kwargs),
            "max_episode_steps": self.max_episode_steps,
            "exact": self.exact,
            "extra": self.extra,
        }


# --------------------------------------------------------------------------------------------
# The table. Each family keeps its rows together in its own block.
# --------------------------------------------------------------------------------------------

_HG = "gymgen.dag.hypergrid"
_WS = "gymgen.worldsim.env"
_WS_SRC = "gymgen.worldsim.sources"
_TFB = "gymgen.dag.tfbind8"
_BS = "gymgen.dag.bitseq"
_GC = "gymgen.dag.goal_conditioned"
_FM = "gymgen.dag.mol.fragmol"
_AM = "gymgen.dag.mol.atommol"
_MPE = "gymgen.marl.mpe"
_MAMUJOCO = "gymgen.marl.mamujoco"
_SPREAD = "gymgen.marl.spread"
_PUSH = "gymgen.marl.push"
_WORLD = "gymgen.marl.world"
_CONTROL = "gymgen.control.env"
_CONTROL_TASKS = ("HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid")
_FLIP = [{"forward_reward_weight": 1.0}, {"forward_reward_weight": -1.0}]
_CONTROL_VARIANTS = (  # (name, kwargs, description); suites shorten shift_every for CPU-sized runs
    *((task, {"task": task}, f"Gymnasium MuJoCo {task}-v5 (float32 obs, checked actions), stationary.")
      for task in _CONTROL_TASKS),
    ("HalfCheetah-RewardFlip", {"task": "HalfCheetah", "phases": _FLIP, "shift_every": 100_000},
     "HalfCheetah whose forward reward weight flips +1/-1 (run forward, then backward) every 100k steps."),
    ("Walker2d-RewardFlip", {"task": "Walker2d", "phases": _FLIP, "shift_every": 100_000},
     "Walker2d whose forward reward weight flips +1/-1 every 100k steps (healthy bonus kept)."),
    ("HalfCheetah-Friction", {"task": "HalfCheetah", "shift_every": 100_000,
                              "phases": [{"friction": f} for f in (1.0, 0.25, 2.0, 0.5)]},
     "HalfCheetah whose sliding friction cycles x1, x0.25, x2, x0.5 every 100k steps."),
    ("Ant-Friction", {"task": "Ant", "shift_every": 2_000_000,
                      "phases": [{"friction": f} for f in (1.0, 0.1, 2.0, 0.5)]},
     "Slippery Ant (Dohare et al. 2024): Ant's friction cycles x1, x0.1, x2, x0.5 every 2M steps."),
    ("Hopper-Gravity", {"task": "Hopper", "shift_every": 100_000,
                        "phases": [{"gravity": g} for g in (1.0, 0.5, 1.5)]},
     "Hopper whose gravity cycles x1, x0.5, x1.5 every 100k steps."),
    ("Walker2d-Mass", {"task": "Walker2d", "shift_every": 100_000,
                       "phases": [{"mass": m} for m in (1.0, 2.0, 0.5)]},
     "Walker2d whose body masses and inertias cycle x1, x2, x0.5 every 100k steps."),
    ("TaskCycle", {"task": "HalfCheetah", "shift_every": 1_000_000,
                   "phases": [{"task": t} for t in ("HalfCheetah", "Hopper", "Walker2d", "Ant")]},
     "NE-style continual cycle HalfCheetah > Hopper > Walker2d > Ant (1M steps each); padded obs + one-hot task id."),
)
_MAMUJOCO_TASKS = (
    ("HalfCheetah", "2x3"), ("Ant", "4x2"), ("Hopper", "3x1"), ("Walker2d", "2x3"), ("Walker2d", "6x1"),
    ("ManySegmentSwimmer", "10x2"),
)

ENVS: tuple[EnvEntry, ...] = (
    # ---- dag: GFlowNet DAG environments ----------------------------------------------------
    EnvEntry(
        id="gymgen/HyperGrid-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_HG}:HyperGridEnv",
        batched_entry_point=f"{_HG}:HyperGrid",
        vector_entry_point=f"{_HG}:HyperGridVectorEnv",
        kwargs={"ndim": 2, "height": 8, "R0": 0.1, "R1": 0.5, "R2": 2.0, "semantics": "exit_anywhere"},
        papers=("GFN", "BN", "RPE", "QGFN", "EGFN"),
        description="D-dimensional grid of side H; build a cell by unit increments, reward with 2^D corner modes.",
        exact=True,
    ),
    EnvEntry(
        id="gymgen/HyperGrid-Legacy-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_HG}:HyperGridEnv",
        batched_entry_point=f"{_HG}:HyperGrid",
        vector_entry_point=f"{_HG}:HyperGridVectorEnv",
        kwargs={"ndim": 3, "height": 20, "R0": 1e-3, "R1": 0.5, "R2": 2.0, "semantics": "edge_terminates"},
        papers=("GFN", "EGFN"),
        description="Original Bengio-2021 grid: a trajectory also ends when a coordinate reaches the edge.",
        exact=True,
    ),
    EnvEntry(
        id="gymgen/FragMol-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_FM}:FragMolEnv",
        batched_entry_point=f"{_FM}:FragMol",
        vector_entry_point=f"{_FM}:FragMolVectorEnv",
        kwargs={"max_blocks": 9, "reward": "seh", "reward_exponent": 10.0},
        papers=("GFN", "BN", "QGFN", "EGFN"),
        description="Fragment-tree molecules from the 105-block vocabulary, sEH proxy reward (RDKit).",
        extra="mol",
    ),
    EnvEntry(
        id="gymgen/AtomMol-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_AM}:AtomMolEnv",
        batched_entry_point=f"{_AM}:AtomMol",
        vector_entry_point=f"{_AM}:AtomMolVectorEnv",
        kwargs={"max_atoms": 9, "reward": "qed", "reward_exponent": 1.0},
        papers=("GFN",),
        description="QM9-sized molecules (<= 9 C/N/O/F atoms) built atom by atom with valence masks, QED reward (RDKit).",
        extra="mol",
    ),
    EnvEntry(
        id="gymgen/TFBind8-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_TFB}:TFBind8Env",
        batched_entry_point=f"{_TFB}:TFBind8",
        vector_entry_point=f"{_TFB}:TFBind8VectorEnv",
        kwargs={"order": "append", "reward": "normalized", "reward_exponent": 1.0},
        papers=("RPE", "RBS"),
        description="DNA 8-mers over ACGT scored by measured SIX6 binding (65,536 candidates, exact).",
        exact=True,
    ),
    EnvEntry(
        id="gymgen/BitSequence-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_BS}:BitSequenceEnv",
        batched_entry_point=f"{_BS}:BitSequence",
        vector_entry_point=f"{_BS}:BitSequenceVectorEnv",
        kwargs={"n": 120, "k": 8, "n_modes": 60, "mode_seed": 0, "order": "autoregressive", "reward_exponent": 3.0},
        papers=("GFN", "QGFN"),
        description="120-bit strings in 8-bit words; reward exp(-beta * Hamming to 60 seeded modes / n).",
    ),
    EnvEntry(
        id="gymgen/BitSequence-Small-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_BS}:BitSequenceEnv",
        batched_entry_point=f"{_BS}:BitSequence",
        vector_entry_point=f"{_BS}:BitSequenceVectorEnv",
        kwargs={"n": 16, "k": 4, "n_modes": 4, "mode_seed": 0, "order": "autoregressive", "reward_exponent": 3.0},
        papers=("GFN", "QGFN"),
        description="Enumerable 16-bit version of BitSequence (65,536 strings) for exact metrics.",
        exact=True,
    ),
    EnvEntry(
        id="gymgen/GCHyperGrid-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_GC}:GCHyperGridEnv",
        batched_entry_point=f"{_GC}:GCHyperGrid",
        vector_entry_point=f"{_GC}:GCHyperGridVectorEnv",
        kwargs={"height": 32},
        papers=("RBS",),
        description="Goal-conditioned 2-D grid (H = 32/64/128): reward 1 only for exiting at the sampled goal cell.",
    ),
    EnvEntry(
        id="gymgen/GCBitSequence-v0",
        family="dag",
        api="gymnasium",
        entry_point=f"{_GC}:GCBitSequenceEnv",
        batched_entry_point=f"{_GC}:GCBitSequence",
        vector_entry_point=f"{_GC}:GCBitSequenceVectorEnv",
        kwargs={"size": "small", "order": "autoregressive"},
        papers=("RBS",),
        description="Goal-conditioned bit strings (small 40/2, medium 60/3, large 100/5): reward 1 on an exact match.",
    ),
    # ---- dag: end ------------------------------------------------------------------------------
    # ---- marl: multi-agent tasks ---------------------------------------------------------------
    *(
        EnvEntry(
            id=f"gymgen/SMACLite-{name}-v0",
            family="marl",
            api="parallel",
            entry_point="gymgen.marl.smaclite.env:SMACLiteParallelEnv",
            batched_entry_point="gymgen.marl.smaclite.env:SMACLite",
            kwargs={"map_name": name},
            max_episode_steps=limit,
            papers=papers,
            description=f"SMAC-like battle {desc} (gymgen's own batched torch simulator, not StarCraft II).",
        )
        for name, limit, papers, desc in (
            ("3m", 60, ("MAST",), "3 marines vs 3 marines"),
            ("8m", 120, ("MAST",), "8 marines vs 8 marines"),
            ("2s3z", 120, ("MAST",), "2 stalkers + 3 zealots per side"),
            ("3s5z", 150, ("MAST",), "3 stalkers + 5 zealots per side"),
            ("5m_vs_6m", 70, ("MAST",), "5 marines vs 6 marines"),
            ("3s_vs_5z", 250, ("MAST",), "3 stalkers vs 5 zealots (kiting)"),
            ("MMM", 150, ("MAST",), "7 marines + 2 marauders + 1 medivac per side"),
            ("2c_vs_64zg", 400, ("MAST",), "2 colossi vs 64 zerglings"),
            ("protoss_5v5", 200, ("Kaleidoscope",), "SMACv2-style random protoss 5v5"),
            ("terran_5v5", 200, ("Kaleidoscope",), "SMACv2-style random terran 5v5"),
            ("zerg_5v5", 200, ("Kaleidoscope",), "SMACv2-style random zerg 5v5"),
        )
    ),
    EnvEntry(
        id="gymgen/MPE-SimpleSpread-v0",
        family="marl",
        api="parallel",
        entry_point=f"{_MPE}:SimpleSpreadEnv",
        kwargs={"N": 3, "local_ratio": 0.5, "max_cycles": 25},
        papers=(),
        description="MPE cooperative navigation (mpe2 simple_spread_v3 scenario): N agents cover N landmarks.",
        max_episode_steps=25,
        extra="marl",
    ),
    EnvEntry(
        id="gymgen/MPE-PredatorPrey-v0",
        family="marl",
        api="parallel",
        entry_point=f"{_MPE}:PredatorPreyEnv",
        kwargs={"num_predators": 3, "num_prey": 1, "num_obstacles": 2, "max_cycles": 25},
        papers=(),
        description="MPE simple_tag with heuristic (fleeing) prey: only the 3 predators are agents.",
        max_episode_steps=25,
        extra="marl",
    ),
    EnvEntry(
        id="gymgen/MPE-World-v0",
        family="marl",
        api="parallel",
        entry_point=f"{_MPE}:WorldEnv",
        kwargs={"num_predators": 4, "num_prey": 2, "max_cycles": 25},
        papers=("Kaleidoscope",),
        description="Reconstruction of Kaleidoscope's World 4v2: simple_world_comm, 4 learning predators vs 2 scripted prey.",
        max_episode_steps=25,
        extra="marl",
    ),
    EnvEntry(
        id="gymgen/MPE-Push-v0",
        family="marl",
        api="parallel",
        entry_point=f"{_MPE}:PushEnv",
        kwargs={"num_pushers": 5, "num_targets": 2, "max_cycles": 25},
        papers=("Kaleidoscope",),
        description="Reconstruction of Kaleidoscope's Push 5v2: simple_push, 5 learners keep 2 scripted targets off the goal.",
        max_episode_steps=25,
        extra="marl",
    ),
    EnvEntry(
        id="gymgen/SpreadBatched-v0",
        family="marl",
        api="parallel",
        entry_point=f"{_SPREAD}:SpreadParallelEnv",
        batched_entry_point=f"{_SPREAD}:SpreadBatched",
        kwargs={"N": 3, "local_ratio": 0.5, "max_cycles": 25},
        papers=(),
        description="Cooperative navigation in batched torch (mpe2 simple_spread physics, B x N tensors); TorchRL + PettingZoo.",
        max_episode_steps=25,
    ),
    EnvEntry(
        id="gymgen/PushBatched-v0",
        family="marl",
        api="parallel",
        entry_point=f"{_PUSH}:PushParallelEnv",
        batched_entry_point=f"{_PUSH}:PushBatched",
        kwargs={"num_pushers": 5, "num_targets": 2, "num_landmarks": 2, "max_cycles": 25},
        papers=("Kaleidoscope",),
        description="MPE-Push-v0 (5 pushers vs 2 scripted goal-seeking targets) in batched torch, mpe2 physics; TorchRL + PettingZoo.",
        max_episode_steps=25,
    ),
    EnvEntry(
        id="gymgen/WorldBatched-v0",
        family="marl",
        api="parallel",
        entry_point=f"{_WORLD}:WorldParallelEnv",
        batched_entry_point=f"{_WORLD}:WorldBatched",
        kwargs={"num_predators": 4, "num_prey": 2, "num_obstacles": 1, "num_food": 2, "num_forests": 2,
                "leader_comm": True, "max_cycles": 25},
        papers=("Kaleidoscope",),
        description="MPE-World-v0 (4 predators with a talking leader vs 2 scripted prey, forests) in batched torch, mpe2 physics; TorchRL + PettingZoo.",
        max_episode_steps=25,
    ),
    *(
        EnvEntry(
            id=f"gymgen/MaMuJoCo-{scenario}-{conf}-v0",
            family="marl",
            api="parallel",
            entry_point=f"{_MAMUJOCO}:MaMuJoCoEnv",
            kwargs={"scenario": scenario, "agent_conf": conf, "agent_obsk": 0},
            papers=("Kaleidoscope",),
            description=f"Multi-agent MuJoCo {scenario} split {conf} (gymnasium-robotics mamujoco_v1, agent_obsk=0).",
            max_episode_steps=1000,
            extra="marl",
        )
        for scenario, conf in _MAMUJOCO_TASKS
    ),
    # ---- marl: end -----------------------------------------------------------------------------
    # ---- control: MuJoCo v5 robots with non-stationary schedules (NE; helper ne) ---------------
    *(
        EnvEntry(
            id=f"gymgen/MuJoCo-{name}-v0",
            family="control",
            api="gymnasium",
            entry_point=f"{_CONTROL}:ControlEnv",
            batched_entry_point=f"{_CONTROL}:ControlBatched",
            vector_entry_point=f"{_CONTROL}:ControlVectorEnv",
            kwargs=kwargs,
            papers=("NE",),
            description=desc,
            max_episode_steps=1000,
            extra="control",
        )
        for name, kwargs, desc in _CONTROL_VARIANTS
    ),
    *(
        EnvEntry(
            id=f"gymgen/DMC-{domain}-{task}-v0",
            family="control",
            api="gymnasium",
            entry_point="gymgen.control.dmc:DMCEnv",
            kwargs={"domain": domain, "task": task},
            papers=("NE",),
            description=f"DeepMind Control {domain}-{task}, state-based, flat float32 obs (dm-control 1.0.28 via shimmy).",
            extra="dmc",
        )
        for domain, task in (("cheetah", "run"), ("walker", "walk"), ("hopper", "hop"), ("humanoid", "run"))
    ),
    # ---- control: end --------------------------------------------------------------------------
    # ---- worldsim: learned world simulators ----------------------------------------------------
    *(
        EnvEntry(
            id=env_id,
            family="worldsim",
            api="gymnasium",
            entry_point=f"{_WS}:WorldSimEnv",
            batched_entry_point=f"{_WS}:WorldSim",
            vector_entry_point=f"{_WS}:WorldSimVectorEnv",
            kwargs={"game": "Breakout"},
            papers=("DWS",),
            description=desc,
            max_episode_steps=200,
            extra="worldsim",
        )
        for env_id, desc in (
            ("gymgen/WorldSim-v0",
             "Breakout (64x64 RGB) generated by a pretrained token video model + FiLM action module (DWS)."),
        )
    ),
    # WorldSim-<Source>-v0 (issue 19): any shipped (source game, base); base="token" (default) | "diffusion"
    *(
        EnvEntry(
            id=f"gymgen/WorldSim-{game}-v0",
            family="worldsim",
            api="gymnasium",
            entry_point=f"{_WS_SRC}:WorldSimSourceEnv",
            batched_entry_point=f"{_WS_SRC}:WorldSimSource",
            vector_entry_point=f"{_WS_SRC}:WorldSimSourceVectorEnv",
            kwargs={"game": game, "base": "token"},
            papers=("DWS",),
            description=desc,
            max_episode_steps=200,
            extra="worldsim",
        )
        for game, desc in (
            ("Breakout", "Same simulator as WorldSim-v0, named by its source game; base='transformer' or "
                         "base='diffusion' select the other bases (their checkpoints are not shipped; see seeds/DWS.toml)."),
        )
    ),
    # ---- worldsim: end -------------------------------------------------------------------------
    # ---- video: Meta-World with rendered image observations (VPDD) ------------------------------
    *(
        EnvEntry(
            id=f"gymgen/MetaWorld-{task[:-3]}-v0",
            family="video",
            api="gymnasium",
            entry_point="gymgen.video.env:MetaWorldVideoEnv",
            kwargs={"task": task, "camera": "corner", "size": 64},
            papers=("VPDD",),
            description=f"Meta-World {task} (MT10) with 64x64 RGB frames rendered on CPU + proprioception; info['success'].",
            max_episode_steps=200,
            extra="video",
        )
        for task in (
            "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
            "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
        )
    ),
    # ---- video: end -----------------------------------------------------------------------------
)


# --------------------------------------------------------------------------------------------
# Lookup, registration and construction
# --------------------------------------------------------------------------------------------

_BY_ID: dict[str, EnvEntry] = {e.id: e for e in ENVS}
if len(_BY_ID) != len(ENVS):
    raise RuntimeError("duplicate env id in gymgen.registry.ENVS")


class UnknownEnvError(KeyError):
    """Raised for an id that is not in the gymgen table; the message lists close matches."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def _normalise(env_id: str) -> str:
    return env_id.split(":", 1)[1] if ":" in env_id else env_id


def get_entry(env_id: str) -> EnvEntry:
    """The table row for ``env_id`` (``"gymgen/X-v0"`` or ``"gymgen:gymgen/X-v0"``)."""
    key = _normalise(env_id)
    if key in _BY_ID:
        return _BY_ID[key]
    close = difflib.get_close_matches(key, list(_BY_ID), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownEnvError(
        f"unknown gymgen env id {env_id!r}.{hint} Run `gymgen list` for all {len(_BY_ID)} ids."
    )


#: the top-level modules each optional extra (``pip install "gymgen[<extra>]"``) installs, i.e. what a user
#: without it lacks (``missing_extra`` and ``scripts/check_missing_extras.py`` read this one table)
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "mol": ("rdkit",),
    "marl": ("mpe2", "mujoco", "gymnasium_robotics", "pygame"),
    "control": ("mujoco",),
    "dmc": ("dm_control", "shimmy"),
    "video": ("metaworld", "vector_quantize_pytorch"),
    "worldsim": ("ale_py", "safetensors", "cv2"),
    "ray": ("ray",),
    "plots": ("matplotlib",),
    "sb3": ("stable_baselines3", "sb3_contrib", "moviepy"),
}


def missing_extra(env: "str | EnvEntry") -> str | None:
    """The optional extra that ``env`` (an id or entry) needs and that is not (fully) installed, else ``None``.

    Looks the extra's modules up with ``importlib.util.find_spec`` (nothing is imported), so it is cheap enough
    for test collection and for error messages."""
    entry = env if isinstance(env, EnvEntry) else get_entry(env)
    if entry.extra is None:
        return None
    for module in EXTRA_MODULES.get(entry.extra, (entry.extra,)):
        try:
            if importlib.util.find_spec(module) is None:
                return entry.extra
        except (ImportError, ValueError):
            return entry.extra
    return None


def list_envs(family: str | None = None) -> list[EnvEntry]:
    """Every registered gymgen env, optionally only one family (``dag``, ``marl``, ...)."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return [e for e in ENVS if family is None or e.family == family]


def load_entry_point(path: str) -> Any:
    """Import ``"module:attr"`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"entry point {path!r} must look like 'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"cannot import {module_name!r} for entry point {path!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise AttributeError(f"module {module_name!r} has no attribute {attr!r} (entry point {path!r})") from None


def accepted_kwargs(entry: EnvEntry) -> list[str]:
    """Keyword arguments the env's constructor accepts (from the batched class when there is one)."""
    target = load_entry_point(entry.batched_entry_point or entry.entry_point)
    init = target.__init__ if inspect.isclass(target) else target
    params = inspect.signature(init).parameters
    skip = {"self", "batch_size", "num_envs", "device", "render_mode", "kwargs"}
    return [n for n, p in params.items() if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def check_kwargs(entry: EnvEntry, kwargs: dict[str, Any], extra_ok: tuple[str, ...] = ()) -> None:
    """Raise a ``TypeError`` naming every unknown keyword and listing the valid ones."""
    valid = set(accepted_kwargs(entry)) | set(extra_ok)
    bad = [k for k in kwargs if k not in valid]
    if bad:
        hints = []
        for k in bad:
            close = difflib.get_close_matches(k, sorted(valid), n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"{entry.id} got unknown keyword argument(s) {', '.join(hints)}; valid keys: {sorted(valid)}"
        )


_REGISTERED = False


class ParallelOnlyError(TypeError):
    """``gymnasium.make`` on a multi-agent id: it is a PettingZoo parallel env, not a Gymnasium env."""


def parallel_only(env_id: str, **kwargs: Any) -> Any:
    """Gymnasium entry point of every multi-agent id: raises ``ParallelOnlyError`` saying how to make it.

    Registered so that ``gymnasium.make("gymgen/SMACLite-3m-v0")`` explains itself instead of
    answering that the env does not exist.
    """
    batched = (f"; gymgen.make_batched({env_id!r}, batch_size=...) makes its batched TorchRL env"
               if get_entry(env_id).batched_entry_point else "")
    raise ParallelOnlyError(
        f"{env_id} is a multi-agent PettingZoo parallel env, not a Gymnasium env: make it with "
        f"gymgen.parallel_env({env_id!r}) or pettingzoo.make('parallel', {env_id!r}) (after `import gymgen`){batched}"
    )


def register_all() -> None:
    """Register every id with Gymnasium (single-agent) or PettingZoo (parallel). Idempotent.

    Multi-agent ids are also registered with Gymnasium, with an entry point that raises
    ``ParallelOnlyError`` naming ``gymgen.parallel_env`` and ``pettingzoo.make``.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    import gymnasium

    for e in ENVS:
        if e.id in gymnasium.registry:
            continue
        if e.api == "gymnasium":
            gymnasium.register(
                id=e.id,
                entry_point=e.entry_point,
                vector_entry_point=e.vector_entry_point,
                kwargs=dict(e.kwargs),
                max_episode_steps=e.max_episode_steps,
            )
        else:
            gymnasium.register(id=e.id, entry_point="gymgen.registry:parallel_only", kwargs={"env_id": e.id},
                               disable_env_checker=True)
    parallel = [e for e in ENVS if e.api == "parallel"]
    if parallel:
        import pettingzoo

        for e in parallel:
            if e.id not in pettingzoo.parallel_registry:
                # the episode length travels as PettingZoo's max_cycles, never inside kwargs: pettingzoo.make
                # lets spec kwargs win over its own max_cycles argument (max_cycles_test would then fail)
                kwargs = {k: v for k, v in e.kwargs.items() if k != "max_cycles"}
                pettingzoo.register(
                    "parallel", id=e.id, entry_point=e.entry_point, kwargs=kwargs,
                    max_cycles=e.kwargs.get("max_cycles", e.max_episode_steps),
                )
    _REGISTERED = True


def make(env_id: str, **kwargs: Any) -> Any:
    """Make a single-agent gymgen env (same as ``gymnasium.make``) with a checked id and kwargs."""
    entry = get_entry(env_id)
    if entry.api != "gymnasium":
        raise TypeError(f"{entry.id} is a PettingZoo parallel env; use gymgen.parallel_env({entry.id!r})")
    check_kwargs(entry, kwargs, extra_ok=("render_mode", "max_episode_steps", "disable_env_checker", "device"))
    import gymnasium

    register_all()
    return gymnasium.make(entry.id, **kwargs)


def make_vec(env_id: str, num_envs: int = 1, **kwargs: Any) -> Any:
    """Make a natively batched Gymnasium ``VectorEnv`` (torch dynamics, one call per step)."""
    entry = get_entry(env_id)
    check_kwargs(entry, kwargs, extra_ok=("render_mode", "max_episode_steps", "device", "autoreset_mode"))
    import gymnasium

    register_all()
    return gymnasium.make_vec(entry.id, num_envs=num_envs, **kwargs)


_REGISTRY_LIMIT: Any = object()


def make_batched(
    env_id: str, batch_size: int = 1, device: Any = "cpu", max_episode_steps: Any = _REGISTRY_LIMIT, **kwargs: Any
) -> Any:
    """Make the torch-batched TorchRL env (``EnvBase``) that holds the dynamics of ``env_id``.

    ``max_episode_steps`` defaults to the registry's limit (the one ``gymnasium.make`` applies through
    ``TimeLimit``), so every view ends episodes at the same step; pass ``None`` for no limit.
    """
    entry = get_entry(env_id)
    if entry.batched_entry_point is None:
        raise TypeError(f"{entry.id} has no batched torch implementation")
    check_kwargs(entry, kwargs)
    limit = entry.max_episode_steps if max_episode_steps is _REGISTRY_LIMIT else max_episode_steps
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"max_episode_steps must be a positive int or None, got {limit!r}")
    cls = load_entry_point(entry.batched_entry_point)
    env = cls(batch_size=batch_size, device=device, **{**entry.kwargs, **kwargs})
    env.max_episode_steps = limit
    return env


def parallel_env(env_id: str, **kwargs: Any) -> Any:
    """Make a PettingZoo ``ParallelEnv`` for a multi-agent gymgen id."""
    entry = get_entry(env_id)
    if entry.api != "parallel":
        raise TypeError(f"{entry.id} is a single-agent Gymnasium env; use gymnasium.make({entry.id!r})")
    check_kwargs(entry, kwargs, extra_ok=("render_mode", "device"))
    factory = load_entry_point(entry.entry_point)
    return factory(**{**entry.kwargs, **kwargs})
