"""optbook.schedules against torch.optim.lr_scheduler.

* every scheduler class writes the same learning rate (and momentum / beta1 for the
  cycling ones) as its torch twin, ``==`` on floats, at every one of 300 steps, over a
  hypothesis grid of settings, driving optbook's and torch's SGD and Adam; the
  parameters trained under the two schedules stay bitwise equal;
* the pure functions: exact where torch evaluates a closed form (SGDR, one-cycle,
  cyclic, and torch's own ``_get_closed_form_lr``); within a stated tolerance of
  torch's recursive values for cosine, linear warm-up and step decay;
* state_dict round trip in the middle of a run; ValueError naming parameter and value.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import optbook
from optbook import schedules as S

from conftest import assert_bitwise_equal

LRS = torch.optim.lr_scheduler
STEPS = 300

#: optimizer classes the schedules must drive (optbook's and torch's, with momentum / betas)
OPTIMIZERS = {
    "optbook.SGD": lambda p, lr: optbook.SGD(p, lr=lr, momentum=0.9, foreach=False),
    "torch.SGD": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, foreach=False),
    "optbook.Adam": lambda p, lr: optbook.Adam(p, lr=lr, foreach=False),
    "torch.Adam": lambda p, lr: torch.optim.Adam(p, lr=lr, foreach=False),
}

# Tolerances for the closed forms against torch's *recursive* values (the classes are
# exact; these bound the pure functions).  Measured worst cases, over T_max in 1..300,
# base_lr in [1e-4, 5], eta_min in {0, 1e-3, 0.1, 0.5} x base_lr and 300 steps:
# cosine 8.0e-13 * base_lr (the ratio recursion accumulates one rounding per step and
# amplifies it near the bottom of the cosine), so we test |rec - closed| <= 1e-12 base_lr.
# Linear warm-up: 4.3e-15 * base_lr over 300 steps; tested with 1e-14 * base_lr.
# Step decay: k multiplications by gamma against one gamma**k: relative (k + 1) * 2**-52.
COSINE_ATOL = 1e-12
WARMUP_ATOL = 1e-14


def _pair(kind: str, lr: float, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    base = [torch.randn(3, 2, generator=g), torch.randn(4, generator=g)]
    a = [b.clone().requires_grad_() for b in base]
    b = [x.clone().requires_grad_() for x in base]
    return OPTIMIZERS[kind](a, lr), OPTIMIZERS[kind](b, lr), a, b


def _groups_equal(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer, step: int) -> None:
    for go, gt in zip(ours.param_groups, theirs.param_groups, strict=True):
        assert go["lr"] == gt["lr"], f"step {step}: lr {go['lr']!r} != {gt['lr']!r}"
        for key in ("momentum", "betas", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            assert go.get(key) == gt.get(key), f"step {step}: {key} {go.get(key)!r} != {gt.get(key)!r}"


def run_lockstep(make_ours, make_theirs, kind: str, lr: float = 0.1, steps: int = STEPS,
                 constant: bool = False):
    """Train twin parameters with the same gradients, optbook's schedule on one
    optimizer and torch's on the other; compare groups and parameters at every step.
    Returns the learning rates (one per step, starting with the one set at construction)."""
    oo, ot, a, b = _pair(kind, lr)
    so, st_ = make_ours(oo), make_theirs(ot)
    _groups_equal(oo, ot, 0)
    assert so.get_last_lr() == st_.get_last_lr()
    g = torch.Generator().manual_seed(1)
    lrs = [oo.param_groups[0]["lr"]]
    for step in range(1, steps + 1):
        for pa, pb in zip(a, b):
            grad = torch.randn(pa.shape, generator=g)
            pa.grad, pb.grad = grad.clone(), grad.clone()
        oo.step(); ot.step(); so.step(); st_.step()  # noqa: E702
        _groups_equal(oo, ot, step)
        assert so.get_last_lr() == st_.get_last_lr(), f"step {step}"
        lrs.append(oo.param_groups[0]["lr"])
    for pa, pb in zip(a, b):
        assert_bitwise_equal(pa.detach(), pb.detach(), "parameters")
    if not constant:
        assert len(set(lrs)) > 1, "the schedule never changed the learning rate"
    return lrs


kinds = st.sampled_from(list(OPTIMIZERS))
base_lrs = st.sampled_from([1e-3, 0.01, 0.1, 0.37, 1.0])


# --------------------------------------------------------------------------------------
# The classes: bit-identical twins.
# --------------------------------------------------------------------------------------

@given(kind=kinds, lr=base_lrs, start=st.sampled_from([1e-3, 0.01, 0.1, 1 / 3, 0.5]),
       end=st.sampled_from([1.0, 0.5]), total=st.integers(1, 299))
def test_linear_warmup_twin(kind, lr, start, end, total):
    kw = dict(start_factor=start, end_factor=end, total_iters=total)
    run_lockstep(lambda o: S.LinearLR(o, **kw), lambda o: LRS.LinearLR(o, **kw), kind, lr,
                 constant=start == end)


@given(kind=kinds, lr=base_lrs, step_size=st.integers(1, 120), gamma=st.sampled_from([0.1, 0.3, 0.5, 0.9]))
def test_step_twin(kind, lr, step_size, gamma):
    run_lockstep(lambda o: S.StepLR(o, step_size, gamma), lambda o: LRS.StepLR(o, step_size, gamma), kind, lr)


@given(kind=kinds, lr=base_lrs, T_max=st.integers(1, 300), eta_frac=st.sampled_from([0.0, 1e-3, 0.1]))
def test_cosine_twin(kind, lr, T_max, eta_frac):
    kw = dict(T_max=T_max, eta_min=lr * eta_frac)
    run_lockstep(lambda o: S.CosineAnnealingLR(o, **kw), lambda o: LRS.CosineAnnealingLR(o, **kw), kind, lr)


@given(kind=kinds, lr=base_lrs, T_0=st.integers(1, 100), T_mult=st.integers(1, 3),
       eta_frac=st.sampled_from([0.0, 1e-3, 0.1]))
def test_sgdr_twin(kind, lr, T_0, T_mult, eta_frac):
    kw = dict(T_0=T_0, T_mult=T_mult, eta_min=lr * eta_frac)
    run_lockstep(lambda o: S.CosineAnnealingWarmRestarts(o, **kw),
                 lambda o: LRS.CosineAnnealingWarmRestarts(o, **kw), kind, lr,
                 constant=T_0 == 1 and T_mult == 1)


@given(kind=kinds, max_lr=base_lrs, pct=st.sampled_from([0.1, 0.25, 0.3, 0.45]),
       strategy=st.sampled_from(["cos", "linear"]), three_phase=st.booleans(),
       cycle_momentum=st.booleans(), div=st.sampled_from([10.0, 25.0]),
       final_div=st.sampled_from([1e2, 1e4]))
def test_one_cycle_twin(kind, max_lr, pct, strategy, three_phase, cycle_momentum, div, final_div):
    kw = dict(max_lr=max_lr, total_steps=STEPS, pct_start=pct, anneal_strategy=strategy,
              three_phase=three_phase, cycle_momentum=cycle_momentum, div_factor=div,
              final_div_factor=final_div, base_momentum=0.8, max_momentum=0.93)
    run_lockstep(lambda o: S.OneCycleLR(o, **kw), lambda o: LRS.OneCycleLR(o, **kw), kind)


@given(kind=kinds, base=st.sampled_from([1e-3, 0.01]), top=st.sampled_from([0.1, 0.5]),
       up=st.integers(1, 80), down=st.one_of(st.none(), st.integers(1, 80)),
       mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
       gamma=st.sampled_from([0.99, 0.995, 1.0]), cycle_momentum=st.booleans())
def test_cyclic_twin(kind, base, top, up, down, mode, gamma, cycle_momentum):
    kw = dict(base_lr=base, max_lr=top, step_size_up=up, step_size_down=down, mode=mode,
              gamma=gamma, cycle_momentum=cycle_momentum, base_momentum=0.8, max_momentum=0.9)
    run_lockstep(lambda o: S.CyclicLR(o, **kw), lambda o: LRS.CyclicLR(o, **kw), kind)


@given(kind=kinds, lr=base_lrs, warmup=st.integers(1, 60), start=st.sampled_from([1e-3, 0.01, 0.1]),
       eta_frac=st.sampled_from([0.0, 1e-3]))
def test_warmup_then_cosine_twin(kind, lr, warmup, start, eta_frac):
    def ours(o):
        return S.SequentialLR(o, [S.LinearLR(o, start_factor=start, total_iters=warmup),
                                  S.CosineAnnealingLR(o, T_max=STEPS - warmup, eta_min=lr * eta_frac)],
                              milestones=[warmup])

    def theirs(o):
        return LRS.SequentialLR(o, [LRS.LinearLR(o, start_factor=start, total_iters=warmup),
                                    LRS.CosineAnnealingLR(o, T_max=STEPS - warmup, eta_min=lr * eta_frac)],
                                milestones=[warmup])

    lrs = run_lockstep(ours, theirs, kind, lr)
    for step, value in enumerate(lrs):   # and the closed form, within the cosine tolerance
        closed = S.warmup_cosine(step, base_lr=lr, warmup_steps=warmup, total_steps=STEPS,
                                 start_factor=start, eta_min=lr * eta_frac)
        assert abs(value - closed) <= COSINE_ATOL * lr, step


def test_optbook_schedule_on_optbook_matches_torch_schedule_on_torch():
    """Across libraries: optbook.SGD + optbook OneCycleLR vs torch.optim.SGD + torch's."""
    g = torch.Generator().manual_seed(3)
    base = [torch.randn(5, 3, generator=g)]
    a, b = [base[0].clone().requires_grad_()], [base[0].clone().requires_grad_()]
    oo = optbook.SGD(a, lr=0.1, momentum=0.9, nesterov=True, foreach=False)
    ot = torch.optim.SGD(b, lr=0.1, momentum=0.9, nesterov=True, foreach=False)
    so = S.OneCycleLR(oo, max_lr=0.2, total_steps=STEPS)
    st_ = LRS.OneCycleLR(ot, max_lr=0.2, total_steps=STEPS)
    for step in range(STEPS):
        grad = torch.randn(5, 3, generator=g)
        a[0].grad, b[0].grad = grad.clone(), grad.clone()
        oo.step(); ot.step(); so.step(); st_.step()  # noqa: E702
        _groups_equal(oo, ot, step)
        assert_bitwise_equal(a[0].detach(), b[0].detach(), f"step {step}")


