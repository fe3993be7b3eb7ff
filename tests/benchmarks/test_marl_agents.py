"""Speed of the MARL agents' hot paths, each against the real alternative in the same run.

1. QMIX *training* env steps/s (collection + episode assembly + updates) on the batched SMACLite-3m
   (1024 battles at once) vs the same agent and config through ``ParallelEnvAdapter`` around the
   PettingZoo view (8 copies, pymarl2's number of parallel envs).
2. Collection: TorchRL ``Collector`` over the batched env vs a plain ``step_tensors`` loop, vs the same
   ``Collector`` over 8 ``ParallelEnvAdapter`` copies of the PettingZoo view (env cost alone), and
   ``Collector(trajs_per_batch=...)`` (TorchRL's own whole-episode assembly) vs ``Collector`` +
   ``EpisodeAssembler``.
3. Replay: TorchRL ``ReplayBuffer(LazyTensorStorage)`` episode sampling vs plain tensor indexing.
4. Networks: TorchRL ``MultiAgentMLP`` vs gymgen's factory-built ``AgentMLP`` (forward + backward), and
   the fused ``nn.GRU`` over a whole episode batch vs a ``GRUCell`` loop.

Run: ``/work/tools/cpu-slot --exclusive .venv/bin/pytest tests/benchmarks/test_marl_agents.py --benchmark-enable``.
With benchmarks disabled (the default test run) every case runs once at a tiny size, as a smoke test.
Measured numbers and the choices they support: ``docs/marl_agents.md`` (speed section).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from tensordict.nn import TensorDictModule
from torchrl.collectors import Collector

import gymgen
from gymgen.agents.marl import qmix
from gymgen.agents.marl.adapter import ParallelEnvAdapter
from gymgen.agents.marl.collect import training_env
from gymgen.agents.marl.episodes import EpisodeAssembler, EpisodeReplay
from gymgen.agents.marl.layers import AgentMLP, linear_factory
from gymgen.agents.marl.scripted import random_actions

MAP = "gymgen/SMACLite-3m-v0"


def _rate(benchmark, steps: int) -> None:
    stats = getattr(benchmark, "stats", None)
    if stats is not None and getattr(stats, "stats", None) is not None:
        benchmark.extra_info["env_steps_per_s"] = steps / stats.stats.mean


def _run(benchmark, fn, rounds: int) -> None:
    """``rounds`` timed calls after one warm-up (one untimed call when benchmarks are disabled)."""
    benchmark.pedantic(fn, rounds=1 if benchmark.disabled else rounds, warmup_rounds=0 if benchmark.disabled else 1, iterations=1)


# ---- 1. QMIX training throughput: batched env vs PettingZoo adapter -------------------------------------
@pytest.mark.parametrize("path", ["batched", "pettingzoo"])
def test_qmix_training_env_steps(benchmark, torch_threads, path: str) -> None:
    torch_threads(1)
    tiny = benchmark.disabled
    cfg = dict(eval_every_steps=10**9, buffer_episodes=2000, seed=0, epsilon_anneal_steps=1)
    if tiny:
        cfg.update(batch_episodes=8, rnn_hidden=16)
    if path == "batched":
        n = 64 if tiny else 1024
        env = gymgen.make_batched(MAP, batch_size=n)
    else:
        n = 4 if tiny else 8
        env = ParallelEnvAdapter(lambda: gymgen.parallel_env(MAP), num_envs=n, max_episode_steps=60, info_keys=("battle_won",), seed=0)
    trainer = qmix.trainer(env, qmix.QMIXConfig(n_envs=n, collect_steps=10, **cfg))
    while len(trainer.replay) < trainer.cfg.batch_episodes:  # fill the buffer: every timed step trains
        trainer.train(n * 10)
    steps = n * 10 * (1 if tiny else (4 if path == "batched" else 20))
    benchmark.extra_info.update(path=path, parallel_envs=n, env_steps_per_call=steps)
    _run(benchmark, lambda: trainer.train(steps), rounds=3)
    _rate(benchmark, steps)
    benchmark.extra_info["updates_per_1k_env_steps"] = 1000 * trainer.updates / max(1, trainer.env_steps)
    trainer.close()


# ---- 2. collection -------------------------------------------------------------------------------------
def _random_policy(gen: torch.Generator) -> TensorDictModule:
    return TensorDictModule(lambda m: random_actions(m, gen), in_keys=[("agents", "action_mask")], out_keys=[("agents", "action")])


@pytest.mark.parametrize("how", ["collector", "plain_loop", "collector+assembler", "collector_trajs_per_batch", "collector_pettingzoo"])
def test_collection_env_steps(benchmark, torch_threads, how: str) -> None:
    torch_threads(1)
    B = 64 if benchmark.disabled else 1024
    C = 10
    if how == "collector_pettingzoo":  # the same Collector over 8 PettingZoo copies (what pymarl-style runners step)
        B = 4 if benchmark.disabled else 8
        env = ParallelEnvAdapter(lambda: gymgen.parallel_env(MAP), num_envs=B, max_episode_steps=60, info_keys=("battle_won",), seed=0)
    else:
        env = gymgen.make_batched(MAP, batch_size=B)
    gen = torch.Generator().manual_seed(0)
    if how == "plain_loop":
        obs = env.reset_tensors()

        def run() -> int:
            nonlocal obs
            for _ in range(C):
                obs, _, te, tr, _ = env.step_tensors(random_actions(obs["action_mask"], gen))
                done = te | tr
                if bool(done.any()):
                    obs = env.reset_tensors(done)
            return B * C
    else:
        tenv = training_env(env)
        kwargs = {}
        if how == "collector_trajs_per_batch":
            kwargs = dict(trajs_per_batch=B // 4, traj_format="padded")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            col = Collector(tenv, _random_policy(gen), frames_per_batch=B * C, total_frames=-1, **kwargs)
        it = iter(col)
        asm = EpisodeAssembler(B, 60) if how == "collector+assembler" else None

        def run() -> int:
            batch = next(it)
            if asm is not None:
                asm.add(batch)
            if how == "collector_trajs_per_batch":
                return int(batch.get(("collector", "mask")).sum())
            return batch.numel()
    run()
    out = {}
    _run(benchmark, lambda: out.setdefault("n", run()), rounds=5)
    benchmark.extra_info["how"] = how
    _rate(benchmark, out.get("n", B * C))


# ---- 3. replay sampling ----------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["torchrl_replay_buffer", "plain_index"])
def test_episode_replay_sampling(benchmark, how: str) -> None:
    from tensordict import TensorDict

    E, T1, N, D = (256, 61, 3, 30) if benchmark.disabled else (5000, 61, 3, 30)
    data = TensorDict({"obs": torch.randn(E, T1, N, D), "avail": torch.ones(E, T1, N, 9, dtype=torch.bool),
                       "alive": torch.ones(E, T1, N, dtype=torch.bool), "state": torch.randn(E, T1, 48),
                       "action": torch.zeros(E, T1, N, dtype=torch.long), "reward": torch.zeros(E, T1, N),
                       "terminated": torch.zeros(E, T1, dtype=torch.bool), "filled": torch.ones(E, T1, dtype=torch.bool)},
                      batch_size=(E, T1))
    gen = torch.Generator().manual_seed(0)
    if how == "torchrl_replay_buffer":
        rb = EpisodeReplay(E, generator=gen)
        rb.extend(data)
        fn = lambda: rb.sample(128)  # noqa: E731
    else:
        fn = lambda: data[torch.randint(0, E, (128,), generator=gen)]  # noqa: E731
    fn()
    _run(benchmark, fn, rounds=50)


# ---- 4. networks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["torchrl_MultiAgentMLP", "gymgen_AgentMLP"])
@pytest.mark.parametrize("share", [True, False], ids=["shared", "per_agent"])
def test_actor_mlp_forward_backward(benchmark, torch_threads, how: str, share: bool) -> None:
    from torchrl.modules import MultiAgentMLP

    torch_threads(1)
    B, N, D, A = (256 if benchmark.disabled else 16384), 3, 33, 9
    x = torch.randn(B, N, D)
    if how == "torchrl_MultiAgentMLP":
        net = MultiAgentMLP(D, A, N, centralized=False, share_params=share, depth=2, num_cells=64, activation_class=torch.nn.Tanh)
        fwd = lambda: net(x)  # noqa: E731
    else:
        mlp = AgentMLP([D, 64, 64, A], linear_factory("full" if share else "none", N), role="actor", activation=torch.nn.Tanh)
        fwd = lambda: mlp(x)  # noqa: E731

    def step() -> None:
        fwd().square().mean().backward()

    step()
    _run(benchmark, step, rounds=20)


@pytest.mark.parametrize("how", ["nn_GRU_fused", "GRUCell_loop"])
def test_recurrent_core_over_episodes(benchmark, torch_threads, how: str) -> None:
    torch_threads(1)
    R, T, H = (48, 20, 64) if benchmark.disabled else (128 * 3, 40, 64)
    x = torch.randn(R, T, H)
    gru, cell = torch.nn.GRU(H, H, batch_first=True), torch.nn.GRUCell(H, H)

    def fused() -> None:
        gru(x)[0].sum().backward()

    def loop() -> None:
        h, out = torch.zeros(R, H), []
        for t in range(T):
            h = cell(x[:, t], h)
            out.append(h)
        torch.stack(out, 1).sum().backward()

    fn = fused if how == "nn_GRU_fused" else loop
    fn()
    _run(benchmark, fn, rounds=10)


# ---- 5. MATD3 update: TorchRL TD3Loss (vmapped critics) vs the same update in plain torch ---------------
@pytest.mark.parametrize("how", ["torchrl_TD3Loss", "plain_torch"])
def test_matd3_update(benchmark, torch_threads, how: str) -> None:
    pytest.importorskip("gymnasium_robotics", reason="MaMuJoCo needs the [marl] extra")
    import copy

    from gymgen.agents.marl import matd3

    torch_threads(1)
    make = lambda: gymgen.parallel_env("gymgen/MaMuJoCo-HalfCheetah-2x3-v0")  # noqa: E731
    env = ParallelEnvAdapter(make, num_envs=2, max_episode_steps=1000, seed=0)
    batch = 64 if benchmark.disabled else 256
    t = matd3.trainer(env, matd3.MATD3Config(n_envs=2, warmup_steps=batch, batch_size=batch, eval_every_steps=10**9,
                                             updates_per_step=1e-9))
    t.train(batch)
    if how == "torchrl_TD3Loss":
        fn = t.update
    else:  # the same networks, losses and optimisers written out by hand
        actor, critic = t.actor.module, t.critic.module
        q1, q2 = critic, copy.deepcopy(critic)
        q1t, q2t, pit = copy.deepcopy(q1), copy.deepcopy(q2), copy.deepcopy(actor)
        oq = torch.optim.Adam([*q1.parameters(), *q2.parameters()], lr=1e-3)
        op = torch.optim.Adam(actor.parameters(), lr=5e-4)
        k = [0]

        def fn() -> None:
            d = t.replay.sample(batch)
            s, o, a = d["state"], d["agents", "observation"], d["agents", "action"]
            s2, o2, r = d["next", "state"], d["next", "agents", "observation"], d["next", "reward"]
            with torch.no_grad():
                a2 = (pit(o2) + (torch.randn_like(a) * 0.2).clamp(-0.5, 0.5)).clamp(-1, 1)
                y = r + 0.99 * (~d["next", "terminated"]) * torch.min(q1t(s2, a2), q2t(s2, a2))
            loss = (q1(s, a) - y).pow(2).mean() + (q2(s, a) - y).pow(2).mean()
            oq.zero_grad()
            loss.backward()
            oq.step()
            k[0] += 1
            if k[0] % 2 == 0:
                la = -q1(s, actor(o)).mean()
                op.zero_grad()
                la.backward()
                op.step()
                with torch.no_grad():
                    for m, mt in ((q1, q1t), (q2, q2t), (actor, pit)):
                        for p, pt in zip(m.parameters(), mt.parameters()):
                            pt.lerp_(p, 0.005)
    fn()
    _run(benchmark, fn, rounds=30)
    t.close()
