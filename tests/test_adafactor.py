"""optbook.Adafactor (optbook/adafactor.py) against torch.optim.Adafactor.

The equivalence grids (single-tensor and foreach path, bitwise, every step), torch's
optim_db entry (every configuration, every error input), state_dicts across the two,
and the facts the chapter rests on: the rank-1 reconstruction is exact for a rank-1
EWMA of g², the first step is α_1 sign(g), and the state is n + m numbers per matrix.
"""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import optbook
from optbook.adafactor import Adafactor, adafactor_update, factored_second_moment

from conftest import (
    assert_bitwise_equal,
    assert_states_equal,
    lockstep,
    make_params,
    randn,
    scheduled_lockstep,
)
from twins import DTYPES, FOREACH_STEPS, STEPS, decays, lrs, seeds


@st.composite
def adafactor_hyper(draw):
    eps1 = draw(st.none() | st.sampled_from([0.0, 1e-30, 1e-8, 1e-3])
                | st.floats(0.0, 1e-3))
    eps2 = draw(st.sampled_from([1e-3, 0.0, 1e-5, 0.1]) | st.floats(0.0, 0.1))
    return dict(
        lr=draw(lrs),
        beta2_decay=draw(st.sampled_from([-0.8, -1.0, -0.5, 0.0, -2.0])
                         | st.floats(-3.0, 0.0)),
        eps=(eps1, eps2),
        d=draw(st.sampled_from([1.0, 1.5, 2.0, 1e3]) | st.floats(1.0, 100.0)),
        weight_decay=draw(decays),
        maximize=draw(st.booleans()),
    )


def run(hyper, dtype, seed, steps, ours_foreach=None, torch_foreach=False, **kw):
    """optbook.Adafactor against torch.optim.Adafactor on conftest's five parameters
    (matrix, 0-d, vector, 3-d, one without a gradient), bitwise after every step."""
    ours, theirs = make_params(dtype, seed)
    ours_opt = Adafactor(ours, foreach=ours_foreach, **hyper)
    theirs_opt = torch.optim.Adafactor(theirs, foreach=torch_foreach, **hyper)
    lockstep(ours_opt, theirs_opt, ours, theirs, steps, seed, dtype, **kw)
    return ours_opt, theirs_opt


@DTYPES
@given(hyper=adafactor_hyper(), seed=seeds)
def test_adafactor_matches_torch(hyper, seed, dtype):
    """optbook.Adafactor == torch.optim.Adafactor(foreach=False), every step."""
    run(hyper, dtype, seed, STEPS)


@DTYPES
@given(hyper=adafactor_hyper(), seed=seeds)
def test_adafactor_foreach_matches_torch_foreach(hyper, seed, dtype):
    """optbook.Adafactor(foreach=True) == torch.optim.Adafactor(foreach=True)."""
    run(hyper, dtype, seed, FOREACH_STEPS, ours_foreach=True, torch_foreach=True)


@DTYPES
def test_torch_paths_differ_on_cpu_so_foreach_is_matched_to_foreach(dtype):
    """On the CPU torch's two Adafactor paths are not bitwise equal (the step is
    θ + (-α/c) U in the loop, θ + ((-α/c) U) in foreach: one rounding more), so the
    foreach twin is held to torch's foreach path, and this measures the gap: a few
    ulp of the parameters after 100 steps."""
    ours, theirs = make_params(dtype, 5)
    single = torch.optim.Adafactor(ours, foreach=False, weight_decay=0.1)
    multi = torch.optim.Adafactor(theirs, foreach=True, weight_decay=0.1)
    g = torch.Generator().manual_seed(6)
    for _ in range(100):
        for a, b in zip(ours[:-1], theirs[:-1]):
            grad = torch.randn(a.shape, generator=g, dtype=dtype)
            a.grad, b.grad = grad.clone(), grad.clone()
        single.step()
        multi.step()
    worst = max((a - b).abs().max().item() for a, b in zip(ours, theirs))
    ulp = torch.finfo(dtype).eps
    assert 0 < worst <= 16 * ulp


def test_tensor_lr_on_both_paths():
    for foreach in (False, True):
        ours, theirs = make_params(torch.float32, 2)
        o = Adafactor(ours, lr=torch.tensor(0.05), weight_decay=0.01, foreach=foreach)
        t = torch.optim.Adafactor(theirs, lr=torch.tensor(0.05), weight_decay=0.01,
                                  foreach=foreach)
        lockstep(o, t, ours, theirs, 60, 2, torch.float32)


