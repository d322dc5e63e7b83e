"""A small AlgoPerf: fixed workloads, declared search spaces, paired seeds, profiles.

The methodology (chapter "Bake-off"), as code:

* **Workloads** (:mod:`optbook.book.workloads`), each with a **target**: what NAdamW
  (AlgoPerf's baseline), tuned by the study's own rule, reaches in two thirds of the
  workload's step budget (:func:`set_targets`: three target studies on seeds 100-102,
  not the study's, the median of their best final metrics; those runs are two thirds
  as long as the budget, their schedule compressed to that length).  A full-length
  run is not yet annealed at two thirds of the budget, so matching the baseline means
  reaching the target somewhere in the last third.
* **Methods** (:data:`METHODS`): each declares one workload-agnostic search space
  (log-uniform ranges), its defaults, its schedule (linear warm-up over 5 % of the
  steps, then cosine decay to zero; Schedule-Free: the warm-up only, as it is built
  to need no decay) and its weight decay (L2 in the gradient for SGD, Adam, Adagrad
  and RMSprop, as torch.optim does; decoupled for the others).
* **Tuning** (AlgoPerf's external-tuning rule): ``studies`` independent studies per
  workload and method; study s draws ``trials`` points from the search space (the
  same points on every workload) and runs each with seed s.  The study's result is
  its best trial: the fastest to the target, or, when no trial reaches it, the one
  with the lowest final metric.  Studies of different methods share their seed
  (initial weights and batch order), so methods are compared paired by seed.
* **Self-tuning view**: each method's library defaults, once per seed.
* **Time** is steps x the method's wall-clock per step on this machine, timed apart
  (:func:`time_steps`: one thread, the median of repeated blocks, no evaluation).

``python -m optbook.book.bakeoff --out code/optbook/book/records`` runs the whole study
and writes ``bakeoff.csv`` (one row per workload x method x trial x seed),
``bakeoff_curves.csv`` (the validation metric at every evaluation of every run),
``bakeoff_timing.csv`` and ``bakeoff_meta.json`` (machine, date, commit, command,
targets, counts, seconds).  Runs are appended to ``bakeoff_runs.jsonl`` as they
finish, so an interrupted study resumes where it stopped.  ``--scale s`` trains
every workload s times longer (and sets its targets again at that budget).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import workloads as W

__all__ = [
    "METHODS",
    "Method",
    "best_per_study",
    "first_at_or_below",
    "hparams_of",
    "load",
    "lr_factor",
    "main",
    "paired",
    "performance_profile",
    "profile_score",
    "recorded_dir",
    "reproduce",
    "run",
    "run_study",
    "sample",
    "set_targets",
    "state_bytes_per_param",
    "study_jobs",
    "t_critical",
    "time_steps",
    "time_to_target",
]

WARMUP_FRACTION = 0.05
TARGET_SEEDS = (100, 101, 102)
TARGET_FRACTION = 2 / 3


# --------------------------------------------------------------------------------------
# Methods: a search space, defaults, a schedule and a builder each
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One training algorithm as the study sees it.

    ``space`` maps a hyperparameter to ``(kind, low, high)``: ``"log"`` draws
    ``exp(U(log low, log high))``; ``"1-log"`` draws ``1 - exp(U(log low, log
    high))`` (for a beta or momentum near one).  ``fixed`` are the values the method
    declares and does not tune; ``defaults`` the library's own (the self-tuning
    view).  ``build(model, workload, hp, steps)`` returns the optimizers."""

    name: str
    title: str
    family: str
    space: dict[str, tuple]
    defaults: dict[str, float]
    build: Callable
    fixed: dict[str, object] = field(default_factory=dict)
    schedule: str = "warmup-cosine"  # or "warmup-constant"
    decay: str = "decoupled"  # or "L2"

    def __post_init__(self):
        if self.schedule not in ("warmup-cosine", "warmup-constant"):
            raise ValueError(f"Invalid schedule: {self.schedule!r}")
        if self.decay not in ("decoupled", "L2"):
            raise ValueError(f"Invalid decay: {self.decay!r}")


def _params(model):
    return list(model.parameters())


def _sgd(momentum=False, nesterov=False):
    def build(model, workload, hp, steps):
        from optbook import SGD

        return [
            SGD(
                _params(model),
                lr=hp["lr"],
                momentum=hp.get("momentum", 0.0),
                nesterov=nesterov,
                weight_decay=hp["weight_decay"],
            )
        ]

    return build


