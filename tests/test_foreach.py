"""The multi-tensor path: optbook with ``foreach=True`` equals torch.optim with
``foreach=True`` bit for bit, at every step.

The hypothesis grid of tests/test_equivalence.py (same strategies) is run against
torch's own ``_multi_tensor_*`` functions, on the usual five parameters (a matrix, a
0-d tensor, a vector, a 3-d tensor, one without gradient), in float32 and float64;
then mixed dtypes in one group (the bucketing by device and dtype is exercised),
complex parameters, several groups, the default choice of path, state_dicts crossing
between libraries and paths, lr schedulers and GradScaler.

How torch's foreach path compares with its own single-tensor path: on the CPU,
``torch._foreach_*`` operations are a C++ loop over the same per-tensor kernels, and
the two paths are bitwise equal for all five algorithms (checked below with
``torch.equal``).  The one place where the operations differ on paper is AdaGrad's
last line, ``addcdiv(p, g * (-η_t), std)`` (foreach) against ``addcdiv(p, g, std,
value=-η_t)`` (single): the CPU kernel computes ``value * t1 / t2`` left to right, so
both are ``(-η_t g) / std``.  On CUDA the fused ``_foreach_`` kernels may round
differently; ``test_cuda_foreach_matches_single_tensor_within_tolerance`` bounds it.
"""

from __future__ import annotations

import copy

import pytest
import torch

import optbook
import optbook.base

from conftest import (
    SCHEDULERS,
    SHAPES,
    assert_bitwise_equal,
    assert_states_equal,
    lockstep,
    make_params,
    scheduled_lockstep,
)
from twins import foreach_twins, run_foreach_twins

STEPS = 100
NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Adadelta"]
HYPER = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adagrad": dict(lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1, weight_decay=1e-3),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True, weight_decay=1e-3),
    "Adam": dict(lr=0.01, amsgrad=True, weight_decay=1e-2),
    "AdamW": dict(lr=0.01),
    "NAdam": dict(lr=0.01, weight_decay=1e-2, momentum_decay=0.01),
    "RAdam": dict(lr=0.01, weight_decay=1e-2, decoupled_weight_decay=True),
    "Adamax": dict(lr=0.01, weight_decay=1e-2),
    "Adadelta": dict(lr=0.5, rho=0.8, weight_decay=1e-2),
}
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
#: Where torch's own foreach path is not bitwise equal to its single-tensor path on the
#: CPU (NAdam and RAdam compute √v̂ in another order); optbook follows each path.
TORCH_PATHS_DIFFER = {"NAdam", "RAdam"}


# ---------------------------------------------------------------------------------
# The grid: optbook foreach == torch foreach, every step, every state tensor.
# ---------------------------------------------------------------------------------


# On the CPU, torch's two paths agree bit for bit (see the module docstring), so the
# foreach twin also equals torch's single-tensor path: the tightest tolerance, zero.


MIXED = [torch.float32, torch.float64, torch.float32, torch.float64]


@pytest.mark.parametrize("name", NAMES)
def test_mixed_dtypes_in_one_group_are_bucketed_like_torch(name, monkeypatch):
    """float32 and float64 parameters in one group: two buckets, each updated alike."""
    seen = []
    grouping = torch.optim.Optimizer._group_tensors_by_device_and_dtype

    def spy(tensorlists, with_indices=False):
        buckets = grouping(tensorlists, with_indices)
        seen.append(sorted(str(dtype) for _, dtype in buckets))
        return buckets

    monkeypatch.setattr(torch.optim.Optimizer, "_group_tensors_by_device_and_dtype", staticmethod(spy))
    run_foreach_twins(name, HYPER[name], MIXED, seed=21, steps=40)
    assert ["torch.float32", "torch.float64"] in seen, "the group was not split by dtype"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=["c64", "c128"])
