"""The extension points later agents (MAST, Kaleidoscope) build on: the layer factory with roles and
per-row indices, parameter sharing, pluggable operator/estimator/replay/regularisers, critic ensembles."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gymgen.agents.marl import matd3, qmix
from gymgen.agents.marl.episodes import DualReplay, EpisodeReplay
from gymgen.agents.marl.layers import GroupedLinear, SharedLinear, linear_factory
from gymgen.agents.marl.nets import GroupedGRU, SharedGRU
from gymgen.agents.marl.targets import NStep, SoftMellowmax

TINY = dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=64, episodes_per_update=1.0, rnn_hidden=16,
            mixing_embed=8, hypernet_hidden=16, eval_every_steps=10**9, eval_episodes=4)


def test_grouped_linear_is_one_linear_per_group_on_both_index_paths():
    torch.manual_seed(0)
    layer = GroupedLinear(5, 3, n_groups=4)
    x = torch.randn(7, 4, 5)
    aligned = layer(x, torch.arange(4))
    for g in range(4):
        ref = x[:, g] @ layer.weight[g].T + layer.bias[g]
        assert torch.allclose(aligned[:, g], ref, atol=1e-6)
    assert torch.allclose(layer(x), aligned)
    per_row = torch.randint(0, 4, (7, 4))  # e.g. unit types that differ per battle
    out = layer(x, per_row)
    for b in range(7):
        for i in range(4):
            g = int(per_row[b, i])
            assert torch.allclose(out[b, i], x[b, i] @ layer.weight[g].T + layer.bias[g], atol=1e-6)
    with pytest.raises(ValueError, match="needs an index"):
        layer(torch.randn(2, 3, 5))


def test_grouped_gru_index_maps_agents_to_shared_weight_sets():
    torch.manual_seed(0)
    grouped = GroupedGRU(6, 8, n_groups=2)
    x = torch.randn(3, 5, 3, 6)
    x[:, :, 2] = x[:, :, 0]
    y, h = grouped(x, None, torch.tensor([0, 1, 0]))  # agents 0 and 2 share weight set 0
    # same weights and inputs: equal up to BLAS rounding (rows of one batched matmul may take different kernels)
    assert torch.allclose(y[:, :, 0], y[:, :, 2], atol=1e-6) and not torch.allclose(y[:, :, 0], y[:, :, 1])
    alone, _ = grouped(x[:, :, :2], None)  # without an index agent i uses set i
    assert torch.allclose(y[:, :, :2], alone, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(N,\) = \(3,\)"):
        grouped(x, None, torch.zeros(3, 5, 3, dtype=torch.long))


def test_grouped_gru_matches_nn_gru_per_agent():
    torch.manual_seed(0)
    grouped = GroupedGRU(6, 8, n_groups=2)
    x = torch.randn(3, 5, 2, 6)
    h0 = torch.randn(3, 2, 8)
    y, h = grouped(x, h0)
    (y.square().sum() + h.sum()).backward()
    for i in range(2):
        ref = nn.GRU(6, 8, batch_first=True)
        with torch.no_grad():
            ref.weight_ih_l0.copy_(grouped.w_ih[i]), ref.weight_hh_l0.copy_(grouped.w_hh[i])
            ref.bias_ih_l0.copy_(grouped.b_ih[i]), ref.bias_hh_l0.copy_(grouped.b_hh[i])
        y_ref, h_ref = ref(x[:, :, i], h0[:, i].unsqueeze(0).contiguous())
        assert torch.allclose(y[:, :, i], y_ref, atol=1e-5) and torch.allclose(h[:, i], h_ref[0], atol=1e-5)
        (y_ref.square().sum() + h_ref.sum()).backward()  # each agent's gradient reaches only its own weight set
        assert torch.allclose(grouped.w_ih.grad[i], ref.weight_ih_l0.grad, atol=1e-4)
        assert torch.allclose(grouped.w_hh.grad[i], ref.weight_hh_l0.grad, atol=1e-4)
    shared_y, _ = SharedGRU(6, 8)(x, None)
    assert shared_y.shape == y.shape


def test_sharing_switch_picks_the_layers():
    assert isinstance(linear_factory("full", 3)(4, 2, role="agent.fc1"), SharedLinear)
    assert isinstance(linear_factory("full+id", 3)(4, 2, role="agent.fc1"), SharedLinear)
    assert linear_factory("none", 3)(4, 2, role="agent.fc1").n_groups == 3
    with pytest.raises(ValueError, match="sharing"):
        linear_factory("some", 3)


class RecordingLinear(SharedLinear):
    """A user layer: records the role it was built for and the index it is called with."""

    built: list[str] = []
    indices: list[tuple] = []

    def __init__(self, i, o, role):
        super().__init__(i, o)
        RecordingLinear.built.append(role)

    def forward(self, x, index=None):
        RecordingLinear.indices.append(None if index is None else tuple(index.shape))
        return super().forward(x)


def test_layer_factory_builds_every_agent_and_mixer_layer_and_receives_the_index():
    RecordingLinear.built, RecordingLinear.indices = [], []
    type_index = lambda obs: (obs[..., -1] > 0.5).long()  # noqa: E731 - a per-row "unit type" map
    cfg = qmix.QMIXConfig(**TINY, make_linear=lambda i, o, *, role: RecordingLinear(i, o, role), group_index=type_index,
                          post_rnn=(16,))
    t = qmix.trainer("gymgen/SMACLite-3m-v0", cfg)
    assert {"agent.fc1", "agent.post.0", "agent.out", "mixer.hyper_w1.0", "mixer.hyper_w1.1", "mixer.hyper_w2.0",
            "mixer.hyper_w2.1", "mixer.hyper_b1.0", "mixer.v.0", "mixer.v.1"} == set(RecordingLinear.built)
    t.train(240)
    agent_calls = [s for s in RecordingLinear.indices if s is not None]
    assert agent_calls and all(len(s) == 3 for s in agent_calls)  # (B, T, N) per-row indices reached the agent layers
    t.close()


def test_pluggable_operator_estimator_replay_and_regulariser():
    calls = {"reg": 0}

    def l1(loss_module, batch, losses):
        calls["reg"] += 1
        assert "loss_td" in losses.keys()
        return 1e-4 * sum(p.abs().sum() for p in loss_module.agent.parameters())

    def dual(cfg, device, generator):
        return DualReplay(EpisodeReplay(cfg.buffer_episodes, device, generator), EpisodeReplay(8, device, generator), 0.5)

    cfg = qmix.QMIXConfig(**TINY, target_operator=SoftMellowmax(omega=5.0), return_estimator=NStep(3), replay=dual,
                          regularizers={"l1": l1})
    t = qmix.trainer("gymgen/SMACLite-3m-v0", cfg)
    t.train(320)
    assert calls["reg"] == t.updates > 0
    assert "loss_l1" in t.last_losses and t.last_losses["loss_l1"] > 0
    assert isinstance(t.replay, DualReplay) and len(t.replay.recent) <= 8
    assert repr(t.loss.target_operator).startswith("SoftMellowmax") and repr(t.loss.return_estimator) == "NStep(3)"
    t.close()


def test_dual_replay_mixes_the_recent_fraction():
    def episodes(value, n):
        from tensordict import TensorDict

        return TensorDict({"x": torch.full((n, 3), float(value))}, batch_size=(n, 3))

    main, recent = EpisodeReplay(100), EpisodeReplay(4)
    dual = DualReplay(main, recent, 0.25)
    dual.extend(episodes(0, 50))
    dual.extend(episodes(1, 4))
    batch = dual.sample(40)
    assert batch.batch_size[0] == 40 and (batch["x"][:10] == 1).all()  # the first quarter: only recent episodes
    with pytest.raises(ValueError, match="recent_fraction"):
        DualReplay(main, recent, 1.5)


def test_matd3_critic_ensemble_reductions():
    from gymgen.agents.marl.matd3 import REDUCTIONS

    q = torch.tensor([[1.0, 5.0], [3.0, 2.0], [2.0, 9.0]])
    assert REDUCTIONS["min"](q).tolist() == [1.0, 2.0]
    assert REDUCTIONS["mean"](q).tolist() == pytest.approx([2.0, 16.0 / 3])
    assert REDUCTIONS["first"](q).tolist() == [1.0, 5.0]
    with pytest.raises(ValueError, match="target_reduction"):
        matd3.MATD3Config(target_reduction="max")