def _adam(kind):
    def build(model, workload, hp, steps):
        import optbook

        betas = (hp["beta1"], hp["beta2"])
        ps, lr, wd = _params(model), hp["lr"], hp["weight_decay"]
        if kind == "adam":
            return [optbook.Adam(ps, lr=lr, betas=betas, weight_decay=wd)]
        if kind == "adamw":
            return [optbook.AdamW(ps, lr=lr, betas=betas, weight_decay=wd)]
        if kind == "amsgrad":
            return [
                optbook.AdamW(ps, lr=lr, betas=betas, weight_decay=wd, amsgrad=True)
            ]
        if kind == "nadamw":
            return [
                optbook.NAdam(
                    ps, lr=lr, betas=betas, weight_decay=wd, decoupled_weight_decay=True
                )
            ]
        if kind == "radam":
            return [
                optbook.RAdam(
                    ps, lr=lr, betas=betas, weight_decay=wd, decoupled_weight_decay=True
                )
            ]
        raise ValueError(kind)

    return build


def _adagrad(model, workload, hp, steps):
    from optbook import Adagrad

    return [Adagrad(_params(model), lr=hp["lr"], weight_decay=hp["weight_decay"])]


def _rmsprop(model, workload, hp, steps):
    from optbook import RMSprop

    return [
        RMSprop(
            _params(model),
            lr=hp["lr"],
            alpha=hp["alpha"],
            weight_decay=hp["weight_decay"],
        )
    ]


def _lion(model, workload, hp, steps):
    from optbook import Lion

    return [
        Lion(
            _params(model),
            lr=hp["lr"],
            betas=(hp["beta1"], hp["beta2"]),
            weight_decay=hp["weight_decay"],
            decoupled_weight_decay=False,
        )
    ]


def _schedulefree(model, workload, hp, steps):
    from optbook import ScheduleFreeAdamW

    return [
        ScheduleFreeAdamW(
            _params(model),
            lr=hp["lr"],
            betas=(hp["beta1"], hp["beta2"]),
            weight_decay=hp["weight_decay"],
            warmup_steps=max(1, round(WARMUP_FRACTION * steps)),
        )
    ]


def _muon(model, workload, hp, steps):
    """Muon on the hidden matrices, AdamW (same lr: Muon's update is rescaled to
    AdamW's RMS, ``adjust_lr_fn="match_rms_adamw"``) on everything else."""
    from optbook import AdamW, Muon

    hidden = workload.hidden_matrices(model)
    ids = {id(p) for p in hidden}
    rest = [p for p in model.parameters() if id(p) not in ids]
    adjust = hp.get("adjust_lr_fn", "match_rms_adamw")
    return [
        Muon(
            hidden,
            lr=hp["lr"],
            weight_decay=hp["weight_decay"],
            momentum=hp["momentum"],
            adjust_lr_fn=adjust,
        ),
        AdamW(
            rest,
            lr=hp.get("adam_lr", hp["lr"]),
            betas=(0.9, 0.95),
            weight_decay=hp["weight_decay"],
        ),
    ]


def _soap(model, workload, hp, steps):
    from optbook import SOAP

    return [
        SOAP(
            _params(model),
            lr=hp["lr"],
            betas=(hp["beta1"], hp["beta2"]),
            weight_decay=hp["weight_decay"],
            precondition_frequency=10,
        )
    ]


_ADAM_SPACE = {
    "lr": ("log", 3e-4, 3e-2),
    "beta1": ("1-log", 0.03, 0.3),
    "beta2": ("1-log", 1e-3, 1e-1),
}
_ADAM_DEFAULTS = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999}
_L2 = {"weight_decay": ("log", 1e-6, 1e-3)}
_DECOUPLED = {"weight_decay": ("log", 1e-3, 1e-1)}

METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "sgd",
            "SGD",
            "sgd",
            {"lr": ("log", 1e-2, 1.0), **_L2},
            {"lr": 1e-3, "weight_decay": 0.0},
            _sgd(),
            decay="L2",
        ),
        Method(
            "momentum",
            "SGD + momentum",
            "sgd",
            {"lr": ("log", 1e-3, 3e-1), "momentum": ("1-log", 0.02, 0.2), **_L2},
            {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0},
            _sgd(True),
            decay="L2",
        ),
        Method(
            "nesterov",
            "SGD + Nesterov",
            "sgd",
            {"lr": ("log", 1e-3, 3e-1), "momentum": ("1-log", 0.02, 0.2), **_L2},
            {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.0},
            _sgd(True, True),
            decay="L2",
        ),
        Method(
            "adagrad",
            "Adagrad",
            "adagrad",
            {"lr": ("log", 3e-3, 3e-1), **_L2},
            {"lr": 1e-2, "weight_decay": 0.0},
            _adagrad,
            decay="L2",
        ),
        Method(
            "rmsprop",
            "RMSprop",
            "rmsprop",
            {"lr": ("log", 1e-4, 1e-2), "alpha": ("1-log", 1e-3, 1e-1), **_L2},
            {"lr": 1e-2, "alpha": 0.99, "weight_decay": 0.0},
            _rmsprop,
            decay="L2",
        ),
        Method(
            "adam",
            "Adam (L2)",
            "adam",
            {**_ADAM_SPACE, **_L2},
            {**_ADAM_DEFAULTS, "weight_decay": 0.0},
            _adam("adam"),
            decay="L2",
        ),
        Method(
            "adamw",
            "AdamW",
            "adam",
            {**_ADAM_SPACE, **_DECOUPLED},
            {**_ADAM_DEFAULTS, "weight_decay": 1e-2},
            _adam("adamw"),
        ),
        Method(
            "nadamw",
            "NAdamW",
            "adam",
            {**_ADAM_SPACE, **_DECOUPLED},
            {"lr": 2e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 1e-2},
            _adam("nadamw"),
        ),
        Method(
            "radam",
            "RAdamW",
            "adam",
            {**_ADAM_SPACE, **_DECOUPLED},
            {**_ADAM_DEFAULTS, "weight_decay": 1e-2},
            _adam("radam"),
        ),
        Method(
            "amsgrad",
            "AMSGrad (AdamW)",
            "adam",
            {**_ADAM_SPACE, **_DECOUPLED},
            {**_ADAM_DEFAULTS, "weight_decay": 1e-2},
            _adam("amsgrad"),
        ),
        Method(
            "lion",
            "Lion",
            "sign",
            {
                "lr": ("log", 3e-5, 3e-3),
                "beta1": ("1-log", 0.03, 0.3),
                "beta2": ("1-log", 3e-3, 3e-2),
                "weight_decay": ("log", 1e-2, 1.0),
            },
            {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.0},
            _lion,
        ),
        Method(
            "schedulefree",
            "Schedule-Free AdamW",
            "schedule-free",
            {
                "lr": ("log", 1e-3, 1e-1),
                "beta1": ("1-log", 0.03, 0.3),
                "beta2": ("1-log", 1e-3, 1e-1),
                **_DECOUPLED,
            },
            {"lr": 2.5e-3, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0},
            _schedulefree,
            schedule="warmup-constant",
        ),
        Method(
            "muon",
            "Muon + AdamW",
            "orthogonal",
            {"lr": ("log", 3e-4, 3e-2), "momentum": ("1-log", 0.02, 0.2), **_DECOUPLED},
            {
                "lr": 1e-3,
                "adam_lr": 1e-3,
                "momentum": 0.95,
                "weight_decay": 0.1,
                "adjust_lr_fn": "original",
            },
            _muon,
        ),
        Method(
            "soap",
            "SOAP",
            "second-order",
            {
                "lr": ("log", 3e-4, 3e-2),
                "beta1": ("1-log", 0.03, 0.3),
                "beta2": ("1-log", 0.01, 0.1),
                **_DECOUPLED,
            },
            {"lr": 3e-3, "beta1": 0.95, "beta2": 0.95, "weight_decay": 1e-2},
            _soap,
        ),
    ]
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"Invalid method: {name!r} (one of {', '.join(METHODS)})"
        ) from None


def sample(method: str, study: int, trials: int) -> list[dict[str, float]]:
    """The ``trials`` search-space points of study ``study`` of ``method``: the same
    on every workload, different in every study (a generator keyed by both)."""
    m = get_method(method)
    rng = np.random.default_rng([zlib.crc32(m.name.encode()), study])
    points = []
    for _ in range(trials):
        hp: dict[str, float] = {}
        for key, (kind, lo, hi) in m.space.items():
            u = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            hp[key] = u if kind == "log" else 1.0 - u
        points.append(hp)
    return points


# --------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------


