"""Device policy of the book: ``cuda`` if present, else ``mps``, else the CPU.

Every demo calls :func:`get_device` and prints :func:`describe` so a reader sees
where the numbers came from.  ``OPTBOOK_DEVICE=cpu`` forces a device (for example
to reproduce the CPU numbers on a GPU machine).
"""

from __future__ import annotations

import os
import platform

import torch

__all__ = ["get_device", "describe", "one_cpu_thread", "scale"]


def get_device() -> torch.device:
    """The best available device: cuda, then mps, then cpu (or ``$OPTBOOK_DEVICE``)."""
    forced = os.environ.get("OPTBOOK_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """A one-line description, e.g. ``cpu (x86_64, 2 threads)`` or the GPU's name."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    return device.type


def one_cpu_thread(device: torch.device) -> None:
    """On the CPU, run torch on one thread (elsewhere, leave it alone).

    The chapters' models are small: a second thread saves them little (beyond_diagonal,
    the largest, 71 s on two threads, 81 s on one), and ``make book`` executes two
    chapters at once on a 2-core machine, where a chapter's second thread waits,
    spinning, for a core the other chapter holds (4-5 times slower; see
    code/scripts/book_execute.py)."""
    if device.type == "cpu":
        torch.set_num_threads(1)


def scale(device: torch.device) -> int:
    """The one visible knob for demo size: 1 on the CPU, ``$OPTBOOK_SCALE`` (default 4)
    on an accelerator, where a larger run costs little."""
    if device.type == "cpu":
        return int(os.environ.get("OPTBOOK_SCALE", "1"))
    return int(os.environ.get("OPTBOOK_SCALE", "4"))
