"""``make gpu-report`` (code/scripts/gpu_report.py) where there is no CUDA device.

The CUDA parts must say they were skipped and why; the chapter part must really
execute a chapter and time it, and read the claims a chapter glues; the benchmark
harness (units run by a worker, rows into the JSON and the CSV) is exercised on the
CPU; the pytest plugin must select exactly the tests that skip with "needs CUDA".
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gpu_report
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "code" / "scripts" / "gpu_report.py"
no_cuda_only = pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the report of a machine without CUDA"
)


def run_report(out: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "gpu_report.json").read_text())


def read_csv(out: Path) -> list:
    with open(out / "gpu_report.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == gpu_report.CSV_KEYS
        return list(reader)


@pytest.mark.slow
@no_cuda_only
def test_quick_report_without_cuda(tmp_path):
    report = run_report(tmp_path, "--quick", "--chapters", "preface")
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["cuda_available"] is False
    assert env["gpu"] is None and env["driver"] is None and env["scale"] == 1
    if env["commit_source"] == "git":
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        assert env["commit"] == head
    tests = report["tests"]
    assert tests["status"] == "skipped" and tests["reason"] == gpu_report.NO_CUDA
    assert {"tests/test_foreach.py", "tests/test_compile.py"} <= set(tests["files"])
    bench = report["bench"]
    assert bench["status"] == "skipped" and bench["reason"] == gpu_report.NO_CUDA
    assert bench["compiled_status"] == "skipped"
    assert bench["compiled_reason"] == gpu_report.NO_CUDA
    assert bench["units"] and all(
        u["reason"] == gpu_report.NO_CUDA for u in bench["units"]
    )
    assert bench["rows"] == []
    for part in ("tests", "bench", "bench-compiled"):
        assert f"{part}: {gpu_report.NO_CUDA}" in report["skipped"]
    chapters = report["chapters"]
    assert chapters["status"] == "done" and chapters["scale"] == 1
    [row] = chapters["rows"]
    assert row["chapter"] == "preface" and row["status"] == "ok" and row["errors"] == []
    assert row["code_cells"] >= 1
    assert 0 < row["seconds"] < report["elapsed_s"] <= report["budget_s"]
    assert read_csv(tmp_path) == []


TINY_CHAPTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter with two claims

```{code-cell} ipython3
from optbook.book.claims import claim

claim("small-below-large", "3 is below 5", holds=3 < 5, small=3, large=5.5)
```

```{code-cell} ipython3
claim("large-below-small", "5 is below 3", holds=lambda large, small: large < small,
      small=3, large=5)
```
"""


