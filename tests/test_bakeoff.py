"""The bake-off (optbook.book.bakeoff): declared search spaces sampled per study,
the learning-rate schedule, a run that is a hand-written training loop bit for bit,
a study that resumes from its journal, the analysis (best trial per study, time to
target, performance profiles, paired intervals) and the command that writes it all.

Every run here is short (tens of steps of the digits or Zipf MLP), most of them on a
copy of a workload with a smaller budget registered in ``W.WORKLOADS``."""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import optbook
from optbook.book import bakeoff as B
from optbook.book import workloads as W

ADAMW = {"lr": 3e-3, "beta1": 0.9, "beta2": 0.99, "weight_decay": 1e-2}
SGD = {"lr": 0.1, "weight_decay": 1e-4}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread (see tests/test_lm.py); ``_do_job`` and ``main`` set it
    to one as well, and this puts back what was there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def shrink(monkeypatch, name="digits_mlp", steps=20, eval_every=10) -> W.Workload:
    """Register a copy of workload ``name`` with a small budget under its name."""
    w = dataclasses.replace(W.WORKLOADS[name], steps=steps, eval_every=eval_every)
    monkeypatch.setitem(W.WORKLOADS, name, w)
    return w


@pytest.fixture
def tiny(monkeypatch):
    return shrink(monkeypatch)


def recording(starts: list):
    """A ``build`` for run() that notes the model's parameters before the first step
    and then builds the method's own optimizers."""
    def build(model, workload, hp, steps, method):
        starts.append([p.detach().clone() for p in model.parameters()])
        return B.METHODS[method].build(model, workload, hp, steps)
    return build


def metric(w: W.Workload, logits, y) -> float:
    """The classify metrics, written out apart from Workload.evaluate."""
    if w.metric == "error":
        return (logits.argmax(1) != y).float().mean().item()
    return torch.nn.functional.cross_entropy(logits, y).item()


@pytest.fixture
def run_calls(monkeypatch):
    """The arguments of every call of bakeoff.run (the study's jobs call it)."""
    calls = []
    original = B.run

    def counting(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)
    monkeypatch.setattr(B, "run", counting)
    return calls


def cosine_factor(k: int, steps: int) -> float:
    """The schedule as the chapter states it, written out apart from lr_factor."""
    warm = max(1, round(0.05 * steps))
    if k < warm:
        return (k + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * (k - warm) / (steps - warm)))


# -- search spaces ---------------------------------------------------------------------

@pytest.mark.parametrize("name", list(B.METHODS))
def test_sample_is_keyed_by_method_and_study_and_stays_in_its_space(name):
    m = B.METHODS[name]
    points = B.sample(name, 0, 200)
    assert len(points) == 200
    assert points == B.sample(name, 0, 200)
    assert B.sample(name, 1, 3) != points[:3]
    assert B.sample(name, 0, 3) == points[:3]      # more trials extend a study
    for key, (kind, lo, hi) in m.space.items():
        values = np.array([p[key] for p in points])
        assert kind in ("log", "1-log")
        low, high = (lo, hi) if kind == "log" else (1 - hi, 1 - lo)
        assert np.all((low <= values) & (values <= high)), key
        u = values if kind == "log" else 1 - values
        # log-uniform: about half below the geometric midpoint, and spread out
        below = np.mean(np.log(u) < 0.5 * (math.log(lo) + math.log(hi)))
        assert 0.35 < below < 0.65, (key, below)
        assert np.ptp(np.log(u)) > 0.8 * (math.log(hi) - math.log(lo))
    for p in points[:5]:
        assert set(p) == set(m.space)


def test_sample_differs_between_methods_and_rejects_unknown_ones():
    a, b = B.sample("adam", 0, 1)[0], B.sample("adamw", 0, 1)[0]
    assert a["lr"] != b["lr"]
    with pytest.raises(ValueError, match="Invalid method: 'nope'") as info:
        B.sample("nope", 0, 1)
    assert all(name in str(info.value) for name in B.METHODS)


def test_every_method_has_a_space_defaults_and_a_known_schedule():
    for name, m in B.METHODS.items():
        assert m.name == name
        assert m.schedule in ("warmup-cosine", "warmup-constant")
        assert m.decay in ("L2", "decoupled")
        assert "lr" in m.space and "weight_decay" in m.space
        # the defaults set everything the search space tunes
        assert set(m.space) <= set(m.defaults), name


# -- the schedule ----------------------------------------------------------------------

def test_warmup_is_linear_and_cosine_decays_to_zero():
    steps = 200
    warm = round(B.WARMUP_FRACTION * steps)
    f = [B.lr_factor("warmup-cosine", k, steps) for k in range(steps)]
    assert f[:warm] == pytest.approx([(k + 1) / warm for k in range(warm)])
    assert f[warm - 1] == 1.0 and f[warm] == 1.0
    assert all(a >= b for a, b in zip(f[warm:], f[warm + 1:]))       # decreasing
    mid = warm + (steps - warm) // 2
    assert f[mid] == pytest.approx(0.5, abs=0.01)
    assert 0 < f[-1] < 1e-3
    assert f == pytest.approx([cosine_factor(k, steps) for k in range(steps)],
                              abs=1e-15)
    constant = [B.lr_factor("warmup-constant", k, steps) for k in range(steps)]
    assert constant == [1.0] * steps
    # a short run still warms up over one step at least
    assert B.lr_factor("warmup-cosine", 0, 10) == 1.0


