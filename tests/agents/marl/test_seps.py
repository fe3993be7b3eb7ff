"""SePS (selective parameter sharing): k-means, the VAE's loss, cluster-shared agent nets, end-to-end training."""

from __future__ import annotations

import pytest
import torch

import gymgen
from gymgen.agents.marl import seps
from gymgen.agents.marl.layers import GroupedLinear, SharedLinear

TINY = dict(n_envs=16, collect_steps=5, batch_episodes=4, buffer_episodes=32, rnn_hidden=16, eval_episodes=8,
            eval_every_steps=10**9, pretrain_env_steps=320, vae_updates=50, vae_batch=64, vae_hidden=16)


def test_kmeans_recovers_separated_groups_with_canonical_labels():
    gen = torch.Generator().manual_seed(0)
    pts = torch.tensor([[5.0, 5.0], [0.0, 0.1], [5.1, 4.9], [0.1, 0.0], [-0.1, 0.0]])
    assert seps.kmeans(pts, 2, gen).tolist() == [0, 1, 0, 1, 1]  # the first agent's cluster is 0
    assert seps.kmeans(pts, 3, gen).unique().numel() == 3
    assert seps.kmeans(pts, 9, gen).tolist() == [0, 1, 2, 3, 4]  # more clusters than agents: one each
    assert seps.kmeans(torch.zeros(4, 2), 2, gen).unique().numel() <= 2  # identical points do not crash


def test_vae_loss_is_reconstruction_plus_weighted_kl():
    torch.manual_seed(0)
    vae = seps.AgentVAE(n_agents=3, obs_dim=2, n_actions=4, embed_dim=2, hidden=8)
    agent, obs, action = torch.tensor([0, 2]), torch.randn(2, 2), torch.tensor([1, 3])
    target = torch.randn(2, 3)
    with torch.no_grad():
        vae.encoder.weight.zero_()
        vae.encoder.bias.copy_(torch.tensor([0.5, -0.5, 0.0, 0.0]))  # mean (0.5, -0.5), log-variance 0: sigma 1
    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    z = torch.tensor([0.5, -0.5]) + torch.randn(2, 2, generator=gen_b)
    a = torch.nn.functional.one_hot(action, 4).float()
    recon = (vae.decoder(torch.cat([obs, a, z], -1)) - target).pow(2).sum(-1)
    kl = 0.5 * (0.25 + 0.25)  # 0.5 * sum(mu^2 + 1 - 1 - 0)
    expected = (recon + 0.1 * kl).mean()
    assert vae.loss(agent, obs, action, target, 0.1, gen_a).item() == pytest.approx(expected.item(), rel=1e-5)


def test_agents_in_one_cluster_share_weights_and_the_mixer_stays_shared():
    make = seps.cluster_linear(2)
    assert isinstance(make(4, 3, role="agent.fc1"), GroupedLinear) and isinstance(make(4, 3, role="mixer.hyper_w1.0"), SharedLinear)
    tr = seps.trainer("gymgen/SMACLite-3m-v0", seps.SePSConfig(**TINY, n_clusters=2))
    labels = tr.clusters["labels"]
    assert labels.shape == (3,) and set(labels.tolist()) <= {0, 1} and tr.clusters["env_steps"] >= 320
    net = tr.loss.agent
    assert net.fc1.weight.shape[0] == int(labels.max()) + 1 and net.rnn.w_ih.shape[0] == int(labels.max()) + 1
    x = torch.randn(2, 4, 1, net.fc1.in_features).expand(2, 4, 3, -1)  # the same input for every agent
    q, _ = net(x, None, labels)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    for i in range(3):
        for j in range(3):
            assert torch.allclose(q[:, :, i], q[:, :, j]) == bool(same[i, j]), (labels.tolist(), i, j)


def test_seps_trains_end_to_end_and_one_cluster_is_fups_id():
    tr = seps.trainer("gymgen/SMACLite-3m-v0", seps.SePSConfig(**TINY, n_clusters=1, seed=1))
    assert tr.clusters["labels"].tolist() == [0, 0, 0]
    tr.train(480, evaluate_at_end=True)
    row = tr.history[-1]
    assert tr.updates > 0 and 0.0 <= row["test_win_rate"] <= 1.0
    assert row["seps_clusters"] == 1.0 and row["seps_pretrain_env_steps"] >= 320 and row["seps_vae_loss"] > 0


def test_seps_runs_through_the_harness_and_rejects_bad_configs():
    from gymgen.leaderboards.agents import AGENTS, availability
    from gymgen.leaderboards.contract import Budget
    from gymgen.leaderboards.runner import RunSpec, run_one

    assert availability()["marl.seps"] is None
    budget = Budget(total=200, eval_every=200, unit="env_steps", eval_episodes=2).as_dict()
    res = run_one(RunSpec("t", "marl.seps", AGENTS["marl.seps"], TINY, "h", "gymgen/PushBatched-v0", {},
                          "gymgen/PushBatched-v0", 0, 123, budget))
    assert res["status"] == "ok", res["error"]
    assert res["points"][-1]["metrics"]["test_length"] == 25
    with pytest.raises(ValueError, match="full\\+id"):
        seps.SePSConfig(sharing="none")
    with pytest.raises(ValueError, match="n_clusters"):
        seps.SePSConfig(n_clusters=0)
    with pytest.raises(ValueError, match="kl_weight"):
        seps.SePSConfig(kl_weight=float("nan"))
    env = gymgen.make_batched("gymgen/SMACLite-3m-v0", batch_size=4)
    data, steps = seps.random_transitions(env, 40, torch.Generator().manual_seed(0))
    assert data["obs"].shape[0] == data["agent"].shape[0] > 0 and data["reward"].dim() == 1 and steps == 40
