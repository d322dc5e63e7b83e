"""One command that measures the book and optbook on CUDA: ``make gpu-report``.

In one run, inside a time budget (``--budget-s``), most valuable part first:

1. ``tests``: the CUDA-only tests (those that skip with "needs CUDA"), pass/fail counts;
2. ``bench``: ``optbook.bench`` on CUDA for Adam, AdamW, SGD (momentum), RMSprop and
   Adagrad at 10M, 50M and 200M parameters, the eager and fused paths, with kernel
   launches, peak memory and the fraction of the measured bandwidth each path reaches;
3. ``chapters``: every chapter executed as a notebook (jupytext + nbclient, kernel in
   chapters/) at the GPU scale, with its wall time and every ``claim:`` record it glued;
4. ``bench-compiled``: the ``torch.compile`` paths, last because each one compiles
   for tens of seconds.

It writes ``gpu_report.json`` (machine, versions, commit, tests, benchmark, chapters,
claims, and what was skipped and why) and ``gpu_report.csv`` (the benchmark rows) into
``--out`` (default code/optbook/book/records/).  Without CUDA the CUDA parts are recorded as
"skipped: no CUDA device" and the chapters still run (``--chapters a,b`` limits them).

On a lent device with no package index, ``--stage-wheels DIR`` (run here) downloads the
notebook-execution packages its image lacks, and ``--wheelhouse DIR`` (run there)
installs them into a temporary folder first.  Also a pytest plugin (``-p gpu_report``)
that marks the tests skipping with "needs CUDA" as ``cuda``: ``-m cuda`` selects them.
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

STARTED = time.monotonic()  # the budget counts from here, imports included
ROOT = Path(__file__).resolve().parents[2]
CODE = ROOT / "code"
SCRIPTS = CODE / "scripts"
NO_CUDA = "skipped: no CUDA device"
NO_TIME = "skipped: time budget spent"
CUDA_REASON = "needs CUDA"  # the skip reason that marks a CUDA-only test
CLAIM_PREFIX = "claim:"  # optbook.book.claims.RECORD_PREFIX

SIZES = ["10M", "50M", "200M"]
ALGORITHMS = ["adam", "adamw", "sgd", "rmsprop", "adagrad"]
EAGER_IMPLS = [
    "optbook-single",
    "optbook-foreach",
    "torch-single",
    "torch-foreach",
    "torch-fused",
]
COMPILED_IMPLS = ["optbook-compiled", "torch-compiled"]
#: timed beside the compiled paths so that their ratios and bitwise check have a base
COMPILED_REFERENCES = ["torch-single", "torch-foreach", "torch-fused"]

PARTS = ["tests", "bench", "chapters", "bench-compiled"]
#: each part's share of the budget; a part may also use what earlier parts left
SHARES = {"tests": 0.2, "bench": 0.2, "chapters": 0.4, "bench-compiled": 0.2}
#: do not start a unit of work with less than this many seconds left
MIN_START_S = {"tests": 20.0, "bench": 15.0, "chapters": 10.0, "bench-compiled": 40.0}

#: packages the chapters' kernel needs that the lent device's image lacks
#: (KINDS.md's list): the Jupyter kernel, nbclient, jupytext, and myst_nb for ``glue``
#: (which imports only IPython, nbformat and docutils, not Sphinx).  Staged at the
#: versions installed here, which are known to work together; ipykernel's debugpy is
#: left out (an optional import there, and 4 MB).
WHEELS = [
    "asttokens",
    "comm",
    "docutils",
    "executing",
    "fastjsonschema",
    "ipykernel",
    "ipython",
    "ipython-pygments-lexers",
    "jedi",
    "jsonschema",
    "jsonschema-specifications",
    "jupyter-client",
    "jupyter-core",
    "jupytext",
    "matplotlib-inline",
    "mdit-py-plugins",
    "myst-nb",
    "nbclient",
    "nbformat",
    "nest-asyncio2",
    "parso",
    "pexpect",
    "platformdirs",
    "prompt-toolkit",
    "ptyprocess",
    "pure-eval",
    "pyzmq",
    "referencing",
    "rpds-py",
    "stack-data",
    "tornado",
    "traitlets",
    "wcwidth",
]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_26_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
]
#: modules the chapter part imports in this process or in the kernel
NOTEBOOK_MODULES = [
    "nbclient",
    "nbformat",
    "jupytext",
    "ipykernel",
    "IPython",
    "myst_nb",
    "docutils",
]


def log(message: str) -> None:
    print(
        f"[gpu-report {time.strftime('%H:%M:%S')}] {message}",
        file=sys.stderr,
        flush=True,
    )


# ----------------------------------------------------------------------------------
# The pytest plugin: ``python -m pytest -p gpu_report -m cuda tests/...``
# ----------------------------------------------------------------------------------


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device")


def _needs_cuda(item) -> bool:
    return any(
        CUDA_REASON in str(mark.kwargs.get("reason", ""))
        for mark in item.iter_markers("skipif")
    )


def _tryfirst(hook: Callable) -> Callable:
    try:
        import pytest
    except ImportError:  # the report itself runs without pytest
        return hook
    return pytest.hookimpl(tryfirst=True)(hook)


@_tryfirst
def pytest_collection_modifyitems(session, config, items) -> None:
    """Mark the tests that skip with "needs CUDA" as ``cuda`` (before ``-m`` runs)."""
    for item in items:
        if _needs_cuda(item):
            item.add_marker("cuda")


def pytest_runtest_logreport(report) -> None:
    """Append each test phase's outcome to $GPU_REPORT_TEST_LOG as it happens, so a
    run stopped at the budget still leaves its counts."""
    path = os.environ.get("GPU_REPORT_TEST_LOG")
    if not path or (report.when != "call" and report.outcome == "passed"):
        return
    message = None
    if report.failed:
        message = str(getattr(report.longrepr, "reprcrash", None) or report.longrepr)
        message = message.strip().splitlines()[-1][:300] if message.strip() else ""
    with open(path, "a") as f:
        f.write(
            json.dumps(
                {
                    "nodeid": report.nodeid,
                    "when": report.when,
                    "outcome": report.outcome,
                    "message": message,
                }
            )
            + "\n"
        )


def summarize_test_log(path: Path) -> dict:
    """Per-test outcome (failed > error > skipped > passed) and the counts."""
    outcome: dict[str, str] = {}
    messages: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            rec = json.loads(line)
            node = rec["nodeid"]
            if rec["outcome"] == "failed":
                kind = "failed" if rec["when"] == "call" else "error"
                outcome[node] = kind if outcome.get(node) != "failed" else "failed"
                messages[node] = rec["message"]
            elif rec["outcome"] == "skipped":
                outcome.setdefault(node, "skipped")
            else:
                outcome.setdefault(node, "passed")
    counts = {
        k: sum(v == k for v in outcome.values())
        for k in ("passed", "failed", "error", "skipped")
    }
    failures = [
        {"test": n, "outcome": o, "message": messages.get(n, "")}
        for n, o in outcome.items()
        if o in ("failed", "error")
    ]
    return {"counts": counts, "ran": len(outcome), "failures": failures}


# ----------------------------------------------------------------------------------
# Budget
# ----------------------------------------------------------------------------------


class Budget:
    """A deadline for the run, and one per part that keeps the later parts' shares.

    Part i may run until ``end - budget x (shares of the parts after i)``: time an
    earlier part did not use flows to the later ones, and no part eats a later
    part's reserve.
    """

    def __init__(self, seconds: float, parts: list[str]) -> None:
        if not seconds > 0:
            raise ValueError(f"budget_s must be positive, got {seconds!r}")
        self.seconds, self.parts = seconds, parts
        self.start = STARTED
        self.end = self.start + seconds
        total = sum(SHARES[p] for p in parts)
        self.share = {p: SHARES[p] / total for p in parts}

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def deadline(self, part: str) -> float:
        later = self.parts[self.parts.index(part) + 1 :]
        return self.end - self.seconds * sum(self.share[p] for p in later)


# ----------------------------------------------------------------------------------
# The machine
# ----------------------------------------------------------------------------------


def _command(args: list[str], cwd: Path = ROOT) -> str | None:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def environment(commit: str | None) -> dict:
    """Device, driver, versions, date and the commit measured."""
    import torch

    import optbook
    from optbook.book import device as book_device

    cuda = torch.cuda.is_available()
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "optbook": optbook.__version__,
        "cuda_available": cuda,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": book_device.describe(book_device.get_device()),
        "scale": book_device.scale(book_device.get_device()),
        "gpu": None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "driver": None,
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
        }
        smi = _command(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        )
        env["driver"] = smi.splitlines()[0].strip() if smi else None
    git = _command(["git", "rev-parse", "HEAD"])
    env["commit"] = commit or git
    env["commit_source"] = "--commit" if commit else ("git" if git else None)
    status = (
        _command(["git", "status", "--porcelain", "--untracked-files=no"])
        if git
        else None
    )
    env["dirty"] = None if status is None else bool(status)
    return env


# ----------------------------------------------------------------------------------
# Part 1: the CUDA-only tests
# ----------------------------------------------------------------------------------


def cuda_test_files() -> list[Path]:
    """The test files that hold a skip with reason "needs CUDA" (where pytest looks)."""
    pattern = re.compile(r"""reason\s*=\s*["']""" + re.escape(CUDA_REASON))
    return [
        p
        for p in sorted((ROOT / "tests").glob("test_*.py"))
        if pattern.search(p.read_text())
    ]


