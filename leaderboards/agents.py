"""The one table of built-in agent ids -> ``"module:factory"`` strings, and the uniform-random agent.

Family helpers add their rows to ``AGENTS`` (e.g. ``"gfn.tb": "gymgen.agents.gfn.tb:make_agent"``).
A row whose module is not installed is listed as unavailable with the reason; runs that ask for it are
stored as ``failed`` rows, never silently dropped.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np

from gymgen.leaderboards.contract import Budget, load_factory, make_env

AGENTS: dict[str, str] = {
    "random": "gymgen.leaderboards.agents:make_random_agent",
    # ---- gfn: GFlowNet reference agents (agents/gfn, helper gfn-agents) -------------------------
    "gfn.tb": "gymgen.agents.gfn.leaderboard:make_tb",
    "gfn.db": "gymgen.agents.gfn.leaderboard:make_db",
    "gfn.subtb": "gymgen.agents.gfn.leaderboard:make_subtb",
    "gfn.fm": "gymgen.agents.gfn.leaderboard:make_fm",
    "gfn.bn": "gymgen.agents.gfn.leaderboard:make_bn",
    "gfn.rpe": "gymgen.agents.gfn.leaderboard:make_rpe",
    "gfn.qgfn": "gymgen.agents.gfn.leaderboard:make_qgfn",
    "gfn.egfn": "gymgen.agents.gfn.leaderboard:make_egfn",
    # ---- gfn: end ------------------------------------------------------------------------------
    # ---- marl: multi-agent reference agents (agents/marl, helper marl) --------------------------
    "marl.random": "gymgen.agents.marl.leaderboard:make_random",
    "marl.iql": "gymgen.agents.marl.leaderboard:make_iql",
    "marl.vdn": "gymgen.agents.marl.leaderboard:make_vdn",
    "marl.qmix": "gymgen.agents.marl.leaderboard:make_qmix",
    "marl.wqmix": "gymgen.agents.marl.leaderboard:make_wqmix",  # OW/CW-QMIX (MAST applies to it)
    "marl.res_qmix": "gymgen.agents.marl.leaderboard:make_res_qmix",  # RES-QMIX (MAST applies to it)
    "marl.mappo": "gymgen.agents.marl.leaderboard:make_mappo",
    "marl.ippo": "gymgen.agents.marl.leaderboard:make_ippo",
    "marl.matd3": "gymgen.agents.marl.leaderboard:make_matd3",
    # MAST and its sparse baselines (agents/marl/mast.py, helper mast)
    "marl.mast": "gymgen.agents.marl.mast:make_mast",
    "marl.mast_vdn": "gymgen.agents.marl.mast:make_mast_vdn",
    "marl.mast_wqmix": "gymgen.agents.marl.mast:make_mast_wqmix",
    "marl.mast_res": "gymgen.agents.marl.mast:make_mast_res",
    "marl.qmix_ss": "gymgen.agents.marl.mast:make_qmix_ss",
    "marl.qmix_set": "gymgen.agents.marl.mast:make_qmix_set",
    "marl.qmix_rigl": "gymgen.agents.marl.mast:make_qmix_rigl",
    "marl.qmix_tiny": "gymgen.agents.marl.mast:make_qmix_tiny",
    "marl.kaleidoscope_qmix": "gymgen.agents.marl.leaderboard:make_kaleidoscope_qmix",  # issue 15 (helper kal)
    "marl.kaleidoscope_matd3": "gymgen.agents.marl.leaderboard:make_kaleidoscope_matd3",
    "marl.seps": "gymgen.agents.marl.leaderboard:make_seps",  # Kaleidoscope's SePS baseline
    # ---- marl: end -----------------------------------------------------------------------------
    # ---- video: VPDD and its baselines (agents/video, helper vpdd) -----------------------------
    "video.vpdd": "gymgen.agents.video.vpdd:make_vpdd",
    "video.vpdd_no_pretrain": "gymgen.agents.video.vpdd:make_vpdd_no_pretrain",
    "video.bc": "gymgen.agents.video.bc:make_bc",
    # ---- video: end ----------------------------------------------------------------------------
    # ---- control: TD3/SAC baselines, ReDo, Reset, NE (agents/control, helper ne) -------------------
    "control.td3": "gymgen.agents.control.leaderboard:make_td3",
    "control.sac": "gymgen.agents.control.leaderboard:make_sac",
    "control.redo": "gymgen.agents.control.leaderboard:make_redo",
    "control.reset": "gymgen.agents.control.leaderboard:make_reset",
    "control.ne": "gymgen.agents.control.leaderboard:make_ne",
    # ---- control: end --------------------------------------------------------------------------
}


#: env families an agent can run on, by the module prefix of its factory (agents not listed run anywhere)
AGENT_FAMILIES: dict[str, tuple[str, ...]] = {
    "gymgen.agents.gfn.": ("dag",),
    "gymgen.agents.control.": ("control",),  # continuous-action MuJoCo/DMC ids
    "gymgen.agents.video.": ("video",),  # image + proprio Meta-World ids
    "gymgen.agents.marl.": ("marl",),  # PettingZoo parallel ids (SMACLite, MPE, Spread, MaMuJoCo)
}


def resolve(agent: str) -> str:
    """Map a table id to its ``module:factory`` string; ``module:factory`` strings pass through.

    Raises ``KeyError`` for anything else, naming the closest known ids."""
    if agent in AGENTS:
        return AGENTS[agent]
    if ":" in agent:
        return agent
    from importlib.metadata import entry_points

    names = sorted({*AGENTS, *(ep.name for ep in entry_points(group="gymgen.agents"))})
    if agent in names:
        return agent
    close = difflib.get_close_matches(agent, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise KeyError(f"unknown agent id {agent!r}; {hint}known ids: {names} (or pass 'module:factory')")


def families_of(target: str) -> tuple[str, ...] | None:
    """Env families the agent with factory ``target`` runs on (None: any)."""
    return next((fam for prefix, fam in AGENT_FAMILIES.items() if target.startswith(prefix)), None)


def check_compatible(agent_name: str, target: str, spec: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming both sides when ``target``'s agent cannot run on the env of ``spec``."""
    fams = families_of(target)
    if fams is not None and spec.get("family") not in fams:
        raise ValueError(f"agent {agent_name!r} runs on env family {'/'.join(fams)}; {spec['id']} is family "
                         f"{spec.get('family')}")


