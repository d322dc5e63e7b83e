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
from hypothesis import given
from hypothesis import strategies as st

import test_equivalence as eq  # its strategies (module import: its tests are not re-collected)
from conftest import (SCHEDULERS, assert_bitwise_equal, assert_states_equal, lockstep, make_params,
                      scheduled_lockstep)
from optbook import adam_family as af

NAMES = ["NAdam", "RAdam", "Adamax", "Adadelta"]
STEPS = eq.STEPS
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])

betas_st = (st.sampled_from([(0.0, 0.0), (0.9, 0.999), (0.5, 0.9), (0.0, 0.99), (0.9, 0.0)])
            | st.tuples(eq.unit, eq.unit))


@st.composite
def nadam_hyper(draw):
    return dict(lr=draw(eq.lrs), betas=draw(betas_st), eps=draw(eq.epss),
                weight_decay=draw(eq.decays),
                momentum_decay=draw(st.sampled_from([0.0, 4e-3, 0.1, 1.0])),
                decoupled_weight_decay=draw(st.booleans()), maximize=draw(st.booleans()))


@st.composite
def radam_hyper(draw):
    return dict(lr=draw(eq.lrs), betas=draw(betas_st), eps=draw(eq.epss),
                weight_decay=draw(eq.decays), decoupled_weight_decay=draw(st.booleans()),
                maximize=draw(st.booleans()))


@st.composite
def adamax_hyper(draw):
    return dict(lr=draw(eq.lrs), betas=draw(betas_st), eps=draw(eq.epss),
                weight_decay=draw(eq.decays), maximize=draw(st.booleans()))


@st.composite
def adadelta_hyper(draw):
    return dict(lr=draw(st.sampled_from([0.0, 0.1, 1.0, 2.0]) | st.floats(1e-3, 2.0)),
                rho=draw(st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]) | st.floats(0.0, 1.0)),
                eps=draw(st.sampled_from([0.0, 1e-8, 1e-6, 1e-3]) | st.floats(1e-12, 1e-2)),
                weight_decay=draw(eq.decays), maximize=draw(st.booleans()))


CASES = {"NAdam": nadam_hyper(), "RAdam": radam_hyper(), "Adamax": adamax_hyper(),
         "Adadelta": adadelta_hyper()}
HYPER = {  # one fixed, non-trivial setting per optimizer for the API tests
    "NAdam": dict(lr=0.01, weight_decay=1e-2, momentum_decay=0.01),
    "RAdam": dict(lr=0.01, weight_decay=1e-2, decoupled_weight_decay=True),
    "Adamax": dict(lr=0.01, weight_decay=1e-2),
    "Adadelta": dict(lr=0.5, rho=0.8, weight_decay=1e-2),
}


def run_twins(name, hyper, dtype, seed, steps=STEPS, **kw):
    ours, theirs = make_params(dtype, seed)
    ours_opt = getattr(af, name)(ours, **hyper)
    theirs_opt = getattr(torch.optim, name)(theirs, foreach=False, **hyper)
    lockstep(ours_opt, theirs_opt, ours, theirs, steps, seed, dtype, **kw)
    return ours_opt, theirs_opt


def _make_test(name):
    @DTYPES
    @given(hyper=CASES[name], seed=eq.seeds)
    def test(hyper, seed, dtype):
        run_twins(name, hyper, dtype, seed)

    test.__name__ = f"test_{name.lower()}_matches_torch"
    test.__doc__ = f"optbook.{name} == torch.optim.{name}(foreach=False), {STEPS} steps, every step."
    return test


test_nadam_matches_torch = _make_test("NAdam")
test_radam_matches_torch = _make_test("RAdam")
test_adamax_matches_torch = _make_test("Adamax")
test_adadelta_matches_torch = _make_test("Adadelta")


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


def test_nadam_state_names_include_mu_product():
    p = torch.zeros(3, requires_grad=True)
    opt = af.NAdam([p], momentum_decay=0.5)
    p.grad = torch.ones(3)
    opt.step(); opt.step()  # noqa: E702
    state = opt.state[p]
    assert list(state) == ["step", "mu_product", "exp_avg", "exp_avg_sq"]
    mu1, mu2 = af.nadam_mu(1.0, 0.9, 0.5), af.nadam_mu(2.0, 0.9, 0.5)
    assert state["mu_product"].item() == pytest.approx(mu1 * mu2, rel=1e-6)


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


