"""How fast is an optimizer step, and how close is it to the memory-bandwidth limit?

``python -m optbook.bench`` times one ``optimizer.step()`` of every code path:

=====================  =================================================================
``optbook-single``     ``optbook.X(foreach=False)``: a Python loop, one kernel per line
                       per tensor (e.g. ``optbook.adam.adam_update``)
``optbook-foreach``    ``optbook.X(foreach=True)``: one ``torch._foreach_*`` call per
                       line for all tensors (``optbook.adam.adam_foreach_update``)
``optbook-compiled``   ``optbook.compile_step(optbook.X(...))``: the foreach update
                       compiled by ``torch.compile`` into fused loops
``torch-single``       ``torch.optim.X(foreach=False)``
``torch-foreach``      ``torch.optim.X(foreach=True)``
``torch-fused``        ``torch.optim.X(fused=True)``: hand-written fused kernels (none
                       for RMSprop)
``torch-compiled``     ``torch.compile(torch.optim.X(foreach=True).step)``
=====================  =================================================================

for Adam, AdamW, SGD with momentum, RMSprop and Adagrad, on the parameter list of a
small GPT-like transformer (token and position embeddings; per layer two layer
norms, the attention's QKV and output projections, the MLP's two matrices, and their
biases) of about 1M, 10M and 50M elements, in float32, on the CPU and on CUDA when
present.  Parameters and gradients are random; the implementations are timed in
interleaved rounds (so that a burst of load from other processes hits all of them),
after warm-up steps (compilation included there), and the median is reported.

Why the step is memory-bound.  Every algorithm here does a few floating-point
operations per element and touches every element of several tensors of the
parameters' size.  A fused step must at least read θ, g and each state buffer once
and write θ and each state buffer once: :func:`minimum_streams` counts them (Adam:
reads θ, g, m, v and writes θ, m, v, so 7 x 4 = 28 bytes per float32 parameter).
The same run measures the machine's memory bandwidth B (a STREAM-like copy and
triad using all threads, :func:`measure_bandwidth`), so the fastest possible step
takes (bytes per parameter x parameters) / B.  The table reports the effective
bandwidth (that minimum byte count divided by the measured time) and its fraction of
B.  An eager implementation moves more than the minimum, because every line is a
separate pass over memory with temporaries in between; :func:`count_traffic` counts
the bytes each eager aten operation reads and writes (a ``TorchDispatchMode``), so
the table can show the eager traffic next to the minimum.

The output is a text table; ``--json`` and ``--csv`` also save the results with the
machine, date, torch version and load average.  The chapter *From loops to fused
kernels* reads the JSON file that
``--json code/optbook/book/records/fast_paths_bench.json`` writes.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import optbook
from optbook.book import device as book_device

__all__ = [
    "ALGORITHMS",
    "IMPLEMENTATIONS",
    "transformer_shapes",
    "minimum_streams",
    "state_buffers",
    "BandwidthProbe",
    "measure_bandwidth",
    "measure_peak_flops",
    "count_traffic",
    "profile_step",
    "make_stepper",
    "benchmark",
    "machine_info",
    "main",
]


@dataclass(frozen=True)
class Algorithm:
    cls: str                     # class name in optbook and torch.optim
    hyper: dict                  # hyperparameters used in the benchmark
    fused: bool = True           # does torch.optim have fused=True for it?


ALGORITHMS: Dict[str, Algorithm] = {
    "adam": Algorithm("Adam", dict(lr=1e-3)),
    "adamw": Algorithm("AdamW", dict(lr=1e-3, weight_decay=1e-2)),
    "sgd": Algorithm("SGD", dict(lr=1e-3, momentum=0.9)),
    "rmsprop": Algorithm("RMSprop", dict(lr=1e-3), fused=False),
    "adagrad": Algorithm("Adagrad", dict(lr=1e-3)),
}

IMPLEMENTATIONS = [
    "optbook-single", "optbook-foreach", "optbook-compiled",
    "torch-single", "torch-foreach", "torch-fused", "torch-compiled",
]
COMPILED = {"optbook-compiled", "torch-compiled"}
#: implementations whose aten operations count_traffic can count (eager ones)
EAGER = ["optbook-single", "optbook-foreach", "torch-single", "torch-foreach"]


# ----------------------------------------------------------------------------------
# The parameter list of a small transformer
# ----------------------------------------------------------------------------------


def transformer_shapes(target: int) -> Tuple[List[Tuple[int, ...]], dict]:
    """Parameter shapes of a GPT-like transformer with about ``target`` elements.

    Width ``d`` grows with the target; the number of layers is chosen to land close
    to it.  Per layer: LayerNorm (d), (d); QKV (3d, d), (3d); attention output
    (d, d), (d); LayerNorm (d), (d); MLP (4d, d), (4d) and (d, 4d), (d): that is
    12 d² + 13 d elements in 12 tensors.  Plus token embeddings (vocab, d), tied to
    the output layer, position embeddings (context, d) and a final LayerNorm.
    """
    for d, vocab, context in [(128, 2048, 256), (256, 8192, 512), (512, 16384, 1024),
                              (768, 32768, 1024), (1024, 50304, 2048)]:
        embed = vocab * d + context * d + 2 * d
        per_layer = 12 * d * d + 13 * d
        layers = max(1, round((target - embed) / per_layer))
        if layers <= 24:
            break
    shapes: List[Tuple[int, ...]] = [(vocab, d), (context, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,),
                   (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    shapes += [(d,), (d,)]
    numel = sum(math.prod(s) for s in shapes)
    return shapes, dict(d_model=d, layers=layers, vocab=vocab, context=context,
                        tensors=len(shapes), numel=numel)


def parse_size(text: str) -> int:
    """'1M' -> 1_000_000, '500k' -> 500_000, '2500000' -> 2_500_000."""
    text = text.strip().lower()
    scale = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}.get(text[-1:], 1)
    return int(float(text[:-1] if scale != 1 else text) * scale)


def format_size(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 10**6 else f"{n / 1e3:.0f}k"


# ----------------------------------------------------------------------------------
# Bytes: the minimum a step must move, and the optimizer state
# ----------------------------------------------------------------------------------


def state_buffers(algorithm: str, hyper: Optional[dict] = None) -> int:
    """Parameter-sized state tensors the algorithm keeps (its memory, in units of θ).

    SGD with momentum: m.  AdaGrad: s.  RMSProp: v (+ ḡ if centered, + a momentum
    buffer b).  Adam and AdamW: m and v (+ v^max with AMSGrad).
    """
    spec = ALGORITHMS[algorithm]
    hyper = spec.hyper if hyper is None else hyper
    if spec.cls == "SGD":
        return int(hyper.get("momentum", 0) != 0)
    if spec.cls == "Adagrad":
        return 1
    if spec.cls == "RMSprop":
        return 1 + bool(hyper.get("centered", False)) + (hyper.get("momentum", 0) > 0)
    return 2 + bool(hyper.get("amsgrad", False))


def minimum_streams(algorithm: str, hyper: Optional[dict] = None) -> Tuple[int, int]:
    """(reads, writes): parameter-sized tensors a fused step reads and writes once each.

    Every algorithm reads θ and g and writes θ; each state buffer is read and written
    once.  Weight decay reads θ, which is read anyway.  Adam: reads θ, g, m, v and
    writes θ, m, v, so (4, 3): 7 x 4 = 28 bytes per float32 parameter.
    """
    k = state_buffers(algorithm, hyper)
    return 2 + k, 1 + k


def minimum_bytes_per_param(algorithm: str, itemsize: int = 4,
                            hyper: Optional[dict] = None) -> int:
    reads, writes = minimum_streams(algorithm, hyper)
    return (reads + writes) * itemsize


#: floating-point operations per element written, by aten operation (an add, a
#: multiply, a divide, a square root, a max: one each; ``lerp`` a + w (b - a): three;
#: ``addcmul``/``addcdiv`` a + v b c: three).  An ``alpha`` other than 1 adds one.
FLOPS_PER_ELEMENT = {
    "add": 1, "sub": 1, "mul": 1, "div": 1, "neg": 1, "sqrt": 1, "reciprocal": 1,
    "maximum": 1, "minimum": 1, "pow": 1, "lerp": 3, "addcmul": 3, "addcdiv": 3,
}


class TrafficCounter(TorchDispatchMode):
    """Count the bytes every aten operation reads and writes, and its flops.

    Reads: each distinct tensor argument once (``copy_``, ``fill_`` and ``zero_``
    do not read their destination).  Writes: arguments the operation mutates (its
    schema says so) and newly allocated results.  View operations move nothing.
    Tensors that fit in cache are counted all the same: this is the traffic of an
    implementation that streams every operand from memory, as large tensors do.
    Flops: :data:`FLOPS_PER_ELEMENT` times the elements written.
    """

    NO_READ_OF_SELF = {"copy_", "fill_", "zero_"}

    def __init__(self) -> None:
        super().__init__()
        self.read = 0
        self.written = 0
        self.flops = 0
        self.ops = 0

    @staticmethod
    def _tensors(values) -> list:
        leaves, _ = tree_flatten(values)
        return [t for t in leaves if isinstance(t, torch.Tensor)]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if getattr(func, "is_view", False):
            return out
        self.ops += 1
        schema = func._schema
        name = schema.name.split("::")[-1]
        base = name.replace("_foreach_", "").rstrip("_")
        seen = set()
        written_elements = 0
        has_alpha = False
        for i, arg in enumerate(schema.arguments):
            value = args[i] if i < len(args) else kwargs.get(arg.name)
            if arg.name == "alpha" and value is not None and value != 1:
                has_alpha = True
            mutated = arg.alias_info is not None and arg.alias_info.is_write
            for t in self._tensors(value):
                key = (t.data_ptr(), t.numel(), t.dtype)
                nbytes = t.numel() * t.element_size()
                if mutated:
                    self.written += nbytes
                    written_elements += t.numel()
                if key not in seen and not (mutated and name in self.NO_READ_OF_SELF):
                    self.read += nbytes
                seen.add(key)
        results = out if isinstance(out, tuple) else (out,)
        for ret, value in zip(schema.returns, results):
            if ret.alias_info is None:
                for t in self._tensors(value):
                    self.written += t.numel() * t.element_size()
                    written_elements += t.numel()
        per_element = FLOPS_PER_ELEMENT.get(base, 0)
        if per_element and base in ("add", "sub") and has_alpha:
            per_element += 1
        self.flops += per_element * written_elements
        return out


def count_traffic(step: Callable[[], object]) -> Tuple[int, int, int, int]:
    """(bytes read, bytes written, flops, aten operations) of one call of ``step``."""
    counter = TrafficCounter()
    with counter:
        step()
    return counter.read, counter.written, counter.flops, counter.ops


def profile_step(step: Callable[[], object], device: torch.device) -> dict:
    """Kernel launches and peak memory of one CUDA step, taken after warm-up.

    Launches are the CUDA kernel events torch.profiler records for one call (memory
    copies and sets counted apart): the count that separates a per-tensor loop from
    a foreach or fused step.  Peak memory is ``torch.cuda.max_memory_allocated``
    during a second, unprofiled call; ``step_extra_mib`` is that peak minus what was
    allocated before the call (the step's temporaries, in MiB).
    """
    if device.type != "cuda":
        raise ValueError(f"device must be a CUDA device, got {device}")
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    out: dict = {}
    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize(device)
        names = [e.name for e in prof.events() if e.device_type == DeviceType.CUDA]
        copies = [n for n in names if n.startswith(("Memcpy", "Memset"))]
        out["kernels"] = len(names) - len(copies)
        out["memcpys"] = len(copies)
    except Exception as exc:  # a profiler that cannot start here leaves the rest
        out["profile_error"] = f"{type(exc).__name__}: {exc}"
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    out["peak_mib"] = peak / 2**20
    out["step_extra_mib"] = (peak - before) / 2**20
    return out


# ----------------------------------------------------------------------------------
# The machine
# ----------------------------------------------------------------------------------


def _sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


class BandwidthProbe:
    """STREAM-style kernels on float32 arrays of ``numel`` elements, all threads.

    copy:    a <- b            reads 1, writes 1 array
    triad:   a <- b + s c      reads 2, writes 1 array
    addcmul: a <- a + v b c    reads 3, writes 1 array (an optimizer-like line)

    Bytes are counted as STREAM counts them (a write is one transfer; a CPU may also
    read the line it writes, which this does not count).  :meth:`run` times each kernel
    once and returns GB/s (10^9 bytes per second) per kernel.
    """

    def __init__(self, device: torch.device, numel: int = 2**26) -> None:
        self.device, self.numel, self.sync = device, numel, _sync(device)
        self.a = torch.empty(numel, device=device)
        self.b = torch.rand(numel, device=device)
        self.c = torch.rand(numel, device=device)
        self.kernels = {
            "copy": (lambda: self.a.copy_(self.b), 2),
            "triad": (lambda: torch.add(self.b, self.c, alpha=3.0, out=self.a), 3),
            "addcmul": (lambda: self.a.addcmul_(self.b, self.c, value=1e-9), 4),
        }
        for kernel, _ in self.kernels.values():
            kernel()  # first touch of the pages, outside any timing

    def run(self) -> Dict[str, float]:
        result = {}
        for name, (kernel, arrays) in self.kernels.items():
            self.sync()
            start = time.perf_counter()
            kernel()
            self.sync()
            result[name] = arrays * self.numel * 4 / (time.perf_counter() - start) / 1e9
        return result


def measure_bandwidth(device: torch.device, numel: int = 2**26, reps: int = 9) -> dict:
    """Memory bandwidth in GB/s: :class:`BandwidthProbe` run ``reps`` times.

    For each kernel, the median and the best run; the *limit* is the best of all:
    other processes can only slow a run down, and on a CPU with few cores a kernel
    with more streams often comes closer to the memory's peak.  (2^26 elements: 256
    MiB per array, far larger than any cache.)
    """
    probe = BandwidthProbe(device, numel)
    runs = [probe.run() for _ in range(reps)]
    result: dict = {"numel": numel, "reps": reps}
    for name in probe.kernels:
        result[name] = statistics.median(r[name] for r in runs)
        result[name + "_best"] = max(r[name] for r in runs)
    result["limit"] = max(result[k + "_best"] for k in probe.kernels)
    del probe
    return result


def measure_peak_flops(device: torch.device, n: Optional[int] = None,
                       reps: int = 5) -> dict:
    """Compute throughput in GFLOP/s: a float32 matrix product (2 n³ flops), the most
    compute-dense operation torch has; median and best of ``reps`` after a warm-up."""
    n = n or (8192 if device.type == "cuda" else 2048)
    sync = _sync(device)
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        sync()
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
        times.append(time.perf_counter() - start)
    flops = 2 * n**3
    return {"matmul_n": n, "gflops": flops / statistics.median(times) / 1e9,
            "gflops_best": flops / min(times) / 1e9}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def last_level_cache() -> Optional[str]:
    """Size of the CPU's last-level cache, e.g. '32768K' (Linux sysfs), or None."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    best = None
    try:
        for index in sorted(os.listdir(base)):
            if not index.startswith("index"):
                continue
            with open(os.path.join(base, index, "level")) as f:
                level = int(f.read())
            with open(os.path.join(base, index, "size")) as f:
                size = f.read().strip()
            if best is None or level > best[0]:
                best = (level, size)
    except OSError:
        return None
    return None if best is None else best[1]


def machine_info(devices: Sequence[torch.device]) -> dict:
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "optbook": optbook.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "last_level_cache": last_level_cache(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "devices": [book_device.describe(d) for d in devices],
    }
    return info


# ----------------------------------------------------------------------------------
# Steppers: one optimizer step of one implementation
# ----------------------------------------------------------------------------------


def make_stepper(impl: str, algorithm: str, params: List[torch.Tensor]):
    """(optimizer, step function) for one implementation, or None if it has none."""
    spec = ALGORITHMS[algorithm]
    hyper = dict(spec.hyper)
    ours, theirs = getattr(optbook, spec.cls), getattr(torch.optim, spec.cls)
    if impl == "optbook-single":
        opt = ours(params, foreach=False, **hyper)
    elif impl == "optbook-foreach":
        opt = ours(params, foreach=True, **hyper)
    elif impl == "optbook-compiled":
        opt = optbook.compile_step(ours(params, **hyper))
    elif impl == "torch-single":
        opt = theirs(params, foreach=False, **hyper)
    elif impl == "torch-foreach":
        opt = theirs(params, foreach=True, **hyper)
    elif impl == "torch-fused":
        if not spec.fused:
            return None
        opt = theirs(params, fused=True, **hyper)
    elif impl == "torch-compiled":
        opt = theirs(params, foreach=True, **hyper)
        return opt, torch.compile(opt.step)
    else:
        raise ValueError(f"unknown implementation {impl!r}; "
                         f"choose from {IMPLEMENTATIONS}")
    return opt, opt.step


@dataclass
class Result:
    device: str
    size: str
    numel: int
    tensors: int
    algorithm: str
    impl: str
    ms: float                         # median time of one step, milliseconds
    # fastest round (least disturbed by other processes)
    ms_min: float = 0.0
    ms_all: List[float] = field(default_factory=list)
    gbps: float = 0.0                 # minimum bytes / time
    bandwidth_gbps: float = 0.0       # median of the bandwidth probe, same rounds
    fraction: float = 0.0             # gbps / bandwidth_gbps
    vs_torch_foreach: Optional[float] = None   # throughput ratio (t_torch_foreach / t)
    vs_torch_fused: Optional[float] = None     # throughput ratio (t_torch_fused / t)
    warmup_s: float = 0.0             # first step (compilation included)
    max_abs_diff: Optional[float] = None       # final θ against torch-single's
    bitwise_torch_single: Optional[bool] = None
    kernels: Optional[int] = None     # CUDA kernel launches of one step (--launches)
    memcpys: Optional[int] = None     # memory copies and sets of one step
    peak_mib: Optional[float] = None  # max_memory_allocated during one step, MiB
    step_extra_mib: Optional[float] = None     # that peak minus memory before the step
    profile_error: Optional[str] = None        # why no launches were counted, if so


def benchmark(
    sizes: Sequence[int] = (10**6, 10**7, 5 * 10**7),
    algorithms: Sequence[str] = tuple(ALGORITHMS),
    impls: Sequence[str] = tuple(IMPLEMENTATIONS),
    devices: Sequence[str] = ("cpu",),
    reps: int = 7,
    inner: int = 3,
    warmup: int = 2,
    bandwidth_numel: int = 2**26,
    matmul_n: Optional[int] = None,
    account: bool = True,
    launches: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = lambda s: None,
) -> dict:
    """Run the benchmark; returns a JSON-able dict (machine, bandwidth, results, state).

    ``matmul_n`` sizes the matrix product that measures compute throughput (default
    2048 on the CPU, 8192 on CUDA); ``account=False`` skips the state-memory and
    traffic-counting tables (for a quick run inside a notebook); ``launches=True``
    adds, on CUDA, each step's kernel launches and peak memory (:func:`profile_step`).
    """
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    devs = [torch.device(d) for d in devices]
    out = {"machine": machine_info(devs), "bandwidth": {}, "results": [], "state": [],
           "traffic": [], "config": dict(reps=reps, inner=inner, warmup=warmup,
                                          sizes=list(sizes),
                                          algorithms=list(algorithms),
                                          impls=list(impls), devices=list(devices))}
    for device in devs:
        bw = measure_bandwidth(device, numel=bandwidth_numel)
        bw.update(measure_peak_flops(device, n=matmul_n))
        out["bandwidth"][str(device)] = bw
        probe = BandwidthProbe(device, bandwidth_numel)
        log(f"{book_device.describe(device)}: bandwidth copy {bw['copy']:.1f}, triad "
            f"{bw['triad']:.1f}, addcmul {bw['addcmul']:.1f} GB/s (medians); "
            f"limit {bw['limit']:.1f}; "
            f"matmul {bw['gflops_best']:.0f} GFLOP/s")
        sync = _sync(device)
        for size in sizes:
            shapes, arch = transformer_shapes(size)
            gen = torch.Generator().manual_seed(seed)
            base = [torch.randn(s, generator=gen).mul_(0.02) for s in shapes]
            grads = [torch.randn(s, generator=gen).mul_(1e-3).to(device)
                     for s in shapes]
            for algorithm in algorithms:
                log(f"  {format_size(arch['numel'])} ({arch['tensors']} tensors) "
                    f"{algorithm}")
                if any(impl in COMPILED for impl in impls):
                    # dynamo allows 8 recompilations per code object, and every
                    # torch.compile(opt.step) shares torch's Optimizer.step wrapper
                    torch._dynamo.reset()
                steppers, params_of, warm = {}, {}, {}
                for impl in impls:
                    params = [b.to(device, copy=True).requires_grad_() for b in base]
                    for p, g in zip(params, grads):
                        p.grad = g
                    sync()
                    start = time.perf_counter()
                    try:
                        made = make_stepper(impl, algorithm, params)
                        if made is None:
                            continue
                        _, step = made
                        step()                  # first step: lazy state, compilation
                    except (RuntimeError, NotImplementedError) as exc:
                        if impl != "torch-fused":
                            raise
                        # torch's fused kernels vary by version and device (fused
                        # Adagrad was CPU-only once): record the gap, time the rest
                        out.setdefault("unavailable", []).append(dict(
                            device=str(device), algorithm=algorithm, impl=impl,
                            error=f"{type(exc).__name__}: {exc}"[:300]))
                        log(f"    {impl:17s} unavailable: {type(exc).__name__}")
                        continue
                    sync()
                    warm[impl] = time.perf_counter() - start
                    for _ in range(warmup - 1):
                        step()
                    steppers[impl], params_of[impl] = step, params
                times = {impl: [] for impl in steppers}
                # the bandwidth, measured in the same rounds
                probe_gbps = []
                for _ in range(reps):          # interleaved rounds
                    probe_gbps.append(max(probe.run().values()))
                    for impl, step in steppers.items():
                        sync()
                        start = time.perf_counter()
                        for _ in range(inner):
                            step()
                        sync()
                        times[impl].append((time.perf_counter() - start) / inner * 1e3)
                min_bytes = minimum_bytes_per_param(algorithm) * arch["numel"]
                medians = {impl: statistics.median(ts) for impl, ts in times.items()}
                bw_now = statistics.median(probe_gbps)
                bw["limit"] = max(bw["limit"], max(probe_gbps))
                reference = params_of.get("torch-single")
                profiled = {impl: profile_step(step, device)
                            for impl, step in steppers.items()
                            if launches and device.type == "cuda"}
                for impl, ts in times.items():
                    r = Result(device=str(device), size=format_size(arch["numel"]),
                               numel=arch["numel"], tensors=arch["tensors"],
                               algorithm=algorithm, impl=impl, ms=medians[impl],
                               ms_min=min(ts), ms_all=ts, warmup_s=warm[impl],
                               bandwidth_gbps=bw_now)
                    r.gbps = min_bytes / (r.ms / 1e3) / 1e9
                    r.fraction = r.gbps / bw_now
                    if "torch-foreach" in medians:
                        r.vs_torch_foreach = medians["torch-foreach"] / r.ms
                    if "torch-fused" in medians:
                        r.vs_torch_fused = medians["torch-fused"] / r.ms
                    for key, value in profiled.get(impl, {}).items():
                        setattr(r, key, value)
                    if reference is not None:
                        diffs = [(a.detach() - b.detach()).abs().max().item()
                                 for a, b in zip(params_of[impl], reference)]
                        r.max_abs_diff = max(diffs)
                        r.bitwise_torch_single = all(torch.equal(a, b) for a, b in
                                                     zip(params_of[impl], reference))
                    out["results"].append(r.__dict__)
                    log(f"    {impl:17s} {r.ms:9.3f} ms  {r.gbps:7.2f} GB/s  "
                        f"{100 * r.fraction:5.1f}% of {bw_now:.1f} GB/s")
                del steppers, params_of
        del probe
    # state memory and eager traffic: on the CPU, on a small model (counts per element)
    shapes, arch = transformer_shapes(min(sizes))
    for algorithm in (algorithms if account else []):
        spec = ALGORITHMS[algorithm]
        params = [torch.randn(s).requires_grad_() for s in shapes]
        for p in params:
            p.grad = torch.randn_like(p)
        opt = getattr(optbook, spec.cls)(params, **spec.hyper)
        opt.step()
        state_bytes = sum(v.numel() * v.element_size() for s in opt.state.values()
                          for k, v in s.items()
                          if isinstance(v, torch.Tensor) and k != "step")
        param_bytes = sum(p.numel() * p.element_size() for p in params)
        reads, writes = minimum_streams(algorithm)
        out["state"].append(dict(
            algorithm=algorithm, cls=spec.cls, buffers=state_buffers(algorithm),
            state_bytes_per_param=state_bytes / arch["numel"],
            state_over_params=state_bytes / param_bytes,
            min_reads=reads, min_writes=writes,
            min_bytes_per_param=minimum_bytes_per_param(algorithm)))
        for impl in EAGER:
            if impl not in impls:
                continue
            ps = [p.detach().clone().requires_grad_() for p in params]
            for p, q in zip(ps, params):
                p.grad = q.grad
            _, step = make_stepper(impl, algorithm, ps)
            # state exists: count a steady-state step
            step()
            read, written, flops, ops = count_traffic(step)
            out["traffic"].append(dict(
                algorithm=algorithm, impl=impl, ops=ops, tensors=arch["tensors"],
                flops_per_param=flops / arch["numel"],
                read_bytes_per_param=read / arch["numel"],
                written_bytes_per_param=written / arch["numel"],
                bytes_per_param=(read + written) / arch["numel"]))
    out["machine"]["load_average_end"] = (os.getloadavg() if hasattr(os, "getloadavg")
                                          else None)
    out["machine"]["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    return out


# ----------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------


def _ratio(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}x"


def format_report(data: dict) -> str:
    m = data["machine"]
    lines = [
        f"optbook.bench: torch {m['torch']}, {m['cpu']} ({m['cpu_count']} CPUs, "
        f"{m['torch_threads']} torch threads, last-level cache "
        f"{m.get('last_level_cache')}), {m['date']}",
        f"load average (1, 5, 15 min) at start: "
        f"{', '.join(f'{x:.2f}' for x in m['load_average'] or [])}"
        f"; at end: {', '.join(f'{x:.2f}' for x in m.get('load_average_end') or [])}",
    ]
    traffic = {(t["algorithm"], t["impl"]): t["bytes_per_param"]
               for t in data["traffic"]}
    flops_of = {t["algorithm"]: t["flops_per_param"]
                for t in data["traffic"] if t["impl"] == "optbook-single"}
    for device, bw in data["bandwidth"].items():
        lines += ["", f"== {device}: memory bandwidth (median / best of {bw['reps']}, "
                      f"GB/s): copy {bw['copy']:.1f} / {bw['copy_best']:.1f}, "
                      f"triad {bw['triad']:.1f} / {bw['triad_best']:.1f}, "
                      f"addcmul {bw['addcmul']:.1f} / {bw['addcmul_best']:.1f}; "
                      f"best seen in the run: {bw['limit']:.1f} GB/s",
                  f"   compute: float32 matmul {bw['gflops']:.0f} / "
                  f"{bw['gflops_best']:.0f} GFLOP/s (median / best); ridge point "
                  f"{bw['gflops_best'] / bw['limit']:.1f} flop/byte"]
        rows = [r for r in data["results"] if r["device"] == device]
        for size in dict.fromkeys(r["size"] for r in rows):
            block = [r for r in rows if r["size"] == size]
            lines += ["", f"{device}, {size} parameters "
                          f"({block[0]['tensors']} tensors), float32",
                      f"{'algorithm':9s} {'implementation':17s} {'ms/step':>9s} "
                      f"{'best':>8s} {'GB/s':>7s} {'of B':>6s} {'B':>5s} "
                      f"{'vs torch':>8s} {'vs torch':>8s} "
                      f"{'moved':>6s} {'1st step':>8s} {'= torch':>7s}",
                      f"{'':9s} {'':17s} {'median':>9s} {'ms':>8s} {'':>7s} {'':>6s} "
                      f"{'GB/s':>5s} {'foreach':>8s} {'fused':>8s} {'B/par':>6s} "
                      f"{'s':>8s} {'single':>7s}"]
            for r in block:
                moved = traffic.get((r["algorithm"], r["impl"]))
                if moved is None:  # fused or compiled: the minimum, by construction
                    moved_s = f"{minimum_bytes_per_param(r['algorithm']):d}*"
                else:
                    moved_s = f"{moved:.0f}"
                same = "-" if r["bitwise_torch_single"] is None else (
                    "yes" if r["bitwise_torch_single"] else f"{r['max_abs_diff']:.0e}")
                lines.append(
                    f"{r['algorithm']:9s} {r['impl']:17s} {r['ms']:9.3f} "
                    f"{r['ms_min']:8.3f} {r['gbps']:7.2f} "
                    f"{100 * r['fraction']:5.0f}% {r['bandwidth_gbps']:5.1f} "
                    f"{_ratio(r['vs_torch_foreach']):>8s} "
                    f"{_ratio(r['vs_torch_fused']):>8s} {moved_s:>6s} "
                    f"{r['warmup_s']:8.2f} {same:>7s}")
    lines += ["", "GB/s: the minimum bytes a step must move (bytes/param below) / "
                  "median time.  B: the bandwidth probe's median in the same rounds; "
                  "of B: GB/s / B.",
              "vs torch ...: throughput ratio (> 1: faster).  = torch single: bitwise "
              "equal to torch's single-tensor path after the run (else the max abs "
              "difference).",
              "moved B/par: bytes per parameter read+written by the eager aten "
              "operations (counted); * = the fused minimum (compiled and fused paths).",
              "", "optimizer state and memory traffic per float32 parameter",
              f"{'algorithm':9s} {'state buffers':>13s} {'state/params':>12s} "
              f"{'min reads':>9s} {'min writes':>10s} {'min B/param':>11s} "
              f"{'eager B/param (single, foreach)':>32s} "
              f"{'flop/param':>10s} {'flop/B fused':>12s}"]
    for s in data["state"]:
        eager = [traffic.get((s["algorithm"], impl))
                 for impl in ("optbook-single", "optbook-foreach")]
        eager_s = ", ".join("-" if e is None else f"{e:.0f}" for e in eager)
        flops = flops_of.get(s["algorithm"])
        flops_s = "-" if flops is None else f"{flops:.0f}"
        intensity = "-" if flops is None else f"{flops / s['min_bytes_per_param']:.2f}"
        lines.append(f"{s['algorithm']:9s} {s['buffers']:13d} "
                     f"{s['state_over_params']:11.2f}x {s['min_reads']:9d} "
                     f"{s['min_writes']:10d} {s['min_bytes_per_param']:11d} "
                     f"{eager_s:>32s} {flops_s:>10s} {intensity:>12s}")
    return "\n".join(lines)


def write_csv(data: dict, path: str) -> None:
    keys = ["device", "size", "numel", "tensors", "algorithm", "impl", "ms", "ms_min",
            "gbps", "bandwidth_gbps", "fraction",
            "vs_torch_foreach", "vs_torch_fused", "warmup_s", "max_abs_diff",
            "bitwise_torch_single", "kernels", "memcpys", "peak_mib", "step_extra_mib"]
    m = data["machine"]
    with open(path, "w", newline="") as f:
        f.write(f"# optbook.bench {m['date']} torch {m['torch']} cpu {m['cpu']} "
                f"threads {m['torch_threads']} load {m['load_average']}\n")
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        for r in data["results"]:
            writer.writerow(r)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m optbook.bench",
        description="Time one optimizer step of optbook and torch.optim code paths and "
                    "compare with the memory-bandwidth limit.")
    parser.add_argument("--sizes", default="1M,10M,50M",
                        help="comma-separated parameter counts (default 1M,10M,50M)")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS),
                        help=f"comma-separated, from {','.join(ALGORITHMS)}")
    parser.add_argument("--impls", default=",".join(IMPLEMENTATIONS),
                        help=f"comma-separated, from {','.join(IMPLEMENTATIONS)}")
    parser.add_argument("--devices", default=None,
                        help="comma-separated (default: cpu, plus cuda when present)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the compiled paths")
    parser.add_argument("--reps", type=int, default=7,
                        help="timed rounds (median reported)")
    parser.add_argument("--inner", type=int, default=3, help="steps per timed round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--bandwidth-numel", type=int, default=2**26,
                        help="elements per array of the bandwidth kernels "
                             "(default 2^26: 256 MiB)")
    parser.add_argument("--launches", action="store_true",
                        help="on CUDA, also count each step's kernel launches "
                             "(torch.profiler) and its peak memory")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1M parameters, Adam and SGD, 3 rounds, "
                             "smaller bandwidth arrays")
    parser.add_argument("--json",
                        help="save the results (and machine, date, torch) as JSON")
    parser.add_argument("--csv", help="save the result rows as CSV")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)

    devices = args.devices.split(",") if args.devices else (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    algorithms = args.algorithms.split(",")
    impls = args.impls.split(",")
    for name in algorithms:
        if name not in ALGORITHMS:
            parser.error(f"unknown algorithm {name!r}; "
                         f"choose from {', '.join(ALGORITHMS)}")
    for name in impls:
        if name not in IMPLEMENTATIONS:
            parser.error(f"unknown implementation {name!r}; "
                         f"choose from {', '.join(IMPLEMENTATIONS)}")
    reps, inner, bandwidth_numel = args.reps, args.inner, args.bandwidth_numel
    if args.quick:
        sizes, reps, inner, bandwidth_numel = [10**6], 3, 2, 2**24
        if args.algorithms == ",".join(ALGORITHMS):
            algorithms = ["adam", "sgd"]
    if args.no_compile:
        impls = [i for i in impls if i not in COMPILED]
    log = ((lambda s: None) if args.quiet
           else (lambda s: print(s, file=sys.stderr, flush=True)))
    data = benchmark(sizes, algorithms, impls, devices, reps=reps, inner=inner,
                     warmup=max(1, args.warmup), bandwidth_numel=bandwidth_numel,
                     launches=args.launches, log=log)
    print(format_report(data))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    if args.csv:
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        write_csv(data, args.csv)
    return data


if __name__ == "__main__":
    main()
