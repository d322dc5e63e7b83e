"""Batched sweeps (optbook.book.sweeps): S runs as one computation equal the same S
runs of optbook.book.training.train, one by one, to the tolerance stated here."""

from __future__ import annotations

import pytest
import torch

import optbook
from optbook.book.data import load_digits
from optbook.book.sweeps import sweep
from optbook.book.training import mlp, train

# Measured worst over 3 epochs (66 steps) on the digits MLP, float32: |Δloss| 2.7e-6,
# |Δθ| 8.2e-7 (Adam); 4.8e-7 and 2.4e-7 (SGD).  The bounds leave a factor of ~4.
LOSS_TOL, PARAM_TOL = 1e-5, 4e-6


@pytest.mark.parametrize("algorithm, hyper, make", [
    ("adam", dict(lr=[1e-2, 3e-3, 1e-2], weight_decay=1e-3),
     lambda lr: (lambda p: optbook.Adam(p, lr=lr, weight_decay=1e-3))),
    ("sgd", dict(lr=[0.1, 0.05, 0.1], momentum=[0.9, 0.0, 0.5], nesterov=False),
     None),
], ids=["adam", "sgd"])
def test_batched_runs_equal_the_runs_one_by_one(algorithm, hyper, make):
    data = load_digits()
    seeds = [0, 1, 2]
    result = sweep(mlp, data, seeds=seeds, algorithm=algorithm, epochs=3, **hyper)
    for s, seed in enumerate(seeds):
        lr = hyper["lr"][s]
        if algorithm == "adam":
            make_opt = make(lr)
        else:
            mu = hyper["momentum"][s]
            make_opt = (lambda p, lr=lr, mu=mu: optbook.SGD(p, lr=lr, momentum=mu))
        one = train(mlp, make_opt, data, epochs=3, seed=seed)
        losses = torch.tensor(one.losses)
        assert result.losses[s].shape == losses.shape
        assert (result.losses[s] - losses).abs().max().item() <= LOSS_TOL
        for name, p in one.model.named_parameters():
            assert (result.params[name][s] - p.detach()).abs().max().item() <= PARAM_TOL
    # and the runs really differ from each other (the test compares distinct runs)
    assert not torch.equal(result.losses[0], result.losses[1])


def test_hyperparameter_lists_must_match_the_runs():
    with pytest.raises(ValueError, match="lr"):
        sweep(mlp, load_digits(), seeds=[0, 1], algorithm="sgd", lr=[0.1, 0.2, 0.3], epochs=1)
    with pytest.raises(ValueError, match="algorithm"):
        sweep(mlp, load_digits(), seeds=[0], algorithm="lion", lr=0.1, epochs=1)
