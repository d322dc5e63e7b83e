"""Checkpoints: every state_dict torch.optim loads, optbook loads, and continues from
bit for bit as torch does; a state_dict that cannot work fails at load_state_dict,
not at the next step.

* Old torch checkpoints (issue 9, defect 4): a group key torch's ``__setstate__``
  back-fills is deleted, one test per key per optimizer; a ``step`` (and NAdam's
  ``mu_product``) saved as a number.
* Mismatched state_dicts (defect 7): one optimizer's state loaded into another.
* Lookahead's torch.optim layout, its hooks and torch.distributed.checkpoint, and
  AdaBound given Adam's state (defect 6).
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

import optbook
from optbook.base import IncompatibleStateDict

from conftest import assert_bitwise_equal, assert_states_equal

SHAPES = [(3, 4), (5,), ()]

#: Per optimizer: hyperparameters that give each back-filled key something to change
#: (the saved value differs from the one filled in), and the group keys that
#: torch.optim's ``__setstate__`` fills in (read from torch/optim/*.py, 2.15).
CASES = {
    "SGD": (
        dict(
            lr=0.05,
            momentum=0.9,
            nesterov=True,
            weight_decay=0.1,
            maximize=True,
            foreach=False,
        ),
        ["nesterov", "maximize", "foreach", "differentiable", "fused"],
    ),
    "Adam": (
        dict(
            lr=0.05,
            amsgrad=True,
            weight_decay=0.1,
            maximize=True,
            decoupled_weight_decay=True,
            foreach=False,
        ),
        [
            "amsgrad",
            "maximize",
            "foreach",
            "capturable",
            "differentiable",
            "decoupled_weight_decay",
            "fused",
        ],
    ),
    "AdamW": (
        dict(lr=0.05, amsgrad=True, maximize=True, foreach=False),
        [
            "amsgrad",
            "maximize",
            "foreach",
            "capturable",
            "differentiable",
            "decoupled_weight_decay",
            "fused",
        ],
    ),
    "Adagrad": (
        dict(lr=0.05, lr_decay=0.01, maximize=True, foreach=False),
        ["foreach", "maximize", "differentiable", "fused"],
    ),
    "RMSprop": (
        dict(lr=0.01, momentum=0.9, centered=True, maximize=True, foreach=False),
        ["momentum", "centered", "foreach", "maximize", "differentiable", "capturable"],
    ),
    "NAdam": (
        dict(
            lr=0.01,
            weight_decay=0.1,
            decoupled_weight_decay=True,
            maximize=True,
            foreach=False,
        ),
        [
            "maximize",
            "foreach",
            "capturable",
            "differentiable",
            "decoupled_weight_decay",
        ],
    ),
    "RAdam": (
        dict(
            lr=0.01,
            weight_decay=0.1,
            decoupled_weight_decay=True,
            maximize=True,
            foreach=False,
        ),
        [
            "foreach",
            "maximize",
            "differentiable",
            "decoupled_weight_decay",
            "capturable",
        ],
    ),
    "Adamax": (
        dict(lr=0.01, weight_decay=0.1, maximize=True, foreach=False),
        ["foreach", "maximize", "differentiable", "capturable"],
    ),
    "Adadelta": (
        dict(lr=0.5, weight_decay=0.1, maximize=True, foreach=False),
        ["foreach", "maximize", "differentiable", "capturable"],
    ),
}
KEY_CASES = [(name, key) for name, (_, keys) in CASES.items() for key in keys]


def make_params(seed: int = 0, dtype=torch.float32) -> list:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(s, generator=g, dtype=torch.float64).to(dtype).requires_grad_()
        for s in SHAPES
    ]


def clone_params(params: list) -> list:
    return [p.detach().clone().requires_grad_() for p in params]


def run(opt, params: list, steps: range) -> None:
    """Steps with gradients that depend only on the step number."""
    for t in steps:
        g = torch.Generator().manual_seed(1000 + t)
        for p in params:
            p.grad = torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
        opt.step()


def checkpoint(name: str, hyper: dict, steps: int = 3, dtype=torch.float32):
    """torch.optim's state_dict after ``steps`` steps, and the parameters then."""
    params = make_params(dtype=dtype)
    opt = getattr(torch.optim, name)(params, **hyper)
    run(opt, params, range(steps))
    return copy.deepcopy(opt.state_dict()), params


def resume_both(name: str, hyper: dict, saved: dict, params: list, steps: int = 4):
    """Load ``saved`` into a fresh torch.optim and a fresh optbook optimizer (each
    built with ``hyper``), continue both; return (ours, theirs, our params, theirs)."""
    ours_p, theirs_p = clone_params(params), clone_params(params)
    ours = getattr(optbook, name)(ours_p, **hyper)
    theirs = getattr(torch.optim, name)(theirs_p, **hyper)
    theirs.load_state_dict(copy.deepcopy(saved))
    ours.load_state_dict(copy.deepcopy(saved))
    run(theirs, theirs_p, range(3, 3 + steps))
    run(ours, ours_p, range(3, 3 + steps))
    return ours, theirs, ours_p, theirs_p


def assert_same_run(ours, theirs, ours_p, theirs_p, what: str) -> None:
    for i, (a, b) in enumerate(zip(ours_p, theirs_p)):
        assert_bitwise_equal(a.detach(), b.detach(), f"{what}: parameter {i}")
    assert_states_equal(ours, theirs, what)
    for g_ours, g_theirs in zip(ours.param_groups, theirs.param_groups):
        assert {k: v for k, v in g_ours.items() if k != "params"} == {
            k: v for k, v in g_theirs.items() if k != "params"
        }, what


# ----------------------------------------------------------------------------------
# Defect 4: checkpoints of older torch versions
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, key", KEY_CASES, ids=[f"{n}-{k}" for n, k in KEY_CASES])
def test_missing_group_key_is_filled_in_as_torch_does(name, key):
    hyper, _ = CASES[name]
    saved, params = checkpoint(name, hyper)
    for group in saved["param_groups"]:
        del group[key]
    # built with other flags than the checkpoint's: the filled-in value must win
    fresh = {k: v for k, v in hyper.items() if k in ("lr", "foreach")}
    ours, theirs, ours_p, theirs_p = resume_both(name, fresh, saved, params)
    assert ours.param_groups[0][key] == theirs.param_groups[0][key]
    assert_same_run(ours, theirs, ours_p, theirs_p, f"{name} without {key!r}")


@pytest.mark.parametrize("name", list(CASES))
def test_the_keys_torch_fills_in_are_the_ones_listed(name):
    """The table above against torch itself: a group key torch survives losing (it
    loads and steps) is one it fills in, or one its step never reads; optbook
    survives exactly the same keys, and refuses the others at load, naming them."""
    hyper, keys = CASES[name]
    saved, params = checkpoint(name, hyper)
    survived = []
    for key in [k for k in saved["param_groups"][0] if k != "params"]:
        broken = copy.deepcopy(saved)
        del broken["param_groups"][0][key]
        theirs_p = clone_params(params)
        theirs = getattr(torch.optim, name)(theirs_p, **hyper)
        try:
            theirs.load_state_dict(broken)
            run(theirs, theirs_p, range(3, 4))
        except KeyError:
            ours = getattr(optbook, name)(clone_params(params), **hyper)
            with pytest.raises(IncompatibleStateDict, match=repr(key)):
                ours.load_state_dict(copy.deepcopy(broken))
            continue
        survived.append(key)
        ours_p = clone_params(params)
        ours = getattr(optbook, name)(ours_p, **hyper)
        ours.load_state_dict(copy.deepcopy(broken))
        run(ours, ours_p, range(3, 4))
    unread = {"Adagrad": ["initial_accumulator_value"]}.get(name, [])
    assert sorted(survived) == sorted(keys + unread)


STEP_CASES = [(name, kind) for name in CASES for kind in (float, int)]


@pytest.mark.parametrize(
    "name, kind", STEP_CASES, ids=[f"{n}-{k.__name__}" for n, k in STEP_CASES]
)
def test_numeric_step_becomes_a_tensor_as_torch_makes_it(name, kind):
    hyper, _ = CASES[name]
    saved, params = checkpoint(name, hyper)
    numeric = 0
    for entry in saved["state"].values():
        for key in ("step", "mu_product"):
            if key in entry:
                value = entry[key].item()
                entry[key] = kind(value) if key == "step" else value
                numeric += 1
    if name == "SGD":
        assert numeric == 0  # SGD keeps no step; the load must still work
    else:
        assert numeric >= len(SHAPES)
    ours, theirs, ours_p, theirs_p = resume_both(name, hyper, saved, params)
    assert_same_run(
        ours, theirs, ours_p, theirs_p, f"{name} with a {kind.__name__} step"
    )
    for p_ours, p_theirs in zip(ours_p, theirs_p):
        for key in ("step", "mu_product"):
            if key in theirs.state[p_theirs]:
                a, b = ours.state[p_ours][key], theirs.state[p_theirs][key]
                assert torch.is_tensor(a) and (a.dtype, a.device) == (b.dtype, b.device)


@pytest.mark.parametrize("name", ["Adam", "NAdam", "Adagrad"])
def test_numeric_step_dtype_follows_the_default_dtype(name):
    """torch's rule: float64 steps when float64 is the default dtype."""
    hyper, _ = CASES[name]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        saved, params = checkpoint(name, hyper, dtype=torch.float64)
        for entry in saved["state"].values():
            entry["step"] = float(entry["step"])
        ours, theirs, ours_p, theirs_p = resume_both(name, hyper, saved, params)
    finally:
        torch.set_default_dtype(previous)
    assert_same_run(ours, theirs, ours_p, theirs_p, f"{name} float64 default")
    assert ours.state[ours_p[0]]["step"].dtype == torch.float64


def test_old_checkpoint_also_loads_by_unpickling():
    """``__setstate__`` is also what unpickling calls: the same upgrade applies."""
    hyper, _ = CASES["Adam"]
    params = make_params()
    opt = optbook.Adam(params, **hyper)
    run(opt, params, range(2))
    state = opt.__getstate__()
    state = copy.deepcopy(state)
    del state["param_groups"][0]["amsgrad"]
    for entry in state["state"].values():
        entry["step"] = float(entry["step"])
    fresh = optbook.Adam.__new__(optbook.Adam)
    fresh.__setstate__(state)
    assert fresh.param_groups[0]["amsgrad"] is False
    first = fresh.param_groups[0]["params"][0]  # the deep copy's parameter
    assert torch.is_tensor(fresh.state[first]["step"])


# ----------------------------------------------------------------------------------
# Defect 7: one optimizer's state_dict loaded into another
# ----------------------------------------------------------------------------------

#: (saved by, hyperparameters, loaded into): the two reported and the other pairs
#: whose state or groups do not fit.
MISMATCHES = [
    ("SGD", dict(momentum=0.9), "Adam"),
    ("Adam", {}, "NAdam"),
    ("SGD", dict(momentum=0.9), "RMSprop"),
    ("Adam", {}, "Adamax"),
    ("Adam", {}, "Adagrad"),
    ("Adadelta", {}, "Adam"),
    ("RMSprop", {}, "Adadelta"),
    ("Adam", {}, "SGD"),
    ("Adagrad", {}, "RMSprop"),
]


def torch_outcome(src: str, hyper: dict, dst: str):
    """Where torch.optim fails on this load: ("load" | "step" | None, exception)."""
    params = make_params()
    saved_opt = getattr(torch.optim, src)(params, lr=0.01, **hyper)
    run(saved_opt, params, range(2))
    saved = copy.deepcopy(saved_opt.state_dict())
    target_p = clone_params(params)
    target = getattr(torch.optim, dst)(target_p, lr=0.01)
    try:
        target.load_state_dict(copy.deepcopy(saved))
    except Exception as exc:  # noqa: BLE001 - recorded, and compared below
        return "load", exc, saved
    try:
        run(target, target_p, range(2, 3))
    except Exception as exc:  # noqa: BLE001
        return "step", exc, saved
    return None, None, saved


@pytest.mark.parametrize(
    "src, hyper, dst", MISMATCHES, ids=[f"{s}-into-{d}" for s, _, d in MISMATCHES]
)
def test_mismatched_state_dict_fails_at_load_naming_what_is_missing(src, hyper, dst):
    where, exc, saved = torch_outcome(src, hyper, dst)
    assert where is not None, "torch accepts this pair: it is not a mismatch"
    assert isinstance(exc, KeyError)
    params = make_params()
    ours = getattr(optbook, dst)(params, lr=0.01)
    untouched = getattr(optbook, dst)(clone_params(params), lr=0.01)
    run(ours, params, range(1))
    run(untouched, untouched.param_groups[0]["params"], range(1))
    with pytest.raises(IncompatibleStateDict) as info:
        ours.load_state_dict(copy.deepcopy(saved))
    message = str(info.value)
    assert f"optbook.{dst}" in message and "load_state_dict" in message
    # the key torch's KeyError names, at load or at step, is named too
    assert repr(exc.args[0]) in message, (exc, message)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    # a refused load leaves the optimizer as it was
    run(ours, params, range(1, 3))
    run(untouched, untouched.param_groups[0]["params"], range(1, 3))
    for a, b in zip(params, untouched.param_groups[0]["params"]):
        assert_bitwise_equal(a.detach(), b.detach(), "after a refused load")
    assert_states_equal(ours, untouched, "after a refused load")