def test_several_param_groups_with_per_group_values():
    p = [torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]
    q = [x.detach().clone().requires_grad_() for x in p]
    groups = lambda ps: [{"params": [ps[0]], "lr": 0.1}, {"params": [ps[1]], "lr": 0.02}]  # noqa: E731
    oo, ot = optbook.Adam(groups(p)), torch.optim.Adam(groups(q))
    kw = dict(max_lr=[0.3, 0.05], total_steps=50, base_momentum=[0.8, 0.85], max_momentum=[0.9, 0.95])
    so, st_ = S.OneCycleLR(oo, **kw), LRS.OneCycleLR(ot, **kw)
    for step in range(50):
        oo.step(); ot.step(); so.step(); st_.step()  # noqa: E702
        _groups_equal(oo, ot, step)
    assert so.get_last_lr() == st_.get_last_lr() and len(so.get_last_lr()) == 2


# --------------------------------------------------------------------------------------
# The pure functions.
# --------------------------------------------------------------------------------------

def _torch_values(make, steps=STEPS, lr=0.1, closed_form=False):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr, momentum=0.9)
    sched = make(opt)
    values, momenta = [opt.param_groups[0]["lr"]], [opt.param_groups[0]["momentum"]]
    closed = [sched._get_closed_form_lr()[0]] if closed_form else []
    for _ in range(steps):
        opt.step()
        sched.step()
        values.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
        if closed_form:
            closed.append(sched._get_closed_form_lr()[0])
    return values, momenta, closed


