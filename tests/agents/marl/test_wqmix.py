"""Weighted QMIX: targets from Q* at QMIX's greedy actions, the OW and CW weights and both losses against hand
computation on a one-step, two-agent batch; a tiny OW and CW run through the real Collector; bad settings."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from gymgen.agents.marl import wqmix
from gymgen.agents.marl.targets import TDLambda

from test_training import TINY_Q, _moved, _params


class FixedQ(nn.Module):
    """An 'agent net' returning given utilities ``(E, T + 1, N, A)`` whatever its input."""

    def __init__(self, q: list) -> None:
        super().__init__()
        self.register_buffer("q", torch.tensor(q, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(()))  # something to differentiate

    def forward(self, x: torch.Tensor, h0=None, index=None):
        return (self.q + self.bias).expand(x.shape[0], *self.q.shape), None


class SumMixer(nn.Module):
    def forward(self, q: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        return q.sum(-1)


def _batch() -> TensorDict:
    # one episode, one real step (t = 0) and its next state (t = 1); 2 agents, 2 actions, both take action 0
    E, T1, N, A = 1, 2, 2, 2
    return TensorDict({
        "obs": torch.zeros(E, T1, N, 3), "state": torch.zeros(E, T1, 4),
        "action": torch.zeros(E, T1, N, dtype=torch.long),
        "alive": torch.ones(E, T1, N, dtype=torch.bool), "avail": torch.ones(E, T1, N, A, dtype=torch.bool),
        "reward": torch.ones(E, T1, N), "filled": torch.tensor([[True, False]]),
        "terminated": torch.zeros(E, T1, dtype=torch.bool)}, batch_size=[E, T1])


# QMIX utilities: at t=0 the taken actions (0, 0) give 3 + 2 = 5, greedy is (0, 1); at t=1 greedy is (0, 1)
Q = [[[3.0, 0.0], [2.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]]


def _loss(weighting: str, central_q: list, double_q: bool = True, alpha: float = 0.1) -> wqmix.WeightedQMIXLoss:
    return wqmix.WeightedQMIXLoss(FixedQ(Q), SumMixer(), FixedQ(central_q), SumMixer(), weighting=weighting, alpha=alpha,
                                  double_q=double_q, n_actions=2, gamma=0.5, last_action=False, agent_id=False,
                                  return_estimator=TDLambda(0.0))


def test_targets_read_q_star_at_qmix_greedy_actions_and_ow_weights_by_hand():
    # Q* utilities at t=1: agent 0 [5, 7], agent 1 [2, 9]; QMIX's greedy (0, 1) -> 5 + 9 = 14 (Q*'s own max: 16)
    central = [[[1.0, 1.0], [1.0, 1.0]], [[5.0, 7.0], [2.0, 9.0]]]
    out = _loss("ow", central)(_batch())
    y = 1.0 + 0.5 * 14.0  # team reward 1 (mean over the live agents) + gamma * Q*_target(s', u'*)
    assert float(out["target_mean"]) == pytest.approx(y)
    # Q_tot = 5 < y: OW keeps weight 1; loss_td = 0.5 (5 - 8)^2, loss_central = 0.5 (2 - 8)^2
    assert float(out["full_weight_fraction"]) == 1.0
    assert float(out["loss_td"].detach()) == pytest.approx(0.5 * (5 - y) ** 2)
    assert float(out["loss_central"].detach()) == pytest.approx(0.5 * (2 - y) ** 2)
    # an overestimating Q_tot (QMIX utilities + 10 each) is down-weighted to alpha
    over = _loss("ow", central, alpha=0.25)
    over.agent.q[0] += 10.0
    out = over(_batch())
    assert float(out["full_weight_fraction"]) == 0.0
    assert float(out["loss_td"].detach()) == pytest.approx(0.25 * 0.5 * (25 - y) ** 2)


def test_cw_weights_by_hand():
    # t=0: taken (0, 0) is not QMIX's greedy (0, 1); Q*(s, u^*) = qc[0][0] + qc[1][1]
    low = [[[1.0, 1.0], [1.0, 1.0]], [[5.0, 7.0], [2.0, 9.0]]]  # Q*(s, u^*) = 2 < y = 8 -> weight 1
    high = [[[1.0, 1.0], [1.0, 20.0]], [[5.0, 7.0], [2.0, 9.0]]]  # Q*(s, u^*) = 21 > y -> weight alpha
    y = 8.0
    assert float(_loss("cw", low)(_batch())["full_weight_fraction"]) == 1.0
    out = _loss("cw", high, alpha=0.5)(_batch())
    assert float(out["full_weight_fraction"]) == 0.0
    assert float(out["loss_td"].detach()) == pytest.approx(0.5 * 0.5 * (5 - y) ** 2)
    # when the taken joint action is QMIX's greedy one, CW keeps weight 1 whatever Q* says
    greedy = _batch()
    greedy["action"][0, 0, 1] = 1
    out = _loss("cw", high, alpha=0.5)(greedy)
    assert float(out["full_weight_fraction"]) == 1.0
    assert float(out["loss_td"].detach()) == pytest.approx(0.5 * (3 + 4 - y) ** 2)


def test_without_double_q_the_greedy_action_comes_from_the_target_qmix_net():
    central = [[[1.0, 1.0], [1.0, 1.0]], [[5.0, 7.0], [2.0, 9.0]]]
    loss = _loss("ow", central, double_q=False)
    loss.target_agent.q[1] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # target greedy (1, 0) -> 7 + 2 = 9
    assert float(loss(_batch())["target_mean"]) == pytest.approx(1.0 + 0.5 * 9.0)


@pytest.mark.parametrize("weighting", wqmix.WEIGHTINGS)
def test_wqmix_trains_on_tiny_smaclite(weighting):
    cfg = wqmix.WQMIXConfig(**TINY_Q, weighting=weighting, central_rnn_hidden=16, central_embed=16, central_layers=2, seed=3)
    t = wqmix.trainer("gymgen/SMACLite-3m-v0", cfg)
    before, before_c = _params(t.loss.agent), _params(t.loss.central_mixer)
    t.train(320)
    assert t.updates >= 5 and _moved(t.loss_history), t.loss_history
    assert not torch.equal(before, _params(t.loss.agent)) and not torch.equal(before_c, _params(t.loss.central_mixer))
    assert math.isfinite(t.last_losses["loss_central"]) and 0.0 <= t.last_losses["full_weight_fraction"] <= 1.0
    # acting uses QMIX's own agent net (the one the Collector's policy holds)
    assert t.actor.net is t.loss.agent
    row = t.evaluate()
    assert 0.0 <= row["test_win_rate"] <= 1.0 and row["test_episodes"] == 4
    t.close()


def test_bad_wqmix_settings_name_the_value():
    with pytest.raises(ValueError, match="'hysteretic'"):
        wqmix.WQMIXConfig(weighting="hysteretic")
    with pytest.raises(ValueError, match="weighting_alpha"):
        wqmix.WQMIXConfig(weighting_alpha=0.0)
    with pytest.raises(ValueError, match="central_embed"):
        wqmix.WQMIXConfig(central_embed=0)
