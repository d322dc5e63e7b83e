"""optbook.Muon (optbook/muon.py) against torch.optim.Muon, and its Newton-Schulz step.

* the twin: bitwise equal to torch.optim.Muon over a hypothesis grid of every
  hyperparameter, on tall, wide and square matrices, in float32 and float64; every
  configuration of torch's optim_db entry for Muon; every optim_db error input (same
  exception type, same message); state_dicts loaded both ways; non-2-D parameters;
* the orthogonalisation: bitwise equal to torch's private Newton-Schulz function;
  the default quintic coefficients put every singular value in the band the scalar
  map p(x) = ax + bx³ + cx⁵ leaves invariant, [p(x*), p(p(x*))] with x* p's local
  minimum (0.6818..., 1.1344...); the cubic (1.5, -0.5, 0) converges to U V^T.
"""

from __future__ import annotations

import math
import re
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.optim._muon import _adjust_lr as torch_adjust_lr
from torch.optim._muon import _zeropower_via_newtonschulz as torch_newtonschulz

from optbook.muon import (
    ADJUST_LR_FNS,
    DEFAULT_NS_COEFFICIENTS,
    Muon,
    adjust_lr,
    muon_update,
    zeropower_via_newtonschulz,
)

from conftest import assert_bitwise_equal, assert_states_equal
from twins import DTYPES, decays, epss, lrs, seeds, unit

STEPS = 50
#: Tall, wide and square matrices (and a row and a column); the last one never gets
#: a gradient and must not move.
SHAPES = [(7, 3), (3, 7), (5, 5), (1, 4), (6, 1)]
FROZEN = (4, 2)

coefficients = st.sampled_from([
    DEFAULT_NS_COEFFICIENTS, (3.4, -4.7, 2.0), (1.5, -0.5, 0.0), (2.0, -1.5, 0.5),
]) | st.tuples(st.floats(1.0, 4.0), st.floats(-5.0, 0.0), st.floats(0.0, 2.5))


@st.composite
def muon_hyper(draw):
    lr = draw(lrs)
    return dict(
        lr=torch.tensor(lr) if draw(st.booleans()) else lr,
        weight_decay=draw(decays),
        momentum=draw(unit),
        nesterov=draw(st.booleans()),
        ns_coefficients=draw(coefficients),
        eps=draw(epss),
        ns_steps=draw(st.integers(0, 8)),
        adjust_lr_fn=draw(st.sampled_from((None,) + ADJUST_LR_FNS)),
    )


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small bfloat16 matmuls on a busy 2-core machine: a second OpenMP thread that
    waits for a busy core makes a step 10-100x slower.  Both twins run alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fresh(hyper: dict) -> dict:
    """The hyperparameters with any Tensor (lr) copied, so the two runs share none."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v
            for k, v in hyper.items()}


def make_params(dtype, seed, shapes=SHAPES, frozen=True):
    g = torch.Generator().manual_seed(seed)
    base = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    if frozen:
        base.append(torch.randn(FROZEN, generator=g, dtype=dtype))
    return ([b.clone().requires_grad_() for b in base],
            [b.clone().requires_grad_() for b in base])


def lockstep(ours_opt, theirs_opt, ours, theirs, steps, seed, frozen=True):
    """The same random gradients to both; parameters and state bitwise equal after
    every step; a parameter without gradient (the last, if ``frozen``) unmoved."""
    g = torch.Generator().manual_seed(seed + 1)
    with_grad = len(ours) - 1 if frozen else len(ours)
    before = [p.detach().clone() for p in ours[with_grad:]]
    for step in range(1, steps + 1):
        for a, b in zip(ours[:with_grad], theirs[:with_grad]):
            grad = torch.randn(a.shape, generator=g, dtype=a.dtype)
            a.grad, b.grad = grad.clone(), grad.clone()
        ours_opt.step()
        theirs_opt.step()
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_bitwise_equal(a.detach(), b.detach(), f"step {step} param {i}")
        assert_states_equal(ours_opt, theirs_opt, f"step {step}")
    for old, p in zip(before, ours[with_grad:]):
        assert torch.equal(old, p.detach()), "a parameter without gradient moved"


# ----------------------------------------------------------------------------------
# The twin
# ----------------------------------------------------------------------------------


def run_grid_example(hyper, seed, extra, dtype):
    """optbook.Muon == torch.optim.Muon, STEPS steps, every step, params and state."""
    shapes = SHAPES + [extra]
    ours, theirs = make_params(dtype, seed, shapes=shapes)
    ours_opt = Muon(ours, **fresh(hyper))
    theirs_opt = torch.optim.Muon(theirs, **fresh(hyper))
    lockstep(ours_opt, theirs_opt, ours, theirs, STEPS, seed)
    if float(hyper["lr"]) > 0:  # and the run tested something: Muon moved them
        start, _ = make_params(dtype, seed, shapes=shapes)
        assert not torch.equal(start[0], ours[0].detach())


extra_shapes = st.tuples(st.integers(1, 9), st.integers(1, 9))


@DTYPES
@given(hyper=muon_hyper(), seed=seeds, extra=extra_shapes)
def test_muon_matches_torch(hyper, seed, extra, dtype):
    """The hypothesis profile's number of examples (ci: 40 per dtype, ~6 s each)."""
    run_grid_example(hyper, seed, extra, dtype)