# -- one run ---------------------------------------------------------------------------

def test_run_is_deterministic_and_reports_its_curve(tiny):
    a = B.run("digits_mlp", "adamw", ADAMW, 0, steps=60)
    b = B.run("digits_mlp", "adamw", ADAMW, 0, steps=60)
    c = B.run("digits_mlp", "adamw", ADAMW, 1, steps=60)
    assert a["curve"] == b["curve"]
    assert a["curve"] != c["curve"]
    assert a["eval_steps"] == [10, 20, 30, 40, 50, 60]
    assert a["final"] == a["curve"][-1] and a["best"] == min(a["curve"])
    assert a["steps_to_target"] is None and a["diverged"] is False
    assert a["curve"][-1] < 0.8 * a["curve"][0]           # it learns
    assert a["seconds"] > 0
    # the last step is always evaluated, on or off the grid
    short = B.run("digits_mlp", "adamw", ADAMW, 0, steps=25)
    assert short["eval_steps"] == [10, 20, 25]


def test_steps_to_target_is_the_first_evaluation_at_or_below_it(tiny):
    curve = B.run("digits_mlp", "sgd", SGD, 0, steps=60)["curve"]
    steps = [10, 20, 30, 40, 50, 60]
    for target in sorted(set(curve)) + [min(curve) - 1e-3, max(curve) + 1e-3]:
        r = B.run("digits_mlp", "sgd", SGD, 0, steps=60, target=target)
        assert r["curve"] == curve
        expected = next((s for s, v in zip(steps, curve) if v <= target), None)
        assert r["steps_to_target"] == expected
    top = B.run("digits_mlp", "sgd", SGD, 0, steps=60, target=max(curve) + 1e-3)
    assert top["steps_to_target"] == 10
    low = B.run("digits_mlp", "sgd", SGD, 0, steps=60, target=min(curve) - 1e-3)
    assert low["steps_to_target"] is None


def test_a_huge_sgd_learning_rate_diverges_and_stops_at_the_first_evaluation():
    w = W.WORKLOADS["digits_mlp"]
    r = B.run("digits_mlp", "sgd", {"lr": 1e6, "weight_decay": 0.0}, 0, target=0.5,
              keep_model=True)
    assert r["diverged"] is True
    assert r["final"] == math.inf and r["best"] == math.inf
    assert r["eval_steps"] == [w.eval_every] and r["curve"] == [math.inf]
    assert r["steps_to_target"] is None
    assert not all(torch.isfinite(p).all() for p in r["model"].parameters())
    sane = B.run("digits_mlp", "sgd", SGD, 0, steps=60)
    assert not sane["diverged"] and all(math.isfinite(v) for v in sane["curve"])


@pytest.mark.parametrize("method", ["adamw", "momentum"])
def test_run_equals_a_hand_written_loop_bit_for_bit(method):
    """The twin property: run() is torch.optim's optimizer (single-tensor path) in a
    plain loop with the stated schedule, model, batches and metric; nothing else."""
    seed, steps = 3, 60
    if method == "adamw":
        hp = ADAMW

        def make(ps):
            return torch.optim.AdamW(ps, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]),
                                     weight_decay=hp["weight_decay"], foreach=False)
    else:
        hp = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}

        def make(ps):
            return torch.optim.SGD(ps, lr=hp["lr"], momentum=hp["momentum"],
                                   weight_decay=hp["weight_decay"], foreach=False)
    r = B.run("digits_mlp", method, hp, seed, steps=steps, keep_model=True)
    w = W.WORKLOADS["digits_mlp"]
    data = w.data()
    torch.manual_seed(seed)
    model = W.mlp2(64, 128, 10)
    opt = make(model.parameters())
    order = w.batches(data, seed, steps)
    curve = []
    for k in range(steps):
        for group in opt.param_groups:
            group["lr"] = hp["lr"] * cosine_factor(k, steps)
        loss = torch.nn.functional.cross_entropy(model(data.X_train[order[k]]),
                                                 data.y_train[order[k]])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (k + 1) % w.eval_every == 0:
            with torch.no_grad():
                curve.append(metric(w, model(data.X_test), data.y_test))
    assert r["curve"] == curve
    ours = list(r["model"].parameters())
    assert all(torch.equal(a, b) for a, b in zip(ours, model.parameters()))
    assert not torch.equal(ours[0], w.model(data, seed)[0].weight)   # it trained
    # build= runs the reference under the method's schedule: the same run again
    ref = B.run("digits_mlp", method, hp, seed, steps=steps,
                build=lambda model, w, hp, steps: [make(model.parameters())])
    assert ref["curve"] == r["curve"]