def availability() -> dict[str, str | None]:
    """For every table id: ``None`` when its factory imports, else the reason it does not."""
    out: dict[str, str | None] = {}
    for name, target in AGENTS.items():
        try:
            load_factory(target)
            out[name] = None
        except Exception as exc:  # noqa: BLE001 - any import failure makes the agent unavailable
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


def _mask(env: Any, obs: Any, info: dict[str, Any]) -> np.ndarray | None:
    """The legal-action mask, from ``env.action_masks()``, ``obs['action_mask']`` or ``info['action_mask']``."""
    if isinstance(obs, dict) and "action_mask" in obs:
        return np.asarray(obs["action_mask"], dtype=bool)
    if "action_mask" in info:
        return np.asarray(info["action_mask"], dtype=bool)
    fn = getattr(env.unwrapped, "action_masks", None)
    return np.asarray(fn(), dtype=bool).reshape(-1) if callable(fn) else None


class RandomAgent:
    """Uniform over legal actions (masked when the env exposes a mask); ``train`` does nothing.

    On exact DAG envs it also reports ``tv_exact`` of its own (uniform-masked) terminating
    distribution against R/Z, computed by dynamic programming, so GFlowNet suites can normalise.
    """

    def __init__(self, env_spec: dict[str, Any], seed: int) -> None:
        self.env = make_env(env_spec)
        self.rng = np.random.default_rng(seed)
        self.parallel = env_spec.get("api") == "parallel"
        if self.parallel:
            self._spaces: dict[str, Any] = {}
        else:
            self.env.action_space.seed(int(self.rng.integers(2**31)))
        self._spec = env_spec
        self._metrics: dict[str, float] | None = None

    def train(self, amount: int) -> None:
        """Random search has nothing to learn."""

    def _agent_space(self, agent: str) -> Any:
        if agent not in self._spaces:
            space = self.env.action_space(agent)
            space.seed(int(self.rng.integers(2**31)))
            self._spaces[agent] = space
        return self._spaces[agent]

    def _act_one(self, agent: str, obs: Any, info: dict[str, Any]) -> Any:
        mask = None
        if isinstance(obs, dict) and "action_mask" in obs:
            mask = np.asarray(obs["action_mask"], dtype=bool)
        elif isinstance(info, dict) and "action_mask" in info:
            mask = np.asarray(info["action_mask"], dtype=bool)
        if mask is None:
            return self._agent_space(agent).sample()
        legal = np.flatnonzero(mask)
        if legal.size == 0:
            raise ValueError(f"action mask of {agent!r} has no legal action")
        return int(self.rng.choice(legal))

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        if self.parallel:
            return {a: self._act_one(a, o, (info or {}).get(a, {})) for a, o in obs.items()}
        mask = _mask(self.env, obs, info)
        if mask is None:
            return self.env.action_space.sample()
        legal = np.flatnonzero(mask)
        if legal.size == 0:
            raise ValueError("action mask has no legal action")
        return int(self.rng.choice(legal))

    def metrics(self) -> dict[str, float]:
        if self._metrics is None:
            self._metrics = {}
            if self._spec.get("family") == "dag" and self._spec.get("exact"):
                import torch

                from gymgen.dag.exact import tv_exact

                inner = self.env.unwrapped
                enum = inner.enumeration
                if enum is not None:
                    p = enum.terminating_distribution(lambda s: torch.zeros(s.shape[0], inner.n_actions))
                    self._metrics["tv_exact"] = tv_exact(p, enum.true_distribution())
        return dict(self._metrics)


def make_random_agent(env_spec: dict[str, Any], seed: int, budget: Budget, config: dict[str, Any]) -> RandomAgent:
    """Factory of the uniform-random baseline (the 0 of score normalisation)."""
    if config:
        raise ValueError(f"random agent takes no config, got keys {sorted(config)}")
    return RandomAgent(env_spec, seed)
