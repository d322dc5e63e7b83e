"""The compiled path: ``optbook.compile_step(opt)`` runs the multi-tensor update of
:mod:`optbook.foreach` through ``torch.compile``.

Compilation fuses the chain of ``_foreach_`` operations into one loop per tensor, and
the fused code rounds differently (Adam's step size folded into the denominator,
scalars computed inside the kernel, its own vectorized elementwise functions; on GPUs
also fused multiply-adds), so it is not bitwise equal to the eager result.  The
tolerance checked, at every step of 100, is

    |θ_compiled - θ_eager| <= 32 ε (1 + |θ_eager|)     (ε = machine epsilon of the dtype)

i.e. ``torch.testing.assert_close(rtol=32ε, atol=32ε)``.  Measured on the CPU (x86-64,
AVX-512): the largest ratio |Δθ| / (ε (1 + |θ|)) was 24 for SGD with momentum and
dampening in float32 (rounding differences accumulate in the momentum buffer, which
remembers about 1/(1-μ) = 10 steps), 9 for the same in float64, and at most 6 for the
other algorithms.  The state (moments) is checked with the same tolerance.

Compiling takes seconds to a minute on a CPU (TorchInductor writes and compiles C++,
then caches it on disk); one small test runs in the fast suite, the rest are marked slow.
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch

import optbook
from conftest import assert_bitwise_equal, assert_states_equal, lockstep, make_params

# TorchInductor logs a warning when it looks for CUDA on a CPU-only machine.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

TOLERANCE_EPS = 32
SHAPES = [(3, 4), (), (5,), (2, 3, 2), (64,)]
RICH = {
    "SGD": dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3, maximize=True),
    "Adagrad": dict(lr=0.5, lr_decay=1e-3, initial_accumulator_value=0.1, weight_decay=1e-3),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True, weight_decay=1e-3),
    "Adam": dict(lr=0.1, betas=(0.5, 0.9), amsgrad=True, weight_decay=1e-2),
    "AdamW": dict(lr=0.1, weight_decay=0.1, amsgrad=True),
}


def assert_close_eps(actual, expected, what=""):
    eps = torch.finfo(expected.dtype).eps
    torch.testing.assert_close(actual, expected, rtol=TOLERANCE_EPS * eps, atol=TOLERANCE_EPS * eps,
                               msg=lambda m: f"{what}: {m}")


def compiled_vs_eager(name, hyper, dtype, steps, seed=0, shapes=SHAPES, device="cpu"):
    """Step a compiled and an eager (foreach) optimizer on the same gradients; compare
    parameters and state at every step.  Returns the compiled optimizer."""
    g = torch.Generator().manual_seed(seed)
    dtypes = list(dtype) if isinstance(dtype, (list, tuple)) else [dtype] * len(shapes)
    base = [torch.randn(s, generator=g, dtype=torch.float64).to(d).to(device) for s, d in zip(shapes, dtypes)]
    ours = [b.clone().requires_grad_() for b in base]
    eager = [b.clone().requires_grad_() for b in base]
    compiled_opt = optbook.compile_step(getattr(optbook, name)(ours, **hyper))
    eager_opt = getattr(optbook, name)(eager, foreach=True, **hyper)
    for step in range(1, steps + 1):
        for a, b in zip(ours, eager):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64).to(a.dtype).to(device)
            a.grad, b.grad = grad.clone(), grad.clone()
        compiled_opt.step()
        eager_opt.step()
        for i, (a, b) in enumerate(zip(ours, eager)):
            assert_close_eps(a.detach(), b.detach(), f"step {step} param {i}")
        for a, b in zip(ours, eager):
            for key, value in compiled_opt.state[a].items():
                if isinstance(value, torch.Tensor) and key != "step":
                    assert_close_eps(value, eager_opt.state[b][key], f"step {step} {key}")
                elif key == "step":
                    assert torch.equal(value, eager_opt.state[b][key])
    return compiled_opt, ours, eager


def test_compile_step_api_and_a_small_adam_run():
    """compile_step returns the optimizer, keeps torch's param_groups keys, and the
    compiled Adam stays within tolerance of the eager one (fast suite: one small run)."""
    params = [torch.zeros(3, requires_grad=True)]
    opt = optbook.Adam(params, lr=0.01)
    keys = set(opt.param_groups[0])
    assert not opt.compiled
    assert optbook.compile_step(opt) is opt and opt.compiled
    assert set(opt.param_groups[0]) == keys == set(torch.optim.Adam(params).param_groups[0])
    assert opt.defaults == torch.optim.Adam(params, lr=0.01).defaults
    compiled_opt, ours, eager = compiled_vs_eager("Adam", dict(lr=0.05, weight_decay=0.01), torch.float32,
                                                  steps=20, shapes=[(3, 4), (5,)])
    start = torch.Generator().manual_seed(0)
    initial = [torch.randn(s, generator=start, dtype=torch.float64).float() for s in [(3, 4), (5,)]]
    assert all(not torch.equal(a.detach(), b) for a, b in zip(ours, initial)), \
        "the compiled update did not move the parameters"


def test_compile_step_refuses_a_non_twin():
    with pytest.raises(TypeError, match="compile_step"):
        optbook.compile_step(optbook.AdamKingmaBa([torch.zeros(2, requires_grad=True)]))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(RICH))
def test_compiled_matches_eager_within_tolerance(name, dtype):
    compiled_vs_eager(name, RICH[name], dtype, steps=100)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_compiled_with_mixed_dtypes_and_complex(name):
    """Two buckets (float32, float64) and a complex parameter, each compiled."""
    hyper = {"SGD": dict(lr=0.05, momentum=0.9), "Adam": dict(lr=0.01)}[name]
    dtypes = [torch.float32, torch.float64, torch.complex64, torch.float32]
    compiled_vs_eager(name, hyper, dtypes, steps=20, shapes=SHAPES[:4])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_compiled_follows_an_lr_scheduler_without_recompiling(name):
    """The float lr reaches the compiled code as a tensor: a scheduler changing it at
    every step compiles no new graph (SGD compiles twice: once while the momentum
    buffers do not exist yet, once after)."""
    from torch._dynamo.utils import counters

    hyper = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=0.01), "AdamW": dict(lr=0.01)}[name]
    params = [torch.randn(4, 3, requires_grad=True), torch.randn(7, requires_grad=True)]
    eager = [p.detach().clone().requires_grad_() for p in params]
    opt = optbook.compile_step(getattr(optbook, name)(params, **hyper))
    ref = getattr(optbook, name)(eager, foreach=True, **hyper)
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20) for o in (opt, ref)]
    g = torch.Generator().manual_seed(1)
    graphs = []
    for _ in range(20):
        for a, b in zip(params, eager):
            a.grad = torch.randn(a.shape, generator=g)
            b.grad = a.grad.clone()
        before = counters["stats"]["unique_graphs"]
        opt.step()
        ref.step()
        graphs.append(counters["stats"]["unique_graphs"] - before)
        for s in scheds:
            s.step()
        for a, b in zip(params, eager):
            assert_close_eps(a.detach(), b.detach())
    assert sum(graphs[2:]) == 0, f"recompiled while the lr changed: {graphs}"
    assert opt.param_groups[0]["lr"] != hyper["lr"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_compiled_state_dict_crosses_to_torch(name):
    """A compiled optimizer's state_dict has torch's layout: torch.optim loads it and
    continues exactly like optbook's eager foreach path loaded from the same state."""
    hyper = {k: v for k, v in RICH[name].items() if k != "maximize"}
    ours, _ = make_params(torch.float32, seed=3)
    opt = optbook.compile_step(getattr(optbook, name)(ours, **hyper))
    g = torch.Generator().manual_seed(3)
    for _ in range(10):
        for p in ours[:-1]:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    a = [p.detach().clone().requires_grad_() for p in ours]
    b = [p.detach().clone().requires_grad_() for p in ours]
    theirs = getattr(torch.optim, name)(a, foreach=True, **hyper)
    eager = getattr(optbook, name)(b, foreach=True, **hyper)
    theirs.load_state_dict(copy.deepcopy(saved))
    eager.load_state_dict(copy.deepcopy(saved))
    assert_states_equal(eager, theirs)
    lockstep(eager, theirs, b, a, steps=10, seed=4, dtype=torch.float32)
    for x, y in zip(a, b):
        assert_bitwise_equal(x.detach(), y.detach())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(RICH))
def test_compiled_on_cuda_matches_eager_within_tolerance(name):
    compiled_vs_eager(name, RICH[name], torch.float32, steps=30, device="cuda")
