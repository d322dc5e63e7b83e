"""Worker processes for tests/test_distributed.py: optbook under torch.distributed.

``torch.multiprocessing`` spawns each worker in a fresh interpreter and pickles it by
reference, so every worker is a top-level function of this module (which imports
neither pytest nor the test module).  A worker is called as ``worker(rank, port,
*args)``, joins a 2-process gloo group on 127.0.0.1, and raises ``AssertionError``
on a mismatch; torch.multiprocessing forwards the traceback to the test.

Every comparison is ``torch.equal`` between an optbook optimizer and its torch.optim
twin driven through the same distributed wrapper on the same per-rank batches: the
wrappers (DDP, FSDP2, ZeroRedundancyOptimizer, DCP) must not open a gap that the
single-process tests cannot see.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import optbook

# FSDP2, DTensor, DCP and ZeRO are imported where they are used: together they add
# ~0.9 s of CPU to each process's start, which the quick DDP test does not need.

WORLD_SIZE = 2
#: Training steps per comparison; the DCP tests checkpoint after SPLIT of them.
STEPS = 12
SPLIT = 7
#: A large lr and weight decay, so that every weight moves and small differences
#: show: scaling optbook's lr by 1 + 2**-17 fails every lockstep test at step 1.
HYPER = {"lr": 2e-2, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1}
#: Rendezvous and collectives give up after this long inside a worker (a rank may
#: still be importing torch on a loaded machine); the test's hard timeout kills
#: the processes in any case.
COLLECTIVE_TIMEOUT = timedelta(seconds=120)


@contextlib.contextmanager
def process_group(rank: int, port: int) -> Iterator[None]:
    """A 2-rank gloo group on 127.0.0.1:``port``, destroyed however the body ends."""
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE,
                            timeout=COLLECTIVE_TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------------------------
# The workload: a small MLP, per-rank batches that depend only on (rank, step).
# ----------------------------------------------------------------------------------


def make_mlp(seed: int) -> nn.Sequential:
    """An MLP whose output sizes (15, 6, 3) do not divide evenly by 2 ranks: FSDP2
    shards them unevenly (8/7 rows, 3/3, 2/1) and pads; ZeRO splits 6 tensors."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 15), nn.Tanh(), nn.Linear(15, 6), nn.Tanh(),
                         nn.Linear(6, 3))


def batch(rank: int, step: int) -> tuple:
    """Rank ``rank``'s batch at ``step``: a resumed run sees the same data as an
    uninterrupted one, and the ranks see different data (the reduction matters)."""
    g = torch.Generator().manual_seed(1000 * (rank + 1) + step)
    return torch.randn(5, 8, generator=g), torch.randn(5, 3, generator=g)


def train(model: nn.Module, opt: torch.optim.Optimizer, steps: range,
          after_step: Callable[[int], None] = lambda step: None) -> None:
    rank = dist.get_rank()
    for step in steps:
        x, y = batch(rank, step)
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        after_step(step)


def wrap_ddp(model: nn.Module) -> nn.Module:
    return DDP(model)


def wrap_fsdp(model: nn.Module) -> nn.Module:
    """FSDP2: each Linear its own group, then the root; parameters become DTensors."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (WORLD_SIZE,))
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


WRAPPERS = {"ddp": wrap_ddp, "fsdp": wrap_fsdp}


# ----------------------------------------------------------------------------------
# Comparisons (collective for DTensors: every rank makes them in the same order).
# ----------------------------------------------------------------------------------


def is_dtensor(t: object) -> bool:
    """Whether ``t`` is a DTensor; none exists before torch.distributed.tensor is
    imported, so this does not import it."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(t, module.DTensor)


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor: a DTensor is gathered from its shards (a collective)."""
    return (t.full_tensor() if is_dtensor(t) else t).detach()


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (no communication); a plain tensor itself."""
    return (t.to_local() if is_dtensor(t) else t).detach()


def assert_equal(actual, expected, what: str, gather: bool = True) -> None:
    """Bitwise equality of the full tensors; with ``gather=False`` of this rank's
    shards (every rank checks its own: the same claim, without a collective)."""
    if not (isinstance(actual, torch.Tensor) or isinstance(expected, torch.Tensor)):
        assert actual == expected, f"{what}: {actual!r} != {expected!r}"
        return
    assert type(actual) is type(expected), f"{what}: {type(actual)} != {type(expected)}"
    view = full if gather else local
    actual, expected = view(actual), view(expected)
    assert actual.dtype == expected.dtype, f"{what}: {actual.dtype} != {expected.dtype}"
    if not torch.equal(actual, expected):
        worst = (actual.double() - expected.double()).abs().max().item()
        raise AssertionError(f"rank {dist.get_rank()}: {what}: not bitwise equal "
                             f"(max abs diff {worst:.3e})")


def assert_params_equal(ours: nn.Module, theirs: nn.Module, what: str,
                        gather: bool = True) -> None:
    ours_named = list(ours.named_parameters())
    theirs_named = list(theirs.named_parameters())
    assert [n for n, _ in ours_named] == [n for n, _ in theirs_named], what
    for (name, a), (_, b) in zip(ours_named, theirs_named):
        assert_equal(a, b, f"{what}: parameter {name}", gather)


def hyperparameters(state_dict: dict) -> list:
    return [{k: v for k, v in group.items() if k != "params"}
            for group in state_dict["param_groups"]]


def assert_state_equal(ours: dict, theirs: dict, what: str) -> None:
    """Two optimizer ``state_dict()``s: the same entries, names, bits and groups."""
    assert ours["state"].keys() == theirs["state"].keys(), f"{what}: state keys differ"
    for key in ours["state"]:
        a, b = ours["state"][key], theirs["state"][key]
        assert a.keys() == b.keys(), f"{what}: state[{key}]: {a.keys()} != {b.keys()}"
        for name in a:
            assert_equal(a[name], b[name], f"{what}: state[{key}][{name!r}]")
    groups, other = hyperparameters(ours), hyperparameters(theirs)
    assert groups == other, f"{what}: param_groups {groups} != {other}"


def snapshot(model: nn.Module, gather: bool = True) -> list:
    return [(full if gather else local)(p).clone() for p in model.parameters()]


def assert_all_moved(model: nn.Module, before: list, what: str) -> None:
    """Training moved every parameter (equal untouched weights would prove nothing)."""
    for (name, p), old in zip(model.named_parameters(), before):
        assert not torch.equal(full(p), old), f"{what}: parameter {name} never moved"


def adamw_pair(wrap: Callable, foreach: bool) -> tuple:
    """Two identical wrapped models, one with optbook.AdamW, one with torch's."""
    base = make_mlp(seed=0)
    ours, theirs = wrap(copy.deepcopy(base)), wrap(copy.deepcopy(base))
    return (ours, optbook.AdamW(ours.parameters(), foreach=foreach, **HYPER),
            theirs, torch.optim.AdamW(theirs.parameters(), foreach=foreach, **HYPER))


def lockstep(wrap: Callable, foreach: bool, what: str,
             check: Callable | None = None) -> None:
    """optbook.AdamW and torch.optim.AdamW, both behind ``wrap``, for STEPS steps:
    parameters equal after every step (each rank's shard), the full parameters and
    optimizer state at the end."""
    ours, ours_opt, theirs, theirs_opt = adamw_pair(wrap, foreach)
    before = snapshot(ours)
    for step in range(STEPS):
        train(ours, ours_opt, range(step, step + 1))
        train(theirs, theirs_opt, range(step, step + 1))
        assert_params_equal(ours, theirs, f"{what} step {step + 1}", gather=False)
    assert_params_equal(ours, theirs, f"{what} end")
    assert_state_equal(ours_opt.state_dict(), theirs_opt.state_dict(), what)
    assert_all_moved(ours, before, what)
    if check is not None:
        check(ours, ours_opt)


# ----------------------------------------------------------------------------------
# Workers: DDP, FSDP2, ZeroRedundancyOptimizer
# ----------------------------------------------------------------------------------


def ddp_worker(rank: int, port: int) -> None:
    """DistributedDataParallel: gradients all-reduced (averaged) before each step."""
    with process_group(rank, port):
        for foreach in (False, True):
            lockstep(wrap_ddp, foreach, f"DDP foreach={foreach}")


def _check_sharded(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """The FSDP2 run really had Shard(0) DTensor parameters and optimizer state."""
    from torch.distributed.tensor import Shard

    for name, p in model.named_parameters():
        assert is_dtensor(p) and p.placements == (Shard(0),), name
        assert p.to_local().shape[0] < p.shape[0], f"{name} is not sharded"
        for key in ("exp_avg", "exp_avg_sq"):
            assert is_dtensor(opt.state[p][key]), f"{name}: {key} is not a DTensor"


def fsdp_worker(rank: int, port: int) -> None:
    """FSDP2 ``fully_shard``: parameters, gradients and state are Shard(0) DTensors;
    each rank's optimizer updates its shards."""
    with process_group(rank, port):
        for foreach in (False, True):
            lockstep(wrap_fsdp, foreach, f"FSDP2 foreach={foreach}", _check_sharded)


def zero_pair(cls: type, base: nn.Module, foreach: bool) -> tuple:
    from torch.distributed.optim import ZeroRedundancyOptimizer

    model = DDP(copy.deepcopy(base))
    opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=cls,
                                  foreach=foreach, **HYPER)
    return model, opt


def zero_worker(rank: int, port: int) -> None:
    """ZeroRedundancyOptimizer over DDP: each rank builds the optimizer class on its
    own partition of the parameters, steps it and broadcasts the updated weights."""
    with process_group(rank, port):
        for foreach in (False, True):
            what = f"ZeRO foreach={foreach}"
            base = make_mlp(seed=0)
            ours, ours_opt = zero_pair(optbook.AdamW, base, foreach)
            theirs, theirs_opt = zero_pair(torch.optim.AdamW, base, foreach)
            assert isinstance(ours_opt.optim, optbook.AdamW), type(ours_opt.optim)
            owned = sum(len(g["params"]) for g in ours_opt.optim.param_groups)
            n_params = len(list(ours.parameters()))
            assert 0 < owned < n_params, f"{what}: rank {rank} owns {owned}/{n_params}"
            before = snapshot(ours)
            for step in range(STEPS):
                train(ours, ours_opt, range(step, step + 1))
                train(theirs, theirs_opt, range(step, step + 1))
                assert_params_equal(ours, theirs, f"{what} step {step + 1}")
            assert_all_moved(ours, before, what)
            # each rank's own shard of the state, then the whole state on rank 0
            assert_state_equal(ours_opt.optim.state_dict(),
                               theirs_opt.optim.state_dict(), f"{what} local shard")
            ours_opt.consolidate_state_dict(to=0)
            theirs_opt.consolidate_state_dict(to=0)
            if rank == 0:
                consolidated = ours_opt.state_dict()
                assert len(consolidated["state"]) == n_params, what
                assert_state_equal(consolidated, theirs_opt.state_dict(),
                                   f"{what} consolidated")


# ----------------------------------------------------------------------------------
# DCP: save after SPLIT steps, load into a fresh model and optimizer, continue.
# ----------------------------------------------------------------------------------


def save(model: nn.Module, opt: torch.optim.Optimizer, path: Path) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=path)


def load(model: nn.Module, opt: torch.optim.Optimizer, path: Path) -> None:
    """The documented recipe: the fresh objects' own state_dicts are the template
    that ``dcp.load`` fills in place (resharding as needed), then ``set_state_dict``."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, opt, model_state_dict=state["model"],
                   optim_state_dict=state["optim"])


def resume_matches(wrap: Callable, make_saved: Callable, make_resumed: Callable,
                   path: Path, what: str, state_of: Callable | None = None) -> None:
    """An uninterrupted run of ``make_saved`` for STEPS steps is the reference; a
    second run stops after SPLIT steps and is checkpointed; a fresh model (other
    initial weights) with a ``make_resumed`` optimizer loads it and runs the rest.

    Parameters must match the reference after every resumed step (each rank's
    shard; the full tensors at the end), and the optimizer states (``state_of(opt)``,
    default ``opt.state_dict()``) must match at the load and at the end.
    """
    state_of = state_of or (lambda opt: opt.state_dict())
    reference = wrap(make_mlp(seed=0))
    reference_opt = make_saved(reference.parameters())
    reference_params = []
    train(reference, reference_opt, range(STEPS),
          lambda step: reference_params.append(snapshot(reference, gather=False)))

    saved = wrap(make_mlp(seed=0))
    saved_opt = make_saved(saved.parameters())
    train(saved, saved_opt, range(SPLIT))
    save(saved, saved_opt, path)

    resumed = wrap(make_mlp(seed=1))
    resumed_opt = make_resumed(resumed.parameters())
    load(resumed, resumed_opt, path)
    assert_params_equal(resumed, saved, f"{what}: weights after load")
    assert_state_equal(state_of(resumed_opt), state_of(saved_opt),
                       f"{what}: after load")

    def compare(step: int) -> None:
        named = zip(resumed.named_parameters(), reference_params[step])
        for (name, p), expected in named:
            assert_equal(local(p), expected, f"{what}: step {step + 1}, {name}")

    train(resumed, resumed_opt, range(SPLIT, STEPS), compare)
    assert_params_equal(resumed, reference, f"{what}: end")
    assert_state_equal(state_of(resumed_opt), state_of(reference_opt), f"{what}: end")


def adamw(cls: type, foreach: bool) -> Callable:
    return lambda params: cls(params, foreach=foreach, **HYPER)


def dcp_worker(rank: int, port: int, root: str) -> None:
    """optbook.AdamW's round trip, and torch.optim.AdamW's checkpoint loaded into
    optbook.AdamW, behind DDP (plain tensors) and FSDP2 (DTensor shards)."""
    with process_group(rank, port):
        for wrap_name, wrap in WRAPPERS.items():
            for foreach in (False, True):
                tag = f"{wrap_name}-foreach{foreach}"
                ours = adamw(optbook.AdamW, foreach)
                theirs = adamw(torch.optim.AdamW, foreach)
                resume_matches(wrap, ours, ours, Path(root) / f"optbook-{tag}",
                               f"DCP optbook->optbook {tag}")
                resume_matches(wrap, theirs, ours, Path(root) / f"torch-{tag}",
                               f"DCP torch->optbook {tag}")


def lookahead(params) -> optbook.Lookahead:
    """k = 3: the checkpoint (after 7 fast steps) falls between two synchronisations,
    and the resumed run synchronises twice (after steps 9 and 12)."""
    inner = optbook.AdamW(params, foreach=False, **HYPER)
    return optbook.Lookahead(inner, k=3, alpha=0.5)


def lookahead_dcp_worker(rank: int, port: int, root: str) -> None:
    """Lookahead(AdamW) through get_state_dict/dcp.save/dcp.load/set_state_dict: the
    slow weights and the fast-step count must survive, or the resumed run diverges
    at its next synchronisation.  The inner AdamW's state is compared directly."""
    with process_group(rank, port):
        for wrap_name, wrap in WRAPPERS.items():
            resume_matches(wrap, lookahead, lookahead,
                           Path(root) / f"lookahead-{wrap_name}",
                           f"DCP Lookahead {wrap_name}",
                           state_of=lambda opt: opt.base_optimizer.state_dict())


def sleeping_worker(rank: int, port: int, seconds: float) -> None:
    """Stands for a hung collective: the test's hard timeout must end it."""
    time.sleep(seconds)
