"""RES-QMIX: the softmax target over counterfactual joint actions and the return regulariser against hand
computation on a one-step, two-agent batch; beta -> inf is QMIX's double-Q target; illegal counterfactuals get
no weight; the QMIX mixer over a stack of joint actions; a tiny run through the real Collector; bad settings."""

from __future__ import annotations

import math

import pytest
import torch

from gymgen.agents.marl import res_qmix as res
from gymgen.agents.marl.layers import dense_linear
from gymgen.agents.marl.nets import QMixer
from gymgen.agents.marl.targets import TDLambda
from gymgen.agents.marl.value_based import ValueDecompositionLoss

from test_training import TINY_Q, _moved, _params
from test_wqmix import Q, FixedQ, SumMixer, _batch

# target utilities at t=1: agent 0 [5, 7], agent 1 [2, 9]; the online greedy joint action at t=1 is (0, 1)
TARGET_NEXT = torch.tensor([[5.0, 7.0], [2.0, 9.0]])


def _loss(beta: float, reg_lambda: float = 0.0) -> res.RegularizedSoftmaxLoss:
    loss = res.RegularizedSoftmaxLoss(FixedQ(Q), SumMixer(), beta=beta, reg_lambda=reg_lambda, n_actions=2, gamma=0.5,
                                      last_action=False, agent_id=False, return_estimator=TDLambda(0.0))
    loss.target_agent.q[1] = TARGET_NEXT
    return loss


def test_counterfactual_set_softmax_target_and_regulariser_by_hand():
    # counterfactuals around greedy (0, 1), rows (agent, action): (0,0) (0,1) (1,0) (1,1)
    # online scores (sum of online utilities [1, 0], [0, 1]): 2, 1, 1, 2; target values: 14, 16, 7, 14
    q = torch.tensor(Q[1]).unsqueeze(0)
    cf = res.counterfactual_utilities(q, torch.tensor([[[0], [1]]]))
    assert cf.tolist() == [[[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]]
    e = math.e
    soft = (14 * e**2 + 16 * e + 7 * e + 14 * e**2) / (2 * e**2 + 2 * e)  # beta = 1
    y = 1.0 + 0.5 * soft  # team reward 1 + gamma * softmax value
    loss = _loss(beta=1.0, reg_lambda=0.3)
    out = loss(_batch())
    assert float(out["target_mean"]) == pytest.approx(y)
    assert float(out["softmax_below_max"]) == pytest.approx(16.0 - soft)
    assert float(out["loss_td"].detach()) == pytest.approx(0.5 * (5 - y) ** 2)  # Q_tot(s, (0, 0)) = 3 + 2
    # G_0 = r_0 = 1 (the episode's only step): loss_res = lambda * 0.5 (5 - 1)^2
    assert float(out["return_mean"]) == pytest.approx(1.0)
    assert float(out["loss_res"].detach()) == pytest.approx(0.3 * 0.5 * 16.0)
    out["loss_res"].backward()  # the regulariser trains the online nets: d/d(bias) = 0.3 * (5 - 1) * 2 agents
    assert float(loss.agent.bias.grad) == pytest.approx(2.4)


def test_large_beta_is_qmix_double_q_target_and_small_beta_the_mean():
    qmix = ValueDecompositionLoss(FixedQ(Q), SumMixer(), n_actions=2, gamma=0.5, last_action=False, agent_id=False,
                                  return_estimator=TDLambda(0.0))
    qmix.target_agent.q[1] = TARGET_NEXT
    _, qmix_targets, _ = qmix.td_terms(_batch())  # 1 + 0.5 * (5 + 9)
    assert float(_loss(beta=1e4)(_batch())["target_mean"]) == pytest.approx(float(qmix_targets[0, 0]))
    mean = (14 + 16 + 7 + 14) / 4
    assert float(_loss(beta=1e-6)(_batch())["target_mean"]) == pytest.approx(1.0 + 0.5 * mean, rel=1e-5)


def test_illegal_counterfactuals_get_no_weight():
    batch = _batch()
    batch["avail"][0, 1, 0, 1] = False  # agent 0 may not take action 1 at t=1: value 16 leaves the set
    mean = (14 + 7 + 14) / 3
    assert float(_loss(beta=1e-6)(batch)["target_mean"]) == pytest.approx(1.0 + 0.5 * mean, rel=1e-5)
    scores, values = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 4.0]])
    none = torch.zeros(1, 2, dtype=torch.bool)
    assert res.softmax_value(values, scores, none, 1.0).tolist() == [0.0]  # no legal joint action: 0, not NaN


def test_discounted_returns_by_hand():
    reward = torch.tensor([[1.0, 2.0, 3.0, 5.0]])
    filled = torch.tensor([[True, True, True, False]])
    assert res.discounted_returns(reward, filled, 0.5).tolist() == [[1 + 1 + 0.75, 2 + 1.5, 3.0, 0.0]]


def test_qmix_mixer_over_a_stack_of_joint_actions_matches_one_at_a_time():
    torch.manual_seed(0)
    mixer = QMixer(3, 5, embed=8, hypernet_hidden=16, make_linear=dense_linear)
    q, state = torch.randn(2, 4, 6, 3), torch.randn(2, 4, 5)
    stacked = mixer(q, state)
    one_by_one = torch.stack([mixer(q[:, :, k], state) for k in range(6)], -1)
    assert stacked.shape == (2, 4, 6) and torch.allclose(stacked, one_by_one, atol=1e-5)
    with pytest.raises(ValueError, match="at least the dims of state"):
        mixer(torch.randn(4, 3), state)


@pytest.mark.parametrize("mixer", res.MIXERS)
def test_res_trains_on_tiny_smaclite(mixer):
    t = res.trainer("gymgen/SMACLite-3m-v0", res.RESConfig(**TINY_Q, seed=2), mixer=mixer)
    before = _params(t.loss.agent)
    t.train(320)
    assert t.updates >= 5 and _moved(t.loss_history), t.loss_history
    assert not torch.equal(before, _params(t.loss.agent))
    assert math.isfinite(t.last_losses["loss_res"]) and t.last_losses["softmax_below_max"] >= 0.0
    assert t.actor.net is t.loss.agent  # acting uses the trained agent net
    row = t.evaluate()
    assert 0.0 <= row["test_win_rate"] <= 1.0 and row["test_episodes"] == 4
    t.close()


def test_bad_res_settings_name_the_value():
    with pytest.raises(ValueError, match="res_beta.*0"):
        res.RESConfig(res_beta=0.0)
    with pytest.raises(ValueError, match="res_lambda.*-1"):
        res.RESConfig(res_lambda=-1.0)
    with pytest.raises(ValueError, match="double_q"):
        res.RESConfig(double_q=False)
    with pytest.raises(ValueError, match="target_operator"):
        res.RESConfig(target_operator=lambda qt, qo, av: qt.amax(-1))
    with pytest.raises(ValueError, match="'none'"):
        res.trainer("gymgen/SMACLite-3m-v0", res.RESConfig(**TINY_Q), mixer="none")
