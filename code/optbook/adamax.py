"""Adamax (Adam in the infinity norm): twin of torch.optim.Adamax.

The single-tensor update and the class; the comments name the equations of
chapters/adam_variants.md.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

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
    check_betas_in_unit_interval,
    check_lr,
    check_nonnegative,
    check_supported_flags,
    foreach_addcdiv_,
    increment_steps,
    new_step_counter,
    step_value,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_update_

__all__ = ["Adamax", "adamax_update", "adamax_foreach_update"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_adamax.
# ----------------------------------------------------------------------------------


# [adamax-start]
def adamax_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_inf: Tensor,
    step: float,
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """Adamax (Kingma & Ba, 2015, §7.1): Adam with the ∞-norm in place of the 2-norm."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)          # (eq-av-l2) g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    # m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_update_(exp_avg, grad, beta1)                      # (eq-av-adam-m)
    # u_t = max(β2 u_{t-1}, |g_t| + ε)
    torch.maximum(exp_inf.mul_(beta2),                      # (eq-av-adamax-u)
                  grad.abs().add_(eps), out=exp_inf)
    # m̂_t = m_t / (1-β1^t)
    bias_correction = 1 - beta1**step                       # (eq-av-adam-mhat)
    clr = lr / bias_correction                              # fold 1/(1-β1^t) into η
    # θ_t = θ_{t-1} - η m̂_t / u_t
    param.addcdiv_(exp_avg, exp_inf, value=-clr)            # (eq-av-adamax-step)
# [adamax-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's
# _multi_tensor_adamax.
# ----------------------------------------------------------------------------------


# [adamax-foreach-start]
def adamax_foreach_update(
    params: TensorList,
    grads: TensorList,
    exp_avgs: TensorList,
    exp_infs: TensorList,
    steps: TensorList,
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Adamax on a list of tensors of one device and dtype; ``steps`` already hold t."""
    params, grads = as_real_list(params), as_real_list(grads)
    exp_avgs, exp_infs = as_real_list(exp_avgs), as_real_list(exp_infs)
    # whether grads is already a temporary of ours
    copied = maximize or weight_decay != 0
    grads = ascent_and_l2(grads, params, weight_decay=weight_decay,  # (eq-av-l2)
                          maximize=maximize)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)         # (eq-av-adam-m)
    # β2 u_{t-1}
    torch._foreach_mul_(exp_infs, beta2)                     # (eq-av-adamax-u)
    if copied:
        torch._foreach_abs_(grads)                           # |g_t|, in the temporary
    else:
        grads = torch._foreach_abs(grads)                    # |g_t| (p.grad untouched)
    torch._foreach_add_(grads, eps)                          # |g_t| + ε
    # u_t = max(β2 u_{t-1}, |g_t|+ε)
    torch._foreach_maximum_(exp_infs, grads)
    lr_value = step_value(lr) if isinstance(lr, Tensor) else lr
    step_size = [(lr_value / (1 - beta1 ** step_value(step))) * -1  # -η / (1-β1^t)
                 for step in steps]
    foreach_addcdiv_(params, exp_avgs, exp_infs, step_size)  # (eq-av-adamax-step)
# [adamax-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.Adamax's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class Adamax(TwinOptimizer):
    """Adamax (Kingma & Ba, 2015).  Twin of :class:`torch.optim.Adamax`.

    State: ``step``, ``exp_avg`` (m) and ``exp_inf`` (u, the decayed ∞-norm).
    """

    supports_foreach = True

    #: What torch.optim.Adamax.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(foreach=None, maximize=False, differentiable=False,
                           capturable=False)

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        check_betas_in_unit_interval(betas)
        check_nonnegative("weight_decay", weight_decay)
        check_supported_flags(differentiable=differentiable, capturable=capturable)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_inf"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adamax_update(
            param, grad, as_real(state["exp_avg"]), as_real(state["exp_inf"]),
            step_value(state["step"]),
            lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        steps = [s["step"] for s in states]
        increment_steps(steps)
        beta1, beta2 = group["betas"]
        self._functional(adamax_foreach_update)(
            params, grads, [s["exp_avg"] for s in states],
            [s["exp_inf"] for s in states], steps, lr=to_scalar(group["lr"]),
            beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], maximize=group["maximize"],
        )
