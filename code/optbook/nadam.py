"""NAdam (Adam with Nesterov momentum): twin of torch.optim.NAdam.

The momentum schedule, the single-tensor update and the class; the comments name the
equations of chapters/adam_variants.md.
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
    scalar_dtype,
    step_value,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = ["NAdam", "nadam_update", "nadam_mu", "nadam_foreach_update"]


# ----------------------------------------------------------------------------------
# NAdam's momentum schedule (also plotted by the chapter).
# ----------------------------------------------------------------------------------


def nadam_mu(step: float, beta1: float, momentum_decay: float) -> float:
    """NAdam's momentum schedule  μ_t = β1 (1 - ½ · 0.96^(t ψ))   (eq-av-nadam-mu).

    ``momentum_decay`` is ψ (4e-3 by default): μ_t rises from about β1/2 towards β1.
    """
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_nadam.
# ----------------------------------------------------------------------------------


# [nadam-start]
def nadam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    mu_product: Tensor,
    step: float,
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    decoupled_weight_decay: bool,
) -> None:
    """NAdam (Dozat, 2016): Adam with a Nesterov look-ahead on the first moment.

    ``mu_product`` is the running product μ_1 ⋯ μ_t, a 0-d tensor updated in place.
    """
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    # v̂_t = v_t / (1-β2^t)
    bias_correction2 = 1 - beta2**step                      # (eq-av-adam-vhat)
    if weight_decay != 0:
        if decoupled_weight_decay:
            # θ <- (1 - ηλ) θ
            param.mul_(1 - lr * weight_decay)               # (eq-av-adamw)
        else:
            grad = grad.add(param, alpha=weight_decay)      # (eq-av-l2) g <- g + λθ
    mu = nadam_mu(step, beta1, momentum_decay)              # (eq-av-nadam-mu)  μ_t
    # μ_{t+1}, the look-ahead
    mu_next = nadam_mu(step + 1, beta1, momentum_decay)     # (eq-av-nadam-mu)
    # Π_t = Π_{t-1} μ_t
    mu_product *= mu                                        # (eq-av-nadam-prod)
    # m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_update_(exp_avg, grad, beta1)                      # (eq-av-adam-m)
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    ewma_sq_update_(exp_avg_sq, grad, beta2)                # (eq-av-adam-v)
    denom = exp_avg_sq.div(bias_correction2).sqrt()         # (eq-av-nadam-step) √v̂_t
    # Π_{t+1} = Π_t μ_{t+1}
    mu_product_next = step_value(mu_product) * mu_next      # (eq-av-nadam-prod)
    denom.add_(eps)                                         #                   ... + ε
    # - η (1-μ_t)/(1-Π_t) g_t / (√v̂_t + ε)
    param.addcdiv_(grad, denom,                             # (eq-av-nadam-step)
                   value=(-lr * (1.0 - mu) / (1.0 - step_value(mu_product))))
    # - η μ_{t+1}/(1-Π_{t+1}) m_t / (√v̂_t + ε)
    param.addcdiv_(exp_avg, denom,                          # (eq-av-nadam-step)
                   value=((-lr * mu_next) / (1.0 - mu_product_next)))
# [nadam-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's _multi_tensor_nadam.
# ----------------------------------------------------------------------------------


# [nadam-foreach-start]
def nadam_foreach_update(
    params: TensorList,
    grads: TensorList,
    exp_avgs: TensorList,
    exp_avg_sqs: TensorList,
    mu_products: TensorList,
    steps: TensorList,
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    momentum_decay: float,
    decoupled_weight_decay: bool,
    maximize: bool,
) -> None:
    """NAdam on a list of tensors of one device and dtype; ``steps`` already hold t."""
    params, grads = as_real_list(params), as_real_list(grads)
    exp_avgs, exp_avg_sqs = as_real_list(exp_avgs), as_real_list(exp_avg_sqs)
    if weight_decay != 0 and decoupled_weight_decay:
        # θ <- (1-ηλ) θ
        torch._foreach_mul_(params, 1 - lr * weight_decay)      # (eq-av-adamw)
    l2 = 0 if decoupled_weight_decay else weight_decay
    grads = ascent_and_l2(grads, params, weight_decay=l2,       # (eq-av-l2)
                          maximize=maximize)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)            # (eq-av-adam-m)
    torch._foreach_mul_(exp_avg_sqs, beta2)                     # (eq-av-adam-v)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
    denom = torch._foreach_sqrt(exp_avg_sqs)
    ts = [step_value(step) for step in steps]
    bias_correction2_sqrt = [(1 - beta2**t) ** 0.5 for t in ts]  # √(1-β2^t)
    mus = [nadam_mu(t, beta1, momentum_decay) for t in ts]       # (eq-av-nadam-mu) μ_t
    mu_nexts = [nadam_mu(t + 1, beta1, momentum_decay) for t in ts]  # μ_{t+1}
    torch._foreach_mul_(mu_products, mus)                       # (eq-av-nadam-prod)
    torch._foreach_div_(denom, bias_correction2_sqrt)           # √v̂_t
    torch._foreach_add_(denom, eps)                             # √v̂_t + ε
    lr_value = step_value(lr) if isinstance(lr, Tensor) else lr
    grad_step = [                                               # -η (1-μ_t)/(1-Π_t)
        (lr_value * (1.0 - mu) / (1.0 - step_value(mu_product))) * -1
        for mu_product, mu in zip(mu_products, mus)]
    # -η μ_{t+1}/(1-Π_t μ_{t+1})
    avg_step = [
        (lr_value * mu_next / (1.0 - step_value(mu_product) * mu_next)) * -1
        for mu_product, mu_next in zip(mu_products, mu_nexts)]
    foreach_addcdiv_(params, grads, denom, grad_step)           # (eq-av-nadam-step)
    foreach_addcdiv_(params, exp_avgs, denom, avg_step)         # (eq-av-nadam-step)
# [nadam-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.NAdam's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class NAdam(TwinOptimizer):
    """NAdam (Dozat, 2016).  Twin of :class:`torch.optim.NAdam`.

    State: ``step``, ``mu_product`` (Π_t = μ_1 ⋯ μ_t, a CPU scalar tensor like
    ``step``), ``exp_avg`` (m) and ``exp_avg_sq`` (v).
    """

    supports_foreach = True

    #: What torch.optim.NAdam.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(maximize=False, foreach=None, capturable=False,
                           differentiable=False, decoupled_weight_decay=False)
    _scalar_state = ("step", "mu_product")

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
        check_nonnegative("momentum_decay", momentum_decay)
        check_supported_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
            foreach=foreach, capturable=capturable, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["mu_product"] = torch.tensor(1.0, dtype=scalar_dtype())
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        nadam_update(
            param, grad, as_real(state["exp_avg"]), as_real(state["exp_avg_sq"]),
            state["mu_product"], step_value(state["step"]),
            lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        steps = [s["step"] for s in states]
        increment_steps(steps)
        beta1, beta2 = group["betas"]
        self._functional(nadam_foreach_update)(
            params, grads, [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states], [s["mu_product"] for s in states], steps,
            lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )
