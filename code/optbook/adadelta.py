"""Adadelta: twin of torch.optim.Adadelta.

The single-tensor update and the class; the comments name the equations of
chapters/adam_variants.md.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from .base import (
    ParamsT,
    Scalar,
    TensorList,
    TwinOptimizer,
    as_real,
    as_real_list,
    ascent_and_l2,
    check_lr,
    check_nonnegative,
    check_supported_flags,
    increment_steps,
    invalid,
    new_step_counter,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_

__all__ = ["Adadelta", "adadelta_update", "adadelta_foreach_update"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_adadelta.
# ----------------------------------------------------------------------------------


# [adadelta-start]
def adadelta_update(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    acc_delta: Tensor,
    *,
    lr: Scalar,
    rho: float,
    eps: float,
    weight_decay: float,
) -> None:
    """Adadelta (Zeiler, 2012): RMSProp whose step is rescaled by the RMS of past
    steps."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)          # (eq-av-l2) g <- g + λθ
    complex_param = torch.is_complex(param)
    # complex -> pairs of reals (not param)
    grad = as_real(grad)
    # v_t = β v_{t-1} + (1-β) g_t²
    ewma_sq_update_(square_avg, grad, rho)                  # (eq-av-adadelta-v)
    # RMS[g]_t = √(v_t + ε)
    std = square_avg.add(eps).sqrt_()                       # (eq-av-adadelta-step)
    # RMS[Δθ]_{t-1} = √(z_{t-1} + ε)
    delta = acc_delta.add(eps).sqrt_()                      # (eq-av-adadelta-step)
    # Δθ_t = RMS[Δθ]_{t-1} / RMS[g]_t · g_t
    delta.div_(std).mul_(grad)                              # (eq-av-adadelta-step)
    # z_t = β z_{t-1} + (1-β) Δθ_t²
    ewma_sq_update_(acc_delta, delta, rho)                  # (eq-av-adadelta-u)
    if complex_param:
        delta = torch.view_as_complex(delta)                # pairs of reals -> complex
    # θ_t = θ_{t-1} - η Δθ_t
    param.add_(delta, alpha=-lr)                            # (eq-av-adadelta-step)
# [adadelta-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's
# _multi_tensor_adadelta.
# ----------------------------------------------------------------------------------


# [adadelta-foreach-start]
def adadelta_foreach_update(
    params: TensorList,
    grads: TensorList,
    square_avgs: TensorList,
    acc_deltas: TensorList,
    *,
    lr: Scalar,
    rho: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Adadelta on a list of tensors of one device and dtype."""
    params, grads = as_real_list(params), as_real_list(grads)
    square_avgs, acc_deltas = as_real_list(square_avgs), as_real_list(acc_deltas)
    grads = ascent_and_l2(grads, params, weight_decay=weight_decay,  # (eq-av-l2)
                          maximize=maximize)
    torch._foreach_mul_(square_avgs, rho)                       # (eq-av-adadelta-v)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - rho)
    std = torch._foreach_add(square_avgs, eps)
    torch._foreach_sqrt_(std)                                   # √(v_t + ε)
    deltas = torch._foreach_add(acc_deltas, eps)
    torch._foreach_sqrt_(deltas)                                # √(z_{t-1} + ε)
    torch._foreach_div_(deltas, std)
    # Δθ_t = √(z_{t-1}+ε)/√(v_t+ε) g_t
    torch._foreach_mul_(deltas, grads)
    torch._foreach_mul_(acc_deltas, rho)                        # (eq-av-adadelta-u)
    torch._foreach_addcmul_(acc_deltas, deltas, deltas, value=1 - rho)
    if isinstance(lr, Tensor) and torch.compiler.is_compiling():
        torch._foreach_mul_(deltas, -lr)
        torch._foreach_add_(params, deltas)                     # (eq-av-adadelta-step)
    else:
        torch._foreach_add_(params, deltas, alpha=-lr)          # (eq-av-adadelta-step)
# [adadelta-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.Adadelta's constructor, defaults, validation and
# state.
# ----------------------------------------------------------------------------------


class Adadelta(TwinOptimizer):
    """Adadelta (Zeiler, 2012).  Twin of :class:`torch.optim.Adadelta`.

    State: ``step`` (counted, never read), ``square_avg`` (v, EWMA of g²) and
    ``acc_delta`` (u, EWMA of the squared steps).  Unlike the other EWMA
    coefficients of the book, torch accepts ``rho`` anywhere in [0, 1], 1 included.
    """

    supports_foreach = True

    #: What torch.optim.Adadelta.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(foreach=None, maximize=False, differentiable=False,
                           capturable=False)

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise invalid("rho", rho)
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        check_supported_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
            capturable=capturable, foreach=foreach, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["square_avg"] = zeros_like(param)
        state["acc_delta"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        adadelta_update(
            param, grad, as_real(state["square_avg"]), as_real(state["acc_delta"]),
            lr=to_scalar(group["lr"]), rho=group["rho"], eps=group["eps"],
            weight_decay=group["weight_decay"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        increment_steps([s["step"] for s in states])
        self._functional(adadelta_foreach_update)(
            params, grads, [s["square_avg"] for s in states],
            [s["acc_delta"] for s in states], lr=to_scalar(group["lr"]),
            rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )
