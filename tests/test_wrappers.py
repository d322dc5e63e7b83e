"""Lookahead and AdaBound (optbook.wrappers): no torch twin, so each is checked against
a float64 numpy reference written from the paper's pseudo-code (several steps, tight
tolerance), plus state_dict, scheduler and validation tests."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import optbook
from optbook.wrappers import AdaBound, Lookahead, adabound_bounds

RTOL = 1e-12


def quadratic(seed=0, n=6):
    """f(θ) = ½ θᵀAθ - bᵀθ, A symmetric positive definite; ∇f = Aθ - b."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, n))
    A = Q @ Q.T / n + np.diag(np.linspace(0.1, 3.0, n))
    b = rng.standard_normal(n)
    theta0 = rng.standard_normal(n)
    return A, b, theta0


def run_torch(make_opt, A, b, theta0, steps):
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    opt = make_opt([theta])
    path = []
    for _ in range(steps):
        theta.grad = A_t @ theta.detach() - b_t
        opt.step()
        path.append(theta.detach().numpy().copy())
    return np.array(path), opt


# ------------------------------------------------------------------ Lookahead

def lookahead_reference(inner_step, theta0, grad, steps, k, alpha):
    """Zhang et al. (2019), Algorithm 1: φ ← φ + α(θ_k − φ) after every k inner steps
    of the inner optimizer A, which restarts from θ ← φ; A's own state is kept."""
    phi = theta0.copy()
    theta = theta0.copy()
    path = []
    for t in range(1, steps + 1):
        theta = inner_step(theta, grad(theta))
        if t % k == 0:
            phi = phi + alpha * (theta - phi)
            theta = phi.copy()
        path.append(theta.copy())
    return np.array(path)


def sgd_inner(lr):
    return lambda theta, g: theta - lr * g


def adam_inner(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """Kingma & Ba's Algorithm 1 with ε added to √v̂ (torch's convention)."""
    state = {"t": 0, "m": 0.0, "v": 0.0}

    def step(theta, g):
        state["t"] += 1
        t = state["t"]
        state["m"] = beta1 * state["m"] + (1 - beta1) * g
        state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
        m_hat = state["m"] / (1 - beta1**t)
        v_hat = state["v"] / (1 - beta2**t)
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


@pytest.mark.parametrize("k, alpha", [(1, 0.5), (3, 0.5), (5, 0.8), (4, 1.0)])
def test_lookahead_sgd_matches_paper_reference(k, alpha):
    A, b, theta0 = quadratic(1)
    steps = 23  # not a multiple of k: the last fast steps are not yet synchronised
    ours, _ = run_torch(lambda ps: Lookahead(optbook.SGD(ps, lr=0.1), k=k, alpha=alpha),
                        A, b, theta0, steps)
    ref = lookahead_reference(sgd_inner(0.1), theta0, lambda th: A @ th - b, steps, k, alpha)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-14)
    plain, _ = run_torch(lambda ps: optbook.SGD(ps, lr=0.1), A, b, theta0, steps)
    if alpha < 1:
        assert np.abs(ours - plain).max() > 1e-3, "Lookahead did nothing: the test could not fail"


def test_lookahead_adam_matches_paper_reference():
    A, b, theta0 = quadratic(2)
    ours, _ = run_torch(lambda ps: Lookahead(optbook.Adam(ps, lr=0.05), k=5, alpha=0.5),
                        A, b, theta0, 30)
    ref = lookahead_reference(adam_inner(0.05), theta0, lambda th: A @ th - b, 30, 5, 0.5)
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-13)


def test_lookahead_slow_weights_in_state_and_synchronised():
    A, b, theta0 = quadratic(3)
    _, opt = run_torch(lambda ps: Lookahead(optbook.SGD(ps, lr=0.1), k=5), A, b, theta0, 10)
    sd = opt.state_dict()
    param = opt.param_groups[0]["params"][0]
    assert sd["fast_steps"] == 10 and sd["k"] == 5 and sd["alpha"] == 0.5
    assert torch.equal(sd["slow_params"][0], param.detach())  # just synchronised at step 10
    assert "param_groups" in sd["base"]


