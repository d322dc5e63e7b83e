"""Shampoo (Gupta, Koren & Singer, 2018): no torch.optim twin.

Shampoo keeps one small preconditioner per dimension of a parameter instead of one
per coordinate (Adam, AdaGrad) or one for the whole flattened parameter (full-matrix
AdaGrad).  For a matrix parameter W (m x n) with gradient G_t, Algorithm 1 of the
paper is::

    L_0 = εI_m,   R_0 = εI_n
    L_t = L_{t-1} + G_t G_tᵀ                                   (eq-sh-L)
    R_t = R_{t-1} + G_tᵀ G_t                                   (eq-sh-R)
    W_t = W_{t-1} - η L_t^{-1/4} G_t R_t^{-1/4}                (eq-sh-step)

and for an order-k tensor (Algorithm 2) each mode i has a statistic
H^i_t = H^i_{t-1} + G_(i) G_(i)ᵀ of the mode-i unfolding G_(i) (n_i x N/n_i), and
the step is G_t ×_1 (H^1_t)^{-1/2k} ×_2 ... ×_k (H^k_t)^{-1/2k}.  A matrix is k = 2
(L = H^1, R = H^2); a vector is k = 1, i.e. full-matrix AdaGrad, θ - η H^{-1/2} g;
a 0-d tensor is treated as a vector of length 1 (AdaGrad).  The inverse roots
M^{-1/p} come from the eigendecomposition, :func:`matrix_inverse_root` (eq-sh-root).

Choices beyond the paper's pseudo-code, each off by default or named:

* a mode of size n_i > ``max_precond_dim`` (default 1024) keeps only the *diagonal*
  of its statistic (an n_i-vector, started at ε), whose root is elementwise; so a
  vector longer than ``max_precond_dim`` gets diagonal AdaGrad, (ε + Σ g²)^{-1/2} g;
* ``update_freq = k`` recomputes the inverse roots at steps 1, k+1, 2k+1, ...; the
  statistics are updated at every step (the paper recomputes at every step, k = 1);
* ``momentum`` μ is heavy-ball momentum on the preconditioned direction, as
  torch.optim.SGD's (dampening 0): m_t = μ m_{t-1} + G̃_t, W_t = W_{t-1} - η m_t;
* ``weight_decay`` λ is L2, added to the gradient before the statistics (as in
  torch.optim.Adagrad); ``maximize`` negates the gradient.

**What is left out of the distributed versions** (Anil et al. 2020, "Scalable
second order optimization"; Shi et al. 2023, "Distributed Shampoo"), and why:

* *grafting* (the Shampoo direction rescaled, layer by layer, to the norm of an
  Adam or AdaGrad step): it makes the learning rate transferable from Adam and
  hides mis-scaled or stale eigenvalues, but it changes every step's length, is
  a second optimizer inside the first, and is not in Algorithms 1-2;
* *blocking* of large dimensions (a 4096 x 4096 layer split into 1024-blocks, each
  with its own L and R, to bound the O(n³) root and the O(n²) memory): here a
  large mode falls back to its diagonal instead;
* *stale preconditioners* and a preconditioning *start step* (roots recomputed
  every few hundred steps, Adam-grafted steps before the first one): only
  ``update_freq`` is kept, and the roots are computed at step 1;
* *root computation on other workers* (asynchronous, on CPUs or spare devices,
  each worker owning some blocks and all-gathering the updates): optbook runs in
  one process, and an asynchronous root makes the step depend on timing;
* *epsilon schedules* (ε relative to the largest eigenvalue, or decayed): ε is
  the fixed εI the paper starts the statistics at;
* *momentum on the grafted direction* (and Nesterov): there is no graft, so the
  momentum acts on the preconditioned direction itself;
* also EWMA statistics (β2 L + (1-β2) G Gᵀ) and exponent overrides (-1/2 for each
  factor): SOAP (:mod:`optbook.soap`) uses the first.

Each of these is a heuristic for scale or for matching Adam's tuning, with its own
hyperparameters; the book teaches the algorithm the paper analyses, and tests it
against a float64 reference written from the paper's pseudo-code
(tests/test_shampoo.py), which each heuristic would break.
"""

from __future__ import annotations

import numbers
from typing import List, Optional

import torch
from torch import Tensor

from .base import (
    ParamsT,
    TwinOptimizer,
    check_lr,
    check_nonnegative,
    check_unit_interval,
    new_step_counter,
    step_value,
)

__all__ = ["Shampoo", "shampoo_update", "matrix_inverse_root"]


# ----------------------------------------------------------------------------------
# Matrix inverse root, by eigendecomposition
# ----------------------------------------------------------------------------------


def _root_dtype(dtype: torch.dtype) -> torch.dtype:
    """eigh needs float32 or float64: half and bfloat16 statistics are upcast."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


# [shampoo-root-start]
def matrix_inverse_root(matrix: Tensor, p: float, eps: float) -> Tensor:
    """M^{-1/p} of a symmetric positive semi-definite M; a 1-D input is a diagonal
    matrix (its root is elementwise).  Eigenvalues below ``eps`` are raised to it,
    so that round-off cannot make one zero or negative."""
    dtype = _root_dtype(matrix.dtype)
    if matrix.dim() == 1:
        return matrix.to(dtype).clamp(min=eps).pow(-1 / p).to(matrix.dtype)
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix.to(dtype))  # M = Q Λ Qᵀ
    # (eq-sh-root)  M^{-1/p} = Q diag(max(λ_i, ε)^{-1/p}) Qᵀ
    roots = eigenvalues.clamp(min=eps).pow(-1 / p)
    return ((eigenvectors * roots) @ eigenvectors.mT).to(matrix.dtype)
# [shampoo-root-end]


def _unfold(tensor: Tensor, mode: int) -> Tensor:
    """The mode-i unfolding G_(i): n_i rows, one column per other index."""
    return tensor.movedim(mode, 0).reshape(tensor.shape[mode], -1)


def _apply_along_first(tensor: Tensor, root: Tensor) -> Tensor:
    """Multiply ``tensor`` by the symmetric ``root`` along its first axis, which
    then moves to the end: after k calls, one per mode, the axes are back in order."""
    if root.dim() == 1:  # a diagonal root
        return (tensor * root.reshape(-1, *([1] * (tensor.dim() - 1)))).movedim(0, -1)
    return torch.tensordot(tensor, root, dims=([0], [0]))


# ----------------------------------------------------------------------------------
# Single-tensor update
# ----------------------------------------------------------------------------------


# [shampoo-start]
def shampoo_update(
    param: Tensor,
    grad: Tensor,
    factors: List[Tensor],
    inverse_roots: List[Tensor],
    momentum_buffer: Optional[Tensor],
    step: float,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    epsilon: float,
    update_freq: int,
) -> None:
    """Shampoo for one tensor of order k at step t >= 1 (Gupta et al., Algorithms 1-2).

    ``factors[i]`` is the mode-i statistic H^i (L and R for a matrix: n_i x n_i, or
    its diagonal, an n_i-vector), ``inverse_roots[i]`` its (H^i)^{-1/2k}; a 0-d
    tensor is a vector of length 1.
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)          # g <- g + λθ  (L2)
    grad = grad.reshape(grad.shape or (1,))                 # a 0-d tensor: order 1
    order = grad.dim()                                      # k
    recompute = (step - 1) % update_freq == 0               # roots at t = 1, 1+k, ...
    preconditioned = grad
    for mode, (factor, root) in enumerate(zip(factors, inverse_roots)):
        unfolded = _unfold(grad, mode)                      # G_(i): G, then Gᵀ
        if factor.dim() == 2:
            # (eq-sh-L) L_t = L_{t-1} + G Gᵀ;  (eq-sh-R) R_t = R_{t-1} + GᵀG
            factor.addmm_(unfolded, unfolded.mT)
        else:
            factor.add_(unfolded.square().sum(1))           # its diagonal only
        if recompute:
            # (eq-sh-root) (H^i_t)^{-1/2k}: L^{-1/4}, R^{-1/4} for a matrix
            root.copy_(matrix_inverse_root(factor, 2 * order, epsilon))
        preconditioned = _apply_along_first(preconditioned, root)  # ×_i (H^i)^{-1/2k}
    preconditioned = preconditioned.reshape(param.shape)    # G̃_t
    if momentum_buffer is not None:
        # m_t = μ m_{t-1} + G̃_t  (torch.optim.SGD's momentum, dampening 0)
        preconditioned = momentum_buffer.mul_(momentum).add_(preconditioned)
    # (eq-sh-step) W_t = W_{t-1} - η L_t^{-1/4} G_t R_t^{-1/4}
    param.add_(preconditioned, alpha=-lr)