def run_tests(deadline: float, cuda: bool, workdir: Path) -> dict:
    files = cuda_test_files()
    out: dict = {
        "files": [str(p.relative_to(ROOT)) for p in files],
        "selection": f"tests that skip with {CUDA_REASON!r} (pytest -m cuda)",
    }
    if not cuda:
        return dict(out, status="skipped", reason=NO_CUDA)
    logfile = workdir / "tests.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "gpu_report",
        "-m",
        "cuda",
        "-q",
        "-p",
        "no:cacheprovider",
        *out["files"],
    ]
    env = dict(os.environ, GPU_REPORT_TEST_LOG=str(logfile))
    start = time.monotonic()
    try:
        done = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
        )
        out["returncode"], status = done.returncode, "done"
        out["tail"] = (done.stdout + done.stderr)[-2000:]
    except subprocess.TimeoutExpired as exc:
        out["returncode"], status = None, "partial"
        out["reason"] = "stopped at its share of the time budget"
        partial = exc.stdout or b""  # bytes, whatever text= said
        if isinstance(partial, bytes):
            partial = partial.decode(errors="replace")
        out["tail"] = partial[-2000:]
    out["seconds"] = round(time.monotonic() - start, 2)
    out.update(summarize_test_log(logfile))
    out["command"] = " ".join(cmd)
    return dict(out, status=status)


