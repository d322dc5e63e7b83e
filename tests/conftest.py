"""Shared helpers for the optbook test suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Idle OpenMP threads sleep instead of spinning.  `make test` runs two workers on two
# cores, and each worker and each notebook kernel it starts runs torch with one thread
# per core; spinning threads of one process then starve the other's: two
# beyond_diagonal runs side by side took 51 s with sleeping threads, over 600 s with
# spinning ones.  Set before torch loads OpenMP; it changes no number (same thread count).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings

# Hypothesis profiles: "dev" for the inner loop, "ci" (the default under `make test`)
# for the full equivalence grid.  OPTBOOK_HYPOTHESIS_PROFILE picks one.
# the book's build scripts (code/scripts/bookexport.py) are importable by the tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "code" / "scripts"))

settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=8, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("OPTBOOK_HYPOTHESIS_PROFILE", "ci"))


def assert_bitwise_equal(actual: torch.Tensor, expected: torch.Tensor, what: str = "") -> None:
    """``torch.equal``, except that NaNs must sit at the same positions in both.

    Where neither tensor has a NaN this is exactly ``torch.equal``.
    """
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    a_nan, e_nan = torch.isnan(actual), torch.isnan(expected)
    if a_nan.any() or e_nan.any():
        assert torch.equal(a_nan, e_nan), f"{what}: NaN positions differ"
        actual, expected = actual[~a_nan], expected[~e_nan]
    if not torch.equal(actual, expected):
        diff = (actual.to(torch.complex128) - expected.to(torch.complex128)).abs()
        diff = diff[torch.isfinite(diff)]
        worst = diff.max().item() if diff.numel() else float("nan")
        raise AssertionError(f"{what}: not bitwise equal (max abs diff {worst:.3e})")


def assert_states_equal(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer, what: str = "") -> None:
    """Same state names, and bitwise-equal state tensors, for every parameter."""
    ours_state, theirs_state = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert ours_state.keys() == theirs_state.keys(), f"{what}: state entries differ"
    for index in ours_state:
        assert ours_state[index].keys() == theirs_state[index].keys(), f"{what}: state names differ"
        for name, value in ours_state[index].items():
            other = theirs_state[index][name]
            if isinstance(value, torch.Tensor):
                assert_bitwise_equal(value, other, f"{what} state[{index}][{name!r}]")
            else:
                assert value == other, f"{what} state[{index}][{name!r}]"


#: Shapes of the parameter list used in equivalence runs: a matrix, a 0-d tensor,
#: a vector, a 3-d tensor.  A fifth parameter never receives a gradient.
SHAPES = [(3, 4), (), (5,), (2, 3, 2)]


def randn(shape, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal draws in ``dtype``; complex dtypes get a random imaginary part too."""
    wide = torch.complex128 if dtype.is_complex else torch.float64
    return torch.randn(shape, generator=generator, dtype=wide).to(dtype)


def make_params(dtype, seed: int, shapes=SHAPES, frozen: bool = True):
    """Two identical parameter lists (for optbook and torch) plus the frozen one.

    ``dtype`` is one dtype for all, or a list with one dtype per shape (mixed groups).
    """
    dtypes = list(dtype) if isinstance(dtype, (list, tuple)) else [dtype] * len(shapes)
    g = torch.Generator().manual_seed(seed)
    base = [randn(s, g, d) for s, d in zip(shapes, dtypes)]
    if frozen:
        base.append(randn(4, g, dtypes[0]))
    ours = [b.clone().requires_grad_() for b in base]
    theirs = [b.clone().requires_grad_() for b in base]
    return ours, theirs


def lockstep(ours_opt, theirs_opt, ours, theirs, steps: int, seed: int, dtype,
             grad_scale: float = 1.0, check_state_every: int = 1, nonfinite: bool = False) -> None:
    """Feed both optimizers the same random gradients and compare after every step.

    The last parameter of each list is left without a gradient (it must not move).
    Each gradient has its parameter's dtype (``dtype`` is kept for the callers).
    """
    g = torch.Generator().manual_seed(seed + 1)
    with_grad = len(ours) - 1 if len(ours) > len(SHAPES) else len(ours)
    frozen_before = [p.detach().clone() for p in ours[with_grad:]]
    for step in range(1, steps + 1):
        for i in range(with_grad):
            grad = randn(ours[i].shape, g, ours[i].dtype) * grad_scale
            if nonfinite and step % 7 == 0 and grad.numel() > 0:
                flat = grad.view(-1)
                flat[step % flat.numel()] = [float("nan"), float("inf"), -float("inf")][step % 3]
            ours[i].grad = grad.clone()
            theirs[i].grad = grad.clone()
        ours_opt.step()
        theirs_opt.step()
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bitwise_equal(a.detach(), b.detach(), f"step {step} param {i}")
        if step % check_state_every == 0:
            assert_states_equal(ours_opt, theirs_opt, f"step {step}")
    for before, p in zip(frozen_before, ours[with_grad:]):
        assert torch.equal(before, p.detach()), "a parameter without gradient moved"


#: The torch lr schedulers every optimizer family is driven by in the API tests.
SCHEDULERS = {
    "StepLR": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5),
    "CosineAnnealingLR": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30),
    "OneCycleLR": lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.1, total_steps=30, cycle_momentum=True),
}


def scheduled_lockstep(ours_opt, theirs_opt, ours, theirs, sched: str, steps: int = 30,
                       seed: int = 12) -> dict:
    """Drive both optimizers with the same torch scheduler and the same gradients; after
    every step the lr, momentum/betas and parameters must agree exactly.  Returns the sets
    of lrs and (momentum, betas) seen, so a test can check the scheduler really acted."""
    so, st = SCHEDULERS[sched](ours_opt), SCHEDULERS[sched](theirs_opt)
    g = torch.Generator().manual_seed(seed)
    seen = {"lr": set(), "momentum": set()}
    for _ in range(steps):
        for a, b in zip(ours[:-1], theirs[:-1]):
            grad = torch.randn(a.shape, generator=g)
            a.grad, b.grad = grad.clone(), grad.clone()
        ours_opt.step(); theirs_opt.step(); so.step(); st.step()  # noqa: E702
        group, other = ours_opt.param_groups[0], theirs_opt.param_groups[0]
        assert group["lr"] == other["lr"]
        for key in ("momentum", "betas"):
            assert group.get(key) == other.get(key)
        seen["lr"].add(group["lr"])
        seen["momentum"].add((group.get("momentum"), group.get("betas")))
        for a, b in zip(ours, theirs):
            assert_bitwise_equal(a.detach(), b.detach())
    assert so.get_last_lr() == st.get_last_lr()
    assert len(seen["lr"]) > 2, "the scheduler did not change the learning rate"
    return seen


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture
def no_network(monkeypatch):
    """Every way to open a socket raises: code that works under this is offline."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(AssertionError):
        socket.create_connection(("example.org", 80))
