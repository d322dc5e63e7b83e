"""optbook under torch.distributed: DDP, FSDP2, ZeroRedundancyOptimizer and DCP.

Each test spawns 2 CPU processes (gloo on 127.0.0.1, a free port) running one worker
of tests/_dist_workers.py, which drives optbook.AdamW and torch.optim.AdamW through
the same wrapper and asserts ``torch.equal`` after every step.  A worker's
AssertionError comes back as ``ProcessRaisedException`` with its traceback; a worker
that does not finish within the test's hard timeout is killed and the test fails.
"""

from __future__ import annotations

import socket
import time

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is not available",
                allow_module_level=True)

# imported after the skip: the workers need torch.distributed
import _dist_workers as workers

#: Hard limit per test.  A test needs 8-12 s of CPU time (both ranks together);
#: on 2 cores at load average 15 the slowest took 75 s: this fails a hang without
#: failing a slow CI.
TIMEOUT_S = 300


def free_port() -> int:
    """A port nobody listens on now (the OS picks it for a socket bound to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_workers(worker, *args, timeout: float) -> None:
    """Run ``worker(rank, port, *args)`` on ranks 0 and 1; fail after ``timeout`` s.

    ``ProcessContext.join`` re-raises the first worker failure (and terminates the
    other rank); past the deadline every worker still alive is killed, so a hung
    collective fails this test instead of hanging the suite.  The free port can be
    taken by someone else before rank 0 listens on it: then one retry, on another.
    """
    for attempt in range(2):
        try:
            _run_once(worker, args, timeout)
            return
        except mp.ProcessRaisedException as exc:
            if attempt or "EADDRINUSE" not in str(exc):
                raise


def _run_once(worker, args: tuple, timeout: float) -> None:
    context = mp.start_processes(worker, args=(free_port(), *args),
                                 nprocs=workers.WORLD_SIZE, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not context.join(timeout=max(0.0, deadline - time.monotonic()),
                               grace_period=5):
            if time.monotonic() >= deadline:
                pytest.fail(f"{worker.__name__} did not finish within {timeout:g} s "
                            "(a hung collective?); its processes were killed")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
            process.join()


def test_hard_timeout_kills_hung_workers():
    """The guard itself: workers that never return are killed at the deadline."""
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="did not finish within 3 s"):
        run_workers(workers.sleeping_worker, 600.0, timeout=3)
    assert time.monotonic() - start < 30


def test_ddp_adamw_matches_torch():
    """DDP: optbook.AdamW == torch.optim.AdamW after every step, foreach False/True."""
    run_workers(workers.ddp_worker, timeout=TIMEOUT_S)


@pytest.mark.slow
def test_fsdp2_adamw_matches_torch():
    """FSDP2 fully_shard (Shard(0) DTensor parameters and state), foreach False/True:
    every rank's shards equal after every step; the full (gathered) parameters and
    optimizer state at the end."""
    run_workers(workers.fsdp_worker, timeout=TIMEOUT_S)


@pytest.mark.slow
def test_zero_redundancy_optimizer_with_optbook_adamw():
    """ZeroRedundancyOptimizer(optimizer_class=optbook.AdamW) == the same with
    torch.optim.AdamW: weights every step, each rank's shard of the state and the
    state consolidated on rank 0; foreach False/True."""
    run_workers(workers.zero_worker, timeout=TIMEOUT_S)


@pytest.mark.slow
def test_dcp_round_trip_continues_identically(tmp_path):
    """get_state_dict -> dcp.save -> dcp.load -> set_state_dict into a fresh model and
    optbook.AdamW, then training continues bit for bit as an uninterrupted run; and
    a torch.optim.AdamW checkpoint loads into optbook.AdamW and continues as torch
    would.  Behind DDP and FSDP2, foreach False/True."""
    run_workers(workers.dcp_worker, str(tmp_path), timeout=TIMEOUT_S)


@pytest.mark.slow
def test_dcp_round_trip_lookahead(tmp_path):
    """Lookahead(optbook.AdamW) through DCP: resumed between two synchronisations, it
    must continue bit for bit (slow weights and fast-step count restored)."""
    run_workers(workers.lookahead_dcp_worker, str(tmp_path), timeout=TIMEOUT_S)