@pytest.mark.parametrize(
    "src, dst",
    [
        ("Adam", "RAdam"),
        ("NAdam", "Adam"),
        ("Adam", "AdamW"),
        ("AdamW", "Adam"),
        ("Adam", "SGD"),
    ],
)
def test_state_dicts_torch_accepts_from_another_optimizer_load_as_in_torch(src, dst):
    """Where the state fits (torch loads and steps), optbook does the same steps."""
    hyper = dict(momentum=0.9) if dst == "SGD" else {}
    params = make_params()
    saved_opt = getattr(torch.optim, src)(params, lr=0.01)
    run(saved_opt, params, range(3))
    saved = copy.deepcopy(saved_opt.state_dict())
    if dst == "SGD":  # an SGD group needs its own hyperparameters; the state is Adam's
        for group in saved["param_groups"]:
            group.update(momentum=0.9, dampening=0)
    ours, theirs, ours_p, theirs_p = resume_both(dst, hyper, saved, params)
    assert_same_run(ours, theirs, ours_p, theirs_p, f"{src} into {dst}")


# ----------------------------------------------------------------------------------
# Defect 6: AdaBound and Lookahead
# ----------------------------------------------------------------------------------


def test_adam_state_dict_into_adabound_is_refused_at_load():
    params = make_params()
    adam = optbook.Adam(params, lr=0.01)
    run(adam, params, range(2))
    bound = optbook.AdaBound(clone_params(params), lr=0.01)
    with pytest.raises(IncompatibleStateDict, match="base_lr") as info:
        bound.load_state_dict(copy.deepcopy(adam.state_dict()))
    for key in ("final_lr", "gamma", "amsbound", "optbook.AdaBound"):
        assert key in str(info.value)
    assert "base_lr" in bound.param_groups[0]  # the refused load changed nothing
    run(bound, bound.param_groups[0]["params"], range(2))


def lookahead_pair(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    )
    frozen = torch.nn.Parameter(torch.ones(2), requires_grad=False)
    model.register_parameter("frozen", frozen)
    return model, optbook.Lookahead(optbook.AdamW(model.parameters(), lr=0.05), k=3)


def train(model, opt, steps: range) -> None:
    for t in steps:
        x = torch.randn(5, 3, generator=torch.Generator().manual_seed(t))
        opt.zero_grad()
        model(x).pow(2).sum().backward()
        opt.step()


def assert_models_equal(a, b, what: str) -> None:
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert_bitwise_equal(p.detach(), q.detach(), f"{what}: {name}")


def test_lookahead_state_dict_has_torch_layout():
    model, opt = lookahead_pair()
    train(model, opt, range(4))
    saved = opt.state_dict()
    assert set(saved) == {"state", "param_groups"}
    n = len(list(model.parameters()))
    assert saved["param_groups"][0]["params"] == list(range(n))
    group = saved["param_groups"][0]
    assert (
        group["lookahead_k"],
        group["lookahead_alpha"],
        group["lookahead_fast_steps"],
    ) == (3, 0.5, 4)
    for index, param in enumerate(model.parameters()):
        entry = saved["state"][index]
        assert torch.equal(entry["slow_param"], opt.state[param]["slow_param"])
        if param.requires_grad:
            assert {"step", "exp_avg", "exp_avg_sq"} <= set(entry)
        else:
            assert set(entry) == {"slow_param"}  # no base state for a frozen parameter
    base = opt.base_optimizer.state_dict()
    assert all("slow_param" not in entry for entry in base["state"].values()), (
        "state_dict must not write into the base optimizer's state"
    )
    assert "lookahead_k" not in opt.base_optimizer.param_groups[0]