def test_schedulefree_evaluates_at_the_average_and_keeps_training_at_y(monkeypatch):
    shrink(monkeypatch, "zipf_mlp", steps=30, eval_every=10)
    w = W.WORKLOADS["zipf_mlp"]
    hp = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-3}
    seed, steps = 0, 30
    r = B.run("zipf_mlp", "schedulefree", hp, seed, steps=steps, keep_model=True)
    data = w.data()
    model = w.model(data, seed)
    opt = optbook.ScheduleFreeAdamW(model.parameters(), lr=hp["lr"],
                                    betas=(hp["beta1"], hp["beta2"]),
                                    weight_decay=hp["weight_decay"],
                                    warmup_steps=max(1, round(0.05 * steps)))
    opt.train()
    order = w.batches(data, seed, steps)
    at_x, at_y = [], []
    for k in range(steps):
        loss = w.loss(model, data, order[k])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (k + 1) % 10 == 0:
            at_y.append(w.evaluate(model, data).item())
            opt.eval()
            at_x.append(w.evaluate(model, data).item())
            opt.train()
    assert r["curve"] == at_x
    assert all(a != b for a, b in zip(at_x, at_y))
    # the run ends in train mode, at y, where it stepped
    assert all(torch.equal(a, b) for a, b in zip(r["model"].parameters(),
                                                 model.parameters()))
    assert r["curve"][-1] < r["curve"][0]


def test_every_method_builds_and_trains_on_its_defaults_from_one_start(tiny):
    starts = []
    for name, m in B.METHODS.items():
        r = B.run("digits_mlp", name, dict(m.defaults), 0, keep_model=True,
                  build=functools.partial(recording(starts), method=name))
        assert not r["diverged"] and len(r["curve"]) == 2, name
        assert all(math.isfinite(v) for v in r["curve"]), name
        assert not torch.equal(next(r["model"].parameters()), starts[-1][0]), name
    # paired by seed: every method started from the same weights
    assert len(starts) == len(B.METHODS)
    assert all(all(torch.equal(a, b) for a, b in zip(s, starts[0])) for s in starts)
    other = []
    B.run("digits_mlp", "sgd", SGD, 1, steps=1,
          build=functools.partial(recording(other), method="sgd"))
    assert not torch.equal(other[0][0], starts[0][0])


def test_state_bytes_per_param_counts_every_state_tensor():
    w = W.WORKLOADS["digits_mlp"]
    model = w.model(w.data(), 0)
    n = sum(p.numel() for p in model.parameters())
    tensors = len(list(model.parameters()))          # one float32 step each
    hidden = sum(p.numel() for p in w.hidden_matrices(model))
    expected = {"sgd": 0.0, "momentum": 4.0, "lion": 4.0,
                "adamw": (8 * n + 4 * tensors) / n,
                "amsgrad": (12 * n + 4 * tensors) / n,
                # Muon: a momentum on the hidden matrix, AdamW's two moments elsewhere
                "muon": (4 * hidden + 8 * (n - hidden) + 4 * (tensors - 1)) / n}
    for method, value in expected.items():
        assert B.state_bytes_per_param("digits_mlp", method) == pytest.approx(
            value, rel=1e-12), method
    assert B.state_bytes_per_param("digits_mlp", "soap") > 12


@pytest.mark.parametrize("name", list(B.METHODS))
def test_each_builder_passes_its_hyperparameters_on(name):
    """What the study samples is what the optimizer runs with (before the schedule
    touches lr), and the declared weight decay is the one built."""
    m = B.METHODS[name]
    w = W.WORKLOADS["digits_mlp"]
    model = w.model(w.data(), 0)
    hp = {**m.fixed, **B.sample(name, 7, 1)[0]}
    optimizers = m.build(model, w, hp, 100)
    groups = [g for opt in optimizers for g in opt.param_groups]
    seen = set()
    for g in groups:
        assert g["lr"] == hp["lr"] and g["weight_decay"] == hp["weight_decay"]
        if "beta1" in hp and "betas" in g:
            assert tuple(g["betas"]) == (hp["beta1"], hp["beta2"])
            seen.add("beta1")
        for key in ("momentum", "alpha"):
            if key in hp and key in g:
                assert g[key] == hp[key]
                seen.add(key)
        # L2 methods add the decay to the gradient, the others shrink the weights
        if "decoupled_weight_decay" in g and not isinstance(
                optimizers[0], optbook.Lion):
            assert g["decoupled_weight_decay"] == (m.decay == "decoupled"), name
    assert seen == {k for k in ("beta1", "momentum", "alpha") if k in hp}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    flags = {"amsgrad": name == "amsgrad", "nesterov": name == "nesterov"}
    for opt in optimizers:
        if isinstance(opt, optbook.Muon):     # Muon's own Nesterov momentum
            continue
        for key, on in flags.items():
            for g in opt.param_groups:
                if key in g:
                    assert g[key] is on, (name, key)
    if name == "schedulefree":
        assert groups[0]["warmup_steps"] == round(B.WARMUP_FRACTION * 100)