def lr_factor(schedule: str, k: int, steps: int) -> float:
    """The multiplier of the base learning rate at step k (0-based): linear warm-up
    over ``WARMUP_FRACTION * steps`` steps, then cosine to zero or constant."""
    if schedule not in ("warmup-cosine", "warmup-constant"):
        raise ValueError(f"Invalid schedule: {schedule!r}")
    warm = max(1, round(WARMUP_FRACTION * steps))
    if schedule == "warmup-constant":
        return 1.0  # Schedule-Free warms up inside the optimizer
    if k < warm:
        return (k + 1) / warm
    progress = (k - warm) / max(1, steps - warm)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def _setup(workload, method, hp, seed, steps, device, data=None, build=None):
    w, m = (
        W.get(workload) if isinstance(workload, str) else workload,
        get_method(method),
    )
    data = w.data(device) if data is None else data
    model = w.model(data, seed).to(device)
    optimizers = (m.build if build is None else build)(model, w, hp, steps)
    for opt in optimizers:
        for group in opt.param_groups:
            group["base_lr"] = group["lr"]
        if m.schedule == "warmup-constant":
            opt.train()  # Schedule-Free: steps are taken in train mode
    return w, m, data, model, optimizers


def _apply_lr(optimizers, factor):
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * factor


def _train_step(w, m, model, data, optimizers, batch, k, steps):
    """Step k of ``steps``: the scheduled learning rate, one batch, every optimizer."""
    _apply_lr(optimizers, lr_factor(m.schedule, k, steps))
    loss = w.loss(model, data, batch)
    for opt in optimizers:
        opt.zero_grad()
    loss.backward()
    for opt in optimizers:
        opt.step()
    return loss


def run(
    workload: str,
    method: str,
    hp: dict[str, float],
    seed: int,
    *,
    scale: int = 1,
    device="cpu",
    target: float | None = None,
    steps: int | None = None,
    build: Callable | None = None,
    keep_model: bool = False,
) -> dict[str, object]:
    """Train ``workload`` with ``method`` at hyperparameters ``hp`` and seed ``seed``.

    Returns ``curve`` (the validation metric after every ``eval_every`` steps and
    after the last), ``eval_steps``, ``final``, ``best``, ``steps_to_target`` (the
    first evaluation at or below ``target``; None if never), ``diverged`` (a
    non-finite training loss: the run stops there and its metric is inf) and
    ``seconds`` (training wall time, evaluations included).  ``build`` replaces the
    method's optimizer builder (same signature: to run a reference implementation
    under the method's schedule); ``keep_model`` adds the trained ``model``.
    """
    w = W.get(workload)
    budget, eval_every = w.budget(scale)
    steps = budget if steps is None else steps
    w, m, data, model, optimizers = _setup(
        w, method, hp, seed, steps, device, build=build
    )
    batches = w.batches(data, seed, steps).to(device)
    schedule_free = m.schedule == "warmup-constant"
    curve, eval_steps, diverged = [], [], False
    start = time.perf_counter()
    model.train()
    for k in range(steps):
        loss = _train_step(w, m, model, data, optimizers, batches[k], k, steps)
        if (k + 1) % eval_every == 0 or k + 1 == steps:
            if not math.isfinite(loss.item()):
                diverged = True
            else:
                if schedule_free:
                    for opt in optimizers:
                        opt.eval()
                value = float(w.evaluate(model, data))
                if schedule_free:
                    for opt in optimizers:
                        opt.train()
                diverged = not math.isfinite(value)
            eval_steps.append(k + 1)
            curve.append(math.inf if diverged else value)
            if diverged:
                break
    seconds = time.perf_counter() - start
    reached = first_at_or_below(eval_steps, curve, target)
    out = {
        "curve": curve,
        "eval_steps": eval_steps,
        "final": curve[-1],
        "best": min(curve),
        "steps_to_target": reached,
        "diverged": diverged,
        "seconds": seconds,
    }
    if keep_model:
        out["model"] = model
    return out


def time_steps(
    workload: str, method: str, *, repeats: int = 5, block: int = 10, device="cpu"
) -> float:
    """Seconds per training step (forward, backward, every optimizer's step, the lr
    update), the median of ``repeats`` blocks of ``block`` steps after a warm-up
    block, at the method's default hyperparameters and seed 0."""
    m = get_method(method)
    steps = (repeats + 1) * block
    w, m, data, model, optimizers = _setup(
        workload, method, dict(m.defaults), 0, steps, device
    )
    batches = w.batches(data, 0, steps).to(device)
    times = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        for k in range(r * block, (r + 1) * block):
            _train_step(w, m, model, data, optimizers, batches[k], k, steps)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) / block)
    return float(np.median(times[1:]))


