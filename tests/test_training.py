"""The book's training loop (optbook.book.training): deterministic, and on the CPU
exactly the numbers of the plain loop that reads ``loss.item()`` at every step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import optbook
from optbook.book.data import load_digits
from optbook.book.training import mlp, train


def plain_loop(make_model, make_optimizer, data, *, epochs, batch_size=64, seed=0):
    """The v1 loop: a host sync (loss.item()) per step, accuracy read per epoch."""
    torch.manual_seed(seed)
    model = make_model()
    optimizer = make_optimizer(list(model.parameters()))
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    losses, accuracy = [], []
    n = data.X_train.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(data.X_train[idx]), data.y_train[idx])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        with torch.no_grad():
            pred = model(data.X_test).argmax(dim=1)
            accuracy.append((pred == data.y_test).float().mean().item())
    return losses, accuracy, model


@pytest.mark.parametrize("make_optimizer", [
    lambda p: optbook.Adam(p, lr=1e-2),
    lambda p: optbook.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
], ids=["adam", "sgd-nesterov"])
def test_loop_gives_exactly_the_plain_loops_numbers_on_cpu(make_optimizer):
    data = load_digits()
    run = train(mlp, make_optimizer, data, epochs=3)
    losses, accuracy, model = plain_loop(mlp, make_optimizer, data, epochs=3)
    assert run.losses == losses            # every per-step loss, exactly
    assert run.test_accuracy == accuracy
    for a, b in zip(run.model.parameters(), model.parameters()):
        assert torch.equal(a, b)
    assert len(run.losses) == 3 * ((data.X_train.shape[0] + 63) // 64)


def test_bf16_is_ignored_off_cuda_and_runs_are_deterministic():
    data = load_digits()
    a = train(mlp, lambda p: optbook.Adam(p, lr=1e-2), data, epochs=1, bf16=True)
    b = train(mlp, lambda p: optbook.Adam(p, lr=1e-2), data, epochs=1)
    assert a.losses == b.losses


@pytest.mark.slow
def test_compiled_model_trains_like_the_eager_one():
    """torch.compile of the model fuses the forward/backward kernels, so the numbers
    are equal to rounding, not bitwise: within 1e-4 of the eager loss at every step."""
    data = load_digits()
    eager = train(mlp, lambda p: optbook.Adam(p, lr=1e-2), data, epochs=1)
    compiled = train(mlp, lambda p: optbook.Adam(p, lr=1e-2), data, epochs=1, compile=True)
    torch.testing.assert_close(torch.tensor(compiled.losses), torch.tensor(eager.losses),
                               rtol=1e-4, atol=1e-4)
