"""API: optbook optimizers behave as drop-in replacements for their torch twins.

Param groups, add_param_group, zero_grad, closures, state_dict round trips (and
crossing between optbook and torch.optim both ways), lr schedulers, GradScaler.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import optbook

from conftest import (
    SCHEDULERS,
    assert_bitwise_equal,
    assert_states_equal,
    lockstep,
    make_params,
    scheduled_lockstep,
)

NAMES = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]
HYPER = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "Adagrad": dict(lr=0.05, lr_decay=1e-3, initial_accumulator_value=0.1),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
    "Adam": dict(lr=0.01, amsgrad=True, weight_decay=1e-2),
    "AdamW": dict(lr=0.01),
}


def pair(name, params_ours, params_theirs, **hyper):
    hyper = {**HYPER[name], **hyper}
    return getattr(optbook, name)(params_ours, **hyper), getattr(torch.optim, name)(
        params_theirs, foreach=False, **hyper)


@pytest.mark.parametrize("name", NAMES)
def test_constructor_defaults_and_group_keys_match_torch(name):
    ours = getattr(optbook, name)([torch.zeros(2, requires_grad=True)])
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)])
    assert ours.defaults == theirs.defaults
    assert ours.param_groups[0].keys() == theirs.param_groups[0].keys()


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_with_different_settings(name):
    ours, theirs = make_params(torch.float32, seed=2, frozen=False)
    extra = {"SGD": dict(momentum=0.0), "Adagrad": dict(lr_decay=0.0), "RMSprop": dict(centered=False),
             "Adam": dict(amsgrad=False, betas=(0.5, 0.9)), "AdamW": dict(weight_decay=0.1)}[name]
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1, **extra}]  # noqa: E731
    o, t = pair(name, groups(ours), groups(theirs))
    lockstep(o, t, ours, theirs, steps=40, seed=2, dtype=torch.float32)
    assert o.param_groups[1]["lr"] == 0.1 and o.param_groups[0]["lr"] == HYPER[name]["lr"]


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group(name):
    ours, theirs = make_params(torch.float32, seed=4, frozen=False)
    o, t = pair(name, ours[:2], theirs[:2])
    lockstep(o, t, ours[:2], theirs[:2], steps=10, seed=4, dtype=torch.float32)
    o.add_param_group({"params": ours[2:], "lr": 0.003})
    t.add_param_group({"params": theirs[2:], "lr": 0.003})
    assert o.param_groups[1].keys() == t.param_groups[1].keys()
    lockstep(o, t, ours, theirs, steps=20, seed=5, dtype=torch.float32)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(name, set_to_none):
    ours, theirs = make_params(torch.float32, seed=6, frozen=False)
    o, t = pair(name, ours, theirs)
    for p in ours + theirs:
        p.grad = torch.ones_like(p)
    o.zero_grad(set_to_none=set_to_none)
    t.zero_grad(set_to_none=set_to_none)
    for a, b in zip(ours, theirs):
        if set_to_none:
            assert a.grad is None and b.grad is None
        else:
            assert torch.equal(a.grad, torch.zeros_like(a)) and torch.equal(b.grad, torch.zeros_like(b))


def _regression(seed=0):
    torch.manual_seed(seed)
    X, y = torch.randn(32, 5), torch.randn(32, 1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))
    return X, y, model


@pytest.mark.parametrize("name", NAMES)
def test_closure_is_called_and_its_loss_returned(name):
    X, y, model_a = _regression()
    model_b = copy.deepcopy(model_a)
    o, t = pair(name, list(model_a.parameters()), list(model_b.parameters()))
    for _ in range(15):
        def closure(model=model_a, opt=o):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(X), y)
            loss.backward()
            return loss

        def closure_t(model=model_b, opt=t):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(X), y)
            loss.backward()
            return loss

        la, lb = o.step(closure), t.step(closure_t)
        assert torch.equal(la, lb)
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_mid_run_continues_identically(name):
    ours, theirs = make_params(torch.float32, seed=7)
    o, t = pair(name, ours, theirs)
    lockstep(o, t, ours, theirs, steps=25, seed=7, dtype=torch.float32)
    saved = copy.deepcopy(o.state_dict())
    # a fresh optbook optimizer loaded from the saved state continues like the original
    fresh = getattr(optbook, name)(ours, **HYPER[name])
    fresh.load_state_dict(saved)
    assert_states_equal(fresh, o)
    lockstep(fresh, t, ours, theirs, steps=25, seed=8, dtype=torch.float32)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("direction", ["optbook->torch", "torch->optbook"])
def test_state_dict_crosses_between_optbook_and_torch(name, direction):
    ours, theirs = make_params(torch.float32, seed=9)
    o, t = pair(name, ours, theirs)
    lockstep(o, t, ours, theirs, steps=20, seed=9, dtype=torch.float32)
    # a third pair of parameters, continued by the *other* library from the saved state
    cont = [p.detach().clone().requires_grad_() for p in ours]
    if direction == "optbook->torch":
        other = getattr(torch.optim, name)(cont, foreach=False, **HYPER[name])
        other.load_state_dict(copy.deepcopy(o.state_dict()))
        reference, ref_params = o, ours
    else:
        other = getattr(optbook, name)(cont, **HYPER[name])
        other.load_state_dict(copy.deepcopy(t.state_dict()))
        reference, ref_params = t, theirs
    assert_states_equal(other, reference, direction)
    lockstep(other, reference, cont, ref_params, steps=20, seed=10, dtype=torch.float32)


@pytest.mark.parametrize("sched", list(SCHEDULERS))
@pytest.mark.parametrize("name", NAMES)
def test_lr_schedulers_drive_optbook_like_torch(name, sched):
    if sched == "OneCycleLR" and name in ("Adagrad",):
        pytest.skip("OneCycleLR(cycle_momentum=True) needs momentum or betas; Adagrad has neither "
                    "(torch.optim.Adagrad raises the same error)")
    hyper = dict(HYPER[name])
    if name == "RMSprop":
        hyper["momentum"] = 0.9
    ours, theirs = make_params(torch.float32, seed=12)
    o, t = pair(name, ours, theirs, **hyper)
    seen = scheduled_lockstep(o, t, ours, theirs, sched)
    if sched == "OneCycleLR":
        assert len(seen["momentum"]) > 5, "OneCycleLR did not cycle the momentum"


def test_onecycle_with_momentum_needs_momentum_like_torch():
    """The skip above is torch's behaviour too: both raise the same ValueError."""
    for lib in (optbook, torch.optim):
        opt = lib.Adagrad([torch.zeros(1, requires_grad=True)])
        with pytest.raises(ValueError, match="momentum"):
            SCHEDULERS["OneCycleLR"](opt)


@pytest.mark.parametrize("name", NAMES)
def test_grad_scaler_drives_optbook_like_torch(name):
    """torch.amp.GradScaler unscales, skips steps with inf gradients, and adjusts its scale
    identically for optbook and torch optimizers."""
    X, y, model_a = _regression(1)
    model_b = copy.deepcopy(model_a)
    o, t = pair(name, list(model_a.parameters()), list(model_b.parameters()))
    sa = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    sb = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    for step in range(20):
        for model, opt, scaler in ((model_a, o, sa), (model_b, t, sb)):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(X), y)
            if step == 7:
                loss = loss * float("inf")  # an overflow: the scaler must skip this step
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        assert sa.get_scale() == sb.get_scale()
        for a, b in zip(model_a.parameters(), model_b.parameters()):
            assert_bitwise_equal(a.detach(), b.detach(), f"step {step}")
    assert sa.get_scale() != 2.0**10, "the scale never changed: the test exercised nothing"