# --------------------------------------------------------------------------------------
# Targets and the study
# --------------------------------------------------------------------------------------


def set_targets(
    workloads: Sequence[str], scale: int = 1, device="cpu", trials: int = 4, log=print
) -> dict[str, dict[str, float]]:
    """Each workload's target, from NAdamW tuned by the study's own rule: three
    target studies (seeds :data:`TARGET_SEEDS`, not the study's), each of ``trials``
    points drawn from NAdamW's search space and trained for ``TARGET_FRACTION`` of
    the budget; a target study's result is its lowest final metric, and the target
    is the median of the three.  (A full-length run passes two thirds of the budget
    with its learning rate still about a quarter of its peak, so a method as good as
    tuned NAdamW reaches the target in the last third of the budget, if at all.)
    Returns ``{workload: {"target": t, "steps": n, "trials": k}}``."""
    out = {}
    for name in workloads:
        budget, _ = W.get(name).budget(scale)
        steps = round(TARGET_FRACTION * budget)
        bests = []
        for seed in TARGET_SEEDS:
            finals = [
                run(name, "nadamw", hp, seed, scale=scale, device=device, steps=steps)[
                    "final"
                ]
                for hp in sample("nadamw", seed, trials)
            ]
            bests.append(min(finals))
        out[name] = {
            "target": float(np.median(bests)),
            "steps": steps,
            "trials": trials,
        }
        log(f"target {name}: {out[name]['target']:.4f} (tuned NAdamW, {steps} steps)")
    return out


def first_at_or_below(
    eval_steps: Sequence[int], curve: Sequence[float], target: Optional[float]
) -> Optional[int]:
    """The first evaluation step whose metric is at or below ``target`` (None if
    none, or if there is no target)."""
    if target is None:
        return None
    return next((s for s, v in zip(eval_steps, curve) if v <= target), None)


def study_jobs(
    workloads: Sequence[str], methods: Sequence[str], studies: int, trials: int
) -> list[dict]:
    """Every run of the study: tuned trials (study s = seed s) and defaults."""
    jobs = []
    for w in workloads:
        for name in methods:
            for s in range(studies):
                for j, hp in enumerate(sample(name, s, trials)):
                    jobs.append(
                        {
                            "workload": w,
                            "method": name,
                            "tuning": "tuned",
                            "trial": j,
                            "seed": s,
                            "hp": {**METHODS[name].fixed, **hp},
                        }
                    )
                jobs.append(
                    {
                        "workload": w,
                        "method": name,
                        "tuning": "default",
                        "trial": -1,
                        "seed": s,
                        "hp": dict(METHODS[name].defaults),
                    }
                )
    return jobs


def _key(job) -> tuple:
    return (job["workload"], job["method"], job["tuning"], job["trial"], job["seed"])


def _do_job(args):
    job, scale, targets, device = args
    torch.set_num_threads(1)
    target = None if targets is None else targets[job["workload"]]["target"]
    result = run(
        job["workload"],
        job["method"],
        job["hp"],
        job["seed"],
        scale=scale,
        target=target,
        device=device,
    )
    return {**job, **result, "scale": scale}


def run_study(
    workloads: Sequence[str],
    methods: Sequence[str],
    *,
    studies: int = 5,
    trials: int = 5,
    scale: int = 1,
    targets=None,
    processes: int = 1,
    journal: Path | None = None,
    device="cpu",
    log=print,
) -> list[dict]:
    """Run (or resume, from ``journal``) every job of :func:`study_jobs`; returns
    the finished runs (dicts: the job plus :func:`run`'s result)."""
    jobs = study_jobs(workloads, methods, studies, trials)
    done: dict[tuple, dict] = {}
    if journal is not None and journal.exists():
        for line in journal.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:  # a line cut off by a crash: run it again
                continue
            if r.get("scale", 1) != scale:  # another scale's run is another run
                continue
            r["trial"], r["seed"] = int(r["trial"]), int(r["seed"])
            done[_key(r)] = r
    todo = [j for j in jobs if _key(j) not in done]
    log(f"{len(jobs)} runs, {len(done)} already done, {len(todo)} to go")
    start = time.perf_counter()
    args = [(j, scale, targets, device) for j in todo]
    if processes > 1 and device == "cpu":  # (a CUDA context does not survive fork)
        import multiprocessing as mp

        pool = mp.get_context("fork").Pool(processes)
        results = pool.imap_unordered(_do_job, args)
    else:
        pool, results = None, map(_do_job, args)
    fh = journal.open("a") if journal is not None else None
    try:
        for i, r in enumerate(results, 1):
            done[_key(r)] = r
            if fh is not None:
                fh.write(json.dumps(r) + "\n")
                fh.flush()
            if i % 50 == 0 or i == len(todo):
                el = time.perf_counter() - start
                log(f"  {i}/{len(todo)} runs, {el:.0f} s")
    finally:
        if fh is not None:
            fh.close()
        if pool is not None:
            pool.close()
            pool.join()
    out = [done[_key(j)] for j in jobs]
    if targets is not None:  # a journal's runs are reused under the current targets
        for r in out:
            r["steps_to_target"] = first_at_or_below(
                r["eval_steps"], r["curve"], targets[r["workload"]]["target"]
            )
    return out


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------