@pytest.mark.parametrize("sched", ["StepLR", "CosineAnnealingLR"])
def test_scheduled_lr_matches_torch(sched):
    ours, theirs = make_params(torch.float32, 4)  # the helper draws float32 grads
    scheduled_lockstep(Adafactor(ours, lr=0.05), torch.optim.Adafactor(theirs, lr=0.05),
                       ours, theirs, sched)


@pytest.mark.parametrize("foreach", [False, True], ids=["forloop", "foreach"])
@pytest.mark.parametrize("order", [(torch.float32, torch.float64),
                                   (torch.float64, torch.float32)],
                         ids=["f32-f64", "f64-f32"])
def test_default_eps1_of_a_mixed_dtype_group_is_torchs(order, foreach):
    """With eps1=None torch takes machine epsilon of the first parameter (loop) or the
    first (device, dtype) bucket (foreach) for the whole group.  Gradients of 1e-8
    put V̂ under ε1² (float32's), where it matters: matched bitwise, and shown to
    differ from each parameter using its own dtype's epsilon."""
    shapes = [(3, 4), (4, 5)]
    ours, theirs = make_params(list(order), 0, shapes=shapes, frozen=False)
    o = Adafactor(ours, foreach=foreach)
    t = torch.optim.Adafactor(theirs, foreach=foreach)
    lockstep(o, t, ours, theirs, 30, 0, None, grad_scale=1e-8)
    # each parameter alone, in a group of its own dtype
    alone, _ = make_params(list(order), 0, shapes=shapes, frozen=False)
    opts = [Adafactor([p], foreach=foreach) for p in alone]
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        for p in alone:
            p.grad = randn(p.shape, g, p.dtype) * 1e-8
        for opt in opts:
            opt.step()
    differs = [not torch.equal(a.detach(), b.detach()) for a, b in zip(ours, alone)]
    assert any(differs)


def test_a_parameter_without_grad_gets_no_state_and_does_not_move():
    ours, _ = make_params(torch.float32, 3)
    opt = Adafactor(ours)
    frozen = ours[-1].detach().clone()
    for p in ours[:-1]:
        p.grad = torch.ones_like(p)
    opt.step()
    assert ours[-1] not in opt.state and torch.equal(ours[-1].detach(), frozen)


def test_state_names_and_shapes_are_torchs():
    o, t = run({}, torch.float32, 0, 1, ours_foreach=False)
    shapes = {i: {k: tuple(v.shape) for k, v in s.items()}
              for i, s in o.state_dict()["state"].items()}
    assert shapes == {
        0: {"step": (), "row_var": (3, 1), "col_var": (1, 4)},
        1: {"step": (), "variance": ()},
        2: {"step": (), "variance": (5,)},
        3: {"step": (), "row_var": (2, 3, 1), "col_var": (2, 1, 2)},
    }
    for ours, theirs in zip(o.state_dict()["state"].values(),
                            t.state_dict()["state"].values()):
        assert list(ours) == list(theirs)  # the same names in the same order
    assert o.state_dict()["param_groups"] == t.state_dict()["param_groups"]
    assert o.defaults == t.defaults


# ----------------------------------------------------------------------------------
# State dicts, both ways
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["optbook->torch", "torch->optbook"])
@pytest.mark.parametrize("foreach", [False, True], ids=["forloop", "foreach"])
def test_state_dict_loads_across_and_training_continues_bitwise(direction, foreach):
    hyper = dict(lr=0.02, beta2_decay=-0.7, eps=(1e-30, 1e-3), d=1.2, weight_decay=0.01)
    first, _ = make_params(torch.float64, 8)
    source_cls, target_cls = ((Adafactor, torch.optim.Adafactor)
                              if direction == "optbook->torch"
                              else (torch.optim.Adafactor, Adafactor))
    source = source_cls(first, foreach=foreach, **hyper)
    g = torch.Generator().manual_seed(9)
    for _ in range(20):
        for p in first[:-1]:
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
        source.step()
    saved = source.state_dict()
    # the source goes on; a target of the other kind resumes from the saved state
    second = [p.detach().clone().requires_grad_() for p in first]
    target = target_cls(second, foreach=foreach, **{**hyper, "lr": 0.5})
    target.load_state_dict(copy.deepcopy(saved))  # loading aliases the tensors
    assert target.param_groups[0]["lr"] == 0.02
    assert_states_equal(target, source)
    lockstep(target, source, second, first, 30, 10, torch.float64)