def test_complex_parameters_foreach_match_torch(name, dtype):
    """Complex parameters (viewed as pairs of reals by the adaptive methods)."""
    run_foreach_twins(name, HYPER[name], dtype, seed=3, steps=50)


@pytest.mark.parametrize("name", NAMES)
def test_complex_and_real_mixed_in_one_group(name):
    run_foreach_twins(name, HYPER[name], [torch.complex64, torch.float32, torch.float32, torch.complex64],
                      seed=4, steps=30)


@pytest.mark.parametrize("name", NAMES)
def test_maximize_foreach_matches_torch_and_leaves_grad_alone(name):
    ours, theirs = make_params(torch.float32, seed=5)
    o, t = foreach_twins(name, {**HYPER[name], "maximize": True}, ours, theirs)
    lockstep(o, t, ours, theirs, steps=20, seed=5, dtype=torch.float32)
    grad = torch.ones_like(ours[0])
    ours[0].grad = grad.clone()
    o.step()
    assert torch.equal(ours[0].grad, grad), "maximize must negate a copy, not p.grad"


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_gradients_foreach_like_torch(name):
    o, _ = run_foreach_twins(name, HYPER[name], torch.float32, seed=11, steps=30, nonfinite=True)
    state = o.state_dict()["state"]
    assert any(torch.isnan(v).any() or torch.isinf(v).any()
               for s in state.values() for v in s.values() if isinstance(v, torch.Tensor)), \
        "the non-finite gradients did not reach the state: the test would prove nothing"


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "NAdam", "RAdam", "Adamax", "Adadelta"])
def test_tensor_lr_foreach_matches_torch(name):
    """All but Adam(W) accept a 0-d Tensor lr on the foreach path, as torch does."""
    hyper = {**HYPER[name], "lr": torch.tensor(0.01)}
    run_foreach_twins(name, hyper, torch.float32, seed=6, steps=20)


@pytest.mark.parametrize("name", NAMES)
def test_groups_with_different_paths_and_settings(name):
    """One group on the foreach path, one on the single-tensor path, different hyperparameters."""
    ours, theirs = make_params(torch.float32, seed=8, frozen=False)
    extra = {"SGD": dict(momentum=0.0), "Adagrad": dict(lr_decay=0.0), "RMSprop": dict(centered=False),
             "Adam": dict(amsgrad=False, betas=(0.5, 0.9)), "AdamW": dict(weight_decay=0.1),
             "NAdam": dict(decoupled_weight_decay=True), "RAdam": dict(betas=(0.5, 0.9)),
             "Adamax": dict(weight_decay=0.0), "Adadelta": dict(rho=0.5)}[name]

    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1, "foreach": False, **extra}]

    o, t = foreach_twins(name, HYPER[name], groups(ours), groups(theirs))
    lockstep(o, t, ours, theirs, steps=30, seed=8, dtype=torch.float32)
    assert o.param_groups[0]["foreach"] is True and o.param_groups[1]["foreach"] is False


@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradient_raises_on_foreach_path_too(name):
    weight = torch.zeros(5, 3, requires_grad=True)
    opt = getattr(optbook, name)([weight], lr=0.1, foreach=True)
    torch.nn.functional.embedding(torch.tensor([1, 3]), weight, sparse=True).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()
    assert torch.equal(weight, torch.zeros(5, 3))


# ---------------------------------------------------------------------------------
# Which path runs: foreach=None mirrors torch's default.
# ---------------------------------------------------------------------------------


def _paths_taken(opt, params, monkeypatch):
    taken = []
    cls = type(opt)
    monkeypatch.setattr(cls, "_update",
                        lambda self, *a, _f=cls._update: (taken.append("single"), _f(self, *a)))
    monkeypatch.setattr(cls, "_foreach_update",
                        lambda self, *a, _f=cls._foreach_update: (taken.append("foreach"), _f(self, *a)))
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return set(taken)