def test_defaults_and_layout_match_torch():
    ours_p, theirs_p = make_params(torch.float32, 0)
    ours, theirs = Muon(ours_p), torch.optim.Muon(theirs_p)
    assert ours.defaults == theirs.defaults
    assert ours.param_groups[0].keys() == theirs.param_groups[0].keys()
    lockstep(ours, theirs, ours_p, theirs_p, 2, 0)
    o, t = ours.state_dict(), theirs.state_dict()
    assert o["param_groups"] == t["param_groups"]
    assert {k: sorted(v) for k, v in o["state"].items()} == {
        k: ["momentum_buffer"] for k in range(len(SHAPES))}


@pytest.mark.parametrize("first", ["torch", "optbook"])
def test_state_dict_round_trip(first):
    """N steps with one, its state_dict into the other, N more: equal to N + N steps
    of a single torch.optim.Muon; and the saved layouts are the same."""
    hyper = dict(lr=0.05, weight_decay=0.01, momentum=0.9,
                 adjust_lr_fn="match_rms_adamw")
    classes = {"torch": torch.optim.Muon, "optbook": Muon}
    second = "optbook" if first == "torch" else "torch"
    params, reference = make_params(torch.float64, 3)
    opt = classes[first](params, **hyper)
    ref = torch.optim.Muon(reference, **hyper)
    lockstep(opt, ref, params, reference, 10, 3)
    saved = opt.state_dict()
    resumed = classes[second](params, lr=1.0)       # other hyperparameters: overwritten
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["momentum"] == 0.9
    assert resumed.state_dict()["param_groups"] == saved["param_groups"]
    lockstep(resumed, ref, params, reference, 10, 4)


def test_loading_another_optimizers_state_dict_fails_at_load():
    """SGD also keeps a momentum_buffer, but lacks Muon's hyperparameters."""
    params, _ = make_params(torch.float32, 0, frozen=False)
    sgd = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = torch.ones_like(p)
    sgd.step()
    opt = Muon(params)
    with pytest.raises(KeyError, match="ns_coefficients"):
        opt.load_state_dict(sgd.state_dict())
    assert opt.param_groups[0]["ns_steps"] == 5      # the optimizer kept its state


def test_non_2d_parameters_are_refused_as_torch_does():
    for shape in [(), (3,), (2, 3, 4), (2, 1, 1, 2)]:
        messages = []
        for cls in (Muon, torch.optim.Muon):
            with pytest.raises(ValueError) as info:
                cls([torch.zeros(2, 2, requires_grad=True),
                     torch.zeros(shape, requires_grad=True)])
            messages.append(str(info.value))
        assert messages[0] == messages[1]
        assert messages[0] == ("Muon only supports 2D parameters whereas we found a "
                               f"parameter with size: {torch.Size(shape)}")