HP_COLUMNS = ("lr", "weight_decay", "beta1", "beta2", "momentum", "alpha")


def runs_table(runs: list[dict]):
    """One row per workload x method x trial x seed (pandas)."""
    import pandas as pd

    rows = []
    for r in runs:
        row = {k: r[k] for k in ("workload", "method", "tuning", "trial", "seed")}
        for h in HP_COLUMNS:
            row[h] = r["hp"].get(h, float("nan"))
        row["hparams"] = json.dumps(r["hp"], sort_keys=True)
        row["final_metric"] = r["final"]
        row["best_metric"] = r["best"]
        row["steps_to_target"] = (
            float("nan") if r["steps_to_target"] is None else r["steps_to_target"]
        )
        row["reached"] = r["steps_to_target"] is not None
        row["diverged"] = r["diverged"]
        row["run_seconds"] = r["seconds"]
        rows.append(row)
    return pd.DataFrame(rows)


def curves_table(runs: list[dict]):
    import pandas as pd

    rows = []
    for r in runs:
        for s, v in zip(r["eval_steps"], r["curve"]):
            rows.append(
                (r["workload"], r["method"], r["tuning"], r["trial"], r["seed"], s, v)
            )
    return pd.DataFrame(
        rows,
        columns=["workload", "method", "tuning", "trial", "seed", "step", "metric"],
    )


# --------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------


def best_per_study(table, tuning: str = "tuned", by: str = "time"):
    """Each (workload, method, seed)'s best trial, one row each.  ``by="time"``
    (AlgoPerf's choice): fewest steps to the target, ties and misses broken by the
    lowest final metric.  ``by="final"``: the lowest final metric."""
    if by not in ("time", "final"):
        raise ValueError(f"Invalid by: {by!r} (time or final)")
    t = table[table["tuning"] == tuning].copy()
    t["_steps"] = t["steps_to_target"].fillna(np.inf)
    t["_final"] = t["final_metric"].fillna(np.inf)
    keys = ["_steps", "_final"] if by == "time" else ["_final", "_steps"]
    t = t.sort_values(["workload", "method", "seed", *keys], kind="stable")
    # the whole row of the chosen trial (groupby().first() would mix columns of
    # different trials where a value is missing)
    t = t.drop_duplicates(["workload", "method", "seed"], keep="first")
    return t.drop(columns=["_steps", "_final"]).reset_index(drop=True)


def time_to_target(table, timing, tuning: str = "tuned"):
    """Per workload and method: the median over studies of steps and seconds to the
    target (inf when the median study misses: AlgoPerf's rule that a method must
    reach the target in most studies), with the per-step time used."""
    import pandas as pd

    best = best_per_study(table, tuning)
    per_step = timing.set_index(["workload", "method"])["step_seconds"]
    rows = []
    for (w, m), g in best.groupby(["workload", "method"]):
        steps = float(np.median(g["steps_to_target"].fillna(np.inf)))
        sec = per_step[(w, m)]
        rows.append(
            {
                "workload": w,
                "method": m,
                "steps": steps,
                "seconds": steps * sec,
                "step_seconds": sec,
                "reached": int(g["reached"].sum()),
                "studies": len(g),
                "final_median": float(np.median(g["final_metric"])),
            }
        )
    return pd.DataFrame(rows)


