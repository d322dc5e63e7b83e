"""A small, deterministic training loop shared by every chapter's demo.

The same seed gives the same initial weights and the same mini-batch order, so two
runs that differ only in the optimizer object can be compared parameter by
parameter: that is how each chapter shows its optbook optimizer and the
torch.optim twin produce identical weights.
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
) -> TrainResult:
    """Train ``make_model()`` with ``make_optimizer(params)`` by mini-batch cross-entropy.

    The model is built right after ``torch.manual_seed(seed)``, and the batch order
    comes from a generator with the same seed, so the run is a function of the
    optimizer alone.
    """
    torch.manual_seed(seed)
    model = make_model().to(device)
    optimizer = make_optimizer(list(model.parameters()))
    data = data.to(device)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    result = TrainResult(model=model)
    n = data.X_train.shape[0]
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(data.X_train[idx]), data.y_train[idx])
            loss.backward()
            optimizer.step()
            result.losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            pred = model(data.X_test).argmax(dim=1)
            result.test_accuracy.append((pred == data.y_test).float().mean().item())
    result.seconds = time.perf_counter() - start
    return result


def max_param_diff(a: nn.Module, b: nn.Module) -> float:
    """Largest absolute difference between corresponding parameters of two models."""
    return max(
        (pa.detach() - pb.detach()).abs().max().item()
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True)
    )
