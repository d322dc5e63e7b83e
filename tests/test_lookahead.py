"""optbook.Lookahead (optbook/lookahead.py): no torch twin, so it is checked against a
float64 numpy reference written from the paper's pseudo-code (Zhang et al. 2019,
Algorithm 1), plus state_dict, scheduler and validation tests.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

import optbook
from optbook.lookahead import Lookahead

from twins import quadratic
from twins import run_on_quadratic as run_torch

RTOL = 1e-12


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
    sd = opt.state_dict()  # torch.optim's layout (tests/test_checkpoint.py has more)
    param = opt.param_groups[0]["params"][0]
    group = sd["param_groups"][0]
    assert group["lookahead_fast_steps"] == 10
    assert (group["lookahead_k"], group["lookahead_alpha"]) == (5, 0.5)
    # just synchronised, at step 10
    assert torch.equal(sd["state"][0]["slow_param"], param.detach())


def test_lookahead_state_dict_round_trip_continues_identically():
    A, b, theta0 = quadratic(4)
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    pa = torch.tensor(theta0, requires_grad=True)
    opt_a = Lookahead(optbook.Adam([pa], lr=0.05), k=5, alpha=0.5)
    for _ in range(7):  # mid-cycle: fast and slow weights differ
        pa.grad = A_t @ pa.detach() - b_t
        opt_a.step()
    saved = copy.deepcopy(opt_a.state_dict())
    assert not torch.equal(saved["state"][0]["slow_param"], pa.detach())
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