# [bakeoff-profile-start]
def performance_profile(ttt, taus: Sequence[float], column: str = "seconds"):
    """rho_m(tau): the fraction of workloads on which method m's time is within a
    factor tau of the fastest method's (a method that misses never counts).
    Returns a DataFrame indexed by tau, one column per method."""
    import pandas as pd

    wide = ttt.pivot(index="workload", columns="method", values=column)
    ratio = wide.div(wide.min(axis=1), axis=0).to_numpy()  # workloads x methods
    taus = np.asarray(taus, dtype=float)
    # within[w, m, k]: workload w counts for method m at tau_k (inf, NaN: never)
    within = ratio[:, :, None] <= taus[None, None, :]
    return pd.DataFrame(within.mean(axis=0).T, index=list(taus), columns=wide.columns)


def profile_score(
    ttt, tau_max: float = 4.0, column: str = "seconds", points: int = 2001
):
    """The area under each method's profile on [1, tau_max], divided by
    tau_max - 1: 1 for the fastest everywhere, 0 for a method that never reaches."""
    taus = np.linspace(1.0, tau_max, points)
    prof = performance_profile(ttt, taus, column)
    return prof.apply(lambda c: np.trapezoid(c.values, taus) / (tau_max - 1.0))


# [bakeoff-profile-end]


def t_critical(n: int, level: float = 0.95) -> float:
    """The two-sided Student-t critical value for n paired differences (n - 1
    degrees of freedom): 2.776 at n = 5."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, n - 1))


def paired(
    table,
    workload: str,
    a: str,
    b: str,
    column: str = "final_metric",
    tuning: str = "tuned",
    level: float = 0.95,
) -> dict[str, float]:
    """``a - b`` on ``column`` of the studies' best trials (best by final metric
    when ``column`` is ``final_metric``, by time otherwise), paired by seed: mean,
    the t interval and n.  Negative means ``a`` is lower (better)."""
    best = best_per_study(
        table, tuning, by="final" if column == "final_metric" else "time"
    )
    sel = best[best["workload"] == workload].set_index(["method", "seed"])[column]
    da, db = sel.loc[a], sel.loc[b]
    common = da.index.intersection(db.index)
    d = (da.loc[common] - db.loc[common]).to_numpy(dtype=float)
    n = len(d)
    mean = float(d.mean())
    half = (
        t_critical(n, level) * float(d.std(ddof=1)) / math.sqrt(n)
        if n > 1
        else math.inf
    )
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def recorded_dir() -> Path:
    """Where the chapter finds the recorded study: ``$OPTBOOK_BAKEOFF`` if set, else
    the package's records (:data:`optbook.book.data.RECORDS`)."""
    if os.environ.get("OPTBOOK_BAKEOFF"):
        return Path(os.environ["OPTBOOK_BAKEOFF"])
    from .data import RECORDS

    return RECORDS


def load(directory) -> dict[str, object]:
    """A recorded study: ``table``, ``curves``, ``timing`` (pandas) and ``meta``."""
    import pandas as pd

    d = Path(directory)
    return {
        "table": pd.read_csv(d / "bakeoff.csv"),
        "curves": pd.read_csv(d / "bakeoff_curves.csv"),
        "timing": pd.read_csv(d / "bakeoff_timing.csv"),
        "meta": json.loads((d / "bakeoff_meta.json").read_text()),
    }


def hparams_of(row) -> dict[str, float]:
    """The hyperparameters a row of ``bakeoff.csv`` ran with."""
    return json.loads(row["hparams"])


def reproduce(study: dict[str, object], rows, device="cpu") -> list[float]:
    """Re-run each row (of the recorded ``table``) and return, per row, the largest
    relative difference between the new validation curve and the recorded one."""
    curves, meta = study["curves"], study["meta"]
    out = []
    for _, row in rows.iterrows():
        new = run(
            row["workload"],
            row["method"],
            hparams_of(row),
            int(row["seed"]),
            scale=int(meta["scale"]),
            device=device,
        )
        sel = curves[
            (curves["workload"] == row["workload"])
            & (curves["method"] == row["method"])
            & (curves["tuning"] == row["tuning"])
            & (curves["trial"] == row["trial"])
            & (curves["seed"] == row["seed"])
        ]
        old = sel["metric"].to_numpy(dtype=float)
        got = np.asarray(new["curve"], dtype=float)
        if len(old) != len(got):
            out.append(math.inf)
            continue
        both_inf = np.isinf(old) & np.isinf(got)
        rel = np.abs(got - old) / np.maximum(np.abs(old), 1e-12)
        out.append(float(np.where(both_inf, 0.0, rel).max()))
    return out