@pytest.mark.parametrize("name", NAMES)
def test_default_is_single_tensor_on_cpu(name, monkeypatch):
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, 2, requires_grad=True)]
    opt = getattr(optbook, name)(params)
    assert opt.param_groups[0]["foreach"] is None
    assert _paths_taken(opt, params, monkeypatch) == {"single"}
    assert optbook.base.default_to_foreach(params) is False


@pytest.mark.parametrize("name", NAMES)
def test_default_is_foreach_on_a_native_foreach_device(name, monkeypatch):
    """Pretend the CPU had native foreach kernels (as CUDA has): foreach=None picks foreach."""
    monkeypatch.setattr(optbook.base, "_get_foreach_kernels_supported_devices", lambda: ["cpu"])
    params = [torch.zeros(3, requires_grad=True), torch.zeros(2, 2, requires_grad=True)]
    opt = getattr(optbook, name)(params)
    assert _paths_taken(opt, params, monkeypatch) == {"foreach"}
    # explicit choices are respected
    opt = getattr(optbook, name)(params, foreach=False)
    assert _paths_taken(opt, params, monkeypatch) == {"single"}


def test_default_keeps_adam_with_tensor_lr_on_single_tensor_path(monkeypatch):
    """torch.optim.Adam does not switch foreach on for a Tensor lr; neither does optbook."""
    monkeypatch.setattr(optbook.base, "_get_foreach_kernels_supported_devices", lambda: ["cpu"])
    params = [torch.zeros(3, requires_grad=True)]
    opt = optbook.Adam(params, lr=torch.tensor(0.01))
    assert _paths_taken(opt, params, monkeypatch) == {"single"}


def test_default_to_foreach_rule():
    cpu = [torch.zeros(2)]
    assert optbook.base.default_to_foreach(cpu) is False
    assert optbook.base.default_to_foreach([torch.zeros(2, device="meta")]) is False
    if torch.cuda.is_available():
        cuda = [torch.zeros(2, device="cuda")]
        assert optbook.base.default_to_foreach(cuda) is True
        assert optbook.base.default_to_foreach(cuda, differentiable=True) is False
        assert optbook.base.default_to_foreach(cuda + cpu) is False


# ---------------------------------------------------------------------------------
# API on the foreach path: state_dicts across libraries and paths, schedulers, scaler.
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["optbook->torch", "torch->optbook"])
@pytest.mark.parametrize("other_foreach", [True, False], ids=["to-foreach", "to-single"])
def test_state_dict_crosses_between_foreach_paths(name, direction, other_foreach):
    """Save mid-run on the foreach path; continue in the other library (foreach or single)."""
    if not other_foreach and name in TORCH_PATHS_DIFFER:
        pytest.skip(f"torch's own {name} foreach and single-tensor paths differ in the last "
                    "bit (test_torch_paths_differ_where_said proves it)")
    ours, theirs = make_params(torch.float32, seed=9)
    o, t = foreach_twins(name, HYPER[name], ours, theirs)
    lockstep(o, t, ours, theirs, steps=20, seed=9, dtype=torch.float32)
    cont = [p.detach().clone().requires_grad_() for p in ours]
    hyper = {**HYPER[name], "foreach": other_foreach}
    if direction == "optbook->torch":
        other = getattr(torch.optim, name)(cont, **hyper)
        other.load_state_dict(copy.deepcopy(o.state_dict()))
        reference, ref_params = o, ours
    else:
        other = getattr(optbook, name)(cont, **hyper)
        other.load_state_dict(copy.deepcopy(t.state_dict()))
        reference, ref_params = t, theirs
    # load_state_dict restores the saved groups, foreach=True included; set the path wanted
    for group in other.param_groups:
        group["foreach"] = other_foreach
    assert_states_equal(other, reference, direction)
    lockstep(other, reference, cont, ref_params, steps=20, seed=10, dtype=torch.float32)


