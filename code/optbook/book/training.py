"""A small, deterministic training loop shared by every chapter's demo.

The same seed gives the same initial weights and the same mini-batch order, so two
runs that differ only in the optimizer object can be compared parameter by
parameter: that is how each chapter shows its optbook optimizer and the
torch.optim twin produce identical weights.

Fit for a GPU: the data live on the device and batches are indexed there; the
per-step losses are written into a device tensor and read once per epoch (no host
sync per step, which would bind a GPU run to the CPU's round trips); the test
accuracy is read once per run.  ``compile=True`` wraps the model in
``torch.compile``; ``bf16=True`` runs the forward pass under bfloat16 autocast on
CUDA.  On the CPU, with the defaults, a run gives exactly the numbers of the simple
loop that reads ``loss.item()`` at every step (tests/test_training.py proves it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List

import torch
from torch import nn

from .data import Split

__all__ = ["mlp", "small_cnn", "train", "TrainResult", "max_param_diff"]


def mlp(n_in: int = 64, hidden: int = 64, n_out: int = 10) -> nn.Module:
    """A one-hidden-layer perceptron with ReLU."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def small_cnn(channels: int = 16, n_out: int = 10) -> nn.Module:
    """A two-convolution network for 1x8x8 images."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(channels * 16, n_out),
    )


@dataclass
class TrainResult:
    """What a run produced: per-step training loss, per-epoch test accuracy, the
    trained model and the wall time in seconds."""

    losses: List[float] = field(default_factory=list)
    test_accuracy: List[float] = field(default_factory=list)
    model: nn.Module = None
    seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def train(
    make_model: Callable[[], nn.Module],
    make_optimizer: Callable[[list], torch.optim.Optimizer],
    data: Split,
    *,
    epochs: int = 5,
    batch_size: int = 64,
    seed: int = 0,
    device: torch.device | str = "cpu",
    compile: bool = False,
    bf16: bool = False,
) -> TrainResult:
    """Train ``make_model()`` with ``make_optimizer(params)`` by mini-batch
    cross-entropy.

    The model is built right after ``torch.manual_seed(seed)``, and the batch order
    comes from a generator with the same seed, so the run is a function of the
    optimizer alone.  ``bf16`` is honoured on CUDA only (elsewhere it is ignored, so a
    chapter can pass it unconditionally).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    model = make_model().to(device)
    optimizer = make_optimizer(list(model.parameters()))
    forward = torch.compile(model) if compile else model
    autocast = bf16 and device.type == "cuda"
    data = data.to(device)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    result = TrainResult(model=model)
    n = data.X_train.shape[0]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    epoch_losses = torch.empty(steps_per_epoch, device=device)
    accuracies = []
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for k, i in enumerate(range(0, n, batch_size)):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = loss_fn(forward(data.X_train[idx]), data.y_train[idx])
            loss.backward()
            optimizer.step()
            epoch_losses[k] = loss.detach()
        result.losses.extend(epoch_losses.tolist())  # one host sync per epoch
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                             enabled=autocast):
            pred = forward(data.X_test).argmax(dim=1)
            accuracies.append((pred == data.y_test).float().mean())
    result.test_accuracy = torch.stack(accuracies).tolist()  # one more, per run
    result.seconds = time.perf_counter() - start
    return result


def max_param_diff(a: nn.Module, b: nn.Module) -> float:
    """Largest absolute difference between corresponding parameters of two models."""
    return max(
        (pa.detach() - pb.detach()).abs().max().item()
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True)
    )