def test_non_2d_group_added_later_fails_at_step_as_torch_does():
    """torch checks the shapes at construction only; a 3-D parameter added with
    add_param_group fails at the step, after the 2-D ones before it have moved."""
    results = []
    for cls in (Muon, torch.optim.Muon):
        p2 = torch.ones(3, 2, requires_grad=True)
        p3 = torch.ones(2, 2, 2, requires_grad=True)
        opt = cls([p2], lr=0.1)
        opt.add_param_group({"params": [p3]})
        p2.grad, p3.grad = torch.ones_like(p2), torch.ones_like(p3)
        with pytest.raises(ValueError) as info:
            opt.step()
        results.append((str(info.value), p2.detach().clone(), sorted(
            len(s) for s in opt.state.values())))
    assert results[0][0] == results[1][0] == "Param gradient must be a 2D matrix"
    assert torch.equal(results[0][1], results[1][1])
    assert not torch.equal(results[0][1], torch.ones(3, 2))
    assert results[0][2] == results[1][2] == [1, 1]


def test_step_time_errors_match_torch():
    """Complex parameters, sparse gradients, Newton-Schulz's own checks; no foreach."""
    def sparse_grad(p):
        p.grad = torch.eye(3).to_sparse()

    cases = [
        (dict(), lambda p: None, torch.complex64),
        (dict(), sparse_grad, torch.float32),
        (dict(ns_steps=100), lambda p: None, torch.float32),
        (dict(ns_coefficients=(1.5, -0.5)), lambda p: None, torch.float32),
    ]
    for kwargs, prepare, dtype in cases:
        outcomes = []
        for cls in (Muon, torch.optim.Muon):
            p = torch.ones(3, 3, dtype=dtype, requires_grad=True)
            p.grad = torch.ones_like(p)
            prepare(p)
            opt = cls([p], **kwargs)
            with pytest.raises(Exception) as info:
                opt.step()
            outcomes.append((type(info.value), str(info.value)))
        assert outcomes[0] == outcomes[1], kwargs
    for cls in (Muon, torch.optim.Muon):  # torch.optim.Muon has no foreach argument
        with pytest.raises(TypeError, match="foreach"):
            cls([torch.ones(2, 2, requires_grad=True)], foreach=True)


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-0.1), "Learning rate should be >= 0 but is: -0.1"),
    # a 0-d tensor formats as its float32 value
    (dict(lr=torch.tensor(-0.1)),
     "Learning rate should be >= 0 but is: -0.10000000149011612"),
    (dict(lr=torch.tensor([0.1, 0.2])), "Tensor lr must be 1-element"),
    (dict(lr=float("nan")), "Learning rate should be >= 0 but is: nan"),
    (dict(momentum=-0.5), "momentum should be >= 0 but is: -0.5"),
    (dict(weight_decay=-1e-3), "weight decay should be >= 0 but is: -0.001"),
    (dict(adjust_lr_fn="rms"), "Adjust learning rate function rms is not supported"),
    (dict(lr=-1.0, momentum=-1.0), "Learning rate should be >= 0 but is: -1.0"),
])
def test_validation_messages_are_torchs(kwargs, message):
    for cls in (Muon, torch.optim.Muon):
        with pytest.raises(ValueError) as info:
            cls([torch.ones(2, 2, requires_grad=True)], **fresh(kwargs))
        assert str(info.value) == message, cls


def test_what_torch_does_not_check_is_accepted():
    """torch.optim.Muon accepts momentum >= 1, a negative eps and any ns_steps < 100
    (its docstring sets no range); so does the twin, and the two still agree."""
    for kwargs in [dict(momentum=1.0), dict(momentum=1.5), dict(eps=-1.0),
                   dict(ns_steps=-3)]:
        ours, theirs = make_params(torch.float32, 9)
        lockstep(Muon(ours, **kwargs), torch.optim.Muon(theirs, **kwargs),
                 ours, theirs, 5, 9)


