"""optbook.book.device: the book's device policy."""

from __future__ import annotations

import torch

from optbook.book.device import one_cpu_thread


def test_one_cpu_thread_pins_the_cpu_and_leaves_other_devices_alone():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        one_cpu_thread(torch.device("meta"))   # not the CPU: unchanged
        assert torch.get_num_threads() == 2
        one_cpu_thread(torch.device("cpu"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