@pytest.mark.slow
def test_claims_are_read_from_the_executed_notebook(tmp_path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    (chapters / "tiny.md").write_text(TINY_CHAPTER)
    report = run_report(
        tmp_path / "out",
        "--parts",
        "chapters",
        "--chapter-dir",
        str(chapters),
        "--chapters",
        "tiny",
    )
    [row] = report["chapters"]["rows"]
    # the failing claim raises in its cell; the run goes on and records both
    assert (
        row["status"] == "errors" and row["claims"] == 2 and row["claims_failed"] == 1
    )
    assert [e["ename"] for e in row["errors"]] == ["ClaimFailed"]
    by_id = {c["id"]: c for c in report["chapters"]["claims"]}
    assert by_id["small-below-large"]["result"] == "holds"
    assert by_id["small-below-large"]["values"] == {"small": 3, "large": 5.5}
    assert by_id["large-below-small"]["result"] == "FAILS"
    assert all(c["chapter"] == "tiny" and c["scale"] == 1 for c in by_id.values())
    assert report["tests"]["reason"] == "skipped: not in --parts"


@pytest.mark.slow
def test_benchmark_harness_on_the_cpu(tmp_path):
    report = run_report(
        tmp_path,
        "--quick",
        "--parts",
        "bench",
        "--bench-device",
        "cpu",
        "--sizes",
        "20k",
        "--algorithms",
        "sgd",
    )
    bench = report["bench"]
    assert bench["status"] == "done" and bench["bandwidth_limit_gbps"] > 0
    assert [u["id"] for u in bench["units"]] == ["eager-20k"]
    rows = bench["rows"]
    assert [r["impl"] for r in rows] == gpu_report.EAGER_IMPLS
    for r in rows:
        assert r["device"] == "cpu" and r["algorithm"] == "sgd" and r["ms"] > 0
        assert (
            0 < r["fraction_of_limit"] and r["kernels"] is None
        )  # launches: CUDA only
        if r["impl"] != "torch-fused":
            assert r["bitwise_torch_single"] is True
    table = read_csv(tmp_path)
    assert [r["impl"] for r in table] == [r["impl"] for r in rows]
    assert [float(r["ms"]) for r in table] == pytest.approx([r["ms"] for r in rows])


@pytest.mark.slow
@no_cuda_only
def test_the_plugin_selects_exactly_the_tests_that_need_cuda(tmp_path):
    files = [str(p.relative_to(ROOT)) for p in gpu_report.cuda_test_files()]
    log = tmp_path / "log.jsonl"
    env = dict(
        os.environ,
        GPU_REPORT_TEST_LOG=str(log),
        PYTHONPATH=os.pathsep.join(
            [str(SCRIPT.parent), os.environ.get("PYTHONPATH", "")]
        ),
    )
    done = subprocess.run(
        [
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
            *files,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    summary = gpu_report.summarize_test_log(log)
    assert summary["ran"] > 0 and summary["counts"]["skipped"] == summary["ran"]
    assert "deselected" in done.stdout  # the other tests of those files were not run
    # -ra's summary: every selected test skipped, each for the reason "needs CUDA"
    reasons = re.findall(
        r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.*)$", done.stdout, re.MULTILINE
    )
    assert {reason for _, reason in reasons} == {gpu_report.CUDA_REASON}
    assert sum(int(n) for n, _ in reasons) == summary["ran"]


def test_summarize_test_log_counts_each_test_once(tmp_path):
    log = tmp_path / "log.jsonl"
    records = [
        ("a", "call", "passed"),
        ("b", "setup", "skipped"),
        ("c", "call", "failed"),
        ("d", "setup", "failed"),
        ("e", "call", "passed"),
        ("e", "teardown", "failed"),
    ]
    log.write_text(
        "".join(
            json.dumps(
                {
                    "nodeid": n,
                    "when": w,
                    "outcome": o,
                    "message": "boom" if o == "failed" else None,
                }
            )
            + "\n"
            for n, w, o in records
        )
    )
    summary = gpu_report.summarize_test_log(log)
    assert summary["counts"] == {"passed": 1, "failed": 1, "error": 2, "skipped": 1}
    assert {f["test"] for f in summary["failures"]} == {"c", "d", "e"}


def test_budget_keeps_the_later_parts_shares():
    budget = gpu_report.Budget(100.0, gpu_report.PARTS)
    deadlines = [budget.deadline(p) - budget.start for p in gpu_report.PARTS]
    assert deadlines == sorted(deadlines) and deadlines[-1] == pytest.approx(100.0)
    shares = [b - a for a, b in zip([0.0] + deadlines, deadlines)]
    assert shares == pytest.approx(
        [100 * gpu_report.SHARES[p] for p in gpu_report.PARTS]
    )
    with pytest.raises(ValueError, match="budget_s"):
        gpu_report.Budget(0.0, gpu_report.PARTS)


def test_compiled_units_put_adam_at_every_size_first():
    units = gpu_report.bench_units(
        "bench-compiled", gpu_report.SIZES, gpu_report.ALGORITHMS
    )
    pairs = [(u["algorithms"][0], u["size"]) for u in units]
    assert pairs[:3] == [("adam", s) for s in gpu_report.SIZES]
    assert sorted(pairs) == sorted(
        (a, s) for a in gpu_report.ALGORITHMS for s in gpu_report.SIZES
    )
    eager = gpu_report.bench_units("bench", gpu_report.SIZES, gpu_report.ALGORITHMS)
    assert [u["size"] for u in eager] == gpu_report.SIZES


@pytest.mark.parametrize(
    "args, name",
    [
        (["--parts", "tests,nope"], "parts"),
        (["--sizes", "ten"], "sizes"),
        (["--algorithms", "adam,lion"], "algorithms"),
        (["--budget-s", "0"], "budget_s"),
        (["--reps", "0"], "reps"),
        (["--bench-device", "tpu"], "bench_device"),
        (["--chapters", "preface,no_such_chapter"], "chapters"),
    ],
)
def test_bad_arguments_name_the_parameter(tmp_path, args, name):
    with pytest.raises(ValueError, match=name):
        gpu_report.main(["--out", str(tmp_path), *args])


@no_cuda_only
def test_a_part_that_raises_is_recorded_and_the_rest_still_runs(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("pytest could not start")

    monkeypatch.setattr(gpu_report, "run_tests", broken)
    assert gpu_report.main(["--out", str(tmp_path), "--parts", "tests,bench"]) == 0
    report = json.loads((tmp_path / "gpu_report.json").read_text())
    assert report["tests"]["status"] == "error"
    assert report["tests"]["reason"] == "RuntimeError: pytest could not start"
    assert "tests: RuntimeError: pytest could not start" in report["skipped"]
    assert report["bench"]["status"] == "skipped"
    assert report["bench"]["reason"] == gpu_report.NO_CUDA


def test_bench_records_a_fused_kernel_that_torch_lacks(monkeypatch):
    """torch's fused kernels differ by version and device (the lent device's torch is
    not the pinned one): a missing one is recorded and the other paths still run."""
    from optbook import bench

    real = bench.make_stepper

    def without_fused(impl, algorithm, params):
        if impl == "torch-fused":
            raise RuntimeError("no fused kernel here")
        return real(impl, algorithm, params)

    monkeypatch.setattr(bench, "make_stepper", without_fused)
    data = bench.benchmark(
        [30_000],
        ["sgd"],
        ["torch-single", "torch-fused"],
        ["cpu"],
        reps=1,
        inner=1,
        warmup=1,
        bandwidth_numel=2**16,
        matmul_n=64,
        account=False,
    )
    assert [r["impl"] for r in data["results"]] == ["torch-single"]
    assert data["unavailable"] == [
        dict(
            device="cpu",
            algorithm="sgd",
            impl="torch-fused",
            error="RuntimeError: no fused kernel here",
        )
    ]