def test_closure_and_grads_left_alone():
    p = torch.randn(4, 3, requires_grad=True)
    opt = Muon([p], lr=0.1)
    x = torch.randn(3)

    def closure():
        opt.zero_grad()
        loss = (p @ x).square().sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert torch.is_tensor(loss) and loss.item() > 0
    grad = p.grad.clone()
    opt.step()
    assert torch.equal(grad, p.grad)


def test_functional_update_is_the_classs_step():
    """muon_update on one tensor == one step of optbook.Muon == torch.optim.Muon."""
    g = torch.Generator().manual_seed(5)
    theta, grad = torch.randn(9, 4, generator=g), torch.randn(9, 4, generator=g)
    param, buf = theta.clone(), torch.zeros(9, 4)
    muon_update(param, grad, buf, lr=0.02, weight_decay=0.1, momentum=0.95,
                nesterov=True, ns_coefficients=DEFAULT_NS_COEFFICIENTS, ns_steps=5,
                eps=1e-7, adjust_lr_fn=None)
    p = theta.clone().requires_grad_()
    opt = torch.optim.Muon([p], lr=0.02)
    p.grad = grad.clone()
    opt.step()
    assert_bitwise_equal(param, p.detach())
    assert_bitwise_equal(buf, opt.state[p]["momentum_buffer"])


# ----------------------------------------------------------------------------------
# torch's optimizer database
# ----------------------------------------------------------------------------------

common_optimizers = pytest.importorskip(
    "torch.testing._internal.common_optimizers",
    reason="torch.testing._internal needs expecttest (requirements.txt)")
MUON_INFO = next(info for info in common_optimizers.optim_db
                 if info.optim_cls is torch.optim.Muon)
CONFIGS = MUON_INFO.optim_inputs_func(device="cpu")
ERROR_COUNT = len(MUON_INFO.optim_error_inputs_func(device="cpu", dtype=torch.float32))


def test_the_muon_entry_is_all_there():
    assert len(CONFIGS) >= 9 and ERROR_COUNT >= 10
    assert MUON_INFO.supported_impls == ()  # no foreach, fused or differentiable path


@DTYPES
@pytest.mark.parametrize("index", range(len(CONFIGS)),
                         ids=[c.desc for c in CONFIGS])
def test_optim_db_config_bitwise_equal(index, dtype):
    kwargs = CONFIGS[index].kwargs
    ours, theirs = make_params(dtype, index)
    lockstep(Muon(ours, **fresh(kwargs)), torch.optim.Muon(theirs, **fresh(kwargs)),
             ours, theirs, 20, index)


def outcome(cls, error_input):
    """As torch's test_errors runs it: the exception, and the warnings."""
    optim_input = error_input.optimizer_error_input
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            opt = cls(optim_input.params, **optim_input.kwargs)
            if error_input.error_on == common_optimizers.OptimizerErrorEnum.STEP_ERROR:
                opt.step()
        except Exception as exc:  # noqa: BLE001 - compared with torch's below
            return type(exc), str(exc), []
    return None, None, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("index", range(ERROR_COUNT))
def test_optim_db_error_input_same_type_and_message(index):
    def error_input():  # fresh parameters for each run
        inputs = MUON_INFO.optim_error_inputs_func(device="cpu", dtype=torch.float32)
        return inputs[index]

    expected = error_input()
    theirs = outcome(torch.optim.Muon, expected)
    ours = outcome(Muon, error_input())
    assert ours == theirs
    kind, message, caught = ours
    if issubclass(expected.error_type, Warning):
        assert any(issubclass(c, expected.error_type)
                   and re.search(expected.error_regex, m) for c, m in caught)
    else:
        assert kind is not None and issubclass(kind, expected.error_type)
        assert re.search(expected.error_regex, message)


