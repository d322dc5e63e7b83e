"""Batched sweeps: many training runs (seeds x learning rates x ...) as one computation.

A chapter that compares methods needs several seeds per configuration and a grid of
learning rates: dozens of runs of a small model.  Run one after another, each is a
few hundred tiny kernels per step and the machine idles between them; here the runs
are *stacked*: every parameter gets a leading run axis of size S, one forward and
backward pass computes all S runs' gradients (each linear layer one batched matmul,
``baddbmm``, for all runs; models other than a plain MLP go through ``vmap`` of
``functional_call``), and the
optimizer updates all runs at once with its hyperparameters as tensors of shape
(S,), so that run s may have its own learning rate, momentum or betas.

What run s computes is what :func:`optbook.book.training.train` computes for the same
seed (same initial weights: the model is built right after ``torch.manual_seed(seed)``;
same batch order: a generator seeded with the same seed), with the update written
as tensor arithmetic rather than torch.optim's fused in-place calls.  The two agree
to rounding, not bitwise (``addcmul(value=...)`` and ``add(alpha=...)`` take a Python
number, a per-run value has to be a tensor factor, which rounds once more; and a
batched matmul blocks its sums differently from a single one, so a run is not
bitwise the same in batches of different sizes either).  ``tests/test_sweeps.py``
states and checks the tolerance that holds against ``train``.

``python -m optbook.book.sweeps --bench`` times 64 digits-MLP runs as one batched
sweep against one run of ``train()``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from .data import Split

__all__ = ["SweepResult", "stacked_init", "sweep", "main"]

ALGORITHMS = ("sgd", "adam")


@dataclass
class SweepResult:
    """Per-run results: ``losses[s, k]`` the training loss of run s at step k,
    ``test_accuracy[s, e]`` after epoch e, ``params`` the stacked final weights."""

    losses: Tensor
    test_accuracy: Tensor
    params: Dict[str, Tensor]
    seconds: float


def stacked_init(make_model: Callable[[], nn.Module], seeds: Sequence[int]):
    """The model of each seed (built right after ``torch.manual_seed(seed)``, as
    ``train`` does), stacked along a new leading axis; returns (model, params)."""
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(make_model())
    params = {name: torch.stack([dict(m.named_parameters())[name].detach()
                                 for m in models])
              for name, _ in models[0].named_parameters()}
    return models[0], params


def _per_run(values, runs: int, name: str) -> Tensor:
    t = torch.as_tensor(values, dtype=torch.float32)
    if t.dim() == 0:
        t = t.expand(runs)
    if t.shape != (runs,):
        raise ValueError(f"Invalid {name}: {runs} runs need {runs} values, got shape "
                         f"{tuple(t.shape)}")
    return t.clone()


def _broadcast(h: Tensor, like: Tensor) -> Tensor:
    """A per-run value (S,) shaped to multiply a stacked tensor (S, ...)."""
    return h.reshape((-1,) + (1,) * (like.dim() - 1))


def sweep(
    make_model: Callable[[], nn.Module],
    data: Split,
    *,
    seeds: Sequence[int],
    algorithm: str,
    lr,
    momentum=0.0,
    nesterov: bool = False,
    betas=(0.9, 0.999),
    eps: float = 1e-8,
    weight_decay=0.0,
    epochs: int = 5,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> SweepResult:
    """Train S = len(seeds) runs at once; hyperparameters are numbers or length-S lists.

    ``algorithm="sgd"``: torch.optim.SGD's update (dampening 0; heavy ball, or
    Nesterov); ``"adam"``: torch.optim.Adam's (L2 ``weight_decay`` as in Adam).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"Invalid algorithm: {algorithm!r} (one of {ALGORITHMS})")
    runs = len(seeds)
    if runs == 0:
        raise ValueError("Invalid seeds: at least one run is needed")
    device = torch.device(device)
    model, params = stacked_init(make_model, seeds)
    params = {k: v.to(device) for k, v in params.items()}
    lr_ = _per_run(lr, runs, "lr").to(device)
    mu = _per_run(momentum, runs, "momentum").to(device)
    wd = _per_run(weight_decay, runs, "weight_decay").to(device)
    b1 = _per_run(betas[0], runs, "betas[0]").to(device)
    b2 = _per_run(betas[1], runs, "betas[1]").to(device)
    data = data.to(device)

    stacked = _stacked_forward(model)

    def grads_and_losses(p, x, y):
        """Per-run gradients of each run's mean loss, and the per-run losses."""
        leaves = {k: v.detach().requires_grad_() for k, v in p.items()}
        with torch.enable_grad():
            logits = stacked(leaves, x)                            # (S, B, classes)
            per_example = nn.functional.cross_entropy(
                logits.flatten(0, 1), y.flatten(), reduction="none")
            # (S,): each run's loss
            per_run = per_example.view(y.shape).mean(dim=1)
            # the runs are independent, so d(sum of losses)/dθ_s = d(loss_s)/dθ_s
            grads = torch.autograd.grad(per_run.sum(), list(leaves.values()))
        return dict(zip(leaves, grads)), per_run.detach()

    def predict(p, x):
        return stacked(p, x.expand(runs, *x.shape)).argmax(dim=-1)

    state: Dict[str, Dict[str, Tensor]] = {k: {} for k in params}
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    n = data.X_train.shape[0]
    steps_per_epoch = (n + batch_size - 1) // batch_size
    losses = torch.empty(runs, epochs * steps_per_epoch, device=device)
    accuracy = torch.empty(runs, epochs, device=device)
    step = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        orders = torch.stack([torch.randperm(n, generator=g)
                              for g in generators]).to(device)
        for i in range(0, n, batch_size):
            idx = orders[:, i : i + batch_size]
            x, y = data.X_train[idx], data.y_train[idx]
            grads, losses[:, step] = grads_and_losses(params, x, y)
            step += 1
            with torch.no_grad():
                for name, p in params.items():
                    _update(algorithm, p, grads[name], state[name], step, lr=lr_, mu=mu,
                            nesterov=nesterov, wd=wd, b1=b1, b2=b2, eps=eps)
        with torch.no_grad():
            pred = predict(params, data.X_test)
            accuracy[:, epoch] = (pred == data.y_test).float().mean(dim=1)
    seconds = time.perf_counter() - start
    return SweepResult(losses.cpu(), accuracy.cpu(),
                       {k: v.cpu() for k, v in params.items()}, seconds)