def test_an_old_state_dict_with_a_float_step_and_no_foreach_loads_like_torchs():
    _, theirs = make_params(torch.float32, 1)
    source = torch.optim.Adafactor(theirs)
    for p in theirs[:-1]:
        p.grad = torch.ones_like(p)
    source.step()
    old = source.state_dict()
    for s in old["state"].values():
        s["step"] = float(s["step"])
    for group in old["param_groups"]:
        del group["foreach"]
    a, b = make_params(torch.float32, 1)
    o, t = Adafactor(a), torch.optim.Adafactor(b)
    o.load_state_dict(copy.deepcopy(old))  # loading aliases the tensors
    t.load_state_dict(copy.deepcopy(old))
    assert o.param_groups[0]["foreach"] is None
    assert_states_equal(o, t)
    assert o.state[a[0]]["step"].dtype == t.state[b[0]]["step"].dtype
    lockstep(o, t, a, b, 10, 1, torch.float32)


def test_adams_state_dict_is_refused_at_load():
    ours, _ = make_params(torch.float32, 1)
    adam = optbook.Adam(ours)
    for p in ours[:-1]:
        p.grad = torch.ones_like(p)
    adam.step()
    with pytest.raises(KeyError, match="row_var"):
        Adafactor(ours).load_state_dict(adam.state_dict())


# ----------------------------------------------------------------------------------
# torch's optim_db entry for Adafactor
# ----------------------------------------------------------------------------------

pytest.importorskip(
    "expecttest", reason="torch.testing._internal needs expecttest (requirements.txt)"
)
from torch.testing._internal.common_optimizers import (
    OptimizerErrorEnum,
    optim_db,
)

INFO = next(info for info in optim_db if info.optim_cls is torch.optim.Adafactor)
CONFIGS = [(i, c.desc, c.kwargs)
           for i, c in enumerate(INFO.optim_inputs_func(device="cpu"))]
ERRORS = INFO.optim_error_inputs_func(device="cpu", dtype=torch.float32)


def test_optim_db_entry_is_all_there():
    assert len(CONFIGS) == 5 and len(ERRORS) >= 10
    assert INFO.supported_impls == ("foreach",)


@pytest.mark.parametrize("foreach", [False, True], ids=["forloop", "foreach"])
@pytest.mark.parametrize("index, desc, kwargs", CONFIGS, ids=[c[1] for c in CONFIGS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_optim_db_config_bitwise_equal(index, desc, kwargs, foreach, dtype):
    """torch's test_optim uses a matrix, a vector and a 0-d tensor (real: Adafactor
    refuses complex); 50 steps, every step bitwise."""
    shapes = [(3, 4), (4,), (), (2, 3, 5)]
    ours, theirs = make_params(dtype, index, shapes=shapes)
    o = Adafactor(ours, foreach=foreach, **kwargs)
    t = torch.optim.Adafactor(theirs, foreach=foreach, **kwargs)
    lockstep(o, t, ours, theirs, 50, index, dtype)


def _outcome(cls, error_input):
    """As torch's test_errors runs an input: the exception, and the messages of the
    warnings of the expected category, at construction or at step."""
    optim_input, exc = error_input.optimizer_error_input, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            optimizer = cls(optim_input.params, **optim_input.kwargs)
            if error_input.error_on == OptimizerErrorEnum.STEP_ERROR:
                optimizer.step()
        except Exception as error:  # noqa: BLE001 - compared with torch's
            exc = error
    category = error_input.error_type
    if not issubclass(category, Warning):
        return exc, []
    return exc, [str(w.message) for w in caught if issubclass(w.category, category)]


@pytest.mark.parametrize("index", range(len(ERRORS)),
                         ids=[e.optimizer_error_input.desc for e in ERRORS])
def test_optim_db_error_input_same_type_and_message(index):
    def fresh():
        return INFO.optim_error_inputs_func(device="cpu", dtype=torch.float32)[index]

    expected = fresh()
    their_exc, their_warnings = _outcome(torch.optim.Adafactor, expected)
    our_exc, our_warnings = _outcome(Adafactor, fresh())
    regex = expected.error_regex
    if issubclass(expected.error_type, Warning):
        assert any(re.search(regex, m) for m in our_warnings), our_warnings
        assert our_warnings == their_warnings
        return
    assert type(our_exc) is type(their_exc) and isinstance(our_exc, expected.error_type)
    assert re.search(regex, str(our_exc)), str(our_exc)
    # torch's words; where they name no value, optbook appends it in parentheses
    assert str(our_exc) == str(their_exc) or (
        str(our_exc).startswith(str(their_exc) + " (")), (str(our_exc), str(their_exc))


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1e-3), "Learning rate should be >= 0 but is: -0.001"),
    (dict(lr=float("nan")), "Learning rate should be >= 0 but is: nan"),
    (dict(beta2_decay=0.5), "beta2_decay should be <= 0 but is: 0.5"),
    (dict(eps=(-1.0, 1e-3)), "epsilon1 should be >= 0 but is: -1.0"),
    (dict(eps=(None, -1e-3)), "epsilon2 should be >= 0 but is: -0.001"),
    (dict(d=0.5), "Clipping threshold d should be >= 1 but is: 0.5"),
    (dict(weight_decay=-0.1), "weight_decay should be >= 0 but is: -0.1"),
    # two faults: torch's order decides
    (dict(lr=-1.0, d=0.0), "Learning rate should be >= 0 but is: -1.0"),
])
def test_validation_messages_are_torchs(kwargs, message):
    param = [torch.zeros(2, requires_grad=True)]
    for cls in (torch.optim.Adafactor, Adafactor):
        with pytest.raises(ValueError) as info:
            cls(param, **kwargs)
        assert str(info.value) == message, cls


