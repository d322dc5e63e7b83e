"""The bake-off's workload suite (optbook.book.workloads): four offline data sets,
models that are functions of their seed, batches drawn up front from the seed alone,
the metrics each workload reports, and the matrices Muon is given."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from optbook.book import lm
from optbook.book import workloads as W

#: name -> (train examples, validation examples, features, classes); the LM's row is
#: (train characters, validation characters, context, None).  Digits: 1,797 images,
#: round(0.25 * 1797) = 449 held out (the module docstring's "1,347 / 450" is off by
#: one).
SIZES = {"digits_mlp": (1348, 449, 64, 10), "mnist1d_mlp": (4000, 1000, 40, 10),
         "zipf_mlp": (32768, 4096, 32, 64), "char_lm": (180_000, 20_000, 32, None)}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: these models are too small to gain from two, and the
    machine the tests run on is often busy (see tests/test_lm.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def datas():
    return {name: w.data() for name, w in W.WORKLOADS.items()}


def params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def same(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


# -- data, made offline ----------------------------------------------------------------

def test_every_workload_is_made_offline_with_its_documented_sizes(no_network):
    """No network: every socket raises, the cached generators start from scratch,
    and every workload still builds its data, its model and a finite first loss
    near log(classes) (an untrained model guesses uniformly)."""
    for cached in (W.mnist1d_split, W.zipf_split, lm.default_data):
        cached.cache_clear()
    assert set(W.WORKLOADS) == set(SIZES)
    for name, w in W.WORKLOADS.items():
        n_train, n_val, width, classes = SIZES[name]
        data = w.data()
        model = w.model(data, 0)
        if w.kind == "lm":
            assert (data.train.numel(), data.val.numel()) == (n_train, n_val)
            assert model.block == width == W.LM_BLOCK
            classes = len(data.vocab)
        else:
            assert data.X_train.shape == (n_train, width)
            assert data.X_test.shape == (n_val, width)
            assert data.y_train.shape == (n_train,) and data.y_test.shape == (n_val,)
            assert data.y_train.dtype == torch.long
            assert set(data.y_train.unique().tolist()) == set(range(classes))
            assert model(data.X_test[:3]).shape == (3, classes)
        loss = w.loss(model, data, w.batches(data, 0, 1)[0])
        assert loss.ndim == 0
        assert abs(loss.item() - math.log(classes)) < 0.15, (name, loss.item())


# -- batches ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["digits_mlp", "zipf_mlp"])
def test_classify_batches_are_epochs_of_permutations(datas, name):
    w, data = W.WORKLOADS[name], datas[name]
    n = data.X_train.shape[0]
    per_epoch = n // w.batch_size
    steps = 2 * per_epoch + 3                    # two whole epochs and part of a third
    b = w.batches(data, 5, steps)
    assert b.shape == (steps, w.batch_size) and b.dtype == torch.long
    assert b.device.type == "cpu"
    assert 0 <= b.min().item() and b.max().item() < n
    for e in range(3):
        epoch = b[e * per_epoch:(e + 1) * per_epoch].flatten()
        assert epoch.unique().numel() == epoch.numel()          # no repeats
    # only the ragged last batch of each epoch is dropped
    first = b[:per_epoch].flatten()
    assert first.numel() == n - n % w.batch_size
    # the epochs are different permutations, not one order repeated
    assert not torch.equal(b[:per_epoch], b[per_epoch:2 * per_epoch])


@pytest.mark.parametrize("name", ["digits_mlp", "char_lm"])
def test_batches_are_a_function_of_the_seed_alone(datas, name):
    w, data = W.WORKLOADS[name], datas[name]
    torch.manual_seed(0)
    before = torch.rand(4)
    torch.manual_seed(0)
    b = w.batches(data, 3, 40)
    assert torch.equal(torch.rand(4), before)          # the global generator untouched
    torch.manual_seed(123)
    assert torch.equal(w.batches(data, 3, 40), b)
    assert not torch.equal(w.batches(data, 4, 40), b)
    # a shorter run sees the first steps of a longer one (the same data order)
    assert torch.equal(w.batches(data, 3, 7), b[:7])
    assert b.shape == (40, w.batch_size)


def test_lm_batches_are_window_starts_inside_the_training_text(datas):
    w, data = W.WORKLOADS["char_lm"], datas["char_lm"]
    b = w.batches(data, 0, 500)
    assert b.shape == (500, w.batch_size)
    assert b.min().item() >= 0
    # a window's last next-character target stays inside the text
    assert b.max().item() + W.LM_BLOCK <= data.train.numel() - 1
    assert b.unique().numel() > 0.9 * b.numel()        # spread over the text


# -- models ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SIZES))
def test_model_is_a_function_of_the_seed(datas, name):
    w, data = W.WORKLOADS[name], datas[name]
    torch.manual_seed(99)
    torch.rand(10)                                      # whatever ran before
    a = params(w.model(data, 0))
    b = params(w.model(data, 0))
    c = params(w.model(data, 1))
    assert same(a, b)
    assert len(a) == len(c) and not any(torch.equal(x, y) for x, y in zip(a, c)
                                        if x.numel() > 1 and x.std() > 0)


def test_mlp2_has_one_hidden_matrix():
    model = W.mlp2(5, 7, 3)
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(7, 5), (7,), (7, 7), (7,), (3, 7), (3,)]
    x = torch.randn(4, 5)
    h = torch.relu(model[2](torch.relu(model[0](x))))
    assert torch.equal(model(x), model[4](h))


# -- the generated data sets -----------------------------------------------------------

def test_mnist1d_split_restores_numpy_and_python_global_rngs():
    from mnist1d.data import get_dataset_args, make_dataset

    np.random.seed(7)
    random.seed(7)
    expected = (np.random.rand(3).tolist(), random.random())
    np.random.seed(7)
    random.seed(7)
    W.mnist1d_split.__wrapped__(seed=3)                 # bypass the cache
    assert (np.random.rand(3).tolist(), random.random()) == expected
    # ... which it must do: the generator underneath reseeds both
    np.random.seed(7)
    random.seed(7)
    args = get_dataset_args()
    args.seed, args.num_samples = 3, 50
    make_dataset(args)
    assert (np.random.rand(3).tolist(), random.random()) != expected


def test_mnist1d_split_is_a_function_of_its_seed(datas):
    a = datas["mnist1d_mlp"]
    assert W.mnist1d_split() is W.mnist1d_split()       # made once per process
    assert torch.equal(W.mnist1d_split.__wrapped__(42).X_train, a.X_train)
    # MNIST-1D's ten classes are balanced (about 10 % each, 4,000 examples)
    counts = torch.bincount(a.y_train, minlength=10)
    assert counts.min().item() > 300 and counts.max().item() < 500


def test_zipf_split_frequencies_fall_like_one_over_k():
    s = W.zipf_split()
    n = s.y_train.numel()
    counts = torch.bincount(s.y_train, minlength=64).double()
    harmonic = sum(1 / k for k in range(1, 65))
    p = [1 / (k * harmonic) for k in range(1, 65)]

    def rel_sd(*ks):       # of a count (one k) or a ratio of counts, binomial noise
        return math.sqrt(sum((1 - p[k]) / (n * p[k]) for k in ks))

    # every bound is four binomial standard deviations at this n
    assert counts[0].item() / n == pytest.approx(p[0], rel=4 * rel_sd(0))
    assert (counts[0] / counts[1]).item() == pytest.approx(2.0, rel=4 * rel_sd(0, 1))
    assert (counts[0] / counts[7]).item() == pytest.approx(8.0, rel=4 * rel_sd(0, 7))
    assert 4 * rel_sd(0, 7) < 0.3                        # the bound means something
    # over all 64 classes, log count against log rank has slope -1
    k = np.arange(1, 65)
    slope = np.polyfit(np.log(k), np.log(counts.numpy()), 1)[0]
    assert slope == pytest.approx(-1.0, abs=0.1)
    assert counts.min().item() > 0                     # every class is present
    # validation comes from the same imbalanced distribution
    val = torch.bincount(s.y_test, minlength=64).double()
    assert (val[0] / val.sum()).item() == pytest.approx(p[0], rel=0.1)


def test_zipf_split_is_standardised_on_train_and_heavy_tailed():
    s = W.zipf_split()
    X = s.X_train.double()
    assert X.mean(0).abs().max().item() < 1e-5
    assert (X.std(0, unbiased=False) - 1).abs().max().item() < 1e-5
    # the validation half is standardised with the training statistics, not its own
    V = s.X_test.double()
    assert V.mean(0).abs().max().item() > 1e-3
    assert 0.7 < V.std(0).min().item() and V.std(0).max().item() < 1.4
    # Student-t(3) noise: a kurtosis far above the normal's 3
    assert (X ** 4).mean(0).min().item() > 5.0
    other = W.zipf_split.__wrapped__(seed=1)
    assert not torch.equal(other.y_train, s.y_train)
    assert torch.equal(W.zipf_split.__wrapped__().X_train, s.X_train)


# -- metrics ---------------------------------------------------------------------------

class Fixed(nn.Module):
    """A 'model' that returns the given logits, whatever its input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        assert x.shape[0] == self.logits.shape[0]
        return self.logits


@pytest.mark.parametrize("name", ["digits_mlp", "mnist1d_mlp"])
def test_error_is_the_misclassified_fraction(datas, name):
    """The "error" metric on both ten-class problems (whichever metric each is
    registered with: the formula is the workload's, keyed by ``metric``)."""
    w = dataclasses.replace(W.WORKLOADS[name], metric="error")
    data = datas[name]
    y, n = data.y_test, data.y_test.numel()
    oracle = Fixed(10.0 * nn.functional.one_hot(y, 10).float())
    assert w.evaluate(oracle, data).item() == 0.0
    always_3 = torch.zeros(n, 10)
    always_3[:, 3] = 1.0
    err = w.evaluate(Fixed(always_3), data)
    assert err.ndim == 0
    assert err.item() == pytest.approx(1 - (y == 3).float().mean().item(), abs=1e-7)
    # an untrained network is about as good as a guess among ten classes
    for seed in (0, 1, 2):
        e = w.evaluate(w.model(data, seed), data).item()
        assert 0.0 <= e <= 1.0
        assert e == pytest.approx(0.9, abs=0.06)
        assert round(e * n) == pytest.approx(e * n, abs=1e-3)   # a count over n


@pytest.mark.parametrize("name", ["digits_mlp", "mnist1d_mlp", "zipf_mlp"])
def test_each_classifier_reports_its_declared_metric(datas, name):
    w, data = W.WORKLOADS[name], datas[name]
    classes = SIZES[name][3]
    y, n = data.y_test, data.y_test.numel()
    zeros = w.evaluate(Fixed(torch.zeros(n, classes)), data).item()
    assert w.metric in ("error", "cross-entropy")
    if w.metric == "error":          # argmax of equal logits is class 0
        assert zeros == pytest.approx(1 - (y == 0).float().mean().item(), abs=1e-7)
    else:
        assert zeros == pytest.approx(math.log(classes), rel=1e-6)
        sure = w.evaluate(Fixed(30.0 * nn.functional.one_hot(y, classes).float()),
                          data).item()
        assert 0 <= sure < 1e-9


