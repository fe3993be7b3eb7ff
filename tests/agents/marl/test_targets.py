"""The value-based target: TD(lambda) + double Q + action masks on a hand-computed two-step episode,
dead agents out of the loss, and the pluggable operators/estimators."""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from gymgen.agents.marl.nets import QMixer, RecurrentQNet, VDNMixer
from gymgen.agents.marl.layers import dense_linear
from gymgen.agents.marl.targets import MaxOperator, NStep, SoftMellowmax, TDLambda
from gymgen.agents.marl.value_based import ValueDecompositionLoss


class TableQ(nn.Module):
    """A stand-in agent network returning a fixed utility table ``(1, T+1, N, A)`` whatever its input."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table.clone())
        self.hidden = 1

    def forward(self, x, h0=None, index=None):
        return self.table.expand(x.shape[0], *self.table.shape[1:]), None


def two_step_episode(terminated: bool) -> TensorDict:
    """One episode, 2 agents, 3 actions, 2 transitions (slots 0, 1) and the final observation (slot 2)."""
    T1, N, A = 3, 2, 3
    avail = torch.ones(1, T1, N, A, dtype=torch.bool)
    avail[0, 1, 0, 1] = False  # at t=1 agent 0 may not take action 1
    avail[0, 2, 1, 0] = False  # at t=2 agent 1 may not take action 0
    return TensorDict({
        "obs": torch.zeros(1, T1, N, 4), "avail": avail, "alive": torch.ones(1, T1, N, dtype=torch.bool),
        "state": torch.zeros(1, T1, 5), "action": torch.tensor([[[0, 2], [2, 1], [0, 0]]]),
        "reward": torch.tensor([[[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]]),
        "terminated": torch.tensor([[False, terminated, False]]), "filled": torch.tensor([[True, True, False]]),
    }, batch_size=(1, T1))


# utilities: online (used to pick the next action) and target (used to value it)
ONLINE = torch.tensor([[[[0.5, 0.1, 0.2], [0.3, 0.0, 0.7]],
                        [[1.0, 5.0, 3.0], [0.0, 2.0, 1.0]],
                        [[4.0, 0.0, 1.0], [9.0, 1.0, 2.0]]]])
TARGET = torch.tensor([[[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                        [[2.0, 9.0, 1.0], [0.5, 3.0, 4.0]],
                        [[6.0, 7.0, 0.0], [8.0, 1.5, 2.5]]]])


def make_loss(mixer, lam=0.6, gamma=0.9, double_q=True):
    loss = ValueDecompositionLoss(TableQ(ONLINE), mixer, n_actions=3, gamma=gamma, last_action=False, agent_id=False,
                                  target_operator=MaxOperator(double_q), return_estimator=TDLambda(lam))
    loss.target_agent = TableQ(TARGET)
    return loss


@pytest.mark.parametrize("terminated", [False, True])
def test_td_lambda_double_q_masked_target_by_hand(terminated):
    chosen, targets, mask = make_loss(VDNMixer()).td_terms(two_step_episode(terminated))
    # t=1 next state: agent 0 online legal {0, 2} -> argmax 2 (5.0 is illegal) -> target 1.0;
    #                 agent 1 online argmax 1 -> target 3.0.           V1 = 1.0 + 3.0 = 4.0
    # t=2 (final obs): agent 0 online argmax 0 -> target 6.0; agent 1 legal {1, 2} (9.0 illegal) -> argmax 2
    #                 -> target 2.5.                                   V2 = 6.0 + 2.5 = 8.5
    lam, g = 0.6, 0.9
    v1, v2 = 4.0, 8.5
    g1 = 2.0 + (0.0 if terminated else g * v2)  # last real step: truncation bootstraps, termination does not
    g0 = 1.0 + g * ((1 - lam) * v1 + lam * g1)
    assert torch.allclose(targets, torch.tensor([[g0, g1]])), (targets, g0, g1)
    # chosen: Q_tot = sum of the taken actions' online utilities (actions [0, 2] then [2, 1])
    assert torch.allclose(chosen, torch.tensor([[0.5 + 0.7, 3.0 + 2.0]]))
    assert mask.tolist() == [[True, True]]


def test_without_double_q_or_masks_the_target_differs():
    _, double_masked, _ = make_loss(VDNMixer()).td_terms(two_step_episode(False))
    _, plain_max, _ = make_loss(VDNMixer(), double_q=False).td_terms(two_step_episode(False))
    # plain masked max over the target net: V1 = max(2, 1) + max(0.5, 3, 4) = 6, V2 = max(6, 7, 0) + max(1.5, 2.5) = 9.5
    lam, g = 0.6, 0.9
    g1 = 2.0 + g * (7.0 + 2.5)
    g0 = 1.0 + g * ((1 - lam) * 6.0 + lam * g1)
    assert torch.allclose(plain_max, torch.tensor([[g0, g1]]))
    assert not torch.allclose(plain_max, double_masked)


def test_iql_targets_are_per_agent():
    _, targets, mask = make_loss(None, lam=0.0).td_terms(two_step_episode(False))
    # lambda 0: r + gamma * V_i(next); agent values at t=1: [1.0, 3.0], at t=2: [6.0, 2.5]
    expect = torch.tensor([[[1 + 0.9 * 1.0, 1 + 0.9 * 3.0], [2 + 0.9 * 6.0, 2 + 0.9 * 2.5]]])
    assert torch.allclose(targets, expect)
    assert mask.all()


def dead_agent_batch(n_agents=3, steps=6, dead_from=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    T1 = steps + 1
    alive = torch.ones(2, T1, n_agents, dtype=torch.bool)
    alive[:, dead_from:, 1] = False  # agent 1 dies during step dead_from - 1
    obs = torch.randn(2, T1, n_agents, 7, generator=g) * alive.unsqueeze(-1)
    avail = torch.ones(2, T1, n_agents, 4, dtype=torch.bool)
    avail[~alive] = torch.tensor([True, False, False, False])  # dead: only the no-op
    action = torch.randint(1, 4, (2, T1, n_agents), generator=g)
    action[~alive] = 0
    filled = torch.ones(2, T1, dtype=torch.bool)
    filled[:, -1] = False
    return TensorDict({"obs": obs, "avail": avail, "alive": alive, "state": torch.randn(2, T1, 9, generator=g),
                       "action": action, "reward": torch.rand(2, T1, n_agents, generator=g),
                       "terminated": torch.zeros(2, T1, dtype=torch.bool), "filled": filled}, batch_size=(2, T1))


@pytest.mark.parametrize("mixer", ["iql", "vdn", "qmix"])
def test_dead_agents_transitions_are_masked_out_of_the_loss(mixer):
    torch.manual_seed(0)
    net = RecurrentQNet(7 + 4, 4, make_linear=dense_linear, hidden=16)  # obs + one-hot last action
    mix = {"iql": None, "vdn": VDNMixer(), "qmix": QMixer(3, 9, embed=8, hypernet_hidden=16, make_linear=dense_linear)}[mixer]
    loss = ValueDecompositionLoss(net, mix, n_actions=4, gamma=0.99, last_action=True, agent_id=False)
    batch = dead_agent_batch()
    base = loss(batch)["loss_td"]
    # whatever a dead agent "sees", "does" or is "paid" after its death does not change the loss ...
    other = batch.clone()
    dead = ~other["alive"][..., 1]
    other["obs"][..., 1, :][dead] = torch.randn(int(dead.sum()), 7) * 5
    if mixer == "iql":
        other["reward"][..., 1][dead] = 100.0
    assert torch.allclose(loss(other)["loss_td"], base)
    # ... and no gradient reaches its utilities at those steps
    out, _ = net(loss.inputs(batch)[0])
    out.retain_grad()
    loss.agent = _Fixed(out)
    loss(batch)["loss_td"].backward()
    q_grad = out.grad
    assert torch.all(q_grad[:, :-1][..., 1, :][dead[:, :-1]] == 0)
    # control: changing a LIVE agent's observation does change the loss (the test can fail)
    live = batch.clone()
    live["obs"][:, 1, 0] += 3.0
    loss.agent = net
    assert not torch.allclose(loss(live)["loss_td"], base)


class _Fixed(nn.Module):
    def __init__(self, q):
        super().__init__()
        self.q = q

    def forward(self, x, h0=None, index=None):
        return self.q, None


def test_soft_mellowmax_limits_and_masks():
    q = torch.tensor([[1.0, 2.0, 10.0, 3.0]])
    avail = torch.tensor([[True, True, False, True]])
    sm = SoftMellowmax(omega=5.0, alpha=0.0)(q, q, avail)
    expect = math.log((math.exp(5 * 1) + math.exp(5 * 2) + math.exp(5 * 3)) / 3) / 5  # mellowmax over legal actions
    assert torch.allclose(sm, torch.tensor([expect]))
    assert float(SoftMellowmax(omega=1e4)(q, q, avail)) == pytest.approx(3.0, abs=1e-3)  # -> max over legal
    assert float(SoftMellowmax()(q, q, torch.zeros_like(avail))) == 0.0  # no legal action: 0


def test_nstep_by_hand_and_td_lambda_limits():
    r = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    v = torch.tensor([[10.0, 20.0, 30.0, 0.0]])
    term = torch.tensor([[False, False, False, False]])
    filled = torch.tensor([[True, True, True, False]])
    g = 0.5
    two = NStep(2)(r, term, filled, v, g)
    assert torch.allclose(two, torch.tensor([[1 + g * 2 + g * g * 20, 2 + g * 3 + g * g * 30, 3 + g * 30, 0.0]]))
    assert torch.allclose(NStep(1)(r, term, filled, v, g), TDLambda(0.0)(r, term, filled, v, g))
    mc = TDLambda(1.0)(r, term, filled, v, g)  # lambda 1: Monte Carlo, bootstrapped at the truncation
    assert torch.allclose(mc[0, 0], torch.tensor(1 + g * 2 + g * g * 3 + g**3 * 30))
