"""Multi-agent reference agents (``gymgen.agents.marl``) on TorchRL, one module per method, each with a
config dataclass, ``train(env, cfg) -> policy`` and a resumable ``trainer(env, cfg)``:

- ``iql`` (independent recurrent DQN), ``vdn`` (sum mixer), ``qmix`` (monotonic hypernetwork mixer):
  pymarl2's conventions (GRU agents, double-Q masked TD(lambda) targets over whole episodes);
- ``wqmix``: Weighted QMIX (OW / CW): QMIX's utilities weighted towards better joint actions by an
  unrestricted central ``Q*`` (one of the value-based methods MAST sparsifies);
- ``res_qmix``: RES-QMIX (regularized softmax): a softmax bootstrap over counterfactual joint actions and a
  regulariser towards observed returns, against QMIX's overestimation (with QMIX and WQMIX, the methods MAST sparsifies);
- ``mappo`` / ``ippo``: PPO with a centralised / local critic on TorchRL's ``MAPPOLoss`` / ``IPPOLoss``
  (``MaskedCategorical`` or ``TanhNormal`` actors, ``MultiAgentGAE``, ``PopArtValueNorm``);
- ``matd3``: TD3 with per-agent actors and a centralised critic on TorchRL's ``TD3Loss`` (MaMuJoCo);
- ``seps``: selective parameter sharing on the QMIX core (agents clustered by a VAE; one weight set per cluster).

Every agent trains on a TorchRL env in gymgen's multi-agent layout (``("agents", "observation")``,
``("agents", "action_mask")``, ``("agents", "action")``, ``("agents", "reward")``, ``"state"``, root
``done``), through a TorchRL ``Collector``: gymgen's batched envs (``gymgen.make_batched``, a thousand
battles at once; or just pass the env id) or ``adapter.ParallelEnvAdapter`` around any PettingZoo
``ParallelEnv`` (mpe2, MaMuJoCo, heterogeneous observation/action spaces). ``device=`` in every config.
Leaderboard ids ``marl.iql``, ``marl.vdn``, ``marl.qmix``, ``marl.wqmix``, ``marl.res_qmix``, ``marl.mappo``, ``marl.ippo``, ``marl.matd3``
and ``marl.random`` (``leaderboard.py``).

Shared pieces, written once: ``layers`` (the layer factory, per-agent/grouped linear layers), ``nets``
(recurrent agent, QMIX/VDN mixers), ``targets`` (target operators, return estimators), ``episodes``
(episode assembly and replay), ``collect`` (env wrapping for recurrent policies, batched evaluation),
``trainer`` (the training loop base), ``value_based`` / ``ppo`` (the method families), ``adapter``,
``scripted`` (Spread's landmark metric and scripted assignment team), ``leaderboard``.

Extension hooks (for MAST, Kaleidoscope and your own variants; none needs a fork)
--------------------------------------------------------------------------------
- **Layer factory** (``cfg.make_linear``): every linear layer of the agent nets, mixers, actors and
  critics is built by ``make_linear(in_features, out_features, *, role)``; ``role`` names the layer
  (``agent.fc1``, ``agent.post.k``, ``agent.out``, ``mixer.hyper_w1.k``, ``mixer.hyper_w2.k``,
  ``mixer.hyper_b1.0``, ``mixer.v.k``, ``actor.k``, ``critic.k``). A sparse (MAST: per-weight masks,
  RigL/SET) or masked (Kaleidoscope: one shared weight, one soft-threshold mask per agent) layer plugs
  in here. The GRU core is a plain ``nn.GRU`` (``rnn``), maskable by parameter name.
- **Per-row index** (``cfg.group_index``): layers are called ``layer(x, index)``; ``index`` is the agent
  index by default, or any ``obs (..., N, D) -> (..., N)`` long map, e.g. SMACv2 unit type from the
  observation's one-hot tail (Kaleidoscope's per-type masks). ``layers.GroupedLinear`` shows both paths.
- **Parameter sharing** (``cfg.sharing``): ``"none"`` (per-agent weights), ``"full"``, ``"full+id"``.
- **Target operator** (``cfg.target_operator``): ``targets.MaxOperator(double_q)`` (default, double Q)
  or ``targets.SoftMellowmax(omega, alpha)`` (MAST), or any ``op(q_target, q_online, avail)``.
- **Return estimator** (``cfg.return_estimator``): ``targets.TDLambda(lam)`` (default 0.6),
  ``targets.NStep(n)``, or any ``est(reward, terminated, filled, next_value, gamma)``; MAST's hybrid
  TD(lambda) switches or mixes these.
- **Replay** (``cfg.replay``): ``(cfg, device, generator) -> Replay`` with ``extend``/``sample``/``len``;
  ``episodes.DualReplay(main, recent, recent_fraction)`` is MAST's dual buffer.
- **Loss regularisers** (``cfg.regularizers``): ``{name: fn(loss_module, batch, losses) -> scalar}``;
  each adds ``loss_<name>`` to the TD loss (Kaleidoscope's mask-diversity loss, with its adaptive
  coefficient computed from ``losses["loss_td"]``). Periodic resets: call them between
  ``trainer.train(n)`` chunks (the trainer is resumable).
- **MATD3 critic ensemble** (``MATD3Config.n_critics``, ``target_reduction`` ``"min"``/``"mean"``,
  ``actor_reduction`` ``"first"``/``"mean"``/``"min"``): Kaleidoscope's 5 critics with a min target and
  a mean actor objective are ``n_critics=5, target_reduction="min", actor_reduction="mean"``.
"""

from gymgen.agents.marl import ippo, iql, mappo, matd3, qmix, res_qmix, vdn, wqmix  # noqa: F401

__all__ = ["iql", "vdn", "qmix", "wqmix", "res_qmix", "mappo", "ippo", "matd3"]
