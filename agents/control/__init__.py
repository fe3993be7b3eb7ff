"""Control agents (``gymgen.agents.control``): TD3 and SAC baselines and the plasticity methods ReDo, Reset
and Neuroplastic Expansion (NE), all on TorchRL, for gymgen's ``control`` family (or any Gymnasium env with
a bounded ``Box`` action space).

One API per method module (``td3``, ``sac``, ``redo``, ``reset``, ``ne``): a config dataclass
(``TD3Config``, ...; CPU-sized defaults, ``Config.paper()`` for the paper scale), ``train(env, cfg) ->
policy`` with ``policy.act(obs)``, ``policy.history`` (loss and plasticity metrics every ``log_every`` env
steps) and ``policy.resume(n)``. Leaderboard ids ``control.td3``, ``control.sac``, ``control.redo``,
``control.reset``, ``control.ne`` (``leaderboard.py``); curves and tables from a store: ``report.py``.

TorchRL pieces: ``TD3Loss`` / ``SACLoss`` (two independently initialised Q nets stacked by the loss),
``SoftUpdate``, ``TensorDictReplayBuffer`` over ``LazyTensorStorage`` (with ``common.ReviewSampler``, a
``RandomSampler`` that can draw from the oldest part of the buffer), ``torchrl.collectors.Collector`` over
``GymWrapper``, ``Actor`` / ``ProbabilisticActor`` / ``ValueOperator`` modules, ``AdditiveGaussianModule``
exploration. Shared pieces: ``common`` (config base, loop, policy), ``nets`` (MLPs), and the
family-neutral sparse machinery in ``gymgen.agents.sparse`` (masks, Erdős–Rényi densities, grow/drop,
neuron surgery, FLOPs), plus ``gymgen.plasticity`` for the metrics.

Speed (tests/benchmarks/test_control.py, one thread): at width 256 TorchRL's ``TD3Loss`` cycle runs at
plain-torch speed (within noise; ``torch.vmap`` over the Q nets helps); at width 64 the per-call
tensordict overhead dominates and TorchRL takes ~2.3x the time of plain torch, which ``compile=True``
(``torch.compile`` of the loss functions) brings close to plain in the benchmark but only to ~1.1x in the
full training loop, where replay sampling and the collector add their own overhead.

Reconstruction choices for NE are listed in ``ne.py``'s docstring; for ReDo in ``redo.py``; Reset is a
full reset (all layers) in ``reset.py``.
"""
