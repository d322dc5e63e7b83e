"""optbook.AdaBound (optbook/adabound.py): no torch twin, so it is checked against a
float64 numpy reference written from the paper's pseudo-code (Luo et al. 2019,
Algorithm 2), plus state_dict, scheduler and validation tests.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from optbook.adabound import AdaBound, adabound_bounds

RTOL = 1e-12


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


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1e-3), "Invalid learning rate: -0.001"),
    (dict(lr=0.0), "Invalid learning rate: 0.0"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(final_lr=-0.1), "Invalid final_lr value: -0.1"),
    (dict(gamma=0.0), "Invalid gamma value: 0.0"),
    (dict(gamma=1.0), "Invalid gamma value: 1.0"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    # a 0-d tensor formats as its number, as in torch's own f"{lr}" messages
    (dict(lr=torch.tensor(0.1)), "Invalid learning rate: 0.10000000149011612 ("),
])
def test_adabound_validation(kwargs, message):
    """torch.optim.Adam's words for the hyperparameters the two share."""
    with pytest.raises(ValueError) as info:
        AdaBound([torch.zeros(1, requires_grad=True)], **kwargs)
    assert str(info.value).startswith(message), str(info.value)