def test_muon_gets_the_hidden_matrices_and_adamw_the_rest():
    for name in ("digits_mlp", "char_lm"):
        w = W.WORKLOADS[name]
        model = w.model(w.data(), 0)
        hp = {"lr": 1e-3, "momentum": 0.95, "weight_decay": 0.1}
        muon, adamw = B.METHODS["muon"].build(model, w, hp, 100)
        assert isinstance(muon, optbook.Muon) and isinstance(adamw, optbook.AdamW)
        hidden = [p for g in muon.param_groups for p in g["params"]]
        rest = [p for g in adamw.param_groups for p in g["params"]]
        assert [id(p) for p in hidden] == [id(p) for p in w.hidden_matrices(model)]
        everything = {id(p) for p in model.parameters()}
        assert {id(p) for p in hidden} | {id(p) for p in rest} == everything
        assert len(hidden) + len(rest) == len(everything)
        assert muon.param_groups[0]["adjust_lr_fn"] == "match_rms_adamw"
        assert adamw.param_groups[0]["lr"] == hp["lr"]


def test_time_steps_times_blocks_of_training_steps(monkeypatch, tiny):
    losses = []
    loss = W.Workload.loss

    def counting(self, *args):
        losses.append(1)
        return loss(self, *args)
    monkeypatch.setattr(W.Workload, "loss", counting)
    t = B.time_steps("digits_mlp", "adamw", repeats=3, block=4)
    assert len(losses) == (3 + 1) * 4                 # a warm-up block, then three
    assert 0 < t < 1.0 and math.isfinite(t)


# -- targets and the study -------------------------------------------------------------

def test_set_targets_is_tuned_nadamw_median_at_two_thirds_of_the_budget(monkeypatch,
                                                                        tiny, run_calls):
    """Three target studies (seeds 100-102), each ``trials`` points of NAdamW's own
    space for 2/3 of the budget; a study's best final metric, the median of three."""
    monkeypatch.setattr(B, "TARGET_SEEDS", (100, 101, 102))
    logged = []
    out = B.set_targets(["digits_mlp"], trials=2, log=logged.append)
    steps = round(2 / 3 * tiny.steps)
    assert len(run_calls) == 2 * 3
    for args, kwargs in run_calls:
        assert args[:2] == ("digits_mlp", "nadamw") and kwargs["steps"] == steps
        assert args[3] in (100, 101, 102)
        assert args[2] in B.sample("nadamw", args[3], 2)    # drawn from its space
    bests = [min(B.run("digits_mlp", "nadamw", hp, seed, steps=steps)["final"]
                 for hp in B.sample("nadamw", seed, 2)) for seed in (100, 101, 102)]
    assert out == {"digits_mlp": {"target": float(np.median(bests)), "steps": steps,
                                  "trials": 2}}
    assert len(set(bests)) > 1                          # the studies differ
    assert len(logged) == 1 and "digits_mlp" in logged[0]
    assert B.set_targets(["digits_mlp"], scale=2, trials=1, log=logged.append)[
        "digits_mlp"]["steps"] == round(2 / 3 * 2 * tiny.steps)


def test_a_journal_is_reused_under_new_targets(tmp_path, monkeypatch, tiny):
    """Steps to the target are recomputed from the curves when the targets change,
    so runs need not be redone."""
    journal = tmp_path / "j.jsonl"
    loose = {"digits_mlp": {"target": 10.0}}
    strict = {"digits_mlp": {"target": -1.0}}
    first = B.run_study(["digits_mlp"], ["sgd"], studies=1, trials=1, targets=loose,
                        journal=journal, log=lambda *a: None)
    again = B.run_study(["digits_mlp"], ["sgd"], studies=1, trials=1, targets=strict,
                        journal=journal, log=lambda *a: None)
    assert all(r["steps_to_target"] == r["eval_steps"][0] for r in first)
    assert all(r["steps_to_target"] is None for r in again)
    assert [r["curve"] for r in first] == [r["curve"] for r in again]


def test_study_jobs_are_every_trial_and_the_defaults_paired_by_seed():
    workloads, methods = ["digits_mlp", "zipf_mlp"], ["sgd", "adamw", "muon"]
    jobs = B.study_jobs(workloads, methods, 3, 4)
    assert len(jobs) == len(workloads) * len(methods) * 3 * (4 + 1)
    keys = [(j["workload"], j["method"], j["tuning"], j["trial"], j["seed"])
            for j in jobs]
    assert len(set(keys)) == len(keys)
    for j in jobs:
        m = B.METHODS[j["method"]]
        assert j["seed"] in range(3)
        if j["tuning"] == "default":
            assert j["trial"] == -1 and j["hp"] == m.defaults
            assert j["hp"] is not m.defaults
        else:
            assert j["tuning"] == "tuned" and j["trial"] in range(4)
            point = B.sample(j["method"], j["seed"], 4)[j["trial"]]
            assert j["hp"] == {**m.fixed, **point}
    # the same points on every workload
    by_workload = {w: [j["hp"] for j in jobs if j["workload"] == w] for w in workloads}
    assert by_workload["digits_mlp"] == by_workload["zipf_mlp"]


def test_run_study_resumes_from_its_journal(tmp_path, tiny, run_calls):
    journal = tmp_path / "runs.jsonl"
    targets = {"digits_mlp": {"target": 0.5}}
    kw = {"studies": 1, "trials": 1, "targets": targets, "journal": journal,
          "log": lambda s: None}
    first = B.run_study(["digits_mlp"], ["sgd", "adamw"], **kw)
    assert len(run_calls) == 2 * 1 * (1 + 1)
    assert len(journal.read_text().splitlines()) == 4
    jobs = B.study_jobs(["digits_mlp"], ["sgd", "adamw"], 1, 1)
    for job, r in zip(jobs, first):
        assert {k: r[k] for k in job} == job
        assert r["steps_to_target"] == next(
            (s for s, v in zip(r["eval_steps"], r["curve"]) if v <= 0.5), None)
    logged = []
    second = B.run_study(["digits_mlp"], ["sgd", "adamw"],
                         **{**kw, "log": logged.append})
    assert len(run_calls) == 4                        # nothing ran again
    assert second == first
    assert logged[0] == "4 runs, 4 already done, 0 to go"
    # an interrupted study: the last run is lost and is the only one run again
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:-1]) + "\n")
    third = B.run_study(["digits_mlp"], ["sgd", "adamw"], **kw)
    assert len(run_calls) == 5
    assert [r["curve"] for r in third] == [r["curve"] for r in first]


def test_run_study_without_targets(tiny):
    runs = B.run_study(["digits_mlp"], ["sgd"], studies=1, trials=1, log=lambda s: None)
    assert [r["steps_to_target"] for r in runs] == [None, None]


def test_a_journal_is_not_reused_at_another_scale(tmp_path, tiny):
    kw = {"studies": 1, "trials": 1, "targets": {"digits_mlp": {"target": 0.5}},
          "journal": tmp_path / "runs.jsonl", "log": lambda s: None}
    B.run_study(["digits_mlp"], ["sgd"], scale=1, **kw)
    twice = B.run_study(["digits_mlp"], ["sgd"], scale=2, **kw)
    assert [r["eval_steps"][-1] for r in twice] == [2 * tiny.steps] * 2


# -- tables and analysis on a hand-made study ------------------------------------------

def fake(workload, method, seed, trial, final, steps=None, tuning="tuned", lr=1e-2):
    return {"workload": workload, "method": method, "tuning": tuning, "trial": trial,
            "seed": seed, "hp": {"lr": lr, "weight_decay": 0.0}, "final": final,
            "best": final, "steps_to_target": steps, "diverged": final == math.inf,
            "seconds": 1.0, "curve": [1.0, final], "eval_steps": [50, 100]}


def test_runs_and_curves_tables_have_one_row_per_run_and_evaluation():
    runs = [fake("w", "a", 0, 0, 0.2, 100, lr=0.5), fake("w", "a", 0, -1, math.inf,
                                                         tuning="default")]
    t = B.runs_table(runs)
    assert list(t.columns) == ["workload", "method", "tuning", "trial", "seed",
                               *B.HP_COLUMNS, "hparams", "final_metric",
                               "best_metric", "steps_to_target", "reached",
                               "diverged", "run_seconds"]
    assert len(t) == 2
    assert t["lr"].tolist() == [0.5, 1e-2] and t["beta1"].isna().all()
    assert json.loads(t["hparams"][0]) == runs[0]["hp"]
    assert t["reached"].tolist() == [True, False]
    assert t["steps_to_target"][0] == 100 and math.isnan(t["steps_to_target"][1])
    assert t["diverged"].tolist() == [False, True]
    c = B.curves_table(runs)
    assert len(c) == 4 and c["step"].tolist() == [50, 100, 50, 100]
    assert c["metric"].tolist() == [1.0, 0.2, 1.0, math.inf]


def test_best_per_study_is_fewest_steps_then_lowest_final():
    runs = [
        # seed 0: trial 1 reaches first, though trial 2 ends lower without reaching
        fake("w", "a", 0, 0, 0.10, 300), fake("w", "a", 0, 1, 0.12, 200),
        fake("w", "a", 0, 2, 0.05, None),
        # seed 1: a tie in steps is broken by the final metric
        fake("w", "a", 1, 0, 0.11, 200), fake("w", "a", 1, 1, 0.09, 200),
        fake("w", "a", 1, 2, 0.30, None),
        # seed 2: no trial reaches; the lowest final wins, a diverged one never
        fake("w", "a", 2, 0, math.inf, None), fake("w", "a", 2, 1, 0.40, None),
        fake("w", "a", 2, 2, 0.35, None),
        # the defaults are a separate view
        fake("w", "a", 0, -1, 0.01, 100, tuning="default"),
    ]
    table = B.runs_table(runs)
    best = B.best_per_study(table)
    assert len(best) == 3
    assert best.set_index("seed")["trial"].to_dict() == {0: 1, 1: 1, 2: 2}
    assert best.set_index("seed")["final_metric"].to_dict() == {0: 0.12, 1: 0.09,
                                                                  2: 0.35}
    # each chosen row is a row of the table, not a mixture of rows
    cols = ["workload", "method", "seed", "trial", "final_metric", "hparams"]
    assert len(best[cols].merge(table[cols])) == 3
    assert "_steps" not in best.columns
    d = B.best_per_study(table, tuning="default")
    assert len(d) == 1 and d["trial"].item() == -1 and d["final_metric"].item() == 0.01
    # by="final": the lowest final metric, reached or not
    final = B.best_per_study(table, by="final").set_index("seed")
    assert final["trial"].to_dict() == {0: 2, 1: 1, 2: 2}
    with pytest.raises(ValueError, match="Invalid by: 'fastest'"):
        B.best_per_study(table, by="fastest")