def test_lookahead_through_distributed_checkpoint():
    """get_optimizer_state_dict (it raised KeyError: 'state'), dcp.save, dcp.load,
    set_optimizer_state_dict, in one process: the resumed run is the uninterrupted
    one."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    reference, reference_opt = lookahead_pair()
    train(reference, reference_opt, range(9))
    saved, saved_opt = lookahead_pair()
    train(saved, saved_opt, range(4))  # between two synchronisations (k = 3)
    resumed, resumed_opt = lookahead_pair(seed=1)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*single process", category=UserWarning
        )
        import tempfile

        with tempfile.TemporaryDirectory() as root:
            dcp.save(
                {
                    "model": saved.state_dict(),
                    "optim": get_optimizer_state_dict(saved, saved_opt),
                },
                checkpoint_id=root,
            )
            target = {
                "model": resumed.state_dict(),
                "optim": get_optimizer_state_dict(resumed, resumed_opt),
            }
            dcp.load(target, checkpoint_id=root)
    resumed.load_state_dict(target["model"])
    set_optimizer_state_dict(resumed, resumed_opt, target["optim"])
    assert resumed_opt.fast_steps == 4
    assert resumed_opt.param_groups is resumed_opt.base_optimizer.param_groups
    train(resumed, resumed_opt, range(4, 9))
    assert_models_equal(resumed, reference, "DCP-resumed Lookahead")


def test_lookahead_runs_its_state_dict_hooks():
    model, opt = lookahead_pair()
    train(model, opt, range(2))
    calls = []
    opt.register_state_dict_pre_hook(lambda o: calls.append(("pre", o)))

    def post(o, sd):
        calls.append(("post", o))
        return {**sd, "note": "from the post hook"}

    opt.register_state_dict_post_hook(post)
    saved = opt.state_dict()
    assert (
        calls == [("pre", opt), ("post", opt)] and saved["note"] == "from the post hook"
    )

    _, other = lookahead_pair(seed=1)
    loads = []

    def load_pre(o, sd):
        loads.append("pre")
        sd = copy.deepcopy(sd)
        sd.pop("note")
        for group in sd["param_groups"]:
            group["lr"] = 0.125  # a pre-hook may rewrite what is loaded
        return sd

    other.register_load_state_dict_pre_hook(load_pre)
    other.register_load_state_dict_post_hook(lambda o: loads.append("post"))
    other.load_state_dict(saved)
    assert loads == ["pre", "post"]
    assert other.base_optimizer.param_groups[0]["lr"] == 0.125


def test_lookahead_scheduler_still_drives_base_after_load():
    """load_state_dict gives the base optimizer new group dicts: the wrapper must
    share them again, or a scheduler on the wrapper stops reaching the base."""
    model, opt = lookahead_pair()
    train(model, opt, range(2))
    other_model, other = lookahead_pair(seed=1)
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    sched = torch.optim.lr_scheduler.StepLR(other, step_size=1, gamma=0.5)
    train(other_model, other, range(1))
    sched.step()
    assert other.base_optimizer.param_groups[0]["lr"] == 0.025


def test_lookahead_loads_its_first_layout():
    """optbook's first Lookahead state_dict ({"base", "slow_params", ...}) loads."""
    model, opt = lookahead_pair()
    train(model, opt, range(4))
    params = list(model.parameters())
    legacy = {
        "base": copy.deepcopy(opt.base_optimizer.state_dict()),
        "slow_params": {
            i: opt.state[p]["slow_param"].clone() for i, p in enumerate(params)
        },
        "fast_steps": 4,
        "k": 3,
        "alpha": 0.5,
    }
    other_model, other = lookahead_pair(seed=1)
    other_model.load_state_dict(model.state_dict())
    other.load_state_dict(legacy)
    train(model, opt, range(4, 8))
    train(other_model, other, range(4, 8))
    assert_models_equal(other_model, model, "legacy Lookahead layout")


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda sd: sd["param_groups"][0].pop("lookahead_k"), "lookahead_k"),
        (lambda sd: sd.pop("state"), "'state'"),
        (lambda sd: sd["param_groups"][0].update(lookahead_alpha=2.0), "Invalid alpha"),
        (lambda sd: sd["state"].update({99: {"slow_param": torch.zeros(1)}}), "99"),
    ],
)
def test_lookahead_refuses_bad_state_dict_at_load_and_keeps_its_state(change, match):
    model, opt = lookahead_pair()
    train(model, opt, range(4))
    before = copy.deepcopy(opt.state_dict())
    broken = copy.deepcopy(before)
    change(broken)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(broken)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for index, entry in before["state"].items():
        for key, value in entry.items():
            assert torch.equal(after["state"][index][key], value)


def test_lookahead_refuses_a_plain_optimizer_state_dict_with_the_way_to_load_it():
    model, opt = lookahead_pair()
    train(model, opt, range(2))
    with pytest.raises(ValueError, match="base_optimizer.load_state_dict"):
        opt.load_state_dict(copy.deepcopy(opt.base_optimizer.state_dict()))
