"""Equivalence: each optbook optimizer equals its torch.optim twin bit for bit.

For every optimizer, hypothesis draws hyperparameters (edge values included:
momentum 0, betas (0, 0), weight decay, maximize, amsgrad, centered with momentum,
nesterov, lr_decay); both optimizers then take 200 steps on five parameters (a
matrix, a 0-d tensor, a vector, a 3-d tensor, and one that never gets a gradient)
fed the same random gradients, in float32 and float64.  After every step the
parameters and every state tensor must be ``torch.equal`` (NaN-aware) to torch's
single-tensor path (``foreach=False``).
"""

from __future__ import annotations

import pytest
import torch

from twins import run_twins

DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])


@pytest.mark.parametrize("name, hyper", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=["c64", "c128"])
def test_complex_parameters_match_torch(name, hyper, dtype):
    """Complex parameters (torch updates them through real views) give the same bits."""
    run_twins(name, hyper, dtype, seed=3, steps=50)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_tensor_lr_matches_torch(name):
    """A 0-d tensor learning rate is accepted and used exactly as torch uses it."""
    hyper = dict(lr=torch.tensor(0.01))
    if name == "SGD":
        hyper["momentum"] = 0.9
    run_twins(name, hyper, torch.float32, seed=5, steps=30)


@pytest.mark.parametrize("name, hyper", [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
])
def test_nan_and_inf_gradients_propagate_like_torch(name, hyper):
    """NaN and ±inf gradients: same results as torch, NaN positions included."""
    ours_opt, _ = run_twins(name, hyper, torch.float32, seed=11, steps=30, nonfinite=True)
    state = ours_opt.state_dict()["state"]
    assert any(torch.isnan(v).any() or torch.isinf(v).any()
               for s in state.values() for v in s.values() if isinstance(v, torch.Tensor)), \
        "the non-finite gradients did not reach the state: the test would prove nothing"


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_float64_default_dtype_step_counter(name):
    """With float64 as the default dtype, torch keeps ``step`` in float64; so do we."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        run_twins(name, dict(lr=0.01), torch.float64, seed=1, steps=5)
    finally:
        torch.set_default_dtype(previous)