def test_best_per_study_never_picks_a_missing_final_metric():
    """A final metric read back as NaN (an empty cell) ranks last, as inf does."""
    table = B.runs_table([fake("w", "a", 0, 0, 0.5, None),
                          fake("w", "a", 0, 1, 0.7, None)])
    table.loc[0, "final_metric"] = float("nan")
    for by in ("time", "final"):
        best = B.best_per_study(table, by=by)
        assert best["trial"].tolist() == [1] and best["final_metric"].tolist() == [0.7]


def test_best_per_study_by_final_keeps_the_chosen_trials_own_row():
    table = B.runs_table([fake("w", "a", 0, 0, 0.12, 200),
                          fake("w", "a", 0, 1, 0.05, None)])
    best = B.best_per_study(table, by="final")
    assert best["trial"].tolist() == [1]
    assert best["reached"].tolist() == [False]
    assert best["steps_to_target"].isna().all()       # trial 1 never reached


def study(reach: dict, finals=None) -> pd.DataFrame:
    """One tuned trial per (workload, method, seed): ``reach[(w, m)]`` lists the
    steps to the target by seed (None: a miss)."""
    runs = []
    for (w, m), steps in reach.items():
        for seed, s in enumerate(steps):
            final = 0.1 if s is not None else 0.5 + seed
            runs.append(fake(w, m, seed, 0, final, s))
    return B.runs_table(runs)


def timing(pairs, seconds) -> pd.DataFrame:
    return pd.DataFrame([{"workload": w, "method": m, "step_seconds": seconds[m]}
                         for w, m in pairs])


def test_time_to_target_is_the_median_study_and_inf_when_most_miss():
    reach = {("w", "a"): [200, 400, 300], ("w", "b"): [100, 500, None],
             ("w", "c"): [100, None, None], ("w", "d"): [None, None, None]}
    ttt = B.time_to_target(study(reach), timing(reach, {"a": 0.5, "b": 2.0,
                                                        "c": 1.0, "d": 1.0}))
    ttt = ttt.set_index("method")
    assert ttt["steps"].to_dict() == {"a": 300.0, "b": 500.0, "c": math.inf,
                                      "d": math.inf}
    assert ttt.loc["a", "seconds"] == 300 * 0.5 and ttt.loc["b", "seconds"] == 1000.0
    assert ttt["seconds"]["c"] == math.inf
    assert ttt["reached"].to_dict() == {"a": 3, "b": 2, "c": 1, "d": 0}
    assert (ttt["studies"] == 3).all()
    assert ttt.loc["a", "final_median"] == 0.1
    assert ttt.loc["d", "final_median"] == 1.5        # finals 0.5, 1.5, 2.5


def hand_ttt(seconds: dict) -> pd.DataFrame:
    return pd.DataFrame([{"workload": w, "method": m, "seconds": s}
                         for (w, m), s in seconds.items()])


def test_performance_profile_counts_workloads_within_tau_of_the_fastest():
    inf = math.inf
    ttt = hand_ttt({("w1", "fast"): 10.0, ("w1", "half"): 20.0, ("w1", "never"): inf,
                    ("w2", "fast"): 5.0, ("w2", "half"): 5.0, ("w2", "never"): inf,
                    ("w3", "fast"): 1.0, ("w3", "half"): 3.0, ("w3", "never"): inf})
    prof = B.performance_profile(ttt, [1.0, 1.99, 2.0, 3.0, 100.0])
    assert prof.index.tolist() == [1.0, 1.99, 2.0, 3.0, 100.0]
    assert prof["fast"].tolist() == [1.0] * 5
    assert prof["never"].tolist() == [0.0] * 5
    assert prof["half"].tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3, 1, 1])
    # a workload on which every method misses counts for no one
    ttt2 = pd.concat([ttt, hand_ttt({("w4", "fast"): math.inf, ("w4", "half"): math.inf,
                                     ("w4", "never"): math.inf})])
    assert B.performance_profile(ttt2, [100.0])["fast"].item() == 0.75