def _stacked_forward(model: nn.Module) -> Callable[[Dict[str, Tensor], Tensor], Tensor]:
    """``f(params, x)``: the model's forward pass on every run at once, x of shape
    (S, B, ...).  An ``nn.Sequential`` of ``Linear`` layers and parameter-free modules
    (ReLU, Tanh, Flatten(start_dim >= 1)...) runs as batched matmuls (``baddbmm``: one
    kernel per layer for all runs); any other model through ``vmap`` of
    ``functional_call``, which is general but slower."""
    layers = list(model) if isinstance(model, nn.Sequential) else None
    simple = layers is not None and all(
        isinstance(m, nn.Linear) or not any(True for _ in m.parameters())
        for m in layers)
    if not simple:
        batched = vmap(lambda p, x: functional_call(model, p, (x,)), in_dims=(0, 0))
        return batched

    def forward(params: Dict[str, Tensor], x: Tensor) -> Tensor:
        h = x.flatten(2) if x.dim() > 3 else x
        for index, layer in enumerate(layers):
            if isinstance(layer, nn.Linear):
                weight = params[f"{index}.weight"]                 # (S, out, in)
                bias = params.get(f"{index}.bias")
                h = (torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))
                     if bias is not None else torch.bmm(h, weight.transpose(1, 2)))
            elif not isinstance(layer, nn.Flatten):
                h = layer(h)
        return h

    return forward


def _update(algorithm, p, g, state, t, *, lr, mu, nesterov, wd, b1, b2, eps) -> None:
    """One step of every run on one stacked parameter (torch.optim's order of work)."""
    g = g + _broadcast(wd, p) * p                                  # g <- g + λθ
    if algorithm == "sgd":
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g.clone()                   # m_1 = g_1
        else:
            buf = state["momentum_buffer"]
            # m_t = μ m_{t-1} + g_t
            buf.mul_(_broadcast(mu, p)).add_(g)
        buf = state["momentum_buffer"]
        direction = g + _broadcast(mu, p) * buf if nesterov else buf
        # a run with μ = 0 is plain SGD: m_t = g_t exactly (0 * m + g = g)
        # θ_t = θ_{t-1} - η d_t
        p.sub_(_broadcast(lr, p) * direction)
        return
    if not state:
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(g, _broadcast(1 - b1, p))                              # m_t
    v.mul_(_broadcast(b2, p)).add_(_broadcast(1 - b2, p) * g * g)  # v_t
    bias_correction1 = 1 - b1**t
    bias_correction2_sqrt = (1 - b2**t).sqrt()
    step_size = _broadcast(lr / bias_correction1, p)               # η / (1-β1^t)
    denom = (v.sqrt() / _broadcast(bias_correction2_sqrt, p)).add_(eps)
    p.sub_(step_size * m / denom)                                  # θ_t


def main(argv: List[str] | None = None) -> dict:
    """``--bench``: 64 runs batched vs one run of ``train`` (digits MLP, same
    epochs)."""
    import optbook

    from .data import load_digits
    from .training import mlp, train

    parser = argparse.ArgumentParser(prog="python -m optbook.book.sweeps")
    parser.add_argument("--bench", action="store_true",
                        help="time 64 batched runs vs one")
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.bench:
        parser.print_help()
        return {}
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_digits()
    seeds = [s % 8 for s in range(args.runs)]
    lrs = [10 ** (-3 + 2 * (s // 8) / 7) for s in range(args.runs)]  # 8 seeds x 8 lrs
    single, batched = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        train(mlp, lambda p: optbook.Adam(p, lr=1e-2), data, epochs=args.epochs)
        single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sweep(mlp, data, seeds=seeds, algorithm="adam", lr=lrs, epochs=args.epochs)
        batched.append(time.perf_counter() - t0)
    report = {"runs": args.runs, "epochs": args.epochs, "single_s": min(single),
              "batched_s": min(batched), "ratio": min(batched) / min(single),
              "threads": torch.get_num_threads()}
    print(f"one run of train(): {report['single_s']:.2f} s; {args.runs} runs as one "
          f"batched sweep: {report['batched_s']:.2f} s; ratio {report['ratio']:.2f} "
          f"(best of {args.repeats}, {report['threads']} threads)")
    return report


if __name__ == "__main__":
    main()