def test_lookahead_state_dict_round_trip_continues_identically():
    A, b, theta0 = quadratic(4)
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    pa = torch.tensor(theta0, requires_grad=True)
    opt_a = Lookahead(optbook.Adam([pa], lr=0.05), k=5, alpha=0.5)
    for _ in range(7):  # mid-cycle: fast and slow weights differ
        pa.grad = A_t @ pa.detach() - b_t
        opt_a.step()
    saved = copy.deepcopy(opt_a.state_dict())
    assert not torch.equal(saved["slow_params"][0], pa.detach())
    pb = pa.detach().clone().requires_grad_()
    opt_b = Lookahead(optbook.Adam([pb], lr=0.05), k=2, alpha=0.9)  # overwritten by the load
    opt_b.load_state_dict(saved)
    assert opt_b.k == 5 and opt_b.alpha == 0.5
    for _ in range(9):
        for p, o in ((pa, opt_a), (pb, opt_b)):
            p.grad = A_t @ p.detach() - b_t
            o.step()
        assert torch.equal(pa, pb)


def test_lookahead_shares_groups_with_base_schedulers_and_add_param_group():
    p, q = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    base = optbook.SGD([p], lr=0.1)
    opt = Lookahead(base)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    p.grad = torch.ones(2)
    opt.step()
    sched.step()
    assert base.param_groups[0]["lr"] == 0.05
    opt.add_param_group({"params": [q], "lr": 0.3})
    assert len(base.param_groups) == 2 and base.param_groups[1]["params"][0] is q
    q.grad = torch.ones(3)
    opt.zero_grad()
    assert p.grad is None and q.grad is None


def test_lookahead_closure_and_param_without_grad():
    w = torch.ones(3, requires_grad=True)
    frozen = torch.full((2,), 7.0, requires_grad=True)
    opt = Lookahead(optbook.Adam([w, frozen], lr=0.1), k=2)

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss
    losses = [opt.step(closure).item() for _ in range(6)]
    assert losses[-1] < losses[0]
    assert torch.equal(frozen, torch.full((2,), 7.0))


@pytest.mark.parametrize("kwargs, param", [
    (dict(k=0), "k"), (dict(k=-1), "k"), (dict(k=2.5), "k"), (dict(k=True), "k"),
    (dict(alpha=0.0), "alpha"), (dict(alpha=1.5), "alpha"), (dict(alpha=-0.5), "alpha"),
    (dict(alpha=math.nan), "alpha"),
])
def test_lookahead_validation(kwargs, param):
    with pytest.raises(ValueError, match=f"Invalid {param}"):
        Lookahead(optbook.SGD([torch.zeros(1, requires_grad=True)]), **kwargs)


def test_lookahead_needs_an_optimizer():
    with pytest.raises(TypeError):
        Lookahead([torch.zeros(1, requires_grad=True)])


# ------------------------------------------------------------------ AdaBound

def adabound_reference(theta0, grads, lrs, *, base_lr, betas, final_lr, gamma, eps,
                       weight_decay=0.0, amsbound=False):
    """Luo et al. (2019), AdaBound as in the authors' implementation (documented in
    optbook.wrappers.AdaBound): clip the bias-corrected per-coordinate step size
    η √(1-β2^t) / ((1-β1^t)(√v_t + ε)) into [η_l(t), η_u(t)], multiply by m_t.
    Returns the path and how often the lower and the upper bound were active."""
    beta1, beta2 = betas
    theta = theta0.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    path, hits_lower, hits_upper = [], 0, 0
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = np.maximum(v_max, v)
        v_used = v_max if amsbound else v
        eta_t = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
        raw = eta_t / (np.sqrt(v_used) + eps)
        star = final_lr * lr / base_lr
        lower = star * (1 - 1 / (gamma * t + 1))
        upper = star * (1 + 1 / (gamma * t))
        hits_lower += int((raw < lower).sum())
        hits_upper += int((raw > upper).sum())
        theta = theta - np.clip(raw, lower, upper) * m
        path.append(theta.copy())
    return np.array(path), hits_lower, hits_upper


@pytest.mark.parametrize("hyper", [
    dict(lr=1e-3, betas=(0.9, 0.999), final_lr=0.1, gamma=1e-3, eps=1e-8),      # paper defaults
    dict(lr=0.05, betas=(0.9, 0.99), final_lr=0.02, gamma=0.1, eps=1e-8),
    dict(lr=0.05, betas=(0.8, 0.99), final_lr=0.02, gamma=0.1, eps=1e-6, weight_decay=0.01,
         amsbound=True),
])
def test_adabound_matches_paper_reference(hyper):
    rng = np.random.default_rng(5)
    n, steps = 40, 25
    theta0 = rng.standard_normal(n)
    scales = np.logspace(-8, 2, n)  # coordinates with tiny and large gradients: both bounds bite
    grads = [rng.standard_normal(n) * scales for _ in range(steps)]
    p = torch.tensor(theta0, requires_grad=True)
    opt = AdaBound([p], **hyper)
    ours = []
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        ours.append(p.detach().numpy().copy())
    ref, lo, hi = adabound_reference(
        theta0, grads, [hyper["lr"]] * steps, base_lr=hyper["lr"],
        **{k: v for k, v in hyper.items() if k != "lr"})
    np.testing.assert_allclose(np.array(ours), ref, rtol=RTOL, atol=1e-15)
    assert lo > 0 and hi > 0, (lo, hi)  # both clips were exercised