@given(lr=base_lrs, T_max=st.integers(1, 300), eta_frac=st.sampled_from([0.0, 1e-3, 0.1, 0.5]))
def test_cosine_closed_form(lr, T_max, eta_frac):
    eta_min = lr * eta_frac
    rec, _, closed = _torch_values(lambda o: LRS.CosineAnnealingLR(o, T_max, eta_min), lr=lr, closed_form=True)
    prev = lr
    for step in range(STEPS + 1):
        ours = S.cosine(step, base_lr=lr, T_max=T_max, eta_min=eta_min)
        assert ours == closed[step], step                          # torch's closed form: exact
        assert abs(ours - rec[step]) <= COSINE_ATOL * lr, step      # torch's recursion: tolerance
        if step:
            prev = S.cosine_recursive(prev, step, base_lr=lr, T_max=T_max, eta_min=eta_min)
            assert prev == rec[step], step                          # our recursion: exact


def test_cosine_recursion_is_not_bitwise_its_closed_form():
    """The reason for the tolerance: torch's recursive values differ from torch's own
    closed form in the last bits (so a tolerance of 0 would be wrong)."""
    rec, _, closed = _torch_values(lambda o: LRS.CosineAnnealingLR(o, 100), lr=0.1, closed_form=True)
    diffs = [abs(r - c) for r, c in zip(rec, closed)]
    assert max(diffs) > 0.0
    assert max(diffs) <= COSINE_ATOL * 0.1


