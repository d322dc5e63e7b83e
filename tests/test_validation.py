"""Bad input: every hyperparameter torch.optim rejects, optbook rejects with a
ValueError that names the parameter and the value; sparse gradients and unsupported
code paths raise clear errors."""

from __future__ import annotations

import math

import pytest
import torch

import optbook

P = lambda: [torch.zeros(3, requires_grad=True)]  # noqa: E731

# (optimizer, bad keyword arguments, parameter name the message must contain, value
# repr).
# The names are torch.optim's: "Invalid learning rate: -0.1", "Invalid epsilon value:
# -1e-08", "Invalid beta parameter at index 0: 1.0", "Invalid momentum value: -0.5".
LR2 = torch.tensor([0.1, 0.2])
RULES = [
    ("SGD", dict(lr=-0.1), "learning rate", "-0.1"),
    ("SGD", dict(momentum=-0.5), "momentum", "-0.5"),
    ("SGD", dict(weight_decay=-1e-4), "weight_decay", "-0.0001"),
    ("SGD", dict(momentum=0.0, nesterov=True), "Nesterov", "momentum=0.0"),
    ("SGD", dict(momentum=0.9, dampening=0.1, nesterov=True), "Nesterov",
     "dampening=0.1"),
    ("SGD", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("Adagrad", dict(lr=-1.0), "learning rate", "-1.0"),
    ("Adagrad", dict(lr_decay=-0.1), "lr_decay", "-0.1"),
    ("Adagrad", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), "initial_accumulator_value", "-0.1"),
    ("Adagrad", dict(eps=-1e-10), "epsilon", "-1e-10"),
    ("Adagrad", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("RMSprop", dict(lr=-0.01), "learning rate", "-0.01"),
    ("RMSprop", dict(eps=-1e-8), "epsilon", "-1e-08"),
    ("RMSprop", dict(momentum=-0.9), "momentum", "-0.9"),
    ("RMSprop", dict(weight_decay=-1.0), "weight_decay", "-1.0"),
    ("RMSprop", dict(alpha=-0.99), "alpha", "-0.99"),
    ("RMSprop", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("Adam", dict(lr=-1e-3), "learning rate", "-0.001"),
    ("Adam", dict(eps=-1e-8), "epsilon", "-1e-08"),
    ("Adam", dict(betas=(1.0, 0.999)), "beta parameter at index 0", "1.0"),
    ("Adam", dict(betas=(-0.1, 0.999)), "beta parameter at index 0", "-0.1"),
    ("Adam", dict(betas=(0.9, 1.0)), "beta parameter at index 1", "1.0"),
    ("Adam", dict(betas=(0.9, 1.5)), "beta parameter at index 1", "1.5"),
    ("Adam", dict(betas=(0, 0)), "betas", "(0, 0)"),
    ("Adam", dict(betas=(0.9, torch.tensor(0.99))), "betas", "tensor(0.9900)"),
    ("Adam", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("Adam", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("AdamW", dict(lr=-1e-3), "learning rate", "-0.001"),
    ("AdamW", dict(betas=(0.9, 1.0)), "beta parameter at index 1", "1.0"),
    ("AdamW", dict(weight_decay=-0.01), "weight_decay", "-0.01"),
    ("AdamW", dict(eps=-1.0), "epsilon", "-1.0"),
    ("AdamW", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("NAdam", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("NAdam", dict(lr=-0.1), "learning rate", "-0.1"),
    ("NAdam", dict(eps=-1e-8), "epsilon", "-1e-08"),
    ("NAdam", dict(betas=(1.0, 0.999)), "beta parameter at index 0", "1.0"),
    ("NAdam", dict(betas=(0.9, -0.5)), "beta parameter at index 1", "-0.5"),
    ("NAdam", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("NAdam", dict(momentum_decay=-0.004), "momentum_decay", "-0.004"),
    ("RAdam", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("RAdam", dict(lr=-0.1), "learning rate", "-0.1"),
    ("RAdam", dict(eps=-1e-8), "epsilon", "-1e-08"),
    ("RAdam", dict(betas=(-0.1, 0.999)), "beta parameter at index 0", "-0.1"),
    ("RAdam", dict(betas=(0.9, 1.0)), "beta parameter at index 1", "1.0"),
    ("RAdam", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("Adamax", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("Adamax", dict(lr=-0.1), "learning rate", "-0.1"),
    ("Adamax", dict(eps=-1e-8), "epsilon", "-1e-08"),
    ("Adamax", dict(betas=(1.5, 0.999)), "beta parameter at index 0", "1.5"),
    ("Adamax", dict(betas=(0.9, 1.0)), "beta parameter at index 1", "1.0"),
    ("Adamax", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    ("Adadelta", dict(lr=LR2), "Tensor lr", "(2,)"),
    ("Adadelta", dict(lr=-0.1), "learning rate", "-0.1"),
    ("Adadelta", dict(rho=-0.1), "rho", "-0.1"),
    ("Adadelta", dict(rho=1.5), "rho", "1.5"),
    ("Adadelta", dict(eps=-1e-6), "epsilon", "-1e-06"),
    ("Adadelta", dict(weight_decay=-0.1), "weight_decay", "-0.1"),
    # torch's foreach path takes a Tensor lr or betas only with capturable=True
    ("Adam", dict(lr=torch.tensor(1e-3), foreach=True), "lr as a Tensor",
     "foreach=True"),
    ("Adam", dict(betas=(torch.tensor(0.9), torch.tensor(0.999)), foreach=True),
     "betas[0] as a Tensor", "foreach=True"),
    ("AdamW", dict(lr=torch.tensor(1e-3), foreach=True), "lr as a Tensor",
     "foreach=True"),
    # two faults: the first one torch checks is the one named
    ("Adam", dict(lr=-1.0, eps=-1.0), "learning rate", "-1.0"),
    ("Adam", dict(betas=(0, 0), weight_decay=-1.0), "weight_decay", "-1.0"),
    ("RMSprop", dict(alpha=-1.0, momentum=-2.0), "momentum", "-2.0"),
]


@pytest.mark.parametrize("name, kwargs, param, value", RULES,
                         ids=[f"{r[0]}-{r[2]}-{i}" for i, r in enumerate(RULES)])
def test_invalid_hyperparameter_raises_value_error_naming_it(name, kwargs, param, value):
    # The rule is torch's: torch.optim rejects the same input ...
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, name)(P(), **kwargs)
    # ... and optbook says which parameter and which value ...
    with pytest.raises(ValueError) as info:
        getattr(optbook, name)(P(), **kwargs)
    message = str(info.value)
    assert param in message and value in message, message
    # ... in torch's words: its message exactly, or, where that names no value, its
    # message followed by the value in parentheses.
    expected = str(theirs.value)
    assert message == expected or message.startswith(expected + " (got "), \
        (message, expected)


def test_adam_tensor_betas_must_hold_one_element():
    """torch's own check for this comes after a range check that a 2-element tensor
    cannot answer (RuntimeError); optbook checks the size first, in torch's words."""
    expected = r"Tensor betas\[0\] must be 1-element \(got shape \(2,\)\)"
    with pytest.raises(ValueError, match=expected):
        optbook.Adam(P(), betas=(torch.tensor([0.9, 0.9]), torch.tensor(0.99)))


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=math.nan)), ("SGD", dict(momentum=math.nan)),
])
def test_nan_hyperparameters_are_rejected_not_passed_through(name, kwargs):
    """torch's SGD checks ``lr < 0``, which NaN passes; optbook rejects NaN (documented)."""
    with pytest.raises(ValueError, match="nan"):
        getattr(optbook, name)(P(), **kwargs)


@pytest.mark.parametrize("name, flag", [
    ("SGD", "fused"), ("SGD", "differentiable"),
    ("Adagrad", "fused"), ("Adagrad", "differentiable"),
    ("RMSprop", "capturable"), ("RMSprop", "differentiable"),
    ("Adam", "fused"), ("Adam", "capturable"), ("Adam", "differentiable"),
    ("AdamW", "fused"), ("AdamW", "capturable"),
])
def test_unimplemented_code_paths_are_refused_not_ignored(name, flag):
    with pytest.raises(ValueError, match=flag):
        getattr(optbook, name)(P(), **{flag: True})


# torch.optim.Muon has no foreach argument (and no multi-tensor path): neither has its twin.
FOREACH_TWINS = sorted(n for n in optbook.TWINS if n != "Muon")


def test_muon_has_no_foreach_argument_like_torch():
    for lib in (torch.optim, optbook):
        with pytest.raises(TypeError, match="foreach"):
            lib.Muon([torch.zeros(2, 3, requires_grad=True)], foreach=True)


@pytest.mark.parametrize("name", FOREACH_TWINS)
def test_foreach_true_is_accepted_and_kept_in_param_groups(name):
    """foreach=True is implemented for every twin that torch gives a foreach path:
    accepted, and kept as torch keeps it."""
    opt = getattr(optbook, name)(P(), foreach=True)
    assert opt.param_groups[0]["foreach"] is True
    assert opt.param_groups[0].keys() == getattr(torch.optim, name)(P(), foreach=True).param_groups[0].keys()


def test_adam_tensor_lr_set_later_is_refused_on_the_foreach_path_like_torch():
    """A Tensor lr put into a foreach group after construction: torch raises at step, so do we."""
    for lib in (torch.optim, optbook):
        p = torch.zeros(3, requires_grad=True)
        opt = lib.Adam([p], foreach=True)
        opt.param_groups[0]["lr"] = torch.tensor(0.1)
        p.grad = torch.ones(3)
        with pytest.raises(RuntimeError, match="lr as a Tensor"):
            opt.step()


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_sparse_gradient_raises_clear_error(name):
    weight = torch.zeros(5, 3, requires_grad=True)
    opt = getattr(optbook, name)([weight], lr=0.1)
    torch.nn.functional.embedding(torch.tensor([1, 3]), weight, sparse=True).sum().backward()
    assert weight.grad.is_sparse
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()
    assert torch.equal(weight, torch.zeros(5, 3)), "a refused step must not touch the parameter"


@pytest.mark.parametrize("cls, kwargs, message", [
    (optbook.EWMA, dict(beta=1.0), "Invalid beta value: 1.0"),
    (optbook.EWMA, dict(beta=-0.1), "Invalid beta value: -0.1"),
    (optbook.AdamNoBiasCorrection, dict(params=None, betas=(0.9, 1.0)),
     "Invalid beta parameter at index 1: 1.0"),
    (optbook.AdamKingmaBa, dict(params=None, lr=-1.0), "Invalid learning rate: -1.0"),
    (optbook.AdagradEpsInside, dict(params=None, eps=-1.0),
     "Invalid epsilon value: -1.0"),
    (optbook.RMSpropEpsInside, dict(params=None, alpha=-1.0),
     "Invalid alpha value: -1.0"),
    (optbook.AMSGradReddi, dict(params=None, eps=-1.0), "Invalid epsilon value: -1.0"),
    (optbook.AMSGradMaxVhat, dict(params=None, betas=(2.0, 0.9)),
     "Invalid beta parameter at index 0: 2.0"),
])
def test_variants_and_ewma_validate_too(cls, kwargs, message):
    """The same rules and words as the twins they vary."""
    if "params" in kwargs:
        kwargs = {**kwargs, "params": P()}
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    assert str(info.value) == message