def seed_spread(study: dict[str, object], rows) -> list[float]:
    """Per row, how far apart two recorded runs that differ only in their seed are:
    the smallest, over the other seeds, of the largest relative difference between
    the row's workload and method at the default hyperparameters with the row's seed
    and with that other seed.  A yardstick for :func:`reproduce` on a CPU that does
    not round exactly as the recording machine did."""
    curves = study["curves"]
    out = []
    for _, row in rows.iterrows():
        runs = curves[
            (curves["workload"] == row["workload"])
            & (curves["method"] == row["method"])
            & (curves["tuning"] == "default")
        ]
        by_seed = {
            s: g.sort_values("step")["metric"].to_numpy(dtype=float)
            for s, g in runs.groupby("seed")
        }
        mine = by_seed[row["seed"]]
        gaps = [
            float(np.max(np.abs(other - mine) / np.maximum(np.abs(mine), 1e-12)))
            for s, other in by_seed.items()
            if s != row["seed"] and len(other) == len(mine)
        ]
        out.append(min(gaps) if gaps else math.nan)
    return out


def state_bytes_per_param(workload: str, method: str) -> float:
    """Bytes of optimizer state per model parameter after one step (every tensor
    in every optimizer's ``state``, the step counters included), at the defaults."""
    m = get_method(method)
    w, m, data, model, optimizers = _setup(
        workload, method, dict(m.defaults), 0, 10, "cpu"
    )
    batch = w.batches(data, 0, 1)[0]
    w.loss(model, data, batch).backward()
    for opt in optimizers:
        opt.step()
    n = sum(p.numel() for p in model.parameters())
    total = 0
    for opt in optimizers:
        for state in opt.state.values():
            for v in state.values():
                if torch.is_tensor(v):
                    total += v.numel() * v.element_size()
    return total / n


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def _commit() -> str:
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or "unknown"
    except Exception:  # noqa: BLE001 - no git: say so
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m optbook.book.bakeoff", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, default=Path("code/optbook/book/records"))
    p.add_argument("--scale", type=int, default=1)
    p.add_argument("--studies", type=int, default=5)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--workloads", nargs="*", default=list(W.WORKLOADS))
    p.add_argument("--methods", nargs="*", default=list(METHODS))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    a.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tfile = a.out / "bakeoff_targets.json"
    targets = {}
    if tfile.exists() and json.loads(tfile.read_text()).get("scale") == a.scale:
        targets = json.loads(tfile.read_text())["targets"]
    missing = [w for w in a.workloads if w not in targets]
    if missing:
        targets.update(set_targets(missing, a.scale, device=a.device, trials=a.trials))
        tfile.write_text(json.dumps({"scale": a.scale, "targets": targets}, indent=1))
    targets = {w: targets[w] for w in a.workloads}
    target_seconds = time.perf_counter() - started
    runs = run_study(
        a.workloads,
        a.methods,
        studies=a.studies,
        trials=a.trials,
        scale=a.scale,
        targets=targets,
        processes=a.processes,
        journal=a.out / "bakeoff_runs.jsonl",
        device=a.device,
    )
    study_seconds = time.perf_counter() - started - target_seconds
    import pandas as pd

    timing = pd.DataFrame(
        [
            {
                "workload": w,
                "method": m,
                "step_seconds": time_steps(w, m, device=a.device),
            }
            for w in a.workloads
            for m in a.methods
        ]
    )
    runs_table(runs).to_csv(a.out / "bakeoff.csv", index=False, float_format="%.9g")
    curves_table(runs).to_csv(
        a.out / "bakeoff_curves.csv", index=False, float_format="%.9g"
    )
    timing.to_csv(a.out / "bakeoff_timing.csv", index=False, float_format="%.6g")
    meta = {
        "command": "python -m optbook.book.bakeoff "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "commit": _commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.platform()}",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": a.device,
        "threads_per_run": 1,
        # rounding, hence bitwise reproduction, depends on the vector instructions used
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "processes": a.processes,
        "scale": a.scale,
        "studies": a.studies,
        "trials": a.trials,
        "workloads": a.workloads,
        "methods": a.methods,
        "targets": targets,
        "runs": len(runs),
        "target_seconds": round(target_seconds, 1),
        "study_seconds": round(study_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    (a.out / "bakeoff_meta.json").write_text(json.dumps(meta, indent=1))
    print(f"{len(runs)} runs in {meta['total_seconds']:.0f} s; wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