# ----------------------------------------------------------------------------------
# Newton-Schulz and the learning-rate adjustment
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape",
                         [(17, 5), (5, 17), (12, 12), (1, 9), (9, 1), (64, 48)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_newtonschulz_bitwise_equal_to_torchs(shape, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    grad = torch.randn(shape, generator=g).to(dtype)
    before = grad.clone()
    for coefficients, steps, eps in [
            (DEFAULT_NS_COEFFICIENTS, 5, 1e-7), ((1.5, -0.5, 0.0), 12, 1e-7),
            ((3.4, -4.7, 2.0), 0, 0.0), ((2.0, -1.5, 0.5), 99, 1.0)]:
        ours = zeropower_via_newtonschulz(grad, coefficients, steps, eps)
        theirs = torch_newtonschulz(grad, coefficients, steps, eps)
        assert ours.dtype == torch.bfloat16
        assert_bitwise_equal(ours, theirs, f"{shape} {coefficients} {steps}")
    assert torch.equal(grad, before), "the input was modified"


def test_newtonschulz_argument_errors_match_torchs():
    for args in [(torch.ones(3, 3), DEFAULT_NS_COEFFICIENTS, 100, 1e-7),
                 (torch.ones(3), DEFAULT_NS_COEFFICIENTS, 5, 1e-7),
                 (torch.ones(3, 3), (1.0, 2.0), 5, 1e-7)]:
        messages = []
        for function in (zeropower_via_newtonschulz, torch_newtonschulz):
            with pytest.raises(ValueError) as info:
                function(*args)
            messages.append(str(info.value))
        assert messages[0] == messages[1]


def quintic(x, coefficients=DEFAULT_NS_COEFFICIENTS):
    a, b, c = coefficients
    return a * x + b * x**3 + c * x**5


def invariant_band(coefficients=DEFAULT_NS_COEFFICIENTS):
    """[p(x*), p(p(x*))], x* p's local minimum (p'(x*) = a + 3b x² + 5c x⁴ = 0, the
    larger root): p maps this interval onto itself, and iterates land in it."""
    a, b, c = coefficients
    x_star = math.sqrt((-3 * b + math.sqrt(9 * b * b - 20 * a * c)) / (10 * c))
    low = quintic(x_star, coefficients)
    return low, quintic(low, coefficients)


def test_the_band_of_the_default_coefficients():
    low, high = invariant_band()
    assert low == pytest.approx(0.68183, abs=1e-5)
    assert high == pytest.approx(1.13436, abs=1e-5)
    # invariant: p maps [low, high] into itself (and reaches both ends)
    x = torch.linspace(low, high, 100001, dtype=torch.float64)
    y = quintic(x)
    assert y.min().item() >= low - 1e-12 and y.max().item() <= high + 1e-12
    assert y.min().item() == pytest.approx(low)
    assert y.max().item() == pytest.approx(high)
    # five steps bring every x in [0.01, 1] into it, four do not
    x = torch.linspace(0.01, 1.0, 100001, dtype=torch.float64)
    y = x.clone()
    for k in range(1, 6):
        y = quintic(y)
        inside = bool((y >= low - 1e-9).all() and (y <= high + 1e-9).all())
        assert inside == (k == 5), k


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (256, 64), (128, 32)])
def test_default_newtonschulz_singular_values_in_the_band(shape):
    """Newton-Schulz acts on each singular value by the scalar map p (float64: to
    1e-10); so after 5 steps from a well-scaled matrix (σ_min/‖G‖_F >= 0.01, true
    for these Gaussian matrices) every σ lies in [0.6818, 1.1344].  In bfloat16 (what
    Muon runs) they lie within 0.01 of the band (measured: [0.6787, 1.1363] over
    these 32 matrices); and the band is not loose: both ends are reached."""
    low, high = invariant_band()
    lows, highs = [], []
    for seed in range(8):
        g = torch.Generator().manual_seed(seed)
        grad = torch.randn(shape, generator=g, dtype=torch.float64)
        sigma = torch.linalg.svdvals(grad) / grad.norm()
        assert sigma.min().item() >= 0.01
        expected = sigma
        for _ in range(5):
            expected = quintic(expected)
        expected = expected.sort(descending=True).values  # p is not monotone
        exact = zeropower_via_newtonschulz(grad, DEFAULT_NS_COEFFICIENTS, 5, 1e-7,
                                           dtype=torch.float64)
        got = torch.linalg.svdvals(exact)
        assert torch.allclose(got, expected, rtol=0, atol=1e-10)
        assert got.min().item() >= low - 1e-10 and got.max().item() <= high + 1e-10
        muon = torch.linalg.svdvals(
            zeropower_via_newtonschulz(grad, DEFAULT_NS_COEFFICIENTS, 5, 1e-7).double())
        assert muon.min().item() >= low - 0.01 and muon.max().item() <= high + 0.01
        # bfloat16 keeps 8 bits: each σ within 0.04 of float64's (measured: 0.020)
        assert (muon - got).abs().max().item() < 0.04
        lows.append(muon.min().item())
        highs.append(muon.max().item())
    assert min(lows) < low + 0.02  # the band's lower end is reached
    if shape != (128, 32):  # its σ are too close together to reach the upper end
        assert max(highs) > high - 0.02


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (40, 40)])
def test_cubic_newtonschulz_converges_to_the_polar_factor(shape):
    """X <- 1.5 X - 0.5 X X^T X converges to U V^T (G = U S V^T) in float64: each σ
    grows by 1.5x while small, then converges quadratically to 1."""
    g = torch.Generator().manual_seed(1)
    grad = torch.randn(shape, generator=g, dtype=torch.float64)
    u, _, vh = torch.linalg.svd(grad, full_matrices=False)
    polar = u @ vh
    few = zeropower_via_newtonschulz(grad, (1.5, -0.5, 0.0), 5, 1e-7,
                                     dtype=torch.float64)
    many = zeropower_via_newtonschulz(grad, (1.5, -0.5, 0.0), 60, 1e-7,
                                      dtype=torch.float64)
    assert (few - polar).abs().max().item() > 0.1      # not yet after 5
    assert (many - polar).abs().max().item() < 1e-12
    eye = torch.eye(min(shape), dtype=torch.float64)
    gram = many.T @ many if shape[0] >= shape[1] else many @ many.T
    assert (gram - eye).abs().max().item() < 1e-12