def test_zipf_metric_is_validation_cross_entropy(datas):
    w, data = W.WORKLOADS["zipf_mlp"], datas["zipf_mlp"]
    n = data.y_test.numel()
    uniform = w.evaluate(Fixed(torch.zeros(n, 64)), data).item()
    assert uniform == pytest.approx(math.log(64), rel=1e-6)
    # logits at the class frequencies score their entropy, better than uniform
    freq = torch.bincount(data.y_train, minlength=64).float() / data.y_train.numel()
    prior = w.evaluate(Fixed(freq.log().expand(n, 64)), data).item()
    assert prior < uniform - 0.5
    assert w.evaluate(w.model(data, 0), data).item() == pytest.approx(math.log(64),
                                                                      abs=0.15)


def test_lm_metric_is_validation_bits_per_character(datas):
    w, data = W.WORKLOADS["char_lm"], datas["char_lm"]
    model = w.model(data, 0)
    bpc = w.evaluate(model, data)
    assert bpc.ndim == 0
    assert bpc.item() == pytest.approx(math.log2(len(data.vocab)), abs=0.2)
    assert torch.equal(bpc, lm.evaluate_bpc(model, data.val, max_windows=128))
    assert model.training                                # evaluate leaves it as it was


def test_hidden_matrices_are_the_middle_weights_and_the_lm_matrices(datas):
    for name in ("digits_mlp", "mnist1d_mlp", "zipf_mlp"):
        w = W.WORKLOADS[name]
        model = w.model(datas[name], 0)
        hidden = w.hidden_matrices(model)
        assert len(hidden) == 1 and hidden[0] is model[2].weight
        assert hidden[0].shape == (128, 128)
    w = W.WORKLOADS["char_lm"]
    model = w.model(datas["char_lm"], 0)
    hidden = w.hidden_matrices(model)
    expected = lm.matrix_params(model)
    assert len(hidden) == len(expected) == 4 * 2        # qkv, proj, two MLP; 2 blocks
    assert all(a is b for a, b in zip(hidden, expected))
    assert all(p.ndim == 2 for p in hidden)
    ids = {id(p) for p in hidden}
    # the embeddings and the head are matrices too, but not hidden ones
    for outside in (model.token_embedding, model.position_embedding, model.head):
        assert id(outside.weight) not in ids


# -- the registry ----------------------------------------------------------------------

def test_get_names_the_valid_workloads_and_budget_validates_the_scale():
    assert W.get("zipf_mlp") is W.WORKLOADS["zipf_mlp"]
    with pytest.raises(ValueError, match="Invalid workload: 'nope'") as info:
        W.get("nope")
    for name in W.WORKLOADS:
        assert name in str(info.value)
    w = W.WORKLOADS["digits_mlp"]
    with pytest.raises(ValueError, match="Invalid scale: 0"):
        w.budget(0)
    with pytest.raises(ValueError, match="Invalid scale: -1"):
        w.budget(-1)
    assert w.budget() == (w.steps, w.eval_every)
    assert w.budget(3) == (3 * w.steps, 3 * w.eval_every)
    for w in W.WORKLOADS.values():                        # curves end on an evaluation
        assert w.steps % w.eval_every == 0 and w.kind in ("classify", "lm")
