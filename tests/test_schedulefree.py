"""optbook.ScheduleFreeAdamW and ScheduleFreeSGD (optbook/schedulefree.py) against
schedulefree 1.4.1 (AdamWScheduleFree, SGDScheduleFree): bitwise twins through
train()/eval() switches, the averaging identity x = Σ w_t z_{t+1} / Σ w_t, the
BatchNorm caveat, state_dicts both ways and validation."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pytest
import schedulefree
import torch
from hypothesis import given
from hypothesis import strategies as st

from optbook import compile_step
from optbook.schedulefree import (
    NOT_IN_TRAIN_MODE,
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
    recompute_bn_stats,
)

from conftest import assert_bitwise_equal, assert_states_equal, make_params, randn
from twins import DTYPES, decays, epss, quadratic, seeds

SF_STEPS = 120
PAIRS = {
    "AdamW": (ScheduleFreeAdamW, schedulefree.AdamWScheduleFree),
    "SGD": (ScheduleFreeSGD, schedulefree.SGDScheduleFree),
}

schedule = dict(
    warmup_steps=st.sampled_from([0, 1, 10, 50, 200]) | st.integers(0, 150),
    r=st.sampled_from([0.0, 0.5, 1.0, 2.0]) | st.floats(0.0, 3.0),
    weight_lr_power=st.sampled_from([2.0, 0.0, 1.0]) | st.floats(0.0, 4.0),
    weight_decay=decays,
    foreach=st.booleans(),
)
beta1s = st.sampled_from([0.9, 0.5, 0.95, 0.99]) | st.floats(0.01, 0.99)
adamw_hyper = st.fixed_dictionaries(dict(
    lr=st.sampled_from([0.0, 1e-3, 0.0025, 1e-2, 0.1]) | st.floats(1e-4, 0.5),
    betas=st.tuples(beta1s,
                    st.sampled_from([0.999, 0.99, 0.9, 0.0]) | st.floats(0.0, 0.999)),
    eps=epss,
    **schedule,
))
sgd_hyper = st.fixed_dictionaries(dict(
    lr=st.sampled_from([0.0, 0.01, 0.1, 1.0]) | st.floats(1e-3, 2.0),
    momentum=beta1s,
    **schedule,
))
#: steps after which both optimizers go to eval() and back to train()
toggle_steps = st.lists(st.integers(1, SF_STEPS), max_size=6)


def sf_lockstep(ours_opt, theirs_opt, ours, theirs, steps, seed, toggles=()):
    """Same gradients into both; after every step parameters (y), states and the
    parameter groups (k, weight_sum, lr_max, scheduled_lr, train_mode) must be equal;
    after each step in ``toggles`` both switch to eval (parameters at x, compared
    too) and back.  Ends in eval mode, comparing x."""
    ours_opt.train()
    theirs_opt.train()
    g = torch.Generator().manual_seed(seed + 1)
    frozen = ours[-1].detach().clone()  # the last parameter never has a gradient
    for step in range(1, steps + 1):
        for a, b in zip(ours[:-1], theirs[:-1]):
            grad = randn(a.shape, g, a.dtype)
            a.grad, b.grad = grad.clone(), grad.clone()
        ours_opt.step()
        theirs_opt.step()
        switches = [("eval", "x"), ("train", "y")] if step in toggles else []
        for mode, point in [("step", "y")] + switches:
            if mode != "step":
                getattr(ours_opt, mode)()
                getattr(theirs_opt, mode)()
            for i, (a, b) in enumerate(zip(ours, theirs)):
                assert_bitwise_equal(a.detach(), b.detach(),
                                     f"step {step} {point} param {i}")
        assert_states_equal(ours_opt, theirs_opt, f"step {step}")
        assert [{k: v for k, v in g.items() if k != "foreach"}
                for g in ours_opt.state_dict()["param_groups"]] == [
                    {k: v for k, v in g.items() if k != "foreach"}
                    for g in theirs_opt.state_dict()["param_groups"]]
    ours_opt.eval()
    theirs_opt.eval()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_bitwise_equal(a.detach(), b.detach(), f"final x param {i}")
    assert torch.equal(ours[-1].detach(), frozen)


# ----------------------------------------------------------------------------------
# Bitwise twins, with warm-up, weight decay, r, weight_lr_power and mode switches.
# ----------------------------------------------------------------------------------


@DTYPES
@given(hyper=adamw_hyper, seed=seeds, toggles=toggle_steps)
def test_sf_adamw_matches_schedulefree(hyper, seed, toggles, dtype):
    """optbook.ScheduleFreeAdamW == schedulefree.AdamWScheduleFree (same foreach
    flag), 120 steps, every step, through eval()/train() switches."""
    ours, theirs = make_params(dtype, seed)
    sf_lockstep(ScheduleFreeAdamW(ours, **hyper),
                schedulefree.AdamWScheduleFree(theirs, **hyper), ours, theirs,
                SF_STEPS, seed, toggles)


@DTYPES
@given(hyper=sgd_hyper, seed=seeds, toggles=toggle_steps)
def test_sf_sgd_matches_schedulefree(hyper, seed, toggles, dtype):
    """optbook.ScheduleFreeSGD == schedulefree.SGDScheduleFree, 120 steps, each step."""
    ours, theirs = make_params(dtype, seed)
    sf_lockstep(ScheduleFreeSGD(ours, **hyper),
                schedulefree.SGDScheduleFree(theirs, **hyper), ours, theirs,
                SF_STEPS, seed, toggles)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_sf_foreach_and_single_tensor_paths_agree_on_cpu(name):
    """On the CPU the multi-tensor path equals the loop bitwise (as schedulefree's do),
    and matches schedulefree's other path too; mixed dtypes are bucketed."""
    ours_cls, theirs_cls = PAIRS[name]
    hyper = dict(lr=0.01, weight_decay=0.1, warmup_steps=10, r=1.0)
    dtypes = [torch.float32, torch.float64, torch.float32, torch.float64]
    ours, theirs = make_params(dtypes, 2)
    sf_lockstep(ours_cls(ours, foreach=True, **hyper),
                theirs_cls(theirs, foreach=False, **hyper), ours, theirs, 50, 2,
                toggles=(20,))


def test_sf_param_groups_with_their_own_hyperparameters():
    """Two groups (different lr, warm-up): k, Σw and lr_max are kept per group."""
    ours, theirs = make_params(torch.float64, 4)
    groups = lambda ps: [dict(params=ps[:2], lr=0.05, warmup_steps=5),  # noqa: E731
                         dict(params=ps[2:], lr=0.01, r=1.0)]
    o = ScheduleFreeAdamW(groups(ours))
    t = schedulefree.AdamWScheduleFree(groups(theirs))
    sf_lockstep(o, t, ours, theirs, 30, 4, toggles=(7, 8))
    assert o.param_groups[0]["lr_max"] == 0.05 and o.param_groups[1]["lr_max"] == 0.01


# ----------------------------------------------------------------------------------
# Modes: stepping in eval mode raises schedulefree's error; p.grad is left alone.
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_sf_step_in_eval_mode_raises_like_schedulefree(name):
    """Before the first train() and after eval(), a step raises schedulefree's message
    (as a RuntimeError, a subclass of the bare Exception schedulefree raises), and
    nothing moves."""
    ours_cls, theirs_cls = PAIRS[name]
    ours, theirs = make_params(torch.float32, 0)
    o, t = ours_cls(ours), theirs_cls(theirs)
    for a, b in zip(ours[:-1], theirs[:-1]):
        a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    for _ in range(2):  # fresh (train_mode starts False), then after a step and eval()
        before = [p.detach().clone() for p in ours]
        with pytest.raises(Exception) as theirs_error:
            t.step()
        with pytest.raises(RuntimeError) as ours_error:
            o.step()
        assert type(theirs_error.value) is Exception
        assert str(ours_error.value) == str(theirs_error.value) == NOT_IN_TRAIN_MODE
        assert all(torch.equal(a, b) for a, b in zip(before, ours))
        assert o.param_groups[0]["k"] == t.param_groups[0]["k"]
        for opt in (o, t):
            opt.train()
            opt.step()
            opt.eval()


def test_sf_leaves_p_grad_alone_where_schedulefree_overwrites_it():
    """schedulefree writes ĝ = g/(√v̂+ε) + λy into p.grad; optbook keeps g there."""
    ours, theirs = make_params(torch.float32, 1)
    o, t = ScheduleFreeAdamW(ours, weight_decay=0.1), schedulefree.AdamWScheduleFree(
        theirs, weight_decay=0.1)
    o.train()
    t.train()
    grads = [torch.randn(p.shape) for p in ours[:-1]]
    for a, b, grad in zip(ours, theirs, grads):
        a.grad, b.grad = grad.clone(), grad.clone()
    o.step()
    t.step()
    assert all(torch.equal(a.grad, grad) for a, grad in zip(ours, grads))
    assert not torch.equal(theirs[0].grad, grads[0])
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_sf_compile_step_is_refused():
    opt = ScheduleFreeAdamW([torch.zeros(2, requires_grad=True)])
    with pytest.raises(TypeError, match="recompile every step"):
        compile_step(opt)
    assert not opt.compiled


# ----------------------------------------------------------------------------------
# The averaging identity: x is the w-weighted average of z_2, ..., z_{T+1}.
# ----------------------------------------------------------------------------------


def run_sf_on_quadratic(opt_cls, steps, seed=0, **hyper):
    """SF on f(θ) = ½θᵀAθ - bᵀθ (float64), gradients at y.  Returns the z after each
    step (z_2, ..., z_{T+1}), the weights w_t from the groups, y_T and x_T."""
    A, b, theta0 = quadratic(seed)
    A, b = torch.tensor(A), torch.tensor(b)
    theta = torch.tensor(theta0, requires_grad=True)
    opt = opt_cls([theta], **hyper)
    opt.train()
    zs, weights, sum_before = [], [], 0.0
    for _ in range(steps):
        theta.grad = A @ theta.detach() - b
        opt.step()
        zs.append(opt.state[theta]["z"].clone())
        group = opt.param_groups[0]
        weights.append(group["weight_sum"] - sum_before)
        sum_before = group["weight_sum"]
    y = theta.detach().clone()
    opt.eval()
    weights = torch.tensor(weights, dtype=torch.float64)
    return torch.stack(zs), weights, y, theta.detach().clone()


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_sf_x_is_the_uniform_average_of_z_for_a_constant_lr(name):
    """Constant lr, no warm-up, r = 0: every w_t is lr^p, c_{t+1} = 1/t, and x_{T+1} =
    (z_2 + ... + z_{T+1}) / T, for any weight_lr_power p (checked at p = 0, 2)."""
    opt_cls = PAIRS[name][0]
    lr = 0.05 if name == "AdamW" else 0.1
    xs = []
    for power in (0.0, 2.0):
        zs, weights, y, x = run_sf_on_quadratic(opt_cls, 200, lr=lr,
                                                weight_lr_power=power)
        assert torch.allclose(weights, torch.full_like(weights, lr**power), rtol=1e-12)
        np.testing.assert_allclose(x.numpy(), zs.mean(0).numpy(), rtol=1e-11,
                                   atol=1e-13)
        beta1 = 0.9
        y_expected = (1 - beta1) * zs[-1] + beta1 * x               # (eq-sf-y)
        np.testing.assert_allclose(y.numpy(), y_expected.numpy(), rtol=1e-12,
                                   atol=1e-13)
        xs.append(x)
    np.testing.assert_allclose(xs[0].numpy(), xs[1].numpy(), rtol=1e-12)
    assert (zs[-1] - x).abs().max() > 1e-3  # x is not simply the last z


@pytest.mark.parametrize("hyper", [
    dict(warmup_steps=50, weight_lr_power=2.0),            # the paper's w_t = γ_t²
    dict(warmup_steps=30, r=1.0, weight_lr_power=1.0),
    dict(warmup_steps=0, r=2.0),
])
def test_sf_x_is_the_weighted_average_of_z(hyper):
    """With warm-up and polynomial weighting, x_{T+1} = Σ w_t z_{t+1} / Σ w_t with
    w_t = t^r (max_{i<=t} γ_i)^p, γ_t = γ min(1, t/T_warmup): checked against the
    weights computed here from the formula (not read from the optimizer)."""
    lr, steps = 0.02, 150
    zs, weights, _, x = run_sf_on_quadratic(ScheduleFreeAdamW, steps, lr=lr, **hyper)
    t = np.arange(1, steps + 1)
    warmup = hyper["warmup_steps"]
    gamma = lr * np.minimum(1.0, t / warmup) if warmup else np.full(steps, lr)
    power = hyper.get("weight_lr_power", 2.0)
    w = t ** hyper.get("r", 0.0) * np.maximum.accumulate(gamma) ** power
    np.testing.assert_allclose(weights.numpy(), w, rtol=1e-12)
    expected = (torch.tensor(w)[:, None] * zs).sum(0) / w.sum()
    np.testing.assert_allclose(x.numpy(), expected.numpy(), rtol=1e-10, atol=1e-13)
    uniform = zs.mean(0)
    assert (uniform - x).abs().max() > 1e-4  # the weights matter here


# ----------------------------------------------------------------------------------
# BatchNorm: the running statistics are those of y, not of x.
# ----------------------------------------------------------------------------------


def test_sf_batchnorm_running_stats_are_not_those_of_x_until_recomputed():
    """Train an MLP with BatchNorm1d by ScheduleFreeAdamW (inputs with mean 3, so the
    first layer's output mean depends on its weights), then evaluate at x
    (optimizer.eval()).  The running statistics were gathered in training, at the
    y's of the last ~10 batches; at x they are off, and so is the loss, until
    recompute_bn_stats recomputes them at x (then they equal x's batch statistics).
    Measured (seed 0): loss 0.145 with the stale statistics, 0.092 recomputed."""
    torch.manual_seed(0)
    X = torch.randn(1024, 8) + 3.0
    Y = torch.tanh((X - 3.0) @ torch.randn(8) / 2)[:, None]
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.BatchNorm1d(32),
                                torch.nn.ReLU(), torch.nn.Linear(32, 1))
    opt = ScheduleFreeAdamW(model.parameters(), lr=0.05)
    loss_fn = torch.nn.MSELoss()
    model.train()
    opt.train()
    for _ in range(2):
        for xb, yb in zip(X.split(64), Y.split(64)):
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    opt.eval()   # parameters to x
    model.eval()
    bn = model[1]
    with torch.no_grad():
        stale_loss = loss_fn(model(X), Y).item()
        stale_mean = bn.running_mean.clone()
        pre_bn_at_x = model[0](X)
    assert recompute_bn_stats(model, X.split(256)) == 1
    assert not model.training and bn.momentum == 0.1  # restored
    with torch.no_grad():
        fresh_loss = loss_fn(model(X), Y).item()
    # recomputed: the statistics of the activations at x (batch means averaged)
    torch.testing.assert_close(bn.running_mean, pre_bn_at_x.mean(0), rtol=1e-4,
                               atol=1e-5)
    torch.testing.assert_close(bn.running_var, torch.stack(
        [c.var(0) for c in pre_bn_at_x.split(256)]).mean(0), rtol=1e-4, atol=1e-5)
    # the caveat, in numbers
    gap = (stale_mean - pre_bn_at_x.mean(0)).norm() / pre_bn_at_x.mean(0).norm()
    assert gap > 0.05, gap
    assert stale_loss > 1.3 * fresh_loss, (stale_loss, fresh_loss)
    assert abs(stale_loss - 0.145) < 0.01 and abs(fresh_loss - 0.092) < 0.01


# ----------------------------------------------------------------------------------
# State dicts both ways, defaults, validation.
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("direction", ["theirs_to_ours", "ours_to_theirs"])
def test_sf_state_dict_loads_both_ways(name, direction):
    """Saved in eval mode (as schedulefree's docs ask), loaded into the other class;
    both then continue bitwise alike (k, Σw, lr_max and train_mode come along)."""
    ours_cls, theirs_cls = PAIRS[name]
    make_a, make_b = (theirs_cls, ours_cls) if direction == "theirs_to_ours" else (
        ours_cls, theirs_cls)
    first, second = make_params(torch.float64, 3)
    a = make_a(first, lr=0.01, warmup_steps=20, weight_decay=0.01)
    a.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(25):
        for p in first[:-1]:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        a.step()
    a.eval()
    with torch.no_grad():
        for p, q in zip(first, second):
            q.copy_(p)
    b = make_b(second, lr=0.5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    group = b.param_groups[0]
    assert (group["k"], group["lr"], group["train_mode"]) == (25, 0.01, False)
    assert_states_equal(b, a)
    sf_lockstep(a, b, first, second, 30, 5, toggles=(10,))


def test_sf_defaults_and_group_keys_match_schedulefree():
    for name, (ours_cls, theirs_cls) in PAIRS.items():
        ours = inspect.signature(ours_cls).parameters
        theirs = inspect.signature(theirs_cls).parameters
        assert list(ours) == list(theirs), name
        for key in ours:
            assert ours[key].default == theirs[key].default, (name, key)
        p = [torch.zeros(2, requires_grad=True)]
        assert (ours_cls(p).param_groups[0].keys()
                == theirs_cls(p).param_groups[0].keys())


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (dict(lr=torch.tensor(0.1)), "Invalid learning rate: .* Python number"),
    (dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(betas=(0.0, 0.999)), "Invalid beta parameter at index 0: 0.0"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
    (dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(warmup_steps=-1), "Invalid warmup_steps value: -1"),
    (dict(r=-1.0), "Invalid r value: -1.0"),
    (dict(weight_lr_power=float("nan")), "Invalid weight_lr_power value: nan"),
])
def test_sf_adamw_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScheduleFreeAdamW([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("kwargs", [
    dict(lr=-0.1), dict(weight_decay=-0.1), dict(momentum=0.0), dict(momentum=1.0),
    dict(momentum=-0.5),
])
def test_sf_sgd_rejects_bad_hyperparameters_in_schedulefree_words(kwargs):
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError) as theirs:
        schedulefree.SGDScheduleFree(p, **kwargs)
    with pytest.raises(ValueError) as ours:
        ScheduleFreeSGD(p, **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("kwargs, message", [
    (dict(warmup_steps=-5), "Invalid warmup_steps value: -5"),
    (dict(r=float("nan")), "Invalid r value: nan"),
    (dict(weight_lr_power=-2), "Invalid weight_lr_power value: -2"),
])
def test_sf_sgd_rejects_bad_schedules(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScheduleFreeSGD([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_sf_lr_changed_mid_run_keeps_lr_max_like_schedulefree(name):
    """A user (or a scheduler) lowering lr mid-run: the weights keep using the largest
    lr seen, (max_{i<=t} γ_i)^p, in both; the runs stay bitwise equal."""
    ours_cls, theirs_cls = PAIRS[name]
    ours, theirs = make_params(torch.float64, 7)
    o = ours_cls(ours, lr=0.01, warmup_steps=5)
    t = theirs_cls(theirs, lr=0.01, warmup_steps=5)
    sched_o = torch.optim.lr_scheduler.StepLR(o, step_size=15, gamma=0.5)
    sched_t = torch.optim.lr_scheduler.StepLR(t, step_size=15, gamma=0.5)
    o.train()
    t.train()
    g = torch.Generator().manual_seed(3)
    for _ in range(40):
        for a, b in zip(ours[:-1], theirs[:-1]):
            grad = torch.randn(a.shape, generator=g, dtype=a.dtype)
            a.grad, b.grad = grad.clone(), grad.clone()
        o.step()
        t.step()
        sched_o.step()
        sched_t.step()
        for a, b in zip(ours, theirs):
            assert_bitwise_equal(a.detach(), b.detach())
    group = o.param_groups[0]
    assert group["lr_max"] == 0.01 and group["scheduled_lr"] == 0.0025
    assert group == {**t.param_groups[0], "params": group["params"]}
