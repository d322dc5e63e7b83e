"""RMSProp (plain, centered, with momentum): twin of torch.optim.RMSprop.

As torch/optim/rmsprop.py: the single-tensor update, the multi-tensor update and
the class. The comments name the equations of chapters/rmsprop.md.
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
    is_compiled_tensor_lr,
    new_step_counter,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = ["RMSprop", "rmsprop_update", "rmsprop_foreach_update"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_rmsprop.
# ----------------------------------------------------------------------------------


# [rmsprop-start]
def rmsprop_update(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    grad_avg: Optional[Tensor],
    momentum_buffer: Optional[Tensor],
    *,
    lr: Scalar,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
) -> None:
    """RMSProp: AdaGrad with a leaky (EWMA) sum; optionally centered, with momentum."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)          # (eq-l2) g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    # v_t = β v_{t-1} + (1-β) g_t²
    ewma_sq_update_(square_avg, grad, alpha)                # (eq-rmsprop-v)
    if centered:
        # ḡ_t = β ḡ_{t-1} + (1-β) g_t
        ewma_update_(grad_avg, grad, alpha)                 # (eq-rmsprop-gbar)
        # √(v_t - ḡ_t²)
        avg = square_avg.addcmul(grad_avg, grad_avg,        # (eq-rmsprop-centered)
                                 value=-1).sqrt_()
    else:
        avg = square_avg.sqrt()                             # (eq-rmsprop-step)    √v_t
    avg = avg.add_(eps)                                     # ... + ε
    if momentum > 0:
        # b_t = μ b_{t-1} + g_t / (√v_t + ε)
        momentum_buffer.mul_(momentum).addcdiv_(grad, avg)  # (eq-rmsprop-momentum)
        param.add_(momentum_buffer, alpha=-lr)              # θ_t = θ_{t-1} - η b_t
    else:
        # θ_t = θ_{t-1} - η g_t / (√v_t + ε)
        param.addcdiv_(grad, avg, value=-lr)                # (eq-rmsprop-step)
# [rmsprop-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's
# _multi_tensor_rmsprop.
# ----------------------------------------------------------------------------------


# [rmsprop-foreach-start]
def rmsprop_foreach_update(
    params: TensorList,
    grads: TensorList,
    square_avgs: TensorList,
    grad_avgs: Optional[TensorList],
    momentum_buffers: Optional[TensorList],
    *,
    lr: Scalar,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool = False,
) -> None:
    """RMSProp (optionally centered, with momentum) on a list of tensors."""
    params, grads, square_avgs = (as_real_list(params), as_real_list(grads),
                                  as_real_list(square_avgs))
    grad_avgs, momentum_buffers = (as_real_list(grad_avgs),
                                   as_real_list(momentum_buffers))
    # g <- g + λθ
    grads = ascent_and_l2(grads, params, weight_decay=weight_decay,  # (eq-l2)
                          maximize=maximize)
    # v_t = β v_{t-1}
    torch._foreach_mul_(square_avgs, alpha)                     # (eq-rmsprop-v)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)  # + (1-β) g_t²
    if centered:
        # ḡ_t = β ḡ_{t-1} + (1-β) g_t
        torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)       # (eq-rmsprop-gbar)
        # v_t - ḡ_t²
        avg = torch._foreach_addcmul(square_avgs, grad_avgs,    # (eq-rmsprop-centered)
                                     grad_avgs, value=-1)
        torch._foreach_sqrt_(avg)                               # √(v_t - ḡ_t²)
    else:
        avg = torch._foreach_sqrt(square_avgs)                  # (eq-rmsprop-step) √v_t
    torch._foreach_add_(avg, eps)                               # + ε
    if momentum > 0:
        # b_t = μ b_{t-1}
        torch._foreach_mul_(momentum_buffers, momentum)         # (eq-rmsprop-momentum)
        torch._foreach_addcdiv_(momentum_buffers, grads, avg)   # + g_t / (√v_t + ε)
        if is_compiled_tensor_lr(lr):
            torch._foreach_add_(params, torch._foreach_mul(momentum_buffers, -lr))
        else:
            # θ_t = θ_{t-1} - η b_t
            torch._foreach_add_(params, momentum_buffers, alpha=-lr)
    else:
        if is_compiled_tensor_lr(lr):
            torch._foreach_div_(avg, -lr)
            torch._foreach_addcdiv_(params, grads, avg)
        else:
            # θ_t = θ_{t-1} - η g_t / (√v_t + ε)
            torch._foreach_addcdiv_(params, grads, avg, value=-lr)  # (eq-rmsprop-step)
# [rmsprop-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.RMSprop's constructor, defaults, validation and
# state.
# ----------------------------------------------------------------------------------


class RMSprop(TwinOptimizer):
    """RMSProp (Tieleman & Hinton, 2012).  Twin of :class:`torch.optim.RMSprop`.

    State: ``step``, ``square_avg``, plus ``momentum_buffer`` if ``momentum > 0``
    and ``grad_avg`` if ``centered``.
    """

    supports_foreach = True

    #: What torch.optim.RMSprop.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(momentum=0, centered=False, foreach=None, maximize=False,
                           differentiable=False, capturable=False)

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        check_nonnegative("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        # torch.optim accepts alpha >= 1, and so do we
        check_nonnegative("alpha", alpha)
        check_supported_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, capturable=capturable, foreach=foreach,
            maximize=maximize, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["square_avg"] = zeros_like(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        rmsprop_update(
            param, grad, as_real(state["square_avg"]),
            as_real(state.get("grad_avg")), as_real(state.get("momentum_buffer")),
            lr=to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=group["momentum"],
            centered=group["centered"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        # RMSprop counts steps but never reads them
        increment_steps([s["step"] for s in states])
        momentum, centered = group["momentum"], group["centered"]
        self._functional(rmsprop_foreach_update)(
            params, grads, [s["square_avg"] for s in states],
            [s["grad_avg"] for s in states] if centered else None,
            [s["momentum_buffer"] for s in states] if momentum > 0 else None,
            lr=to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=momentum, centered=centered,
            maximize=group["maximize"],
        )
