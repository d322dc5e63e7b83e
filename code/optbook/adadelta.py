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
    TwinOptimizer,
    as_real,
    check_lr,
    check_nonnegative,
    check_single_tensor_flags,
    new_step_counter,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_

__all__ = ["Adadelta", "adadelta_update"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's _single_tensor_adadelta.
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
    """Adadelta (Zeiler, 2012): RMSProp whose step is rescaled by the RMS of past steps."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)          # (eq-av-l2)            g <- g + λθ
    complex_param = torch.is_complex(param)
    grad = as_real(grad)                                    # complex -> pairs of reals (not param)
    ewma_sq_update_(square_avg, grad, rho)                  # (eq-av-adadelta-v)    v_t = ρ v_{t-1} + (1-ρ) g_t²
    std = square_avg.add(eps).sqrt_()                       # (eq-av-adadelta-step) RMS[g]_t = √(v_t + ε)
    delta = acc_delta.add(eps).sqrt_()                      # (eq-av-adadelta-step) RMS[Δθ]_{t-1} = √(u_{t-1} + ε)
    delta.div_(std).mul_(grad)                              # (eq-av-adadelta-step) Δθ_t = RMS[Δθ]_{t-1} / RMS[g]_t · g_t
    ewma_sq_update_(acc_delta, delta, rho)                  # (eq-av-adadelta-u)    u_t = ρ u_{t-1} + (1-ρ) Δθ_t²
    if complex_param:
        delta = torch.view_as_complex(delta)                # pairs of reals -> complex
    param.add_(delta, alpha=-lr)                            # (eq-av-adadelta-step) θ_t = θ_{t-1} - η Δθ_t
# [adadelta-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.Adadelta's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class Adadelta(TwinOptimizer):
    """Adadelta (Zeiler, 2012).  Twin of :class:`torch.optim.Adadelta`.

    State: ``step`` (counted, never read), ``square_avg`` (v, EWMA of g²) and
    ``acc_delta`` (u, EWMA of the squared steps).  Unlike the other EWMA
    coefficients of the book, torch accepts ``rho`` anywhere in [0, 1], 1 included.
    """


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
            raise ValueError(f"Invalid rho: {rho!r} (must be in [0, 1])")
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        check_single_tensor_flags(foreach, capturable=capturable, differentiable=differentiable)
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
