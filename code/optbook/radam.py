"""RAdam (rectified Adam): twin of torch.optim.RAdam.

The rectification schedule, the single-tensor update and the class; the comments
name the equations of chapters/adam_variants.md.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

from torch import Tensor

from .base import (
    ParamsT,
    Scalar,
    TwinOptimizer,
    as_real,
    check_betas_in_unit_interval,
    check_lr,
    check_nonnegative,
    check_single_tensor_flags,
    new_step_counter,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = ["RAdam", "radam_update", "radam_rho", "radam_rectification"]


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
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's _single_tensor_radam.
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
    by the rectification r_t, only once the variance of √v̂_t is finite (ρ_t > 5)."""
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)               # (eq-av-adamw)      θ <- (1 - ηλ) θ
        else:
            grad = grad.add(param, alpha=weight_decay)      # (eq-av-l2)         g <- g + λθ
    ewma_update_(exp_avg, grad, beta1)                      # (eq-av-adam-m)     m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_sq_update_(exp_avg_sq, grad, beta2)                # (eq-av-adam-v)     v_t = β2 v_{t-1} + (1-β2) g_t²
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    bias_corrected_exp_avg = exp_avg / bias_correction1     # (eq-av-adam-mhat)  m̂_t = m_t / (1-β1^t)
    rho_inf, rho_t = radam_rho(step, beta2)                 # (eq-av-radam-rho-inf), (eq-av-radam-rho-t)
    if rho_t > 5.0:                                         # (eq-av-radam-step) variance tractable: adaptive step
        adaptive_lr = bias_correction2**0.5 / exp_avg_sq.sqrt().add_(eps)  # 1 / (√v̂_t + ε'), ε' = ε/√(1-β2^t)
        rect = radam_rectification(rho_t, rho_inf)          # (eq-av-radam-r)    r_t
        param.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)  # θ_t = θ_{t-1} - η r_t m̂_t / (√v̂_t + ε')
    else:
        param.add_(bias_corrected_exp_avg * lr, alpha=-1.0)  # (eq-av-radam-sgd) θ_t = θ_{t-1} - η m̂_t
# [radam-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.RAdam's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class RAdam(TwinOptimizer):
    """RAdam (Liu et al., 2020).  Twin of :class:`torch.optim.RAdam`.

    State: ``step``, ``exp_avg`` (m) and ``exp_avg_sq`` (v).
    """


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
        check_single_tensor_flags(foreach, capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay, differentiable=differentiable,
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
            state["step"].item(),
            lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )
