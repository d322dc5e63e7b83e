"""RAdam (rectified Adam): twin of torch.optim.RAdam.

The rectification schedule, the single-tensor update and the class; the comments
name the equations of chapters/adam_variants.md.
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
    increment_steps,
    new_step_counter,
    step_value,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = ["RAdam", "radam_update", "radam_rho", "radam_rectification",
           "radam_foreach_update"]


# ----------------------------------------------------------------------------------
# RAdam's moving-average length and rectification (also plotted by the chapter).
# ----------------------------------------------------------------------------------


def radam_rho(step: float, beta2: float) -> Tuple[float, float]:
    """RAdam's (ρ_∞, ρ_t): the maximal and the current length of the approximated
    simple moving average   (eq-av-radam-rho-inf), (eq-av-radam-rho-t)."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / (1 - beta2**step)
    return rho_inf, rho_t


def radam_rectification(rho_t: float, rho_inf: float) -> float:
    """RAdam's variance rectification r_t (defined for ρ_t > 4)   (eq-av-radam-r)."""
    return ((rho_t - 4) * (rho_t - 2) * rho_inf
            / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_radam.
# ----------------------------------------------------------------------------------


# [radam-start]
def radam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: float,
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
) -> None:
    """RAdam (Liu et al., 2020): Adam whose adaptive step is switched on, and scaled
    by the rectification r_t, only once ρ_t > 5 (torch's heuristic threshold: the exact
    variance of 1/√v̂_t is finite for every ρ_t > 2; the pole at 4 is the
    approximation's)."""
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    if weight_decay != 0:
        if decoupled_weight_decay:
            # θ <- (1 - ηλ) θ
            param.mul_(1 - lr * weight_decay)               # (eq-av-adamw)
        else:
            grad = grad.add(param, alpha=weight_decay)      # (eq-av-l2) g <- g + λθ
    # m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_update_(exp_avg, grad, beta1)                      # (eq-av-adam-m)
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    ewma_sq_update_(exp_avg_sq, grad, beta2)                # (eq-av-adam-v)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    # m̂_t = m_t / (1-β1^t)
    bias_corrected_exp_avg = exp_avg / bias_correction1     # (eq-av-adam-mhat)
    rho_inf, rho_t = radam_rho(                             # (eq-av-radam-rho-inf),
        step, beta2)                                        # (eq-av-radam-rho-t)
    # torch.compile: t is a tensor; where() picks (a branch would break the graph)
    if isinstance(rho_t, Tensor):
        adaptive_lr = bias_correction2**0.5 / exp_avg_sq.sqrt().add_(eps)
        rect = radam_rectification(rho_t, rho_inf)
        update = torch.where(rho_t > 5.0, adaptive_lr * rect, 1.0)
        param.add_(bias_corrected_exp_avg * lr * update, alpha=-1.0)
    elif rho_t > 5.0:  # (eq-av-radam-step) variance tractable: adaptive step
        # 1 / (√v̂_t + ε'), ε' = ε/√(1-β2^t)
        adaptive_lr = bias_correction2**0.5 / exp_avg_sq.sqrt().add_(eps)
        rect = radam_rectification(rho_t, rho_inf)          # (eq-av-radam-r)    r_t
        # θ_t = θ_{t-1} - η r_t m̂_t / (√v̂_t + ε')
        param.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
    else:
        # θ_t = θ_{t-1} - η m̂_t
        param.add_(bias_corrected_exp_avg * lr, alpha=-1.0)  # (eq-av-radam-sgd)
# [radam-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's _multi_tensor_radam.
# ----------------------------------------------------------------------------------


# [radam-foreach-start]
def radam_foreach_update(
    params: TensorList,
    grads: TensorList,
    exp_avgs: TensorList,
    exp_avg_sqs: TensorList,
    steps: TensorList,
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    """RAdam on a list of tensors of one device and dtype; ``steps`` already hold t.

    The step is one ``addcmul``: θ += m_t · b, with b = -η r_t √(1-β2^t) / ((1-β1^t)
    (√v_t + ε)) where the variance is tractable (ρ_t > 5), else b = -η/(1-β1^t).
    """
    params, grads = as_real_list(params), as_real_list(grads)
    exp_avgs, exp_avg_sqs = as_real_list(exp_avgs), as_real_list(exp_avg_sqs)
    ts = [step_value(step) for step in steps]
    rho_inf = 2 / (1 - beta2) - 1                               # (eq-av-radam-rho-inf)
    rho_ts = [radam_rho(t, beta2)[1] for t in ts]               # (eq-av-radam-rho-t)
    if weight_decay != 0 and decoupled_weight_decay:
        torch._foreach_mul_(params, 1 - lr * weight_decay)      # (eq-av-adamw)
    l2 = 0 if decoupled_weight_decay else weight_decay
    grads = ascent_and_l2(grads, params, weight_decay=l2,       # (eq-av-l2)
                          maximize=maximize)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)            # (eq-av-adam-m)
    torch._foreach_mul_(exp_avg_sqs, beta2)                     # (eq-av-adam-v)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    del grads  # the last use: free a temporary before the next one, as torch does
    if isinstance(rho_ts[0], Tensor):  # torch.compile: where(), as a branch would break
        rects = [torch.where(rho_t > 5, radam_rectification(rho_t, rho_inf), 0.0)
                 for rho_t in rho_ts]
        unrectified = [(rho_t <= 5).to(rho_t.dtype) for rho_t in rho_ts]
    else:
        rects = [radam_rectification(rho_t, rho_inf) if rho_t > 5 else 0
                 for rho_t in rho_ts]
        # if ρ_t <= 5
        unrectified = [0 if rect > 0 else 1.0 for rect in rects]  # (eq-av-radam-sgd)
    bias_correction1 = [1 - beta1**t for t in ts]
    sgd_step = [(lr * unrect / bc) * -1
                for unrect, bc in zip(unrectified, bias_correction1)]
    adaptive_step = [((1 - beta2**t) ** 0.5) * (lr * rect / bc) * -1
                     for t, rect, bc in zip(ts, rects, bias_correction1)]
    buffer = torch._foreach_sqrt(exp_avg_sqs)                   # √v_t
    torch._foreach_add_(buffer, eps)                            # √v_t + ε
    torch._foreach_div_(buffer, adaptive_step)
    # -η r_t √(1-β2^t)/((1-β1^t)(√v_t+ε))
    torch._foreach_reciprocal_(buffer)
    torch._foreach_add_(buffer, sgd_step)                       # (zero where rectified)
    torch._foreach_addcmul_(params, exp_avgs, buffer)           # (eq-av-radam-step)
# [radam-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.RAdam's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class RAdam(TwinOptimizer):
    """RAdam (Liu et al., 2020).  Twin of :class:`torch.optim.RAdam`.

    State: ``step``, ``exp_avg`` (m) and ``exp_avg_sq`` (v).
    """

    supports_foreach = True

    #: What torch.optim.RAdam.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(foreach=None, maximize=False, differentiable=False,
                           decoupled_weight_decay=False, capturable=False)

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        check_betas_in_unit_interval(betas)
        check_nonnegative("weight_decay", weight_decay)
        check_supported_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay,
            differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        radam_update(
            param, grad, as_real(state["exp_avg"]), as_real(state["exp_avg_sq"]),
            step_value(state["step"]),
            lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        steps = [s["step"] for s in states]
        increment_steps(steps)
        beta1, beta2 = group["betas"]
        self._functional(radam_foreach_update)(
            params, grads, [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states], steps, lr=to_scalar(group["lr"]),
            beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )
