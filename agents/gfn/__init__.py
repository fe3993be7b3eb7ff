"""GFlowNet reference agents (``gymgen.agents.gfn``), one module per method, each with a config
dataclass and ``train(env, cfg) -> policy`` (``policy.act(obs)``, ``policy.sample(n)``,
``policy.counters``, ``policy.history``, ``policy.exact_metrics()``):

- baselines: ``tb`` (Trajectory Balance), ``db`` (Detailed Balance), ``subtb`` (Sub-Trajectory Balance),
  ``fm`` (Flow Matching);
- seed papers: ``bn`` (Bifurcated GFlowNets), ``rpe`` (Rectified Policy Evaluation), ``qgfn`` (GFN + Q
  mixing), ``egfn`` (evolutionary population + prioritized replay), ``rbs`` (goal-conditioned GFN with
  retrospective backward synthesis; also plain and hindsight-relabelling modes).

The TorchRL pieces, written once and used by every agent (and usable in your own TorchRL loop; see
``docs/gfn_torchrl.md``): ``modules`` (``ForwardPolicy``, a ``ProbabilisticActor`` with a masked
categorical over the forward mask; ``QGFNPolicy``), ``objectives`` (every objective as a
``torchrl.objectives.LossModule`` over documented tensordict keys), ``replay`` (``torchrl.data``
buffers of whole trajectories), ``sampler`` (the fused fast path producing the same layout as
``env.rollout``), ``nets`` (one MLP, one pass -> PF, PB, log F), ``evaluate`` (exact metrics, modes),
``common`` (configs, budgets, the training loop), ``leaderboard`` (``gfn.*`` factories).

Example::

    import gymgen
    from gymgen.agents.gfn import tb
    env = gymgen.make_batched("gymgen/HyperGrid-v0", ndim=2, height=8, batch_size=1)
    policy = tb.train(env, tb.TBConfig(n_iterations=200, batch_size=64))
    print(policy.exact_metrics()["tv_exact"], policy.counters)
"""
