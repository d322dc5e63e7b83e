"""The benchmark's arithmetic: parameter lists, byte and flop counts, and a tiny run.

Timings are not tested (they depend on the machine and its load); what the benchmark
derives from first principles is: the minimum traffic of each algorithm, the traffic
and flops the eager operations really perform (counted by a TorchDispatchMode), the
transformer shapes, and that every implementation it times computes the same step.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from optbook import bench


@pytest.mark.parametrize("target", [10**6, 10**7, 5 * 10**7])
def test_transformer_shapes_hit_the_target_size(target):
    shapes, arch = bench.transformer_shapes(target)
    assert arch["numel"] == sum(math.prod(s) for s in shapes)
    assert abs(arch["numel"] - target) / target < 0.15
    assert arch["tensors"] == len(shapes) == 2 + 12 * arch["layers"] + 2
    d = arch["d_model"]
    assert (3 * d, d) in shapes and (4 * d, d) in shapes and (d, 4 * d) in shapes and (d,) in shapes


def test_parse_size():
    assert bench.parse_size("1M") == 10**6
    assert bench.parse_size("50m") == 5 * 10**7
    assert bench.parse_size("2.5M") == 2_500_000
    assert bench.parse_size("500k") == 500_000
    assert bench.parse_size("1234") == 1234


@pytest.mark.parametrize("algorithm, hyper, k, streams", [
    ("adam", None, 2, (4, 3)),
    ("adam", dict(amsgrad=True), 3, (5, 4)),
    ("adamw", None, 2, (4, 3)),
    ("sgd", None, 1, (3, 2)),
    ("sgd", dict(momentum=0), 0, (2, 1)),
    ("rmsprop", None, 1, (3, 2)),
    ("rmsprop", dict(centered=True, momentum=0.9), 3, (5, 4)),
    ("adagrad", None, 1, (3, 2)),
])
def test_minimum_streams_and_state(algorithm, hyper, k, streams):
    assert bench.state_buffers(algorithm, hyper) == k
    assert bench.minimum_streams(algorithm, hyper) == streams
    assert bench.minimum_bytes_per_param(algorithm, 4, hyper) == 4 * sum(streams)


def _counted(impl, algorithm, shapes):
    params = [torch.randn(s).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    _, step = bench.make_stepper(impl, algorithm, params)
    step()
    n = sum(p.numel() for p in params)
    read, written, flops, ops = bench.count_traffic(step)
    return (read + written) / n, flops / n, ops


@pytest.mark.parametrize("impl", ["optbook-single", "optbook-foreach", "torch-single", "torch-foreach"])
def test_eager_adam_moves_18_streams_and_13_flops(impl):
    """Adam's single-tensor lines read 11 and write 7 streams (the chapter's table)."""
    shapes = [(64, 32), (32,), (128,)]
    bytes_per_param, flops_per_param, _ = _counted(impl, "adam", shapes)
    assert bytes_per_param == pytest.approx(18 * 4, abs=0.5)  # 0-d step counters add a little
    assert flops_per_param == pytest.approx(13, abs=0.01)


def test_fused_adam_counts_the_minimum_reads():
    """torch's fused kernel is one operation; its reads are the minimum (p, g, m, v)."""
    params = [torch.randn(256).requires_grad_()]
    params[0].grad = torch.randn(256)
    opt = torch.optim.Adam(params, fused=True)
    opt.step()
    read, written, flops, ops = bench.count_traffic(opt.step)
    assert read // 256 == 4 * 4 and ops <= 6  # the kernel, plus the step counters


def test_foreach_saves_operations_not_bytes():
    shapes = [(16, 8)] * 10
    loop = _counted("optbook-single", "sgd", shapes)
    multi = _counted("optbook-foreach", "sgd", shapes)
    assert loop[0] == pytest.approx(multi[0]) and multi[2] * 5 < loop[2]


def test_tiny_benchmark_run(tmp_path):
    """Every implementation runs; the eager ones equal torch's single-tensor path bit for
    bit; the report and the JSON/CSV files are written."""
    out = tmp_path / "bench.json"
    data = bench.main(["--sizes", "30k", "--algorithms", "adam,sgd,rmsprop",
                       "--impls", "optbook-single,optbook-foreach,torch-single,torch-foreach,torch-fused",
                       "--reps", "2", "--inner", "1", "--warmup", "1", "--bandwidth-numel", "65536",
                       "--devices", "cpu", "--quiet", "--json", str(out), "--csv", str(tmp_path / "b.csv")])
    saved = json.loads(out.read_text())
    assert saved["machine"]["torch"] == torch.__version__
    rows = {(r["algorithm"], r["impl"]): r for r in saved["results"]}
    assert ("rmsprop", "torch-fused") not in rows, "RMSprop has no fused kernel"
    for (alg, impl), r in rows.items():
        assert r["ms"] > 0 and r["gbps"] > 0
        if impl != "torch-fused":
            assert r["bitwise_torch_single"], (alg, impl)
    assert rows[("adam", "torch-foreach")]["vs_torch_foreach"] == 1.0
    state = {s["algorithm"]: s["state_over_params"] for s in saved["state"]}
    assert state == {"adam": 2, "sgd": 1, "rmsprop": 1}
    assert data["bandwidth"]["cpu"]["limit"] > 0 and data["bandwidth"]["cpu"]["gflops_best"] > 0
    assert (tmp_path / "b.csv").read_text().count("\n") == len(rows) + 2
