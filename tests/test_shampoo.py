"""optbook.Shampoo (optbook/shampoo.py): no torch twin, so it is checked against a
float64 numpy reference written from the paper's pseudo-code (Gupta, Koren & Singer
2018, Algorithms 1 and 2), compared with pytorch-optimizer's Shampoo (the same
arithmetic where the hyperparameters mean the same, each difference measured), and
shown to beat Adam and AdaGrad on a rotated ill-conditioned matrix quadratic.
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch

import optbook
from optbook.shampoo import Shampoo, matrix_inverse_root

po = pytest.importorskip("pytorch_optimizer")

#: Largest difference from the float64 reference, relative to the distance moved.
#: Measured: 9.5e-13 on the vector with ε = 1e-6 (its H^{-1/2} magnifies the
#: round-off of eigenvalues near ε), <= 1.4e-13 on every other case.
RTOL = 2e-12


# ----------------------------------------------------------------------------------
# The paper's pseudo-code, in float64 numpy (no optbook code)
# ----------------------------------------------------------------------------------


def inverse_root_np(H, p):
    """H^{-1/p}: by eigendecomposition for a matrix, elementwise for a diagonal."""
    if H.ndim == 1:
        return H ** (-1.0 / p)
    w, V = np.linalg.eigh(H)
    return V @ np.diag(w ** (-1.0 / p)) @ V.T


def mode_product(X, A, i):
    """X ×_i A: multiply the mode-i fibres of X by A (A a matrix or a diagonal)."""
    if A.ndim == 1:
        shape = [1] * X.ndim
        shape[i] = -1
        return X * A.reshape(shape)
    return np.moveaxis(np.tensordot(A, np.moveaxis(X, i, 0), axes=1), 0, i)


def shampoo_reference(theta0, grads, *, lr, epsilon, momentum=0.0, weight_decay=0.0,
                      update_freq=1, max_precond_dim=math.inf):
    """Algorithm 1 (k = 2) and Algorithm 2 (order k): H^i_0 = εI,
    H^i_t = H^i_{t-1} + G_(i) G_(i)ᵀ, W_{t+1} = W_t - η G ×_1 (H^1)^{-1/2k} ... ×_k
    (H^k)^{-1/2k}; a 0-d tensor as a vector of length 1.  optbook's documented
    additions: L2 weight decay, SGD momentum on the preconditioned direction,
    roots recomputed at steps 1, 1+f, ..., and diagonal statistics above
    max_precond_dim."""
    shape = theta0.shape
    X = theta0.reshape(shape or (1,)).copy()
    k = X.ndim
    H = [epsilon * np.eye(n) if n <= max_precond_dim else epsilon * np.ones(n)
         for n in X.shape]
    roots = [None] * k
    buf = np.zeros_like(X)
    path = []
    for t, G in enumerate(grads, start=1):
        G = G.reshape(X.shape) + weight_decay * X
        for i, n in enumerate(X.shape):
            Gi = np.moveaxis(G, i, 0).reshape(n, -1)
            if H[i].ndim == 2:
                H[i] = H[i] + Gi @ Gi.T
            else:
                H[i] = H[i] + (Gi * Gi).sum(axis=1)
        if (t - 1) % update_freq == 0:
            roots = [inverse_root_np(Hi, 2 * k) for Hi in H]
        P = G
        for i in range(k):
            P = mode_product(P, roots[i], i)
        if momentum:
            buf = momentum * buf + P
            P = buf
        X = X - lr * P
        path.append(X.reshape(shape).copy())
    return np.array(path)


def run_optbook(theta0, grads, **hyper):
    p = torch.tensor(theta0, requires_grad=True)
    opt = Shampoo([p], **hyper)
    path = []
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        path.append(p.detach().numpy().copy())
    return np.array(path), opt


SHAPES = [(5, 3), (4, 4), (3, 7), (6,), (), (2, 3, 4)]
HYPERS = {
    "paper": dict(lr=0.1, epsilon=1e-6),
    "momentum-decay-freq3": dict(lr=0.02, epsilon=1e-2, momentum=0.5, weight_decay=0.01,
                                 update_freq=3),
    "diagonal-above-3": dict(lr=0.1, epsilon=1e-3, max_precond_dim=3),
}


def random_problem(shape, steps=25, seed=0):
    rng = np.random.default_rng(seed)
    theta0 = rng.standard_normal(shape)
    grads = [rng.standard_normal(shape) * rng.uniform(0.1, 3.0) for _ in range(steps)]
    return np.asarray(theta0, dtype=np.float64), grads


@pytest.mark.parametrize("hyper", list(HYPERS.values()), ids=list(HYPERS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shampoo_matches_paper_reference(shape, hyper):
    theta0, grads = random_problem(shape)
    ours, _ = run_optbook(theta0, grads, **hyper)
    ref = shampoo_reference(theta0, grads, **hyper)
    moved = np.abs(ref - theta0).max()
    assert moved > 0.05, "the parameters hardly moved: the test could not fail"
    assert np.abs(ours - ref).max() <= RTOL * moved


def test_shampoo_state_is_L_R_and_their_roots():
    """After t steps on a matrix: factor_0 = εI + Σ G Gᵀ (L), factor_1 = εI + Σ GᵀG
    (R), and the roots are L^{-1/4}, R^{-1/4} (so (root)^4 L = I)."""
    theta0, grads = random_problem((4, 3), steps=6)
    _, opt = run_optbook(theta0, grads, lr=0.1, epsilon=1e-3)
    state = next(iter(opt.state.values()))
    L = 1e-3 * np.eye(4) + sum(g @ g.T for g in grads)
    R = 1e-3 * np.eye(3) + sum(g.T @ g for g in grads)
    np.testing.assert_allclose(state["factor_0"].numpy(), L, rtol=1e-14)
    np.testing.assert_allclose(state["factor_1"].numpy(), R, rtol=1e-14)
    for root, M in ((state["inverse_root_0"], L), (state["inverse_root_1"], R)):
        product = np.linalg.matrix_power(root.numpy(), 4) @ M
        np.testing.assert_allclose(product, np.eye(len(M)), atol=1e-12)
    assert state["step"].item() == 6


def test_matrix_inverse_root_properties():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((6, 6))
    M = torch.tensor(A @ A.T + 0.1 * np.eye(6))
    for p in (2, 4, 6):
        root = matrix_inverse_root(M, p, 1e-12)
        identity = torch.eye(6, dtype=torch.float64)
        torch.testing.assert_close(torch.linalg.matrix_power(root, p) @ M, identity,
                                   rtol=0, atol=1e-12)
        torch.testing.assert_close(root, root.T, rtol=0, atol=1e-15)
    # a diagonal given as a vector: the elementwise root
    d = torch.tensor([4.0, 16.0, 1e-30], dtype=torch.float64)
    torch.testing.assert_close(matrix_inverse_root(d, 2, 1e-6),
                               torch.tensor([0.5, 0.25, 1e3], dtype=torch.float64))
    # a singular matrix: the zero eigenvalues are raised to eps, not inverted
    v = torch.tensor([[1.0], [2.0], [2.0]], dtype=torch.float64)
    root = matrix_inverse_root(v @ v.T, 2, 1e-4)  # eigenvalues 9, 0, 0
    assert torch.isfinite(root).all()
    u = v / 3
    expected = u @ u.T / 3 + (torch.eye(3, dtype=torch.float64) - u @ u.T) * 100
    torch.testing.assert_close(root, expected, rtol=1e-9, atol=1e-9)


def test_shampoo_long_vector_is_diagonal_adagrad_as_torch():
    """Above max_precond_dim a vector gets (ε + Σ g²)^{-1/2} g: torch.optim.Adagrad
    with initial_accumulator_value = ε and eps = 0 (measured: 1 ulp apart, from
    pow(-1/2) against sqrt and a division)."""
    theta0, grads = random_problem((40,), steps=30)
    ours, _ = run_optbook(theta0, grads, lr=0.1, epsilon=1e-3, max_precond_dim=39)
    p = torch.tensor(theta0, requires_grad=True)
    opt = torch.optim.Adagrad([p], lr=0.1, initial_accumulator_value=1e-3, eps=0.0)
    theirs = []
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        theirs.append(p.detach().numpy().copy())
    np.testing.assert_allclose(ours, np.array(theirs), rtol=1e-14, atol=1e-15)


# ----------------------------------------------------------------------------------
# pytorch-optimizer's Shampoo: the same arithmetic, and each difference measured
# ----------------------------------------------------------------------------------


def lockstep_with_pytorch_optimizer(shapes, steps, ours_hyper, theirs_hyper,
                                    dtype=torch.float64, seed=0):
    """Feed both the same gradients (clones: pytorch-optimizer's Shampoo modifies
    p.grad in place); return the largest |ours - theirs| / max |theirs - θ_0| per
    parameter, and the two parameter lists."""
    g = torch.Generator().manual_seed(seed)  # draws in float64 whatever the dtype
    ours = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
            for s in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    start = [p.detach().clone() for p in ours]
    opt_a = Shampoo(ours, **ours_hyper)
    opt_b = po.Shampoo(theirs, **theirs_hyper)
    worst = [0.0] * len(shapes)
    moved = [0.0] * len(shapes)
    for _ in range(steps):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64).to(dtype)
            a.grad, b.grad = grad.clone(), grad.clone()
        opt_a.step()
        opt_b.step()
        for i, (a, b, s) in enumerate(zip(ours, theirs, start)):
            worst[i] = max(worst[i], (a - b).abs().max().item())
            moved[i] = max(moved[i], (b - s).abs().max().item())
    return [w / m for w, m in zip(worst, moved)], ours, theirs, start


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_shampoo_matches_pytorch_optimizer_float64(weight_decay):
    """Same arithmetic for matrices, vectors and order-3 tensors when momentum = 0
    and update_freq = 1: L2 decay, εI start, power -1/(2k); pytorch-optimizer takes
    the root by SVD, optbook by eigh (measured, relative to the distance moved:
    2.4e-13 on the vector, <= 4e-14 on matrices and the order-3 tensor)."""
    hyper = dict(lr=0.1, weight_decay=weight_decay)
    rel, *_ = lockstep_with_pytorch_optimizer(
        [(5, 3), (4, 4), (3, 7), (6,), (2, 3, 4)], 25,
        dict(hyper, epsilon=1e-6), dict(hyper, matrix_eps=1e-6))
    assert max(rel) < 1e-12, rel


def test_shampoo_float32_against_pytorch_optimizer_and_float64():
    """In float32 both take the roots in float32 (eigh here, SVD there).  Measured
    over 25 steps, relative to the distance moved, optbook / pytorch-optimizer
    from optbook's float64 path: 7.5e-6 / 3.9e-6 on a 5x3 matrix, 1.3e-4 / 1.2e-4
    on a 6-vector (its H^{-1/2} magnifies round-off most), 4.3e-6 / 6.1e-6 on a
    2x3x4 tensor: equally accurate.  Asserted: each below 1e-3, and the two float32
    paths no closer to each other than 1e-8 (so float32 really ran)."""
    shapes = [(5, 3), (6,), (2, 3, 4)]
    rel32, ours32, theirs32, _ = lockstep_with_pytorch_optimizer(
        shapes, 25, dict(lr=0.1), dict(lr=0.1), dtype=torch.float32)
    _, ours64, _, start = lockstep_with_pytorch_optimizer(
        shapes, 25, dict(lr=0.1), dict(lr=0.1))
    for a32, b32, a64, s in zip(ours32, theirs32, ours64, start):
        moved = (a64 - s).abs().max().item()
        errors = [(x.double() - a64).abs().max().item() / moved for x in (a32, b32)]
        assert max(errors) < 1e-3
    assert 1e-8 < max(rel32) < 1e-3, rel32


def test_difference_zero_dim_tensor_is_adagrad_here_sgd_there():
    """A 0-d parameter: optbook treats it as a vector of length 1 (AdaGrad,
    θ - η g / √(ε + Σg²)); pytorch-optimizer has no mode to precondition and
    takes the plain SGD step θ - η g."""
    a = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    opt_a, opt_b = Shampoo([a], lr=0.1), po.Shampoo([b], lr=0.1)
    grads = [4.0, -3.0]
    for g in grads:
        a.grad = torch.tensor(g, dtype=torch.float64)
        b.grad = torch.tensor(g, dtype=torch.float64)
        opt_a.step()
        opt_b.step()
    assert b.item() == pytest.approx(1 - 0.1 * 4 + 0.1 * 3, abs=1e-15)
    expected = 1 - 0.1 * 4 / math.sqrt(1e-6 + 16) + 0.1 * 3 / math.sqrt(1e-6 + 25)
    assert a.item() == pytest.approx(expected, abs=1e-14)
    assert abs(a.item() - b.item()) > 0.05


def test_difference_update_freq_first_steps():
    """update_freq = k: optbook computes the roots at steps 1, 1+k, ...;
    pytorch-optimizer at steps k, 2k, ... and starts its roots at zero, so its
    parameters do not move at all during the first k-1 steps."""
    k = 4
    shapes = [(5, 3), (6,)]
    g = torch.Generator().manual_seed(1)
    ours = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_()
            for s in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    start = [p.detach().clone() for p in ours]
    opt_a = Shampoo(ours, lr=0.1, update_freq=k)
    opt_b = po.Shampoo(theirs, lr=0.1, preconditioning_compute_steps=k)
    for step in range(1, k + 1):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64)
            a.grad, b.grad = grad.clone(), grad.clone()
        opt_a.step()
        opt_b.step()
        moved_a = min((a - s).abs().max().item() for a, s in zip(ours, start))
        moved_b = max((b - s).abs().max().item() for b, s in zip(theirs, start))
        assert moved_a > 0.01
        if step < k:
            assert moved_b == 0.0, f"step {step}"
        else:
            assert moved_b > 0.01


def test_difference_momentum():
    """optbook: m_t = μ m_{t-1} + G̃_t on the preconditioned direction (SGD momentum).
    pytorch-optimizer: before preconditioning it mixes the *raw* gradient with the
    previous *preconditioned* step, g <- (1-μ) g + μ G̃_{t-1} (its buffer, which
    starts as g_1), and the mix also enters the statistics.  Measured with μ = 0.9
    over 20 steps: the paths part by 7.6x (5x3 matrix) and 2.3x (vector) the
    distance moved; asserted > 0.1x, and that its buffer holds the last step's
    direction."""
    shapes = [(5, 3), (6,)]
    rel, *_ = lockstep_with_pytorch_optimizer(
        shapes, 20, dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9))
    assert min(rel) > 0.1, rel
    # pytorch-optimizer's buffer after a step is that step's preconditioned direction
    p = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    opt = po.Shampoo([p], lr=0.1, momentum=0.9)
    for _ in range(3):
        p.grad = torch.randn(4, 3, dtype=torch.float64)
        before = p.detach().clone()
        opt.step()
    torch.testing.assert_close(opt.state[p]["momentum_buffer"] * -0.1,
                               p.detach() - before, rtol=1e-12, atol=1e-14)


def test_difference_pytorch_optimizer_writes_into_p_grad():
    """maximize and weight decay: pytorch-optimizer negates p.grad and adds λθ to
    it in place (so a second look at p.grad, e.g. for clipping statistics or
    gradient accumulation, sees the changed tensor); optbook leaves p.grad alone."""
    for cls, kwargs in ((Shampoo, {}), (po.Shampoo, {})):
        p = torch.ones(3, 2, dtype=torch.float64, requires_grad=True)
        opt = cls([p], lr=0.1, weight_decay=0.5, maximize=True, **kwargs)
        grad = torch.full((3, 2), 2.0, dtype=torch.float64)
        p.grad = grad.clone()
        opt.step()
        if cls is Shampoo:
            assert torch.equal(p.grad, grad)
        else:
            assert torch.equal(p.grad, -grad + 0.5)  # -g + λθ, written into p.grad


def test_difference_large_dims_are_full_in_pytorch_optimizer():
    """pytorch-optimizer's Shampoo has no size limit: every mode gets a full matrix
    (and its SVD).  optbook keeps the diagonal of a mode above max_precond_dim;
    with max_precond_dim above every size the two agree (test above).  Measured on
    an 8x3 matrix with max_precond_dim = 4: 0.29x the distance moved."""
    rel, *_ = lockstep_with_pytorch_optimizer(
        [(8, 3)], 10, dict(lr=0.1, max_precond_dim=4), dict(lr=0.1))
    assert rel[0] > 0.01
    ours = Shampoo([torch.zeros(8, 3, requires_grad=True)], max_precond_dim=4)
    ours.param_groups[0]["params"][0].grad = torch.ones(8, 3)
    ours.step()
    state = next(iter(ours.state.values()))
    assert state["factor_0"].shape == (8,) and state["factor_1"].shape == (3, 3)


# ----------------------------------------------------------------------------------
# The point of it: a rotated, ill-conditioned matrix quadratic
# ----------------------------------------------------------------------------------


def kronecker_quadratic(n=10, kappa=100.0, seed=0):
    """f(W) = ½ tr((W - W*)ᵀ H_L (W - W*) H_R): its Hessian in vec(W) is
    H_R ⊗ H_L, with H_L = Q_L Λ Q_Lᵀ and H_R = Q_R Λ Q_Rᵀ for random rotations and
    eigenvalues log-spaced over [1/κ, 1]; so κ(H) = κ² = 10⁴ and no coordinate
    axis is an eigenvector."""
    g = torch.Generator().manual_seed(seed)

    def spd():
        q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
        lam = torch.logspace(0, -math.log10(kappa), n, dtype=torch.float64)
        return q @ torch.diag(lam) @ q.T

    return spd(), spd(), torch.randn(n, n, generator=g, dtype=torch.float64)


def steps_to_target(make_opt, problem, target=1e-8, budget=2000):
    """Steps until f(W) <= target * f(W_0), from W_0 = 0 (math.inf if never)."""
    HL, HR, Wstar = problem
    W = torch.zeros_like(Wstar, requires_grad=True)
    opt = make_opt([W])
    f0 = 0.5 * torch.trace(Wstar.T @ HL @ Wstar @ HR).item()
    for step in range(budget):
        E = W.detach() - Wstar
        loss = 0.5 * torch.trace(E.T @ HL @ E @ HR).item()
        if not loss <= 1e3 * f0:
            return math.inf  # diverged
        if loss <= target * f0:
            return step
        W.grad = HL @ E @ HR
        opt.step()
    return math.inf


#: Each method at each learning rate of one grid, 10^-1 ... 10^3 in half decades.
LR_GRID = [10 ** (k / 2) for k in range(-2, 7)]
METHODS = {
    "Shampoo": lambda lr: lambda ps: Shampoo(ps, lr=lr),
    "Adam": lambda lr: lambda ps: optbook.Adam(ps, lr=lr),
    "Adagrad": lambda lr: lambda ps: optbook.Adagrad(ps, lr=lr),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shampoo_beats_adam_and_adagrad_on_rotated_quadratic(seed):
    """Steps to reach 10⁻⁸ of the initial loss, each method at its best learning
    rate of LR_GRID.  Measured (seeds 0, 1, 2): Shampoo 42, 43, 58 steps (best lr
    31.6 each time); Adam 1011, 594, 766 (lr 1, 0.32, 1), 13-24x as many; AdaGrad
    does not get there within 2000 steps at any lr.  Asserted: Adam needs >= 8x
    Shampoo's steps, AdaGrad >= 20x, and both best learning rates lie inside the
    grid."""
    problem = kronecker_quadratic(seed=seed)
    best = {}
    for name, make in METHODS.items():
        # AdaGrad only has to be shown slower than 20x Shampoo: no longer budget needed
        budget = 20 * best["Shampoo"][0] + 1 if name == "Adagrad" else 2000
        steps = [steps_to_target(make(lr), problem, budget=budget) for lr in LR_GRID]
        best[name] = (min(steps), LR_GRID[int(np.argmin(steps))])
    shampoo, adam, adagrad = best["Shampoo"][0], best["Adam"][0], best["Adagrad"][0]
    assert shampoo < 100, best
    assert adam >= 8 * shampoo, best
    assert adagrad >= 20 * shampoo, best
    for name in ("Shampoo", "Adam"):
        assert LR_GRID[0] < best[name][1] < LR_GRID[-1], best  # not at the grid's edge


# ----------------------------------------------------------------------------------
# API: validation, state_dict, plumbing
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(lr=torch.tensor(0.1)), "a Tensor lr is not supported"),
    (dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    (dict(momentum=1.0), "Invalid momentum value: 1.0"),
    (dict(weight_decay=-1e-2), "Invalid weight_decay value: -0.01"),
    (dict(epsilon=0.0), "Invalid epsilon value: 0.0"),
    (dict(epsilon=-1e-6), "Invalid epsilon value: -1e-06"),
    (dict(epsilon=math.nan), "Invalid epsilon value: nan"),
    (dict(update_freq=0), "Invalid update_freq value: 0"),
    (dict(update_freq=2.5), "Invalid update_freq value: 2.5"),
    (dict(update_freq=True), "Invalid update_freq value: True"),
    (dict(max_precond_dim=-1), "Invalid max_precond_dim value: -1"),
    (dict(max_precond_dim=1.5), "Invalid max_precond_dim value: 1.5"),
    (dict(maximize="yes"), "Invalid maximize value: 'yes'"),
])
def test_shampoo_validation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Shampoo([torch.zeros(2, 2, requires_grad=True)], **kwargs)


def test_shampoo_state_dict_round_trip_continues_identically():
    g = torch.Generator().manual_seed(4)
    shapes = [(4, 3), (5,), ()]
    pa = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_()
          for s in shapes]
    hyper = dict(lr=0.05, momentum=0.5, weight_decay=0.01, update_freq=3)
    opt_a = Shampoo(pa, **hyper)
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
             for _ in range(12)]
    for step_grads in grads[:5]:  # mid-period: roots last computed at step 4
        for p, grad in zip(pa, step_grads):
            p.grad = grad.clone()
        opt_a.step()
    saved = copy.deepcopy(opt_a.state_dict())
    pb = [p.detach().clone().requires_grad_() for p in pa]
    opt_b = Shampoo(pb, lr=1.0, momentum=0.5)  # the groups are overwritten by the load
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["update_freq"] == 3
    for step_grads in grads[5:]:
        for ps, opt in ((pa, opt_a), (pb, opt_b)):
            for p, grad in zip(ps, step_grads):
                p.grad = grad.clone()
            opt.step()
        for a, b in zip(pa, pb):
            assert torch.equal(a, b)


def test_shampoo_refuses_a_foreign_state_dict():
    p = torch.zeros(3, 2, requires_grad=True)
    adam = optbook.Adam([p])
    p.grad = torch.ones(3, 2)
    adam.step()
    opt = Shampoo([p])
    with pytest.raises(optbook.IncompatibleStateDict, match="lacks .*'epsilon'"):
        opt.load_state_dict(adam.state_dict())
    assert not opt.state  # the failed load left the optimizer as it was


def test_shampoo_maximize_closure_frozen_and_complex():
    w = torch.ones(3, 2, requires_grad=True)
    frozen = torch.full((2,), 7.0, requires_grad=True)
    opt = Shampoo([w, frozen], lr=0.1, maximize=True)

    def closure():
        opt.zero_grad()
        loss = -(w**2).sum()  # maximising -|w|² shrinks w
        loss.backward()
        return loss
    losses = [opt.step(closure).item() for _ in range(5)]
    assert losses[-1] > losses[0]
    assert torch.equal(frozen, torch.full((2,), 7.0))
    c = torch.ones(2, dtype=torch.complex64, requires_grad=True)
    c.grad = torch.ones(2, dtype=torch.complex64)
    with pytest.raises(RuntimeError, match="complex"):
        Shampoo([c]).step()


def test_shampoo_lr_scheduler_drives_the_step():
    """A scheduler changes group["lr"], which the next step uses: halving lr halves
    the step (same statistics)."""
    theta0, grads = random_problem((3, 3), steps=2)
    _, opt = run_optbook(theta0, grads[:1], lr=0.2)
    p = opt.param_groups[0]["params"][0]
    twin = copy.deepcopy(opt)
    q = twin.param_groups[0]["params"][0]
    scheduler = torch.optim.lr_scheduler.StepLR(twin, step_size=1, gamma=0.5)
    twin._opt_called = True  # the first step was taken (before the copy)
    scheduler.step()
    assert twin.param_groups[0]["lr"] == 0.1
    before = p.detach().clone()
    for param, o in ((p, opt), (q, twin)):
        param.grad = torch.tensor(grads[1])
        o.step()
    torch.testing.assert_close(q - before, (p - before) / 2, rtol=1e-14, atol=0)