@pytest.mark.parametrize("sched", list(SCHEDULERS))
@pytest.mark.parametrize("name", NAMES)
def test_lr_schedulers_drive_foreach_like_torch(name, sched):
    if sched == "OneCycleLR" and name in ("Adagrad", "Adadelta"):
        # test_onecycle_cycle_momentum_with_adadelta_fails_like_torch (test_adam_family.py)
        # and test_onecycle_with_momentum_needs_momentum_like_torch (test_api.py) prove it
        pytest.skip("OneCycleLR(cycle_momentum=True) needs momentum or betas (torch raises too)")
    hyper = dict(HYPER[name])
    if name == "RMSprop":
        hyper["momentum"] = 0.9
    ours, theirs = make_params(torch.float32, seed=12)
    o, t = foreach_twins(name, hyper, ours, theirs)
    scheduled_lockstep(o, t, ours, theirs, sched)


@pytest.mark.parametrize("name", NAMES)
def test_grad_scaler_drives_foreach_like_torch(name):
    from test_api import _regression

    X, y, model_a = _regression(1)
    model_b = copy.deepcopy(model_a)
    o, t = foreach_twins(name, HYPER[name], list(model_a.parameters()), list(model_b.parameters()))
    sa = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    sb = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    for step in range(15):
        for model, opt, scaler in ((model_a, o, sa), (model_b, t, sb)):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X), y)
            if step == 5:
                loss = loss * float("inf")
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        assert sa.get_scale() == sb.get_scale()
        for a, b in zip(model_a.parameters(), model_b.parameters()):
            assert_bitwise_equal(a.detach(), b.detach(), f"step {step}")


# ---------------------------------------------------------------------------------
# CUDA (skipped without a GPU).
# ---------------------------------------------------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _cuda_params(seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    base = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in SHAPES]
    return ([b.cuda().requires_grad_() for b in base], [b.cuda().requires_grad_() for b in base])


def _cuda_lockstep(o, t, ours, theirs, steps, seed, check):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for a, b in zip(ours, theirs):
            grad = torch.randn(a.shape, generator=g, dtype=torch.float64).to(a.dtype).cuda()
            a.grad, b.grad = grad.clone(), grad.clone()
        o.step()
        t.step()
        for a, b in zip(ours, theirs):
            check(a.detach(), b.detach())


@cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_default_foreach_matches_torch_default(name):
    ours, theirs = _cuda_params(13)
    o, t = getattr(optbook, name)(ours, **HYPER[name]), getattr(torch.optim, name)(theirs, **HYPER[name])
    _cuda_lockstep(o, t, ours, theirs, 50, 13, assert_bitwise_equal)


@cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_foreach_matches_single_tensor_within_tolerance(name):
    """torch's CUDA _foreach_ kernels may round differently from its per-tensor kernels."""
    ours, theirs = _cuda_params(14)
    o = getattr(optbook, name)(ours, foreach=True, **HYPER[name])
    t = getattr(torch.optim, name)(theirs, foreach=False, **HYPER[name])

    def close(a, b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    _cuda_lockstep(o, t, ours, theirs, 50, 14, close)


@pytest.mark.parametrize("name", NAMES)
def test_torch_paths_differ_where_said(name):
    """TORCH_PATHS_DIFFER lists exactly the twins whose torch foreach and single-tensor
    paths disagree after a few steps (for the others, optbook's foreach grid is also
    checked against torch's single-tensor path)."""
    a, b = make_params(torch.float32, seed=4)
    fa = getattr(torch.optim, name)(a, foreach=True, **HYPER[name])
    fb = getattr(torch.optim, name)(b, foreach=False, **HYPER[name])
    g = torch.Generator().manual_seed(4)
    for _ in range(30):
        for pa, pb in zip(a, b):
            grad = torch.randn(pa.shape, generator=g)
            pa.grad, pb.grad = grad.clone(), grad.clone()
        fa.step()
        fb.step()
    equal = all(torch.equal(x, y) for x, y in zip(a, b))
    assert equal == (name not in TORCH_PATHS_DIFFER)
