"""VQ-Diffusion's mask-and-replace process: marginals match the schedule, the posterior is Bayes' rule,
the loss prefers the truth and decreases under training, the sampler reverses the chain."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gymgen.agents.video.diffusion import MaskReplaceDiffusion, vq_diffusion_schedule

K = 8


def _kernel(d: MaskReplaceDiffusion, s: int, t: int) -> torch.Tensor:
    """q(x_t | x_s) as a (K+1, K+1) matrix (rows: x_s)."""
    keep, uni, mask = d.coefficients(torch.tensor([s]), torch.tensor([t]))
    m = torch.zeros(K + 1, K + 1, dtype=torch.float64)
    m[:K, :K] = uni + torch.eye(K, dtype=torch.float64) * keep
    m[:K, K] = mask
    m[K, K] = 1.0
    return m


def test_schedule_is_vq_diffusions() -> None:
    s = vq_diffusion_schedule(100)
    assert s.T == 100 and s.abar[0] == 1 and s.gbar[0] == 0
    assert s.abar[1].item() == pytest.approx(0.99999) and s.abar[100].item() == pytest.approx(0.000009)
    assert s.gbar[1].item() == pytest.approx(0.000009) and s.gbar[100].item() == pytest.approx(0.99999)
    assert bool((s.abar[1:] <= s.abar[:-1]).all()) and bool((s.gbar[1:] >= s.gbar[:-1]).all())


def test_one_step_kernels_compose_to_the_marginal() -> None:
    d = MaskReplaceDiffusion(K, T=100)
    for t in (1, 37, 100):
        prod = torch.eye(K + 1, dtype=torch.float64)
        for u in range(1, t + 1):
            prod = prod @ _kernel(d, u - 1, u)
        assert torch.allclose(prod, _kernel(d, 0, t), atol=1e-12)
        assert torch.allclose(prod.sum(1), torch.ones(K + 1, dtype=torch.float64))


@pytest.mark.parametrize("t", [5, 50, 95])
def test_sampled_marginals_match_the_schedule(t: int) -> None:
    d = MaskReplaceDiffusion(K, T=100)
    g = torch.Generator().manual_seed(t)
    x0 = torch.randint(0, K, (4000, 50), generator=g)
    xt = d.q_sample(x0, torch.full((4000,), t), generator=g)
    keep, uni, mask = (c.item() for c in d.coefficients(torch.tensor([0]), torch.tensor([t])))
    n = x0.numel()
    for observed, expected in (((xt == x0).float().mean().item(), keep + uni), ((xt == K).float().mean().item(), mask),
                               (((xt != x0) & (xt != K)).float().mean().item(), (K - 1) * uni)):
        sd = (expected * (1 - expected) / n) ** 0.5
        assert abs(observed - expected) < 5 * sd + 1e-9, (t, observed, expected)
    # the replaced tokens are uniform over the other K - 1 classes
    other = xt[(xt != x0) & (xt != K)]
    if other.numel() > 1000:
        freq = torch.bincount(other, minlength=K).float() / other.numel()
        assert float((freq - 1 / K).abs().max()) < 0.02


def test_posterior_is_bayes_rule_for_any_skip() -> None:
    d = MaskReplaceDiffusion(K, T=100)
    for s, t, x0, xt in ((29, 30, 3, 5), (10, 30, 3, 3), (0, 7, 1, K), (40, 90, 6, K), (59, 60, 2, 2)):
        post = d.posterior(F.one_hot(torch.tensor([[x0]]), K).double(), torch.tensor([[xt]]), torch.tensor([t]), torch.tensor([s]))
        brute = _kernel(d, 0, s)[x0] * _kernel(d, s, t)[:, xt]
        assert torch.allclose(post[0, 0], brute / brute.sum(), atol=1e-10)
    p0 = torch.softmax(torch.randn(2, 3, K), -1)
    post = d.posterior(p0, torch.tensor([[1, K, 4], [K, K, 0]]), torch.tensor([50, 80]), torch.tensor([49, 20]))
    assert torch.allclose(post.sum(-1), torch.ones(2, 3, dtype=torch.float64))


def test_loss_prefers_the_truth() -> None:
    d = MaskReplaceDiffusion(K, T=100)
    x0 = torch.randint(0, K, (16, 20), generator=torch.Generator().manual_seed(0))
    t = d.random_steps(16, torch.device("cpu"), torch.Generator().manual_seed(1))
    xt = d.q_sample(x0, t, torch.Generator().manual_seed(2))
    good = d.loss(F.one_hot(x0, K).float() * 12, x0, xt, t)
    flat = d.loss(torch.zeros(16, 20, K), x0, xt, t)
    assert good["vb"] < 0.1 * flat["vb"] and good["aux"] < 0.01 and flat["aux"] > 1.0
    with pytest.raises(ValueError, match="classes"):
        d.loss(torch.zeros(16, 20, K + 1), x0, xt, t)


class _Denoiser(torch.nn.Module):
    """Tiny model: the clean sequence is a function of a context token (so it is learnable)."""

    def __init__(self, n: int = 12) -> None:
        super().__init__()
        self.ctx = torch.nn.Embedding(4, 64)
        self.tok = torch.nn.Embedding(K + 1, 64)
        self.pos = torch.nn.Parameter(torch.randn(n, 64) * 0.1)
        self.time = torch.nn.Embedding(101, 64)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, K))

    def forward(self, xt: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.tok(xt) + self.pos + self.ctx(c)[:, None] + self.time(t)[:, None])


def _data(c: torch.Tensor, n: int = 12) -> torch.Tensor:
    return (c[:, None] * 3 + torch.arange(n)[None]) % K


def test_loss_decreases_and_sampler_recovers_the_data() -> None:
    torch.manual_seed(0)
    d = MaskReplaceDiffusion(K, T=100)
    net = _Denoiser()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    curve = []
    for _ in range(300):
        c = torch.randint(0, 4, (64,), generator=g)
        x0 = _data(c)
        t = d.random_steps(64, torch.device("cpu"), g)
        xt = d.q_sample(x0, t, g)
        loss = d.loss(net(xt, t, c), x0, xt, t)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
    first, last = sum(curve[:30]) / 30, sum(curve[-30:]) / 30
    assert last < 0.5 * first, (first, last)
    c = torch.arange(4)
    out = d.sample(lambda xt, t: net(xt, t, c), (4, 12), n_steps=10, device=torch.device("cpu"), generator=g)
    assert float((out == _data(c)).float().mean()) > 0.9