# ----------------------------------------------------------------------------------
# Parts 2 and 4: the benchmark, in units run by a worker process
# ----------------------------------------------------------------------------------


def bench_units(phase: str, sizes: list[str], algorithms: list[str]) -> list[dict]:
    """Units of benchmark work, most valuable first.

    Eager and fused paths: one unit per size (all algorithms; seconds each).  Compiled
    paths: one per (algorithm, size), since each compiles for tens of seconds: Adam at
    every size first (how the paths scale), then the others at the middle size, then
    the rest.
    """
    if phase == "bench":
        return [
            {
                "id": f"eager-{s}",
                "phase": phase,
                "size": s,
                "algorithms": algorithms,
                "impls": EAGER_IMPLS,
                "keep": EAGER_IMPLS,
            }
            for s in sizes
        ]
    first = algorithms[0]
    middle = sizes[len(sizes) // 2]
    order = [(first, s) for s in sizes]
    order += [(a, middle) for a in algorithms[1:]]
    order += [(a, s) for a in algorithms[1:] for s in sizes if s != middle]
    return [
        {
            "id": f"compiled-{a}-{s}",
            "phase": phase,
            "size": s,
            "algorithms": [a],
            "impls": COMPILED_REFERENCES + COMPILED_IMPLS,
            "keep": COMPILED_IMPLS,
        }
        for a, s in order
    ]


def bench_worker(spec_path: str, results_path: str) -> int:
    """Run the units of a spec file in order; one JSON line per unit as it finishes."""
    import torch

    from optbook import bench

    spec = json.loads(Path(spec_path).read_text())
    seconds_of: dict[str, float] = {}
    for unit in spec["units"]:
        remaining = spec["deadline_epoch"] - time.time()
        estimate = seconds_of.get(unit["size"], MIN_START_S[unit["phase"]])
        if remaining < estimate:
            record = {
                "unit": unit,
                "status": "skipped",
                "reason": NO_TIME,
                "estimate_s": round(estimate, 1),
                "remaining_s": round(remaining, 1),
            }
        else:
            start = time.monotonic()
            try:
                data = bench.benchmark(
                    [bench.parse_size(unit["size"])],
                    unit["algorithms"],
                    unit["impls"],
                    [spec["device"]],
                    reps=spec["reps"],
                    inner=spec["inner"],
                    warmup=spec["warmup"],
                    bandwidth_numel=spec["bandwidth_numel"],
                    matmul_n=spec["matmul_n"],
                    account=False,
                    launches=True,
                    log=lambda s: print(s, file=sys.stderr, flush=True),
                )
                record = {"unit": unit, "status": "done", "data": data}
            except Exception as exc:  # one unit failing must not lose the others
                record = {
                    "unit": unit,
                    "status": "error",
                    "reason": f"{type(exc).__name__}: {exc}"[:500],
                }
            seconds = time.monotonic() - start
            record["seconds"] = round(seconds, 2)
            seconds_of[unit["size"]] = max(seconds_of.get(unit["size"], 0.0), seconds)
            if spec["device"] == "cuda":
                torch.cuda.empty_cache()
        with open(results_path, "a") as f:
            f.write(json.dumps(record) + "\n")
    return 0


def run_bench(
    phase: str,
    units: list[dict],
    deadline: float,
    device: str,
    cuda: bool,
    settings: dict,
    workdir: Path,
) -> dict:
    out: dict = {"device": device, "units": [], "rows": [], "bandwidth": {}}
    if device == "cuda" and not cuda:
        return dict(
            out,
            status="skipped",
            reason=NO_CUDA,
            units=[
                {"id": u["id"], "status": "skipped", "reason": NO_CUDA} for u in units
            ],
        )
    spec_path, results_path = workdir / f"{phase}.spec.json", workdir / f"{phase}.jsonl"
    results_path.unlink(missing_ok=True)
    spec = dict(
        settings,
        units=units,
        device=device,
        deadline_epoch=time.time() + (deadline - time.monotonic()),
    )
    spec_path.write_text(json.dumps(spec))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--bench-worker",
        str(spec_path),
        str(results_path),
    ]
    start = time.monotonic()
    status = "done"
    try:  # the worker skips units itself; the timeout only stops one that overruns
        subprocess.run(
            cmd, cwd=ROOT, timeout=max(1.0, deadline - time.monotonic() + 10)
        )
    except subprocess.TimeoutExpired:
        status = "partial"
    out["seconds"] = round(time.monotonic() - start, 2)
    records = (
        [json.loads(line) for line in results_path.read_text().splitlines()]
        if results_path.exists()
        else []
    )
    finished = {r["unit"]["id"] for r in records}
    for r in records:
        unit = r["unit"]
        entry = {"id": unit["id"], "status": r["status"], "seconds": r.get("seconds")}
        if "reason" in r:
            entry["reason"] = r["reason"]
        if r["status"] == "done":
            data = r["data"]
            entry["bandwidth"] = data["bandwidth"].get(device)
            entry["unavailable"] = data.get("unavailable", [])
            out["machine"] = data["machine"]
            for row in data["results"]:
                if row["impl"] in unit["keep"]:
                    row = {k: v for k, v in row.items() if k != "ms_all"}
                    out["rows"].append(dict(row, unit=unit["id"], phase=phase))
        out["units"].append(entry)
    unfinished = [u for u in units if u["id"] not in finished]
    for i, unit in enumerate(unfinished):  # the first one was running when stopped
        running = status == "partial" and i == 0
        reason = "stopped at the time budget while running" if running else NO_TIME
        out["units"].append({"id": unit["id"], "status": "skipped", "reason": reason})
    if any(u["status"] != "done" for u in out["units"]):
        status = "partial" if out["rows"] else "skipped"
    limits = [u["bandwidth"]["limit"] for u in out["units"] if u.get("bandwidth")]
    out["bandwidth_limit_gbps"] = max(limits) if limits else None
    return dict(out, status=status)