def test_profile_score_is_the_normalised_area_under_the_profile():
    inf = math.inf
    ttt = hand_ttt({("w1", "fast"): 1.0, ("w1", "twice"): 2.0, ("w1", "never"): inf,
                    ("w2", "fast"): 3.0, ("w2", "twice"): 6.0, ("w2", "never"): inf})
    score = B.profile_score(ttt, tau_max=4.0)
    assert score["fast"] == pytest.approx(1.0, abs=1e-12)
    assert score["never"] == 0.0
    # a step from 0 to 1 at tau = 2: area (4 - 2) / (4 - 1)
    assert score["twice"] == pytest.approx(2 / 3, abs=2e-3)
    assert ((0 <= score) & (score <= 1)).all()
    steps = hand_ttt({("w1", "fast"): 1.0, ("w1", "twice"): 2.0})
    steps = steps.rename(columns={"seconds": "steps"})
    assert B.profile_score(steps, column="steps")["twice"] == pytest.approx(2 / 3,
                                                                            abs=2e-3)


def test_t_critical():
    assert B.t_critical(5) == pytest.approx(2.7764, abs=1e-4)
    assert B.t_critical(2) == pytest.approx(12.706, abs=1e-3)
    assert B.t_critical(5, level=0.99) == pytest.approx(4.6041, abs=1e-4)
    assert B.t_critical(10_000) == pytest.approx(1.9602, abs=1e-3)


def test_paired_difference_by_seed_with_a_t_interval():
    a = [0.30, 0.28, 0.35, 0.31, 0.33]
    diffs = [0.01, -0.02, 0.03, 0.00, 0.02]
    runs = []
    for seed in (4, 2, 0, 3, 1):                   # shuffled: paired by seed, not row
        runs.append(fake("w", "a", seed, 0, a[seed], 100))
        runs.append(fake("w", "b", seed, 0, a[seed] - diffs[seed], 100))
        runs.append(fake("w", "a", seed, 1, 0.9, None))      # worse trials: ignored
        # faster to the target but worse at the end: the best by time, not by final
        runs.append(fake("w", "a", seed, 2, 0.5, 50))
    runs.append(fake("w", "b", 5, 0, 0.0, 100))            # b's seed 5: no partner
    runs.append(fake("v", "a", 0, 0, 9.0, 100))            # another workload
    table = B.runs_table(runs)
    out = B.paired(table, "w", "a", "b")
    # by hand: mean 0.008; deviations .002 -.028 .022 -.008 .012, squares sum
    # 1.48e-3, s = sqrt(1.48e-3 / 4) = 0.019235, half = 2.7764 * s / sqrt(5)
    half = 2.776445 * math.sqrt(1.48e-3 / 4) / math.sqrt(5)
    assert out["n"] == 5
    assert out["mean"] == pytest.approx(0.008, abs=1e-12)
    assert out["low"] == pytest.approx(0.008 - half, abs=1e-6)
    assert out["high"] == pytest.approx(0.008 + half, abs=1e-6)
    assert half == pytest.approx(0.023884, abs=1e-6)
    flipped = B.paired(table, "w", "b", "a")
    assert flipped["mean"] == pytest.approx(-0.008, abs=1e-12)
    assert flipped["high"] == pytest.approx(-out["low"], abs=1e-12)
    # on steps to the target the studies' best trials are the fastest: a's trial 2
    steps = B.paired(table, "w", "a", "b", column="steps_to_target")
    assert steps["n"] == 5 and steps["mean"] == -50.0
    assert steps["low"] == steps["high"] == -50.0           # no spread, no width


# -- the command -----------------------------------------------------------------------