def test_complex_and_sparse_are_refused_at_step():
    z = torch.zeros(2, 3, dtype=torch.complex64, requires_grad=True)
    z.grad = torch.ones_like(z)
    message = "^Adafactor does not support complex parameters$"
    with pytest.raises(RuntimeError, match=message):
        Adafactor([z]).step()
    s = torch.zeros(3, requires_grad=True)
    s.grad = torch.ones(3).to_sparse()
    with pytest.raises(RuntimeError, match="Adafactor does not support sparse"):
        Adafactor([s]).step()


# ----------------------------------------------------------------------------------
# What the chapter rests on
# ----------------------------------------------------------------------------------


def _run_with_full_ewma(grads, beta2_decay):
    """Adafactor's factors on a parameter of the gradients' shape, and beside them the
    unfactored EWMA of g² with the same 1 - β2_t (float64)."""
    param = torch.zeros(grads[0].shape, dtype=torch.float64, requires_grad=True)
    opt = Adafactor([param], lr=0.0, beta2_decay=beta2_decay)  # lr 0: θ stays
    full = torch.zeros_like(param)
    for t, grad in enumerate(grads, start=1):
        param.grad = grad
        opt.step()
        full.lerp_(grad * grad, t**beta2_decay)
    state = opt.state[param]
    return factored_second_moment(state["row_var"], state["col_var"]), full


