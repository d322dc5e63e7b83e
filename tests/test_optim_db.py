"""torch's own optimizer database, run on optbook.

``torch.testing._internal.common_optimizers.optim_db`` is what torch's
test/test_optim.py is driven by: one ``OptimizerInfo`` per optimizer, with the
constructor configurations torch tests (``optim_inputs_func``) and the inputs that
must fail, with the exception type and a regex for its message
(``optim_error_inputs_func``).  For every optimizer with an optbook twin:

* every configuration, on the single-tensor (``foreach=False``) and the
  multi-tensor (``foreach=True``) path, as torch's own tests run each: optbook and
  torch.optim from the same parameters and gradients, bitwise equal after every
  step.  Configurations that need a flag optbook refuses by design (``fused``,
  ``capturable``, ``differentiable``) are checked to be refused, then skipped;
* every error input, as torch's ``test_errors`` runs it (constructor-time or
  step-time, exception or warning): the same exception type, and a message that
  ``re.search`` finds torch's ``error_regex`` in.  torch is held to it too.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch

import optbook

from conftest import assert_bitwise_equal

pytest.importorskip(
    "expecttest", reason="torch.testing._internal needs expecttest (requirements.txt)"
)
from torch.testing._internal.common_optimizers import (
    OptimizerErrorEnum,
    optim_db,
)

TWINS = [
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "NAdam",
    "RAdam",
    "Adamax",
    "Adadelta",
]
INFOS = {
    info.optim_cls.__name__: info
    for info in optim_db
    if info.optim_cls.__name__ in TWINS
}
#: Flags whose code path optbook does not implement, on purpose (base.py).
REFUSED = ("fused", "capturable", "differentiable")
STEPS = 5
SHAPES = [(3, 4), (4,), ()]


def _configs():
    """(name, index, description, kwargs) for every configuration and code path."""
    out = []
    for name in TWINS:
        info = INFOS[name]
        for index, config in enumerate(info.optim_inputs_func(device="cpu")):
            impls = [("forloop", dict(foreach=False)), ("foreach", dict(foreach=True))]
            impls += [
                (flag, {flag: True})
                for flag in ("differentiable", "fused")
                if flag in info.supported_impls
            ]
            for impl, flags in impls:
                out.append(
                    (name, index, f"{config.desc} & {impl}", {**config.kwargs, **flags})
                )
    return out


CONFIGS = _configs()


def make_params() -> list:
    """A small model's parameters: a matrix, a vector, a 0-d tensor, a complex one."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=g).requires_grad_() for s in SHAPES]
    params.append(
        torch.randn(2, 3, generator=g, dtype=torch.complex64).requires_grad_()
    )
    return params


def fresh_kwargs(kwargs: dict) -> dict:
    """Tensors in a configuration (a Tensor lr) copied, so the two runs share none."""
    return {
        k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()
    }


@pytest.mark.parametrize(
    "name, index, desc, kwargs", CONFIGS, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CONFIGS]
)
def test_config_bitwise_equal_to_torch(name, index, desc, kwargs):
    refused = [flag for flag in REFUSED if kwargs.get(flag)]
    if refused:
        with pytest.raises(ValueError, match=refused[0]):
            getattr(optbook, name)(make_params(), **fresh_kwargs(kwargs))
        pytest.skip(f"{refused[0]}=True: refused by optbook by design (checked)")
    theirs_p, ours_p = make_params(), make_params()
    theirs = getattr(torch.optim, name)(theirs_p, **fresh_kwargs(kwargs))
    try:
        ours = getattr(optbook, name)(ours_p, **fresh_kwargs(kwargs))
    except ValueError as exc:
        if kwargs.get("foreach") and "foreach" in str(exc):
            pytest.skip(f"foreach=True not (yet) implemented for optbook.{name}: {exc}")
        raise
    for step in range(STEPS):
        g = torch.Generator().manual_seed(100 + step)
        for a, b in zip(ours_p, theirs_p):
            grad = torch.randn(a.shape, generator=g, dtype=a.dtype)
            a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        theirs.step()
        for i, (a, b) in enumerate(zip(ours_p, theirs_p)):
            assert_bitwise_equal(
                a.detach(), b.detach(), f"{name} {desc}: step {step + 1} parameter {i}"
            )


def _error_inputs():
    out = []
    for name in TWINS:
        inputs = INFOS[name].optim_error_inputs_func(device="cpu", dtype=torch.float32)
        out += [
            (name, index, e.optimizer_error_input.desc)
            for index, e in enumerate(inputs)
        ]
    return out


ERROR_INPUTS = _error_inputs()


def outcome(cls, error_input):
    """What happens when torch's test_errors runs this input on ``cls``: the
    exception, or the warnings, at construction or at step as the input says."""
    optim_input = error_input.optimizer_error_input
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            optimizer = cls(optim_input.params, **optim_input.kwargs)
            if error_input.error_on == OptimizerErrorEnum.STEP_ERROR:
                optimizer.step()
        except Exception as exc:  # noqa: BLE001 - compared with what torch expects
            return exc, caught
    return None, caught


def check(error_input, exc, caught, who: str) -> None:
    expected, regex = error_input.error_type, error_input.error_regex
    if issubclass(expected, Warning):
        messages = [str(w.message) for w in caught if issubclass(w.category, expected)]
        assert messages, f"{who}: no {expected.__name__} (raised {exc!r})"
        assert any(re.search(regex, m) for m in messages), (
            f"{who}: {messages} !~ {regex!r}"
        )
        return
    assert isinstance(exc, expected), (
        f"{who}: raised {exc!r}, torch expects {expected.__name__}"
    )
    assert re.search(regex, str(exc)), f"{who}: {str(exc)!r} does not match {regex!r}"


@pytest.mark.parametrize(
    "name, index, desc",
    ERROR_INPUTS,
    ids=[f"{e[0]}-{e[1]}-{e[2]}" for e in ERROR_INPUTS],
)
def test_error_input_type_and_message_match_torch(name, index, desc):
    def error_input():  # a fresh one per run: its parameters are created by the call
        return INFOS[name].optim_error_inputs_func(device="cpu", dtype=torch.float32)[
            index
        ]

    theirs = error_input()
    check(theirs, *outcome(getattr(torch.optim, name), theirs), f"torch.optim.{name}")
    ours = error_input()
    check(ours, *outcome(getattr(optbook, name), ours), f"optbook.{name}")


def test_the_database_is_all_there():
    """A torch upgrade that renamed or dropped entries would silently shrink the run."""
    assert sorted(INFOS) == sorted(TWINS)
    assert len(CONFIGS) >= 100 and len(ERROR_INPUTS) >= 80