@given(lr=base_lrs, start=st.sampled_from([1e-3, 0.01, 0.1, 1 / 3, 0.9]), total=st.integers(1, 299))
def test_linear_warmup_closed_form(lr, start, total):
    kw = dict(start_factor=start, end_factor=1.0, total_iters=total)
    rec, _, closed = _torch_values(lambda o: LRS.LinearLR(o, **kw), lr=lr, closed_form=True)
    for step in range(STEPS + 1):
        ours = S.linear_warmup(step, base_lr=lr, **kw)
        assert ours == closed[step], step
        assert abs(ours - rec[step]) <= WARMUP_ATOL * lr, step
    # the closed form reaches the base rate up to rounding (torch's closed form too)
    assert abs(S.linear_warmup(total, base_lr=lr, **kw) - lr) <= 2 * 2.0 ** -52 * lr


@given(lr=base_lrs, step_size=st.integers(1, 50), gamma=st.sampled_from([0.1, 0.3, 0.5, 0.9, 0.99]))
def test_step_decay_closed_form(lr, step_size, gamma):
    rec, _, closed = _torch_values(lambda o: LRS.StepLR(o, step_size, gamma), lr=lr, closed_form=True)
    for step in range(STEPS + 1):
        ours = S.step_decay(step, base_lr=lr, step_size=step_size, gamma=gamma)
        assert ours == closed[step], step
        k = step // step_size
        assert abs(ours - rec[step]) <= (k + 1) * 2.0 ** -52 * ours, step


@given(lr=base_lrs, T_0=st.integers(1, 60), T_mult=st.integers(1, 3))
def test_sgdr_function_is_exact(lr, T_0, T_mult):
    rec, _, _ = _torch_values(lambda o: LRS.CosineAnnealingWarmRestarts(o, T_0, T_mult, 1e-4), lr=lr)
    assert [S.sgdr(s, base_lr=lr, T_0=T_0, T_mult=T_mult, eta_min=1e-4) for s in range(STEPS + 1)] == rec


