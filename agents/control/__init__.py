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

Speed (tests/benchmarks/test_control.py, one thread, one TD3 cycle = 2 critic + 1 actor update, batch
256, machine load ~5 on 2 cores): eager TorchRL takes 1.7x (width 256) to 3.4x (width 64) the time of the
same update in plain torch. The gap is a fixed ~7 ms of Python per update: TensorDictModule writes every
output through ``TensorDict.from_any``, which calls ``importlib.util.find_spec("pandas")`` on each call
(a file-system lookup when pandas is absent), plus parameter swapping (``to_module``) and tensordict
``select``/``expand``/``clone``/``step_mdp``. ``torch.vmap`` vs ``deactivate_vmap`` makes no consistent
difference at these sizes. Putting the loss functions under ``torch.compile`` (``compile=True``; ~20 s
of compilation per trainer) removes that overhead: 0.8x (width 64) to 1.2x (width 256) of plain torch.
In the full training loop (replay sampling, collector, target updates) compile gains less (~1.1x at
width 64), so it is off by default.

Reconstruction choices for NE are listed in ``ne.py``'s docstring; for ReDo in ``redo.py``; Reset is a
full reset (all layers) in ``reset.py``.
"""
