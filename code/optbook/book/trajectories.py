"""2D test functions and optimizer trajectories on them.

The trajectories in the book are computed by the optbook optimizers themselves (not
by a separate toy update), so a figure shows exactly what the tested code does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = ["quadratic", "rosenbrock", "run_2d", "run_1d"]


def quadratic(a: float = 0.1, b: float = 2.0) -> Callable:
    """f(x) = a x1^2 + b x2^2; the Hessian is diag(2a, 2b)."""

    def f(x):
        return a * x[0] ** 2 + b * x[1] ** 2

    return f


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Callable:
    """The banana valley f(x) = (a - x1)^2 + b (x2 - x1^2)^2, minimum at (a, a^2)."""

    def f(x):
        return (a - x[0]) ** 2 + b * (x[1] - x[0] ** 2) ** 2

    return f


def run_2d(make_optimizer: Callable, f: Callable, x0, steps: int,
           dtype: torch.dtype = torch.float64) -> np.ndarray:
    """Minimise ``f`` from ``x0`` for ``steps`` steps; return the (steps+1, 2) path.

    ``make_optimizer`` receives ``[x]`` (one 2-vector parameter), e.g.
    ``lambda p: optbook.SGD(p, lr=0.4)``.
    """
    x = torch.tensor(x0, dtype=dtype, requires_grad=True)
    optimizer = make_optimizer([x])
    path = [x.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        f(x).backward()
        optimizer.step()
        path.append(x.detach().clone())
    return torch.stack(path).numpy()


def run_1d(make_optimizer: Callable,
           grad_fn: Callable[[int, torch.Tensor], torch.Tensor],
           x0: float, steps: int, project: Callable | None = None,
           dtype: torch.dtype = torch.float64) -> np.ndarray:
    """Online optimisation of a scalar with gradient ``grad_fn(t, x)`` at step
    t = 1, 2, ...

    ``project`` (e.g. clipping to a feasible interval) is applied after each step,
    as in online convex optimisation.
    """
    x = torch.tensor(x0, dtype=dtype)
    x.grad = torch.zeros_like(x)
    optimizer = make_optimizer([x])
    path = [x.item()]
    for t in range(1, steps + 1):
        x.grad = grad_fn(t, x.detach().clone())
        optimizer.step()
        if project is not None:
            with torch.no_grad():
                x.copy_(project(x))
        path.append(x.item())
    return np.array(path)
