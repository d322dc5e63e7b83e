"""The equivalence machinery every twin's test module uses (not a test module).

For an optimizer, hypothesis draws hyperparameters (edge values included: momentum 0,
betas (0, 0), weight decay, maximize, amsgrad, ...); the optbook optimizer and its
torch.optim twin then take ``STEPS`` steps on five parameters (a matrix, a 0-d
tensor, a vector, a 3-d tensor and one that never gets a gradient) fed the same
random gradients, in float32 and float64.  After every step the parameters and every
state tensor must be ``torch.equal`` (NaN-aware) to torch's.

* :func:`single_tensor_grid` - optbook (single-tensor path) vs torch ``foreach=False``;
* :func:`foreach_grid` - optbook ``foreach=True`` vs torch ``foreach=True`` (or, on
  the CPU where torch's two paths agree bitwise, vs torch ``foreach=False``).

Each ``tests/test_<module>.py`` builds its grid tests from these, with the
hypothesis strategy for its own hyperparameters.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import optbook

from conftest import SHAPES, lockstep, make_params

STEPS = 200
FOREACH_STEPS = 100
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])

lrs = st.sampled_from([0.0, 1e-3, 1e-2, 0.1, 1.0]) | st.floats(1e-4, 1.0)
decays = st.sampled_from([0.0, 1e-4, 1e-2, 0.1])
unit = st.sampled_from([0.0, 0.5, 0.9, 0.99]) | st.floats(0.0, 0.999)
epss = st.sampled_from([0.0, 1e-10, 1e-8, 1e-3]) | st.floats(1e-12, 1e-2)
seeds = st.integers(0, 2**16)
betas_st = st.sampled_from([(0.0, 0.0), (0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.9, 0.0)]) | st.tuples(
    unit, unit
)


def run_twins(name, hyper, dtype, seed, steps=STEPS, **kw):
    """optbook.<name>(**hyper) against torch.optim.<name>(foreach=False, **hyper)."""
    ours, theirs = make_params(dtype, seed)
    ours_opt = getattr(optbook, name)(ours, **hyper)
    theirs_opt = getattr(torch.optim, name)(theirs, foreach=False, **hyper)
    lockstep(ours_opt, theirs_opt, ours, theirs, steps, seed, dtype, **kw)
    return ours_opt, theirs_opt


def foreach_twins(name, hyper, ours_params, theirs_params, torch_foreach=True, **ours_kw):
    ours = getattr(optbook, name)(ours_params, **{"foreach": True, **hyper, **ours_kw})
    theirs = getattr(torch.optim, name)(theirs_params, **{**hyper, "foreach": torch_foreach})
    return ours, theirs


def run_foreach_twins(name, hyper, dtype, seed, steps=FOREACH_STEPS, shapes=SHAPES, torch_foreach=True, **kw):
    ours, theirs = make_params(dtype, seed, shapes=shapes)
    o, t = foreach_twins(name, hyper, ours, theirs, torch_foreach=torch_foreach)
    lockstep(o, t, ours, theirs, steps, seed, dtype, **kw)
    return o, t


def single_tensor_grid(name, strategy):
    """The grid test: optbook.<name> == torch.optim.<name>(foreach=False)."""

    @DTYPES
    @given(hyper=strategy, seed=seeds)
    def test(hyper, seed, dtype):
        run_twins(name, hyper, dtype, seed)

    test.__name__ = f"test_{name.lower()}_matches_torch"
    test.__doc__ = f"optbook.{name} == torch.optim.{name}(foreach=False), {STEPS} steps, every step."
    return test


def foreach_grid(name, strategy, torch_foreach=True):
    """The grid test: optbook.<name>(foreach=True) == torch.optim.<name>(foreach=...)."""

    @DTYPES
    @given(hyper=strategy, seed=seeds)
    def test(hyper, seed, dtype):
        run_foreach_twins(name, hyper, dtype, seed, torch_foreach=torch_foreach)

    kind = "foreach" if torch_foreach else "single_tensor"
    test.__name__ = f"test_{name.lower()}_foreach_matches_torch_{kind}"
    test.__doc__ = (
        f"optbook.{name}(foreach=True) == torch.optim.{name}"
        f"(foreach={torch_foreach}), {FOREACH_STEPS} steps, every step."
    )
    return test


# For the optimizers without a torch twin (tested against the papers' pseudo-code).


def quadratic(seed=0, n=6):
    """f(θ) = ½ θᵀAθ - bᵀθ, A symmetric positive definite; ∇f = Aθ - b."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n, n))
    A = Q @ Q.T / n + np.diag(np.linspace(0.1, 3.0, n))
    b = rng.standard_normal(n)
    theta0 = rng.standard_normal(n)
    return A, b, theta0


def run_on_quadratic(make_opt, A, b, theta0, steps):
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    A_t, b_t = torch.tensor(A), torch.tensor(b)
    opt = make_opt([theta])
    path = []
    for _ in range(steps):
        theta.grad = A_t @ theta.detach() - b_t
        opt.step()
        path.append(theta.detach().numpy().copy())
    return np.array(path), opt