# ----------------------------------------------------------------------------------
# Part 3: the chapters, each executed as a notebook
# ----------------------------------------------------------------------------------


def toc_chapters() -> list[str]:
    """Chapter names (chapters/<name>.md) in the book's order, from _toc.yml."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    return [Path(f).name for f in files]


def glued_claims(nb) -> list[dict]:
    """Every ``claim:<id>`` record an executed notebook glued (display_data outputs with
    metadata.scrapbook.name); the record is a JSON string, shown as its repr."""
    claims = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name", "")
            if not name.startswith(CLAIM_PREFIX):
                continue
            data = output.get("data", {})
            text = data.get(
                "application/papermill.record/text/plain", data.get("text/plain", "")
            )
            try:
                record = json.loads(ast.literal_eval(text))
            except (ValueError, SyntaxError) as exc:
                record = {
                    "id": name[len(CLAIM_PREFIX) :],
                    "result": "unreadable",
                    "error": str(exc),
                }
            claims.append(record)
    return claims


def execute_chapter(path: Path, deadline: float) -> dict:
    """Execute one MyST chapter in a fresh kernel whose cwd is its folder.

    Cells that raise are recorded (the run goes on, so later claims still report);
    no cell may run past ``deadline``.
    """
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    code_cells = sum(c.cell_type == "code" for c in nb.cells)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        allow_errors=True,
        startup_timeout=120,
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
        resources={"metadata": {"path": str(path.parent)}},
    )
    row: dict = {"chapter": path.stem, "code_cells": code_cells}
    start = time.perf_counter()
    try:
        client.execute()
        row["status"] = "ok"
    except Exception as exc:  # a timeout or a dead kernel: keep what ran
        if "Timeout" in type(exc).__name__:
            row["status"] = "timeout"
            row["reason"] = f"stopped at the time budget ({type(exc).__name__})"
        else:
            row["status"] = "failed"
            row["reason"] = f"{type(exc).__name__}: {exc}"[:500]
    row["seconds"] = round(time.perf_counter() - start, 3)
    errors, stderr = [], 0
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(
                    {
                        "cell": index,
                        "ename": output.get("ename"),
                        "evalue": str(output.get("evalue"))[:300],
                    }
                )
            elif (
                output.get("output_type") == "stream" and output.get("name") == "stderr"
            ):
                stderr += 1
    row["errors"], row["stderr_outputs"] = errors, stderr
    if errors and row["status"] == "ok":
        row["status"] = "errors"
    claims = glued_claims(nb)
    row["claims"] = len(claims)
    row["claims_failed"] = sum(c.get("result") != "holds" for c in claims)
    row["claim_records"] = claims
    return row


def run_chapters(names: list[str], chapter_dir: Path, deadline: float) -> dict:
    from optbook.book import device as book_device

    dev = book_device.get_device()
    out: dict = {
        "device": book_device.describe(dev),
        "scale": book_device.scale(dev),
        "chapter_dir": str(chapter_dir),
        "rows": [],
        "claims": [],
    }
    missing = [m for m in NOTEBOOK_MODULES if not _importable(m)]
    if missing:
        reason = (
            f"skipped: missing Python packages {', '.join(missing)} (stage them "
            "with --stage-wheels, then pass --wheelhouse)"
        )
        return dict(
            out,
            status="skipped",
            reason=reason,
            rows=[{"chapter": n, "status": "skipped", "reason": reason} for n in names],
        )
    for name in names:
        path = chapter_dir / f"{name}.md"
        remaining = deadline - time.monotonic()
        if remaining < MIN_START_S["chapters"]:
            out["rows"].append(
                {"chapter": name, "status": "skipped", "reason": NO_TIME}
            )
            continue
        log(f"chapter {name} ({remaining:.0f} s left for chapters)")
        row = execute_chapter(path, deadline)
        log(f"  {row['status']} in {row['seconds']:.1f} s, {row['claims']} claims")
        for record in row.pop("claim_records"):
            out["claims"].append(dict(record, chapter=name))
        out["rows"].append(row)
    ran = [r for r in out["rows"] if r["status"] != "skipped"]
    complete = all(r["status"] in ("ok", "errors") for r in out["rows"])
    status = "done" if complete else ("partial" if ran else "skipped")
    if status == "skipped":
        out["reason"] = NO_TIME
    return dict(out, status=status)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ----------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------

CSV_KEYS = [
    "phase",
    "unit",
    "device",
    "size",
    "numel",
    "tensors",
    "algorithm",
    "impl",
    "ms",
    "ms_min",
    "gbps",
    "bandwidth_gbps",
    "fraction",
    "fraction_of_limit",
    "vs_torch_foreach",
    "vs_torch_fused",
    "warmup_s",
    "kernels",
    "memcpys",
    "peak_mib",
    "step_extra_mib",
    "max_abs_diff",
    "bitwise_torch_single",
]


def write_outputs(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_report.json").write_text(json.dumps(report, indent=1) + "\n")
    with open(out_dir / "gpu_report.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_KEYS, extrasaction="ignore")
        writer.writeheader()
        for row in report["bench"]["rows"]:
            writer.writerow(row)


def summary(report: dict) -> str:
    env = report["environment"]
    gpu = env["gpu"]["name"] if env["gpu"] else "no CUDA device"
    lines = [
        (
            f"gpu-report: {gpu}, torch {env['torch']} (CUDA {env['cuda_runtime']}), "
            f"driver {env['driver']}, commit {env['commit']}, "
            f"{report['elapsed_s']:.0f} s of {report['budget_s']:.0f} s"
        )
    ]
    t = report["tests"]
    counts = t.get("counts")
    lines.append(
        f"tests: {t['status']}"
        + (f" {counts}" if counts else "")
        + (f" ({t['reason']})" if t.get("reason") else "")
    )
    b = report["bench"]
    lines.append(
        f"bench: {b['status']}, {len(b['rows'])} rows, bandwidth limit "
        f"{b['bandwidth_limit_gbps']} GB/s"
        + (f" ({b['reason']})" if b.get("reason") else "")
    )
    for r in b["rows"]:
        lines.append(
            f"  {r['size']:>6s} {r['algorithm']:8s} {r['impl']:17s} "
            f"{r['ms']:9.3f} ms {100 * r['fraction']:5.1f}% of B  "
            f"kernels {r.get('kernels')}  peak {r.get('peak_mib') or 0:.0f} MiB"
        )
    c = report["chapters"]
    lines.append(
        f"chapters: {c['status']} at scale {c['scale']}"
        + (f" ({c['reason']})" if c.get("reason") else "")
    )
    for r in c["rows"]:
        lines.append(
            f"  {r['chapter']:18s} {r['status']:8s} "
            f"{r.get('seconds', float('nan')):8.1f} s  claims {r.get('claims', '-')}"
        )
    for s in report["skipped"]:
        lines.append(f"skipped: {s}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------
# Staging for a lent device
# ----------------------------------------------------------------------------------


def stage_wheels(target: Path) -> int:
    """Download the WHEELS at the versions installed here, for CPython 3.12 on x86-64
    Linux (the lent device's python3), without dependencies (all are listed)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in WHEELS:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pins.append(name)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        "-d",
        str(target),
    ]
    for tag in PLATFORMS:
        cmd += ["--platform", tag]
    return subprocess.call(cmd + pins)