def test_radam_first_steps_are_bias_corrected_momentum_sgd():
    """With β2 = 0.999, ρ_t <= 5 for t <= 5: RAdam's step is η m̂_t (no adaptivity),
    and from t = 6 on it is rectified; the threshold step is computed, not assumed."""
    first_adaptive = next(t for t in range(1, 100) if af.radam_rho(float(t), 0.999)[1] > 5)
    assert first_adaptive == 6
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = af.RAdam([p], lr=0.1)
    m = torch.zeros(4, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for t in range(1, first_adaptive):
        grad = torch.randn(4, generator=g, dtype=torch.float64) * 100.0
        before = p.detach().clone()
        p.grad = grad
        opt.step()
        m = 0.9 * m + 0.1 * grad
        torch.testing.assert_close(p.detach() - before, -0.1 * m / (1 - 0.9**t), rtol=1e-12, atol=0)


def test_radam_rectification_tends_to_one():
    rho_inf, rho_t = af.radam_rho(1e6, 0.999)
    assert af.radam_rectification(rho_t, rho_inf) == pytest.approx(1.0, abs=1e-12)
    rho_inf, rho_t = af.radam_rho(10.0, 0.999)
    assert 0 < af.radam_rectification(rho_t, rho_inf) < 0.5


def test_adamax_step_is_bounded():
    """|Δθ_t| <= η (1-β1) Σ_{j<t} (β1/β2)^j / (1-β1^t), since |g_{t-j}| <= u_t / β2^j;
    for β1 <= β2 this is about η (Kingma & Ba, §7.1).  Gradients span 6 decades."""
    lr, beta1, beta2 = 0.01, 0.9, 0.999
    p = torch.zeros(100, dtype=torch.float64, requires_grad=True)
    opt = af.Adamax([p], lr=lr, betas=(beta1, beta2))
    g = torch.Generator().manual_seed(1)
    scales = torch.logspace(-3, 3, 100, dtype=torch.float64)
    for t in range(1, 51):
        before = p.detach().clone()
        p.grad = torch.randn(100, generator=g, dtype=torch.float64) * scales
        opt.step()
        bound = lr * (1 - beta1) * sum((beta1 / beta2) ** j for j in range(t)) / (1 - beta1**t)
        step = (p.detach() - before).abs().max().item()
        assert step <= bound * (1 + 1e-12)
        assert step > 0.2 * lr  # the bound is not vacuous


# ---------------------------------------------------------------- validation

P = lambda: [torch.zeros(3, requires_grad=True)]  # noqa: E731

# One row per rule in torch's constructors: (optimizer, bad kwargs, name, value repr)
RULES = [
    ("NAdam", dict(lr=torch.tensor([0.1, 0.2])), "lr", "1 element"),
    ("NAdam", dict(lr=-0.1), "lr", "-0.1"),
    ("NAdam", dict(eps=-1e-8), "eps", "-1e-08"),
    ("NAdam", dict(betas=(1.0, 0.999)), "betas[0]", "1.0"),
    ("NAdam", dict(betas=(0.9, -0.5)), "betas[1]", "-0.5"),
    ("NAdam", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("NAdam", dict(momentum_decay=-0.004), "momentum_decay", "-0.004"),
    ("RAdam", dict(lr=torch.tensor([0.1, 0.2])), "lr", "1 element"),
    ("RAdam", dict(lr=-0.1), "lr", "-0.1"),
    ("RAdam", dict(eps=-1e-8), "eps", "-1e-08"),
    ("RAdam", dict(betas=(-0.1, 0.999)), "betas[0]", "-0.1"),
    ("RAdam", dict(betas=(0.9, 1.0)), "betas[1]", "1.0"),
    ("RAdam", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("Adamax", dict(lr=torch.tensor([0.1, 0.2])), "lr", "1 element"),
    ("Adamax", dict(lr=-0.1), "lr", "-0.1"),
    ("Adamax", dict(eps=-1e-8), "eps", "-1e-08"),
    ("Adamax", dict(betas=(1.5, 0.999)), "betas[0]", "1.5"),
    ("Adamax", dict(betas=(0.9, 1.0)), "betas[1]", "1.0"),
    ("Adamax", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("Adadelta", dict(lr=torch.tensor([0.1, 0.2])), "lr", "1 element"),
    ("Adadelta", dict(lr=-0.1), "lr", "-0.1"),
    ("Adadelta", dict(rho=-0.1), "rho", "-0.1"),
    ("Adadelta", dict(rho=1.5), "rho", "1.5"),
    ("Adadelta", dict(eps=-1e-6), "eps", "-1e-06"),
    ("Adadelta", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
]


@pytest.mark.parametrize("name, kwargs, param, value", RULES,
                         ids=[f"{r[0]}-{r[2]}-{i}" for i, r in enumerate(RULES)])
def test_invalid_hyperparameter_raises_value_error_naming_it(name, kwargs, param, value):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)(P(), **kwargs)
    with pytest.raises(ValueError) as info:
        getattr(af, name)(P(), **kwargs)
    message = str(info.value)
    assert param in message and value in message, message


@pytest.mark.parametrize("name, kwargs", [
    ("NAdam", dict(betas=(0, 0))), ("RAdam", dict(betas=(0, 0))), ("Adamax", dict(betas=(0, 0))),
    ("Adadelta", dict(rho=1.0)), ("Adadelta", dict(rho=0.0)),
])
def test_edge_values_torch_accepts_are_accepted(name, kwargs):
    """Integer betas and rho = 1 pass torch's rules for these classes (unlike Adam's)."""
    getattr(torch.optim, name)(P(), **kwargs)
    getattr(af, name)(P(), **kwargs)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("flag", ["foreach", "capturable", "differentiable"])
def test_unimplemented_code_paths_are_refused_not_ignored(name, flag):
    with pytest.raises(ValueError, match=flag):
        getattr(af, name)(P(), **{flag: True})


@pytest.mark.parametrize("name", NAMES)
def test_foreach_false_and_none_take_the_single_tensor_path(name):
    for foreach in (None, False):
        opt = getattr(af, name)(P(), foreach=foreach)
        assert opt.param_groups[0]["foreach"] is foreach


def test_nan_lr_is_rejected():
    for name in NAMES:
        with pytest.raises(ValueError, match="nan"):
            getattr(af, name)(P(), lr=math.nan)