def test_the_ewma_form_is_the_sum_form_up_to_scale():
    """torch's docstring: B_t = μ B_{t-1} + g_t, nesterov g_t + μ B_t; its code (and
    optbook's): the EWMA m_t = μ m_{t-1} + (1-μ) g_t, (1-μ) g_t + μ m_t.  The two
    differ by the factor 1-μ, which Newton-Schulz's normalisation removes."""
    g = torch.Generator().manual_seed(2)
    mu, total, ewma = 0.9, torch.zeros(20, 10, dtype=torch.float64), None
    ewma = torch.zeros_like(total)
    for _ in range(10):
        grad = torch.randn(20, 10, generator=g, dtype=torch.float64)
        total = mu * total + grad
        ewma.lerp_(grad, 1 - mu)
        for a, b in [(total, ewma), (grad + mu * total, grad.lerp(ewma, mu))]:
            assert torch.allclose(a * (1 - mu), b, rtol=1e-12, atol=1e-14)
            sa, sb = (zeropower_via_newtonschulz(x, DEFAULT_NS_COEFFICIENTS, 5, 1e-7,
                                                 dtype=torch.float64) for x in (a, b))
            assert (sa - sb).abs().max().item() < 1e-12


@pytest.mark.parametrize("fn", (None,) + ADJUST_LR_FNS + ("unknown",))
def test_adjust_lr_is_torchs(fn):
    for shape in [(7, 3), (3, 7), (5, 5), (1, 4096), (4096, 1), (768, 3072)]:
        for lr in (0.02, 1.0, torch.tensor(0.02)):
            ours = adjust_lr(lr, fn, torch.Size(shape))
            theirs = torch_adjust_lr(lr, fn, torch.Size(shape))
            assert type(ours) is type(theirs)
            assert bool(ours == theirs)
    d_out, d_in = 768, 3072
    expected = {None: 1.0, "original": 1.0, "match_rms_adamw": 0.2 * math.sqrt(d_in),
                "spectral_unclamped": math.sqrt(d_out / d_in), "unknown": 1.0}[fn]
    assert adjust_lr(1.0, fn, (d_out, d_in)) == expected
    assert adjust_lr(1.0, "original", (d_in, d_out)) == 2.0