def test_sgdr_position_restarts():
    assert [S.sgdr_position(s, T_0=2, T_mult=2) for s in (0, 1, 2, 5, 6, 13, 14)] == [
        (0, 2), (1, 2), (0, 4), (3, 4), (0, 8), (7, 8), (0, 16)]


@given(pct=st.sampled_from([0.1, 0.3, 0.45]), strategy=st.sampled_from(["cos", "linear"]),
       three_phase=st.booleans())
def test_one_cycle_function_is_exact(pct, strategy, three_phase):
    kw = dict(max_lr=0.4, total_steps=STEPS, pct_start=pct, anneal_strategy=strategy, three_phase=three_phase)
    lrs, moms, _ = _torch_values(lambda o: LRS.OneCycleLR(o, **kw))
    pairs = [S.one_cycle(s, **kw) for s in range(STEPS + 1)]
    assert [p[0] for p in pairs] == lrs and [p[1] for p in pairs] == moms
    # at pct = 0 the cosine form end + (start - end)/2 * 2 need not round back to start
    assert math.isclose(pairs[0][0], 0.4 / 25.0, rel_tol=1e-14) and math.isclose(pairs[0][1], 0.95)
    peak = max(range(STEPS + 1), key=lambda s: pairs[s][0])
    assert pairs[peak][1] == min(p[1] for p in pairs)     # momentum is lowest at the lr peak


@given(up=st.integers(1, 80), down=st.one_of(st.none(), st.integers(1, 80)),
       mode=st.sampled_from(["triangular", "triangular2", "exp_range"]))
def test_cyclic_function_is_exact(up, down, mode):
    kw = dict(base_lr=0.01, max_lr=0.3, step_size_up=up, step_size_down=down, mode=mode, gamma=0.995)
    lrs, moms, _ = _torch_values(lambda o: LRS.CyclicLR(o, **kw))
    pairs = [S.cyclic(s, **kw) for s in range(STEPS + 1)]
    assert [p[0] for p in pairs] == lrs and [p[1] for p in pairs] == moms


# --------------------------------------------------------------------------------------
# state_dict round trip, validation.
# --------------------------------------------------------------------------------------

ROUND_TRIP = {
    "LinearLR": lambda o: S.LinearLR(o, start_factor=0.01, total_iters=40),
    "StepLR": lambda o: S.StepLR(o, 15, 0.5),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, 70, 1e-4),
    "CosineAnnealingWarmRestarts": lambda o: S.CosineAnnealingWarmRestarts(o, 10, 2),
    "OneCycleLR": lambda o: S.OneCycleLR(o, 0.5, total_steps=100),
    "CyclicLR": lambda o: S.CyclicLR(o, 0.01, 0.3, 9, mode="triangular2"),
    "SequentialLR": lambda o: S.SequentialLR(
        o, [S.LinearLR(o, 0.01, total_iters=20), S.CosineAnnealingLR(o, 80)], [20]),
}


@pytest.mark.parametrize("kind", ["optbook.SGD", "torch.Adam"])
@pytest.mark.parametrize("name", list(ROUND_TRIP))
def test_state_dict_round_trip_mid_run(name, kind):
    make = ROUND_TRIP[name]
    full_opt, _, _, _ = _pair(kind, 0.1)
    full = make(full_opt)
    expected = []
    for _ in range(100):
        full_opt.step(); full.step()  # noqa: E702
        expected.append((full.get_last_lr(), dict(full_opt.param_groups[0], params=None)))
    first_opt, _, _, _ = _pair(kind, 0.1)
    first = make(first_opt)
    got = []
    for _ in range(37):
        first_opt.step(); first.step()  # noqa: E702
        got.append((first.get_last_lr(), dict(first_opt.param_groups[0], params=None)))
    saved_opt, saved = first_opt.state_dict(), first.state_dict()
    first.step()                          # later changes must not leak into the saved dict
    resumed_opt, _, _, _ = _pair(kind, 0.7)
    resumed = make(resumed_opt)           # construction writes other values ...
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)        # ... which the two loads overwrite
    for _ in range(63):
        resumed_opt.step(); resumed.step()  # noqa: E702
        got.append((resumed.get_last_lr(), dict(resumed_opt.param_groups[0], params=None)))
    assert got == expected