@pytest.mark.parametrize("batch", [(), (3,)], ids=["matrix", "3-d"])
def test_factored_estimate_is_exact_for_a_rank_one_ewma(batch):
    """g_t = s_t a bᵀ (a scalar s_t per step and slice): the EWMA of g² is
    (Σ w_t s_t²) a² (b²)ᵀ, rank 1, and R C / mean(R) rebuilds it to round-off."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(batch + (7, 1), generator=g, dtype=torch.float64)
    b = torch.randn(batch + (1, 5), generator=g, dtype=torch.float64)
    grads = [torch.randn(batch + (1, 1), generator=g, dtype=torch.float64) * a * b
             for _ in range(60)]
    estimate, full = _run_with_full_ewma(grads, beta2_decay=-0.8)
    relative = ((estimate - full).abs() / full).max().item()
    assert relative < 1e-13


def test_factored_estimate_is_only_an_approximation_otherwise():
    """Independent gradients: the EWMA of g² is full rank and the estimate is off by
    tens of percent somewhere (the test above can fail)."""
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(7, 5, generator=g, dtype=torch.float64) for _ in range(60)]
    estimate, full = _run_with_full_ewma(grads, beta2_decay=-0.8)
    assert ((estimate - full).abs() / full).max().item() > 0.1


def test_first_step_is_alpha_times_sign_of_gradient():
    """t = 1: 1-β2_1 = 1^c = 1 so V̂_1 = g² and U_1 = sign(g), RMS(U_1) = 1 <= d; the
    step is α_1 sign(g) with α_1 = max(ε2, RMS(θ_0)) min(η, 1).  For a vector and,
    with g = outer(a, b) (V̂_1 rebuilt exactly, rank 1), for a matrix."""
    g = torch.Generator().manual_seed(3)
    lr = 0.05
    for grad in (torch.randn(6, generator=g, dtype=torch.float64),
                 torch.outer(torch.randn(4, generator=g, dtype=torch.float64),
                             torch.randn(3, generator=g, dtype=torch.float64))):
        theta0 = torch.randn(grad.shape, generator=g, dtype=torch.float64)
        param = theta0.clone().requires_grad_()
        param.grad = grad
        Adafactor([param], lr=lr).step()
        alpha = max(1e-3, theta0.pow(2).mean().sqrt().item()) * lr
        expected = theta0 - alpha * grad.sign()
        assert torch.allclose(param.detach(), expected, rtol=0, atol=1e-15)


def test_update_clipping_caps_the_rms_of_the_step_at_alpha_d():
    """U_t = g_t / √V̂_t with V̂_t >= t^c g_t², so RMS(U_t) <= t^(-c/2): 6.3 at
    t = 100 for c = -0.8, reached when 99 tiny gradients precede a large one.  With
    d < RMS(U) the clip makes the step's RMS exactly α_t d; with d = 100 it does not
    act and the step is α_t RMS(U_t) > α_t."""
    for d in (1.0, 2.0, 100.0):
        param = torch.ones(50, dtype=torch.float64, requires_grad=True)
        opt = Adafactor([param], lr=0.5, d=d, beta2_decay=-0.8)
        for _ in range(99):
            param.grad = torch.full((50,), 1e-6, dtype=torch.float64)
            opt.step()
        before = param.detach().clone()
        param.grad = torch.linspace(0.5, 1.5, 50, dtype=torch.float64)
        opt.step()
        alpha = max(1e-3, before.pow(2).mean().sqrt().item()) * min(0.5, 100**-0.5)
        rms_step = (param.detach() - before).pow(2).mean().sqrt().item()
        if d < 6:
            assert abs(rms_step - alpha * d) <= 1e-12 * alpha
        else:
            assert 6 * alpha < rms_step < 100**0.4 * alpha * (1 + 1e-12)


def test_functional_update_is_the_class_step():
    param = torch.randn(4, 3, dtype=torch.float64)
    grad = torch.randn(4, 3, dtype=torch.float64)
    row = torch.zeros(4, 1, dtype=torch.float64)
    col = torch.zeros(1, 3, dtype=torch.float64)
    p = param.clone().requires_grad_()
    p.grad = grad.clone()
    torch.optim.Adafactor([p], foreach=False).step()
    adafactor_update(param, grad, row, col, None, 1.0, lr=1e-2, beta2_decay=-0.8,
                     eps1=torch.finfo(torch.float64).eps, eps2=1e-3, d=1.0,
                     weight_decay=0.0)
    assert_bitwise_equal(param, p.detach())


def test_compile_step_keeps_the_eager_foreach_path():
    ours, theirs = make_params(torch.float32, 7)
    o = optbook.compile_step(Adafactor(ours))
    t = torch.optim.Adafactor(theirs, foreach=True)
    lockstep(o, t, ours, theirs, 10, 7, torch.float32)


# ----------------------------------------------------------------------------------
# Memory: n + m numbers per n × m matrix
# ----------------------------------------------------------------------------------


def _state_numel(opt, skip=("step",)):
    return sum(v.numel() for s in opt.state.values() for k, v in s.items()
               if torch.is_tensor(v) and k not in skip)


def test_state_of_a_256x256_matrix_is_n_plus_m_numbers():
    """Adafactor keeps 256 + 256 numbers (plus the step) for a 256x256 matrix, Adam
    2 x 65536: a ratio of (256+256) / (2 x 65536); a 256 bias adds 256 to each."""
    counts = {}
    for cls in (Adafactor, optbook.Adam):
        weight = torch.zeros(256, 256, requires_grad=True)
        bias = torch.zeros(256, requires_grad=True)
        opt = cls([weight])
        weight.grad = torch.ones_like(weight)
        opt.step()
        counts[cls.__name__, "matrix"] = _state_numel(opt)
        opt.add_param_group({"params": [bias]})
        bias.grad = torch.ones_like(bias)
        opt.step()
        counts[cls.__name__, "model"] = _state_numel(opt)
        steps = _state_numel(opt, skip=()) - counts[cls.__name__, "model"]
        assert steps == 2  # one 0-d counter per parameter
    assert counts["Adafactor", "matrix"] == 256 + 256
    assert counts["Adam", "matrix"] == 2 * 256 * 256
    ratio = counts["Adafactor", "matrix"] / counts["Adam", "matrix"]
    assert ratio == (256 + 256) / (2 * 65536)
    assert counts["Adafactor", "model"] == 256 + 256 + 256
    assert counts["Adam", "model"] == 2 * (256 * 256 + 256)