def test_main_writes_the_study_and_resumes_it(tmp_path, monkeypatch, run_calls, capsys):
    w = dataclasses.replace(W.WORKLOADS["digits_mlp"], steps=20, eval_every=10)
    monkeypatch.setattr(W, "WORKLOADS", {"digits_mlp": w})
    monkeypatch.setattr(B, "TARGET_SEEDS", (100,))
    argv = ["--out", str(tmp_path), "--methods", "sgd", "adamw", "--studies", "2",
            "--trials", "1", "--processes", "1"]
    assert B.main(argv) == 0
    names = ["bakeoff.csv", "bakeoff_curves.csv", "bakeoff_timing.csv",
             "bakeoff_meta.json", "bakeoff_runs.jsonl", "bakeoff_targets.json"]
    assert all((tmp_path / n).is_file() for n in names)
    assert len(run_calls) == 1 + 1 * 2 * 2 * (1 + 1)     # the target, then the study
    table = pd.read_csv(tmp_path / "bakeoff.csv")
    assert len(table) == 1 * 2 * 2 * (1 + 1)
    key = ["workload", "method", "tuning", "trial", "seed"]
    assert not table.duplicated(key).any()
    assert list(table.columns) == key + list(B.HP_COLUMNS) + [
        "hparams", "final_metric", "best_metric", "steps_to_target", "reached",
        "diverged", "run_seconds"]
    assert set(table["method"]) == {"sgd", "adamw"} and set(table["seed"]) == {0, 1}
    assert sorted(table["trial"].unique()) == [-1, 0]
    meta = json.loads((tmp_path / "bakeoff_meta.json").read_text())
    for k in ("command", "date", "commit", "machine", "targets"):
        assert meta[k], k
    assert meta["command"] == "python -m optbook.book.bakeoff " + " ".join(argv)
    assert meta["runs"] == 8 and meta["workloads"] == ["digits_mlp"]
    target = meta["targets"]["digits_mlp"]
    (nadamw,) = B.sample("nadamw", 100, 1)       # --trials 1: one target trial
    assert target == {"target": B.run("digits_mlp", "nadamw", nadamw, 100,
                                      steps=13)["final"], "trials": 1, "steps": 13}
    # the journal holds the exact runs; the table's steps to target agree with them
    runs = [json.loads(line) for line in
            (tmp_path / "bakeoff_runs.jsonl").read_text().splitlines()]
    assert len(runs) == 8
    for r in runs:
        reach = next((s for s, v in zip(r["eval_steps"], r["curve"])
                      if v <= target["target"]), None)
        assert r["steps_to_target"] == reach
    curves = pd.read_csv(tmp_path / "bakeoff_curves.csv")
    assert len(curves) == sum(len(r["curve"]) for r in runs) == 8 * 2
    timing = pd.read_csv(tmp_path / "bakeoff_timing.csv")
    assert len(timing) == 2 and (timing["step_seconds"] > 0).all()
    assert meta["device"] == "cpu" and meta["scale"] == 1 and meta["studies"] == 2
    # load() reads it back; every row reproduces its recorded curve
    study = B.load(tmp_path)
    assert set(study) == {"table", "curves", "timing", "meta"}
    assert study["meta"] == meta and len(study["table"]) == 8
    by_key = {tuple(r[k] for k in key): r for r in runs}
    for _, row in study["table"].iterrows():
        r = by_key[tuple(row[k] for k in key)]
        assert B.hparams_of(row) == r["hp"]
        assert row["final_metric"] == pytest.approx(r["final"], rel=1e-8)
    diffs = B.reproduce(study, study["table"])
    assert len(diffs) == 8 and max(diffs) < 1e-7       # 9 digits in the CSV
    study["curves"].loc[0, "metric"] *= 1.1             # a recorded value changed
    first = B.reproduce(study, study["table"].head(1))
    assert first[0] == pytest.approx(1 - 1 / 1.1, rel=1e-6)
    # a rerun resumes: no training, the same table
    csv = (tmp_path / "bakeoff.csv").read_text()
    calls = len(run_calls)
    assert B.main(argv) == 0
    assert len(run_calls) == calls                    # nothing trained
    assert (tmp_path / "bakeoff.csv").read_text() == csv
    assert "8 runs, 8 already done, 0 to go" in capsys.readouterr().out


def test_main_sets_targets_for_a_workload_added_later(tmp_path, monkeypatch):
    small = {n: dataclasses.replace(W.WORKLOADS[n], steps=10, eval_every=10)
             for n in ("digits_mlp", "zipf_mlp")}
    monkeypatch.setattr(W, "WORKLOADS", small)
    monkeypatch.setattr(B, "TARGET_SEEDS", (100,))
    argv = ["--out", str(tmp_path), "--methods", "sgd", "--studies", "1",
            "--trials", "1", "--processes", "1", "--workloads"]
    assert B.main(argv + ["digits_mlp"]) == 0
    assert B.main(argv + ["digits_mlp", "zipf_mlp"]) == 0
    meta = json.loads((tmp_path / "bakeoff_meta.json").read_text())
    assert set(meta["targets"]) == {"digits_mlp", "zipf_mlp"}


def test_an_unknown_schedule_or_decay_is_refused():
    sgd = B.METHODS["sgd"]
    with pytest.raises(ValueError, match="Invalid schedule: 'warmup-cosin'"):
        B.Method("x", "x", "x", sgd.space, sgd.defaults, sgd.build,
                 schedule="warmup-cosin")
    with pytest.raises(ValueError, match="Invalid decay: 'l2'"):
        B.Method("x", "x", "x", sgd.space, sgd.defaults, sgd.build, decay="l2")
    with pytest.raises(ValueError, match="Invalid schedule: 'cosine'"):
        B.lr_factor("cosine", 0, 10)


def test_seed_spread_is_the_closest_other_seed_at_the_defaults():
    rows = []
    for seed, scale in [(0, 1.0), (1, 1.5), (2, 1.1)]:
        for step, value in [(10, 2.0), (20, 1.0)]:
            rows.append(dict(workload="w", method="m", tuning="default", trial=0,
                             seed=seed, step=step, metric=value * scale))
    # a tuned run of the same method does not count as another seed
    rows += [dict(workload="w", method="m", tuning="tuned", trial=0, seed=3, step=s,
                  metric=1.0) for s in (10, 20)]
    study = {"curves": pd.DataFrame(rows)}
    table = pd.DataFrame([dict(workload="w", method="m", seed=0),
                          dict(workload="w", method="m", seed=1)])
    got = B.seed_spread(study, table)
    assert got[0] == pytest.approx(0.1)            # seed 2 is 10% away from seed 0
    assert got[1] == pytest.approx(0.4 / 1.5)      # seed 2 is closest to seed 1