BAD = [
    (lambda o: S.LinearLR(o, start_factor=0.0), "start_factor", "0.0"),
    (lambda o: S.LinearLR(o, start_factor=1.5), "start_factor", "1.5"),
    (lambda o: S.LinearLR(o, end_factor=-0.1), "end_factor", "-0.1"),
    (lambda o: S.LinearLR(o, total_iters=0), "total_iters", "0"),
    (lambda o: S.StepLR(o, step_size=0), "step_size", "0"),
    (lambda o: S.StepLR(o, step_size=2.5), "step_size", "2.5"),
    (lambda o: S.StepLR(o, step_size=3, gamma=-0.5), "gamma", "-0.5"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), "T_max", "0"),
    (lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=-1e-3), "eta_min", "-0.001"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=-3), "T_0", "-3"),
    (lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=0), "T_mult", "0"),
    (lambda o: S.OneCycleLR(o, 0.1), "total_steps", "None"),
    (lambda o: S.OneCycleLR(o, 0.1, total_steps=0), "total_steps", "0"),
    (lambda o: S.OneCycleLR(o, 0.1, total_steps=10, pct_start=1.5), "pct_start", "1.5"),
    (lambda o: S.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="cosine"), "anneal_strategy", "cosine"),
    (lambda o: S.OneCycleLR(o, 0.1, total_steps=10, div_factor=0.0), "div_factor", "0.0"),
    (lambda o: S.OneCycleLR(o, [0.1, 0.2], total_steps=10), "max_lr", r"\[0.1, 0.2\]"),
    (lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_up=0), "step_size_up", "0"),
    (lambda o: S.CyclicLR(o, 0.01, 0.1, step_size_down=-2), "step_size_down", "-2"),
    (lambda o: S.CyclicLR(o, 0.01, 0.1, mode="sawtooth"), "mode", "sawtooth"),
    (lambda o: S.CyclicLR(o, 0.01, 0.1, mode="exp_range", gamma=1.5), "gamma", "1.5"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 3)], [5]), "milestones", r"\[5\]"),
]


@pytest.mark.parametrize("make, name, value", BAD, ids=[f"{n}={v}" for _, n, v in BAD])
def test_validation_names_parameter_and_value(make, name, value):
    opt = optbook.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=rf"Invalid {name}: .*{value}"):
        make(opt)


def test_cycle_momentum_needs_momentum_or_betas():
    opt = optbook.Adagrad([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="cycle_momentum"):
        S.OneCycleLR(opt, 0.1, total_steps=10)
    S.OneCycleLR(opt, 0.1, total_steps=10, cycle_momentum=False)   # fine without cycling


def test_one_cycle_refuses_steps_past_the_end():
    opt = optbook.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, 0.1, total_steps=5)
    for _ in range(5):
        sched.step()
    with pytest.raises(ValueError, match="Invalid step: 6"):
        sched.step()


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        S.StepLR(object(), 3)


def test_warmup_cosine_endpoints():
    kw = dict(base_lr=0.2, warmup_steps=10, total_steps=110, start_factor=0.01, eta_min=1e-4)
    assert S.warmup_cosine(0, **kw) == 0.2 * 0.01
    assert S.warmup_cosine(10, **kw) == 0.2
    assert math.isclose(S.warmup_cosine(110, **kw), 1e-4, rel_tol=1e-12)