def install_wheelhouse(wheelhouse: Path, site: Path) -> None:
    """Install every wheel of ``wheelhouse`` into ``site`` (no index, no deps) and put
    it first on the path of this process and of its children (kernels, pytest)."""
    wheels = sorted(str(p) for p in wheelhouse.glob("*.whl"))
    if not wheels:
        raise ValueError(f"wheelhouse: no .whl files in {wheelhouse}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--no-cache-dir",
            "--upgrade",
            "--target",
            str(site),
            *wheels,
        ],
        check=True,
    )
    sys.path.insert(0, str(site))
    _prepend_path(site)


def _prepend_path(folder: Path) -> None:
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(folder) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(folder)] + parts)


# ----------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------


def _names(text: str, allowed: list[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in allowed:
            raise ValueError(f"{what}: unknown {n!r}; choose from {', '.join(allowed)}")
    if not names:
        raise ValueError(f"{what}: empty list {text!r}")
    return names


def _sizes(text: str) -> list[str]:
    from optbook.bench import parse_size

    sizes = [s.strip() for s in text.split(",") if s.strip()]
    for s in sizes:
        try:
            ok = parse_size(s) > 0
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"sizes: {s!r} is not a parameter count such as 10M or 500k"
            )
    if not sizes:
        raise ValueError(f"sizes: empty list {text!r}")
    return sizes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="gpu_report.py", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--out",
        default=str(ROOT / "code" / "optbook" / "book" / "records"),
        help="folder for gpu_report.json and gpu_report.csv (default code/optbook/book/records)",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=480.0,
        help="wall-clock budget of the whole run, seconds (default 480: one "
        "10-minute device call with margin)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 10M parameters, Adam and SGD, 3 rounds, the preface only",
    )
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated, in priority order (default {','.join(PARTS)})",
    )
    p.add_argument(
        "--chapters",
        default=None,
        help="comma-separated chapter names (default: every chapter of _toc.yml)",
    )
    p.add_argument(
        "--chapter-dir",
        default=str(ROOT / "chapters"),
        help="folder of the chapters' .md files (the kernel's cwd)",
    )
    p.add_argument(
        "--scale",
        type=int,
        default=None,
        help="OPTBOOK_SCALE for the chapters (default: the book's, 4 on a GPU)",
    )
    p.add_argument("--sizes", default=",".join(SIZES), help="benchmark sizes")
    p.add_argument(
        "--algorithms", default=",".join(ALGORITHMS), help="benchmark algorithms"
    )
    p.add_argument(
        "--bench-device",
        default="cuda",
        help="device of the benchmark (default cuda; cpu tests the harness)",
    )
    p.add_argument("--reps", type=int, default=7, help="timed benchmark rounds")
    p.add_argument(
        "--commit",
        default=None,
        help="commit measured, where the tree has no .git (a lent device)",
    )
    p.add_argument(
        "--wheelhouse",
        default=None,
        help="install these wheels (from --stage-wheels) into a temporary folder",
    )
    p.add_argument(
        "--stage-wheels",
        metavar="DIR",
        default=None,
        help="download the wheels a lent device needs into DIR, then exit",
    )
    p.add_argument(
        "--bench-worker", nargs=2, metavar=("SPEC", "RESULTS"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)
    if args.reps < 1:
        raise ValueError(f"reps must be at least 1, got {args.reps}")
    if args.scale is not None and args.scale < 1:
        raise ValueError(f"scale must be at least 1, got {args.scale}")
    if args.bench_device not in ("cuda", "cpu"):
        raise ValueError(f"bench_device must be cuda or cpu, got {args.bench_device!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bench_worker:
        return bench_worker(*args.bench_worker)
    if args.stage_wheels:
        return stage_wheels(Path(args.stage_wheels))
    _prepend_path(CODE)  # optbook from this tree, installed or not
    _prepend_path(SCRIPTS)  # this file as the pytest plugin ``gpu_report``
    sys.path[:0] = [str(CODE)]
    if args.scale is not None:
        os.environ["OPTBOOK_SCALE"] = str(args.scale)
    parts = _names(args.parts, PARTS, "parts")
    sizes = _sizes(args.sizes)
    algorithms = _names(args.algorithms, ALGORITHMS, "algorithms")
    budget = Budget(args.budget_s, parts)
    reps, inner, bandwidth_numel = args.reps, 3, 2**26
    chapter_dir = Path(args.chapter_dir).resolve()
    chapters = args.chapters.split(",") if args.chapters else None
    if args.quick:
        sizes, reps, inner, bandwidth_numel = sizes[:1], 3, 2, 2**24
        if args.algorithms == ",".join(ALGORITHMS):
            algorithms = ["adam", "sgd"]
        chapters = chapters or ["preface"]
    chapters = chapters or toc_chapters()
    for name in chapters:
        if not (chapter_dir / f"{name}.md").exists():
            raise ValueError(f"chapters: no chapter {name!r} in {chapter_dir}")
    matmul_n = None  # bench's default: 8192 on CUDA
    if args.quick and args.bench_device == "cpu":  # a harness check, not a measurement
        bandwidth_numel, matmul_n = 2**20, 256
    settings = dict(
        reps=reps,
        inner=inner,
        warmup=2,
        bandwidth_numel=bandwidth_numel,
        matmul_n=matmul_n,
    )

    workdir = Path(tempfile.mkdtemp(prefix="gpu_report_"))
    try:
        if args.wheelhouse:
            install_wheelhouse(Path(args.wheelhouse), workdir / "site")
        import torch

        cuda = torch.cuda.is_available()
        report: dict = {
            "schema": 1,
            "command": " ".join(["gpu_report.py", *(argv or sys.argv[1:])]),
            "budget_s": args.budget_s,
            "quick": args.quick,
            "parts": parts,
            "environment": environment(args.commit),
        }
        log(
            f"environment: {report['environment']['device']}, torch "
            f"{report['environment']['torch']}; budget {args.budget_s:.0f} s"
        )
        empty = {"status": "skipped", "reason": "skipped: not in --parts"}
        report["tests"] = dict(empty)
        report["bench"] = dict(empty, rows=[], units=[], bandwidth_limit_gbps=None)
        report["chapters"] = dict(empty, rows=[], claims=[], scale=None)
        compiled: dict = dict(empty, rows=[], units=[], bandwidth_limit_gbps=None)
        for part in parts:
            deadline = budget.deadline(part)
            log(f"part {part}: until {deadline - budget.start:.0f} s into the budget")
            try:
                if part == "tests":
                    report["tests"] = run_tests(deadline, cuda, workdir)
                elif part in ("bench", "bench-compiled"):
                    result = run_bench(
                        part,
                        bench_units(part, sizes, algorithms),
                        deadline,
                        args.bench_device,
                        cuda,
                        settings,
                        workdir,
                    )
                    if part == "bench":
                        report["bench"] = result
                    else:
                        compiled = result
                else:
                    report["chapters"] = run_chapters(chapters, chapter_dir, deadline)
            except Exception as exc:  # one broken part must not cost the others
                failed = dict(status="error", reason=f"{type(exc).__name__}: {exc}")
                if part == "bench-compiled":
                    compiled = dict(compiled, **failed)
                else:
                    key = "bench" if part == "bench" else part
                    report[key] = dict(report[key], **failed)
                log(f"part {part} failed: {failed['reason']}")
            # written after every part: a run stopped from outside keeps what it had
            final = _finish(report, compiled, budget, Path(args.out))
        print(summary(final))
        log(
            f"wrote {Path(args.out) / 'gpu_report.json'} and gpu_report.csv in "
            f"{final['elapsed_s']:.1f} s"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _finish(report: dict, compiled: dict, budget: Budget, out: Path) -> dict:
    """The report so far, merged, with what was skipped; written as JSON and CSV."""
    report = dict(report, bench=dict(report["bench"]))
    _merge_compiled(report, compiled)
    report["skipped"] = _skipped(report)
    report["elapsed_s"] = round(budget.elapsed(), 2)
    write_outputs(report, out)
    return report


def _merge_compiled(report: dict, compiled: dict) -> None:
    """One benchmark table: the compiled units' rows and units join the eager ones."""
    bench = report["bench"]
    bench["compiled_status"] = compiled["status"]
    if compiled.get("reason"):
        bench["compiled_reason"] = compiled["reason"]
    bench["rows"] = bench.get("rows", []) + compiled.get("rows", [])
    bench["units"] = bench.get("units", []) + compiled.get("units", [])
    limits = [
        x
        for x in (
            bench.get("bandwidth_limit_gbps"),
            compiled.get("bandwidth_limit_gbps"),
        )
        if x
    ]
    bench["bandwidth_limit_gbps"] = max(limits) if limits else None
    for row in bench["rows"]:
        limit = bench["bandwidth_limit_gbps"]
        row["fraction_of_limit"] = row["gbps"] / limit if limit else None


def _skipped(report: dict) -> list[str]:
    """What did not run, and why, in one list."""
    out = []
    for part in ("tests", "chapters"):
        if report[part]["status"] in ("skipped", "error"):
            out.append(f"{part}: {report[part].get('reason')}")
    bench = report["bench"]
    whole = {}  # a part skipped as a whole gets one line, not one per unit
    for part, status, reason in [
        ("bench", bench["status"], bench.get("reason")),
        ("bench-compiled", bench["compiled_status"], bench.get("compiled_reason")),
    ]:
        if status in ("skipped", "error") and reason:
            whole[part] = reason
            out.append(f"{part}: {reason}")
    for unit in bench["units"]:
        phase = "bench" if unit["id"].startswith("eager-") else "bench-compiled"
        if unit["status"] != "done" and phase not in whole:
            out.append(f"bench unit {unit['id']}: {unit.get('reason')}")
    for row in report["chapters"]["rows"]:
        if (
            row["status"] in ("skipped", "timeout", "failed")
            and report["chapters"]["status"] != "skipped"
        ):
            out.append(f"chapter {row['chapter']}: {row.get('reason')}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
