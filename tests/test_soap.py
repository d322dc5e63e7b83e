"""optbook.SOAP (optbook/soap.py): no torch twin.  Checked against a float64 numpy
reference written from the paper's pseudo-code (Vyas et al. 2024, Algorithms 3 and
4), against torch.optim.AdamW where no mode is rotated (then SOAP is AdamW, bit
for bit), and against pytorch-optimizer's SOAP (a port of the authors' code): the
same arithmetic once the states are aligned, and each difference measured.
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch

import optbook
from optbook.soap import SOAP, refresh_basis, rotate

po = pytest.importorskip("pytorch_optimizer")


# ----------------------------------------------------------------------------------
# The paper's pseudo-code, in float64 numpy (no optbook code)
# ----------------------------------------------------------------------------------


def soap_reference(theta0, grads, *, lr, betas, shampoo_beta=None, eps=1e-8,
                   weight_decay=0.01, precondition_frequency=10, max_precond_dim=10000,
                   correct_bias=True):
    """Algorithm 3 for each mode of the tensor, Algorithm 4 (S = PQ, Q = QR(S),
    columns sorted by the estimated eigenvalues diag(QᵀPQ), V permuted alike) every
    f-th step, eigenvectors (largest first) of the first statistics at step 1.
    optbook's documented choices: Adam's bias correction as torch.optim.Adam
    (M̂ / (√V̂ + ε)), decoupled weight decay before the step as torch.optim.AdamW,
    no rotation for vectors, 0-d tensors and modes above max_precond_dim."""
    beta1, beta2 = betas
    beta_s = beta2 if shampoo_beta is None else shampoo_beta
    X = theta0.copy()
    k = X.ndim
    rotated = [k >= 2 and n <= max_precond_dim for n in X.shape]
    M = np.zeros_like(X)
    V = np.zeros_like(X)
    P = [np.zeros((n, n)) if r else None for n, r in zip(X.shape, rotated)]
    Q = [None] * k

    def unfold(A, i):
        return np.moveaxis(A, i, 0).reshape(A.shape[i], -1)

    def rotate(A, back=False):
        """Q_Lᵀ A Q_R (back: Q_L A Q_Rᵀ): mode products, one mode at a time."""
        for i in range(k):
            if Q[i] is not None:
                B = Q[i] if back else Q[i].T
                A = np.moveaxis(np.tensordot(B, np.moveaxis(A, i, 0), axes=1), 0, i)
        return A

    path = []
    for t, G in enumerate(grads, start=1):
        X = X * (1 - lr * weight_decay)
        if t == 1:
            for i in range(k):
                if rotated[i]:
                    P[i] = (1 - beta_s) * unfold(G, i) @ unfold(G, i).T
                    _, vectors = np.linalg.eigh(P[i])
                    Q[i] = vectors[:, ::-1]
        G_rot = rotate(G)
        M = beta1 * M + (1 - beta1) * G
        M_rot = rotate(M)
        V = beta2 * V + (1 - beta2) * G_rot**2
        if correct_bias:
            M_hat, V_hat = M_rot / (1 - beta1**t), V / (1 - beta2**t)
        else:
            M_hat, V_hat = M_rot, V
        N = rotate(M_hat / (np.sqrt(V_hat) + eps), back=True)
        X = X - lr * N
        if t > 1:
            for i in range(k):
                if rotated[i]:
                    P[i] = beta_s * P[i] + (1 - beta_s) * unfold(G, i) @ unfold(G, i).T
            if t % precondition_frequency == 0:
                for i in range(k):
                    if rotated[i]:
                        S = P[i] @ Q[i]
                        order = np.argsort(-np.sum(Q[i] * S, axis=0))
                        V = np.take(V, order, axis=i)
                        Q[i], _ = np.linalg.qr(S[:, order])
        path.append(X.copy())
    return np.array(path)


def run_optbook(theta0, grads, dtype=torch.float64, **hyper):
    p = torch.tensor(theta0, dtype=dtype, requires_grad=True)
    opt = SOAP([p], **hyper)
    path = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
        path.append(p.detach().double().numpy().copy())
    return np.array(path), opt


def random_problem(shape, steps=25, seed=0):
    rng = np.random.default_rng(seed)
    theta0 = np.asarray(rng.standard_normal(shape), dtype=np.float64)
    grads = [rng.standard_normal(shape) * rng.uniform(0.1, 3.0) for _ in range(steps)]
    return theta0, grads


#: Shapes whose first statistics have full rank (square matrices; order-3 tensors
#: with n_i <= N / n_i; a 3x7 matrix whose 7-side is not rotated), so that the
#: first eigenbasis is unique up to signs; see
#: test_first_basis_of_a_rank_deficient_statistic_is_arbitrary for the others.
SHAPES = [(4, 4), (6, 6), (2, 3, 4), (3, 4, 5), (3, 7), (5,), ()]
HYPERS = {
    "defaults": dict(lr=0.01, betas=(0.95, 0.95), max_precond_dim=5),
    "freq1-decay": dict(lr=0.01, betas=(0.9, 0.99), shampoo_beta=0.8, eps=1e-3,
                        weight_decay=0.1, precondition_frequency=1, max_precond_dim=5),
    "freq3-no-bias-correction": dict(lr=0.003, betas=(0.9, 0.95), eps=1e-4,
                                     precondition_frequency=3, correct_bias=False,
                                     max_precond_dim=5),
}
#: Largest difference from the reference, relative to the distance moved: 1e-12,
#: or 1e-8 with the default ε = 1e-8 (see test_soap_matches_paper_reference).
RTOL = {"defaults": 1e-8, "freq1-decay": 1e-12, "freq3-no-bias-correction": 1e-12}


@pytest.mark.parametrize("name", list(HYPERS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_soap_matches_paper_reference(shape, name):
    """25 steps.  Measured, relative to the distance moved: <= 6e-15 on all shapes
    but the 4x4 matrix, which is at 2.4e-9 with ε = 1e-8, 5.8e-14 with ε = 1e-3 and
    2.6e-14 with ε = 1e-4 (the error scales as 1/ε).  Its floor is the first step:
    G_1' = Q_Lᵀ G_1 Q_R is diagonal up to round-off (~1e-17), Adam turns each such
    entry x into x / (|x| + ε) ≈ x / ε, and numpy's round-off is not torch's."""
    hyper = HYPERS[name]
    theta0, grads = random_problem(shape)
    ours, _ = run_optbook(theta0, grads, **hyper)
    ref = soap_reference(theta0, grads, **hyper)
    moved = np.abs(ref - theta0).max()
    assert moved > 0.005, "the parameters hardly moved: the test could not fail"
    assert np.abs(ours - ref).max() <= RTOL[name] * moved


def test_soap_state_layout_and_orthogonal_bases():
    theta0, grads = random_problem((3, 4, 20), steps=12)
    _, opt = run_optbook(theta0, grads, precondition_frequency=5, max_precond_dim=10)
    state = next(iter(opt.state.values()))
    assert sorted(state) == ["basis_0", "basis_1", "exp_avg", "exp_avg_sq",
                             "factor_0", "factor_1", "step"]
    for i, n in enumerate((3, 4)):
        Q = state[f"basis_{i}"]
        torch.testing.assert_close(Q.T @ Q, torch.eye(n, dtype=torch.float64),
                                   rtol=0, atol=1e-14)
    # factor_0 is the EWMA of G_(1) G_(1)ᵀ with β_s = β2 = 0.95, from zero
    unfold = [g.reshape(3, -1) for g in grads]
    expected = sum(0.05 * 0.95 ** (len(grads) - t) * u @ u.T
                   for t, u in enumerate(unfold, start=1))
    np.testing.assert_allclose(state["factor_0"].numpy(), expected, rtol=1e-13)


def test_refresh_basis_sorts_and_carries_v():
    """One refresh from a basis whose columns are in the wrong order: the new basis
    lists the largest eigenvalue first, and V's columns move with their vectors."""
    P = torch.diag(torch.tensor([1.0, 5.0, 3.0], dtype=torch.float64))
    Q = torch.eye(3, dtype=torch.float64)
    V = torch.tensor([[10.0, 50.0, 30.0]], dtype=torch.float64)  # V along mode 1
    refresh_basis(P, Q, V, mode=1)
    assert torch.equal(V, torch.tensor([[50.0, 30.0, 10.0]], dtype=torch.float64))
    torch.testing.assert_close(Q.abs(), torch.tensor(
        [[0.0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=torch.float64))


def test_first_step_is_minus_lr_times_polar_factor():
    """At t = 1 the bases are the singular vectors of G_1, so G_1' = Σ (diagonal)
    and Adam's first step, sign(G') up to ε, moves W by -η U Vᵀ: the polar factor
    of G_1, as Muon's orthogonalised step (measured: 1.3e-9 off, about ε/σ).  For
    an order-3 tensor G_1' is the HOSVD core, not diagonal; in the basis the step
    is still Adam's first, -η G'/(|G'| + ε)."""
    g = torch.Generator().manual_seed(0)
    for shape in [(4, 4), (6, 3), (3, 6), (2, 3, 4)]:
        p = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        opt = SOAP([p], lr=0.01, weight_decay=0.0)
        G = torch.randn(shape, generator=g, dtype=torch.float64)
        p.grad = G
        opt.step()
        state = opt.state[p]
        bases = [state[f"basis_{i}"] for i in range(len(shape))]
        # in the basis: Adam's first step, -η G'/(|G'| + ε), for any order (up to
        # 4e-10: entries of G' that are round-off, x ~ 1e-17, give η x / ε)
        G_rot = rotate(G, bases)
        torch.testing.assert_close(rotate(p.detach(), bases),
                                   -0.01 * G_rot / (G_rot.abs() + 1e-8),
                                   rtol=1e-12, atol=2e-9)
        if len(shape) == 2:  # and for a matrix, -η U Vᵀ
            U, _, Vh = torch.linalg.svd(G, full_matrices=False)
            torch.testing.assert_close(p.detach(), -0.01 * U @ Vh, rtol=0, atol=1e-8)


def test_first_basis_of_a_rank_deficient_statistic_is_arbitrary():
    """A pitfall, measured: for a 6x3 gradient L_1 = (1-β)G_1G_1ᵀ has rank 3, so
    eigh's basis of its null space is any basis, fixed by round-off.  G_2, G_3, ...
    do have components there, and Adam's diagonal V depends on the basis, so a
    relative change of 1e-15 in G_1 moves W_25 by 20 % of the distance moved
    (a square 4x4 gradient: by 6e-9).  This is why the reference test uses shapes
    with full-rank first statistics."""
    def final(shape, perturbation):
        g = torch.Generator().manual_seed(1)
        p = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        opt = SOAP([p], lr=0.01, weight_decay=0.0)
        for t in range(25):
            G = torch.randn(shape, generator=g, dtype=torch.float64)
            p.grad = G * (1 + perturbation) if t == 0 else G
            opt.step()
        return p.detach()

    for shape, low, high in (((6, 3), 0.02, math.inf), ((4, 4), 0.0, 1e-7)):
        a, b = final(shape, 0.0), final(shape, 1e-15)
        relative = (a - b).abs().max().item() / a.abs().max().item()
        assert low < relative < high, (shape, relative)


# ----------------------------------------------------------------------------------
# With no rotated mode, SOAP is torch.optim.AdamW bit for bit
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_soap_without_rotation_is_torch_adamw(dtype):
    """Vectors, 0-d tensors, and every mode above max_precond_dim are not rotated;
    SOAP is then torch.optim.AdamW (same ε placement, same decoupled decay, same
    ops): torch.equal after every step."""
    g = torch.Generator().manual_seed(2)
    shapes = [(5,), (), (4, 3), (2, 3, 4)]
    ours = [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    hyper = dict(lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    opt_a = SOAP(ours, max_precond_dim=0, **hyper)
    opt_b = torch.optim.AdamW(theirs, foreach=False, **hyper)
    for _ in range(30):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn(a.shape, generator=g, dtype=dtype)
            b.grad = a.grad.clone()
        opt_a.step()
        opt_b.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)
    for a, b in zip(ours, theirs):
        assert torch.equal(opt_a.state[a]["exp_avg_sq"], opt_b.state[b]["exp_avg_sq"])


# ----------------------------------------------------------------------------------
# pytorch-optimizer's SOAP: the same arithmetic once aligned, each difference measured
# ----------------------------------------------------------------------------------

PO_SHAPES = [(5, 3), (4, 4), (3, 7), (6,), (2, 3, 4)]


def aligned_pair(dtype, hyper, primed=4, seed=0, shapes=PO_SHAPES, grad_scale=1.0):
    """pytorch-optimizer spends its first step on the statistics and counts Adam's
    steps from the second, so after its step s it is where optbook is after step
    t = s - 1.  Run it for ``primed`` steps, copy its state (M, V, L, R, Q_L, Q_R,
    θ) into an optbook SOAP at t = primed - 1; from there the two take the same
    steps.  Returns both optimizers, parameter lists and the generator."""
    g = torch.Generator().manual_seed(seed)
    ours = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
            for s in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    opt_b = po.SOAP(theirs, **hyper)
    for _ in range(primed):
        for b in theirs:
            grad = torch.randn(b.shape, generator=g, dtype=torch.float64) * grad_scale
            b.grad = grad.to(dtype)
        opt_b.step()
    opt_a = SOAP(ours, **hyper)
    for a, b in zip(ours, theirs):
        a.grad = b.grad.clone()
    opt_a.param_groups[0]["lr"] = 0.0
    opt_a.step()  # creates the state, moves nothing
    opt_a.param_groups[0]["lr"] = hyper["lr"]
    for a, b in zip(ours, theirs):
        mine, other = opt_a.state[a], opt_b.state[b]
        mine["step"].fill_(opt_b.param_groups[0]["step"] - 1)
        mine["exp_avg"].copy_(other["exp_avg"])
        mine["exp_avg_sq"].copy_(other["exp_avg_sq"])
        for i, (factor, basis) in enumerate(zip(other["GG"], other["Q"])):
            if len(factor):
                mine[f"factor_{i}"].copy_(factor)
                mine[f"basis_{i}"].copy_(basis)
        with torch.no_grad():
            a.copy_(b)
    return opt_a, opt_b, ours, theirs, g


def relative_gap(hyper, dtype=torch.float64, steps=25, grad_scale=1.0, **kwargs):
    """max |θ_ours - θ_theirs| / max |θ_theirs - θ_aligned| per parameter, after
    ``steps`` aligned steps on the same gradients."""
    opt_a, opt_b, ours, theirs, g = aligned_pair(dtype, hyper, grad_scale=grad_scale,
                                                 **kwargs)
    start = [b.detach().clone() for b in theirs]
    worst = [0.0] * len(ours)
    for _ in range(steps):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64) * grad_scale
            a.grad, b.grad = grad.to(dtype), grad.to(dtype).clone()
        opt_a.step()
        opt_b.step()
        for i, (a, b) in enumerate(zip(ours, theirs)):
            worst[i] = max(worst[i], (a - b).abs().max().item())
    moved = [(b - s).abs().max().item() for b, s in zip(theirs, start)]
    return [w / m for w, m in zip(worst, moved)]


#: ε = 0 and no weight decay: the two ε placements and decay orders coincide.
SAME = dict(lr=0.01, betas=(0.9, 0.95), eps=0.0, weight_decay=0.0)


def test_soap_matches_pytorch_optimizer_once_aligned_float64():
    """No basis refresh in the 25 steps (f = 1000): measured <= 2.3e-15 of the
    distance moved, i.e. the same arithmetic up to round-off (V's update is a lerp
    there, mul and addcmul here; the bias corrections are applied in another
    order)."""
    rel = relative_gap(dict(SAME, precondition_frequency=1000))
    assert max(rel) < 1e-14, rel


def test_soap_matches_pytorch_optimizer_once_aligned_float32():
    """float32, refreshing every 3 steps (both run QR in float32): measured
    <= 2.5e-6 of the distance moved (float32 round-off, grown over 25 steps)."""
    rel = relative_gap(dict(SAME, precondition_frequency=3), dtype=torch.float32)
    assert max(rel) < 1e-5, rel


def test_difference_qr_in_float32():
    """pytorch-optimizer (as the authors' code) casts P Q to float32 for the QR
    decomposition, also for float64 parameters; optbook keeps float64.  Measured:
    with a refresh every 3 steps the float64 paths part by 1.0e-7 - 1.8e-7 of the
    distance moved, float32's precision (the vector, never rotated: 4e-16)."""
    rel = relative_gap(dict(SAME, precondition_frequency=3))
    matrices, vector = rel[:3] + rel[4:], rel[3]
    assert min(matrices) > 1e-10 and max(matrices) < 1e-6, rel
    assert vector < 1e-14, rel


def test_difference_first_step():
    """pytorch-optimizer's first step only initialises the statistics and the bases:
    θ does not move, and its Adam step count (for the bias corrections) lags the
    gradient count by one.  optbook's first step moves θ by about -η U Vᵀ."""
    g = torch.Generator().manual_seed(3)
    shapes = [(4, 3), (5,)]
    ours = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_()
            for s in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    start = [p.detach().clone() for p in ours]
    opt_a, opt_b = SOAP(ours, lr=0.01), po.SOAP(theirs, lr=0.01)
    for a, b in zip(ours, theirs):
        a.grad = torch.randn(a.shape, generator=g, dtype=torch.float64)
        b.grad = a.grad.clone()
    opt_a.step()
    opt_b.step()
    for a, b, s in zip(ours, theirs, start):
        assert torch.equal(b.detach(), s)          # pytorch-optimizer: no move
        assert (a - s).abs().max().item() > 5e-3   # optbook: about η per entry
    # its statistics and bases already hold G_1, as optbook's
    np.testing.assert_allclose(opt_b.state[theirs[0]]["GG"][0].numpy(),
                               opt_a.state[ours[0]]["factor_0"].numpy(), rtol=1e-14)


def test_difference_eps_placement():
    """pytorch-optimizer (as the authors' code, and HF's AdamW) adds ε to √V and
    folds √(1-β2^t)/(1-β1^t) into η; optbook adds ε to √V̂, as torch.optim.Adam.
    The two differ by ε against ε/√(1-β2^t): invisible for gradients of size 1
    (measured 1.1e-8 - 1.9e-8 of the distance moved with ε = 1e-8), decisive for
    gradients of size 1e-8 (measured 0.29 - 0.51)."""
    hyper = dict(SAME, eps=1e-8, precondition_frequency=1000)
    large = relative_gap(hyper, primed=2)
    small = relative_gap(hyper, primed=2, grad_scale=1e-8)
    assert max(large) < 1e-7, large
    assert min(small) > 0.1, small


def test_difference_weight_decay_order():
    """pytorch-optimizer decays after the step, θ <- (θ - s N)(1 - ηλ); optbook
    before it, as torch.optim.AdamW, θ <- (1 - ηλ)θ - s N.  One aligned step:
    theirs - ours = -ηλ (ours - (1 - ηλ)θ), a gap of 3e-5 - 7e-5 here, predicted
    to 8e-12 of itself (measured)."""
    lr, wd = 0.01, 0.5
    opt_a, opt_b, ours, theirs, g = aligned_pair(
        torch.float64, dict(SAME, weight_decay=wd, precondition_frequency=1000))
    before = [b.detach().clone() for b in theirs]
    for a, b in zip(ours, theirs):
        a.grad = torch.randn(a.shape, generator=g, dtype=torch.float64)
        b.grad = a.grad.clone()
    opt_a.step()
    opt_b.step()
    for a, b, theta in zip(ours, theirs, before):
        predicted = -lr * wd * (a.detach() - (1 - lr * wd) * theta)
        gap = (b - a).detach()
        assert gap.abs().max().item() > 1e-6
        torch.testing.assert_close(gap, predicted, rtol=1e-10, atol=1e-16)


def test_difference_refresh_step_count():
    """Both refresh every f steps of their own counters; pytorch-optimizer's counter
    is the gradient count minus one, so it refreshes after gradients f+1, 2f+1, ...
    and optbook after gradients f, 2f, ... (measured: which steps change the basis)."""
    f = 3
    changed = {}
    for name, cls in (("optbook", SOAP), ("pytorch_optimizer", po.SOAP)):
        p = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
        opt = cls([p], lr=0.01, precondition_frequency=f)
        g = torch.Generator().manual_seed(5)
        changed[name], last = [], None
        for step in range(1, 11):
            p.grad = torch.randn(4, 4, generator=g, dtype=torch.float64)
            opt.step()
            state = opt.state[p]
            basis = (state["basis_0"] if name == "optbook" else state["Q"][0]).clone()
            if last is not None and not torch.equal(basis, last):
                changed[name].append(step)
            last = basis
    assert changed == {"optbook": [3, 6, 9], "pytorch_optimizer": [4, 7, 10]}


# ----------------------------------------------------------------------------------
# API: validation, state_dict, plumbing
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(lr=torch.tensor(0.1)), "a Tensor lr is not supported"),
    (dict(betas=(1.0, 0.95)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(shampoo_beta=1.0), "Invalid shampoo_beta value: 1.0"),
    (dict(shampoo_beta=-0.5), "Invalid shampoo_beta value: -0.5"),
    (dict(shampoo_beta="0.9"), "Invalid shampoo_beta value: '0.9'"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (dict(precondition_frequency=0), "Invalid precondition_frequency value: 0"),
    (dict(precondition_frequency=2.0), "Invalid precondition_frequency value: 2.0"),
    (dict(max_precond_dim=-1), "Invalid max_precond_dim value: -1"),
    (dict(max_precond_dim=None), "Invalid max_precond_dim value: None"),
    (dict(correct_bias=1), "Invalid correct_bias value: 1"),
    (dict(maximize=None), "Invalid maximize value: None"),
])
def test_soap_validation(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SOAP([torch.zeros(2, 2, requires_grad=True)], **kwargs)


def test_soap_state_dict_round_trip_continues_identically():
    g = torch.Generator().manual_seed(4)
    shapes = [(4, 3), (5,), (2, 3, 2)]
    pa = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_()
          for s in shapes]
    opt_a = SOAP(pa, lr=0.01, precondition_frequency=4)
    grads = [[torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
             for _ in range(14)]
    for step_grads in grads[:6]:  # mid-period: refreshed at step 4, next at 8
        for p, grad in zip(pa, step_grads):
            p.grad = grad.clone()
        opt_a.step()
    saved = copy.deepcopy(opt_a.state_dict())
    pb = [p.detach().clone().requires_grad_() for p in pa]
    opt_b = SOAP(pb, lr=1.0)  # the groups are overwritten by the load
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["precondition_frequency"] == 4
    for step_grads in grads[6:]:
        for ps, opt in ((pa, opt_a), (pb, opt_b)):
            for p, grad in zip(ps, step_grads):
                p.grad = grad.clone()
            opt.step()
        for a, b in zip(pa, pb):
            assert torch.equal(a, b)


def test_soap_refuses_a_foreign_state_dict():
    """An AdamW state_dict lacks SOAP's bases and statistics: refused at load."""
    p = torch.zeros(3, 2, requires_grad=True)
    adamw = optbook.AdamW([p])
    p.grad = torch.ones(3, 2)
    adamw.step()
    opt = SOAP([p])
    with pytest.raises(optbook.IncompatibleStateDict, match="lacks"):
        opt.load_state_dict(adamw.state_dict())


def test_soap_maximize_shampoo_beta_frozen_and_complex():
    g = torch.Generator().manual_seed(6)
    grads = [torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(8)]
    paths = {}
    for name, kwargs, sign in (("min", {}, 1), ("max", dict(maximize=True), -1),
                               ("beta_s", dict(shampoo_beta=0.5), 1)):
        p = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
        frozen = torch.ones(2, requires_grad=True)
        opt = SOAP([p, frozen], lr=0.01, precondition_frequency=2, **kwargs)
        for grad in grads:
            p.grad = sign * grad
            opt.step()
        assert torch.equal(frozen, torch.ones(2))
        paths[name] = p.detach()
    assert torch.equal(paths["min"], paths["max"])  # maximize negates the gradient
    assert (paths["min"] - paths["beta_s"]).abs().max().item() > 1e-4
    c = torch.ones(2, 2, dtype=torch.complex64, requires_grad=True)
    c.grad = torch.ones(2, 2, dtype=torch.complex64)
    with pytest.raises(RuntimeError, match="complex"):
        SOAP([c]).step()