# [shampoo-end]


# ----------------------------------------------------------------------------------
# The optimizer class
# ----------------------------------------------------------------------------------


def check_positive_int(name: str, value, minimum: int = 1) -> None:
    """An integer count >= ``minimum`` (bools are refused)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < minimum):
        raise ValueError(f"Invalid {name} value: {value!r} (must be an integer "
                         f">= {minimum})")


def check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name} value: {value!r} (must be True or False)")


class Shampoo(TwinOptimizer):
    """Shampoo(params, lr=1e-3, momentum=0, weight_decay=0, epsilon=1e-6,
    update_freq=1, max_precond_dim=1024, *, maximize=False)  (Gupta et al., 2018).

    See the module docstring for the update, the order-1 rule (full-matrix AdaGrad
    for vectors up to ``max_precond_dim``, diagonal above) and what differs from
    the distributed versions.  ``lr``, ``momentum`` and ``epsilon`` default to
    pytorch-optimizer's (its ``matrix_eps``).

    State per parameter of order k (a 0-d tensor counts as a vector of length 1):
    ``step``; ``factor_i`` for i < k, the statistic H^i (L = ``factor_0`` and
    R = ``factor_1`` for a matrix), started at εI; ``inverse_root_i``, its
    (H^i)^{-1/2k} at the last recomputation; ``momentum_buffer`` if momentum != 0.
    Float parameters only (complex and sparse gradients are refused).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        epsilon: float = 1e-6,
        update_freq: int = 1,
        max_precond_dim: int = 1024,
        *,
        maximize: bool = False,
    ) -> None:
        if torch.is_tensor(lr):
            raise ValueError(f"Invalid learning rate: {lr} (a Tensor lr is not "
                             "supported by Shampoo; pass a float)")
        check_lr(lr)
        check_unit_interval("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        if not epsilon > 0:  # L_0 = εI must be invertible
            raise ValueError(f"Invalid epsilon value: {epsilon} (must be > 0)")
        check_positive_int("update_freq", update_freq)
        check_positive_int("max_precond_dim", max_precond_dim, minimum=0)
        check_bool("maximize", maximize)
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        epsilon=epsilon, update_freq=update_freq,
                        max_precond_dim=max_precond_dim, maximize=maximize)
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        like = dict(dtype=param.dtype, device=param.device)
        for mode, size in enumerate(param.shape or (1,)):
            if size <= group["max_precond_dim"]:
                state[f"factor_{mode}"] = group["epsilon"] * torch.eye(size, **like)
                state[f"inverse_root_{mode}"] = torch.zeros(size, size, **like)
            else:
                state[f"factor_{mode}"] = torch.full((size,), group["epsilon"], **like)
                state[f"inverse_root_{mode}"] = torch.zeros(size, **like)
        if group["momentum"] != 0:
            state["momentum_buffer"] = torch.zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        if torch.is_complex(param):
            raise RuntimeError("optbook.Shampoo does not support complex parameters")
        state["step"] += 1
        order = max(param.dim(), 1)
        shampoo_update(
            param, grad, [state[f"factor_{i}"] for i in range(order)],
            [state[f"inverse_root_{i}"] for i in range(order)],
            state.get("momentum_buffer"), step_value(state["step"]),
            lr=float(group["lr"]), momentum=group["momentum"],
            weight_decay=group["weight_decay"], epsilon=group["epsilon"],
            update_freq=group["update_freq"],
        )

