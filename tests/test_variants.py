"""Textbook variants: each matches an independent float64 reference of its paper's or
textbook's formula, and its distance from torch.optim is measured (never assumed 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optbook
from optbook.variants import VARIANTS

STEPS = 200


def gradients(seed: int, steps: int, shape=(6,)):
    rng = np.random.default_rng(seed)
    # a drifting mean plus noise, with one tiny coordinate so eps matters somewhere
    g = rng.normal(size=(steps,) + shape) + np.linspace(1, -1, steps)[:, None]
    g[:, 0] *= 1e-4
    return g


def reference(name: str, g: np.ndarray, theta0: np.ndarray, lr, b1, b2, eps) -> np.ndarray:
    """The variants written directly from their formulas, in numpy float64."""
    theta, m, v, vmax, s = theta0.copy(), 0 * theta0, 0 * theta0, 0 * theta0, 0 * theta0
    for t, gt in enumerate(g, start=1):
        m = b1 * m + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt**2
        if name == "AdamNoBiasCorrection":
            theta = theta - lr * m / (np.sqrt(v) + eps)
        elif name == "AdamKingmaBa":
            alpha_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            theta = theta - alpha_t * m / (np.sqrt(v) + eps)
        elif name == "AMSGradReddi":
            vmax = np.maximum(vmax, v)
            theta = theta - lr * m / (np.sqrt(vmax) + eps)
        elif name == "AMSGradMaxVhat":
            vmax = np.maximum(vmax, v / (1 - b2**t))
            theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(vmax) + eps)
        elif name == "AdagradEpsInside":
            s = s + gt**2
            theta = theta - lr * gt / np.sqrt(s + eps)
        elif name == "RMSpropEpsInside":
            s = b2 * s + (1 - b2) * gt**2
            theta = theta - lr * gt / np.sqrt(s + eps)
    return theta


HYPER = {
    "AdamNoBiasCorrection": dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8),
    "AdamKingmaBa": dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8),
    "AMSGradReddi": dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8),
    "AMSGradMaxVhat": dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8),
    "AdagradEpsInside": dict(lr=0.1, eps=1e-6),
    "RMSpropEpsInside": dict(lr=0.01, alpha=0.9, eps=1e-6),
}


def run(optimizer, g: np.ndarray, theta0: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    theta = torch.tensor(theta0, dtype=dtype, requires_grad=True)
    opt = optimizer([theta])
    for gt in g:
        theta.grad = torch.tensor(gt, dtype=dtype)
        opt.step()
    return theta.detach()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_matches_its_formula(name):
    g = gradients(1, STEPS)
    theta0 = np.linspace(-1, 1, g.shape[1])
    hyper = HYPER[name]
    cls = VARIANTS[name][0]
    ours = run(lambda p: cls(p, **hyper), g, theta0).numpy()
    b1, b2 = hyper.get("betas", (0.0, hyper.get("alpha", 0.0)))
    expected = reference(name, g, theta0, hyper["lr"], b1, b2, hyper["eps"])
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-13)


def measure_distance(name: str, dtype=torch.float32, steps: int = STEPS) -> float:
    """Max abs parameter difference between a variant and its torch.optim counterpart
    after ``steps`` steps on the same gradients and the same hyperparameters."""
    cls, torch_cls, extra = VARIANTS[name]
    g = gradients(2, steps)
    theta0 = np.linspace(-1, 1, g.shape[1])
    hyper = HYPER[name]
    ours = run(lambda p: cls(p, **hyper), g, theta0, dtype)
    theirs = run(lambda p: torch_cls(p, foreach=False, **hyper, **extra), g, theta0, dtype)
    return (ours.double() - theirs.double()).abs().max().item()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_distance_from_torch_is_measured(name, record_property):
    """The variants are *not* torch's algorithm: the distance is measured and reported."""
    distance = measure_distance(name)
    record_property("max_abs_diff", distance)
    print(f"\n{name} vs torch.optim.{VARIANTS[name][1].__name__}{VARIANTS[name][2] or ''}: "
          f"{STEPS} steps, float32, max abs diff {distance:.3e}")
    assert 0.0 < distance < 10.0


def test_ewma_matches_closed_form_and_bias_correction():
    beta, xs = 0.9, torch.arange(1.0, 21.0, dtype=torch.float64)
    raw, corrected = optbook.EWMA(beta), optbook.EWMA(beta, bias_correction=True)
    for t, x in enumerate(xs, start=1):
        r, c = raw.update(x), corrected.update(x)
        k = torch.arange(1, t + 1, dtype=torch.float64)
        closed = ((1 - beta) * beta ** (t - k) * xs[:t]).sum()
        assert torch.allclose(r, closed, rtol=1e-13)
        assert torch.allclose(c, closed / (1 - beta**t), rtol=1e-13)
    constant = optbook.EWMA(0.99, bias_correction=True)
    for _ in range(5):
        value = constant.update(torch.tensor(3.0))
    assert torch.allclose(value, torch.tensor(3.0), rtol=1e-6)  # unbiased for a constant stream


def test_ewma_update_is_the_op_torch_adam_uses():
    """ewma_update_ and ewma_sq_update_ are Adam's moment ops: same bits as torch.optim.Adam's
    exp_avg and exp_avg_sq."""
    g = torch.Generator().manual_seed(0)
    p = torch.randn(100, generator=g, requires_grad=True)
    opt = torch.optim.Adam([p], betas=(0.9, 0.999), foreach=False)
    avg, avg_sq = torch.zeros(100), torch.zeros(100)
    for _ in range(50):
        p.grad = torch.randn(100, generator=g)
        optbook.ewma_update_(avg, p.grad, 0.9)
        optbook.ewma_sq_update_(avg_sq, p.grad, 0.999)
        opt.step()
        assert torch.equal(avg, opt.state[p]["exp_avg"])
        assert torch.equal(avg_sq, opt.state[p]["exp_avg_sq"])


def test_ewma_needs_an_observation():
    with pytest.raises(RuntimeError, match="no observation"):
        optbook.EWMA(0.5).value