def test_adabound_band_follows_lr_schedule():
    """final_lr is scaled by lr / base_lr: a StepLR halving lr halves the band too."""
    rng = np.random.default_rng(6)
    theta0 = rng.standard_normal(10)
    grads = [rng.standard_normal(10) * np.logspace(-3, 2, 10) for _ in range(12)]
    hyper = dict(betas=(0.9, 0.999), final_lr=0.05, gamma=0.05, eps=1e-8)
    p = torch.tensor(theta0, requires_grad=True)
    opt = AdaBound([p], lr=0.01, **hyper)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
    lrs, ours = [], []
    for g in grads:
        lrs.append(opt.param_groups[0]["lr"])
        p.grad = torch.tensor(g)
        opt.step()
        sched.step()
        ours.append(p.detach().numpy().copy())
    ref, _, _ = adabound_reference(theta0, grads, lrs, base_lr=0.01, **hyper)
    np.testing.assert_allclose(np.array(ours), ref, rtol=RTOL, atol=1e-15)
    assert opt.param_groups[0]["base_lr"] == 0.01 and lrs[-1] == 0.01 / 4


def test_adabound_bounds_converge_to_final_lr():
    lower, upper = adabound_bounds(1.0, 0.1, 1e-3)
    assert lower == pytest.approx(0.1 * 1e-3 / (1 + 1e-3)) and upper == pytest.approx(0.1 * 1001)
    lower, upper = adabound_bounds(1e9, 0.1, 1e-3)
    assert lower == pytest.approx(0.1, rel=1e-5) and upper == pytest.approx(0.1, rel=1e-5)
    # late in training every coordinate moves by final_lr * m_t: SGD with momentum
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = AdaBound([p], lr=1e-3, final_lr=0.1, gamma=0.5)
    opt.step()  # no grad yet: nothing happens
    for _ in range(3):
        p.grad = torch.tensor([1e-4, 1.0, 1e4], dtype=torch.float64)
        opt.step()
    opt.state[p]["step"].fill_(1e9)
    before, m_before = p.detach().clone(), opt.state[p]["exp_avg"].clone()
    p.grad = torch.tensor([1e-4, 1.0, 1e4], dtype=torch.float64)
    opt.step()
    m = 0.9 * m_before + 0.1 * p.grad
    torch.testing.assert_close(before - p.detach(), 0.1 * m, rtol=1e-8, atol=0)


def test_adabound_state_dict_round_trip():
    rng = np.random.default_rng(7)
    grads = [torch.tensor(rng.standard_normal(5)) for _ in range(10)]
    pa = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt_a = AdaBound([pa], lr=0.01, gamma=0.1, amsbound=True)
    for g in grads[:5]:
        pa.grad = g.clone()
        opt_a.step()
    pb = pa.detach().clone().requires_grad_()
    opt_b = AdaBound([pb], lr=0.5, gamma=0.1, amsbound=True)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    assert opt_b.param_groups[0]["base_lr"] == 0.01
    assert set(opt_b.state[pb]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    for g in grads[5:]:
        for p, o in ((pa, opt_a), (pb, opt_b)):
            p.grad = g.clone()
            o.step()
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("kwargs, param", [
    (dict(lr=-1e-3), "lr"), (dict(lr=0.0), "lr"), (dict(betas=(1.0, 0.999)), "betas[0]"),
    (dict(betas=(0.9, -0.1)), "betas[1]"), (dict(final_lr=-0.1), "final_lr"),
    (dict(gamma=0.0), "gamma"), (dict(gamma=1.0), "gamma"), (dict(eps=-1e-8), "eps"),
    (dict(weight_decay=-0.1), "weight_decay"), (dict(lr=torch.tensor(0.1)), "lr"),
])
def test_adabound_validation(kwargs, param):
    with pytest.raises(ValueError, match=f"Invalid {param}".replace("[", r"\[").replace("]", r"\]")):
        AdaBound([torch.zeros(1, requires_grad=True)], **kwargs)
