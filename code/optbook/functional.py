"""Pure functional updates: one step of each algorithm on one tensor.

Each function takes a parameter, its gradient and its state buffers, and updates
them in place; nothing else is read or written.  They are what the chapters show,
and every comment names the numbered equation of the book that the line
implements, e.g. ``# (eq-adam-m)``.

They follow torch.optim's ``_single_tensor_*`` functions operation for operation
(``lerp_`` where torch uses ``lerp_``, ``addcdiv_`` where it uses ``addcdiv_``),
so that an optbook optimizer and its torch.optim twin produce the same bits.
Gradients arrive already negated when ``maximize=True``.  The adaptive methods
treat a complex number as a pair of reals: state buffers arrive as real views, and
the parameter and gradient are viewed as real right after weight decay (which, as
in torch, is applied in complex arithmetic).
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from .base import as_real
from .ewma import ewma_sq_update_, ewma_update_

__all__ = ["sgd_update", "adagrad_update", "rmsprop_update", "adam_update"]

Scalar = Union[float, Tensor]


# [sgd-start]
def sgd_update(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Optional[Tensor],
    *,
    lr: Scalar,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
) -> Optional[Tensor]:
    """SGD with optional heavy-ball or Nesterov momentum; returns the buffer m_t."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)          # (eq-l2)        g <- g + λθ
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = grad.detach().clone()         # (eq-sgd-m1)    m_1 = g_1
        else:                                               # (eq-sgd-m)     m_t = μ m_{t-1} + (1-τ) g_t
            momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        if nesterov:
            grad = grad.add(momentum_buffer, alpha=momentum)  # (eq-nesterov) d_t = g_t + μ m_t
        else:
            grad = momentum_buffer                          # (eq-heavy-ball) d_t = m_t
    param.add_(grad, alpha=-lr)                             # (eq-sgd-step)  θ_t = θ_{t-1} - η d_t
    return momentum_buffer
# [sgd-end]


# [adagrad-start]
def adagrad_update(
    param: Tensor,
    grad: Tensor,
    state_sum: Tensor,
    step: float,
    *,
    lr: Scalar,
    lr_decay: float,
    weight_decay: float,
    eps: float,
) -> None:
    """AdaGrad: divide each coordinate's step by the root of its summed squares."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)          # (eq-l2)           g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    clr = lr / (1 + (step - 1) * lr_decay)                  # (eq-adagrad-decay) η_t = η / (1 + (t-1) d)
    state_sum.addcmul_(grad, grad, value=1)                 # (eq-adagrad-s)    s_t = s_{t-1} + g_t²
    std = state_sum.sqrt().add_(eps)                        # (eq-adagrad-step) √s_t + ε
    param.addcdiv_(grad, std, value=-clr)                   # (eq-adagrad-step) θ_t = θ_{t-1} - η_t g_t / (√s_t + ε)
# [adagrad-end]


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
        grad = grad.add(param, alpha=weight_decay)          # (eq-l2)              g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    ewma_sq_update_(square_avg, grad, alpha)                # (eq-rmsprop-v)       v_t = β v_{t-1} + (1-β) g_t²
    if centered:
        ewma_update_(grad_avg, grad, alpha)                 # (eq-rmsprop-gbar)    ḡ_t = β ḡ_{t-1} + (1-β) g_t
        avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()  # (eq-rmsprop-centered) √(v_t - ḡ_t²)
    else:
        avg = square_avg.sqrt()                             # (eq-rmsprop-step)    √v_t
    avg = avg.add_(eps)                                     #                      ... + ε
    if momentum > 0:
        momentum_buffer.mul_(momentum).addcdiv_(grad, avg)  # (eq-rmsprop-momentum) b_t = μ b_{t-1} + g_t / (√v_t + ε)
        param.add_(momentum_buffer, alpha=-lr)              #                      θ_t = θ_{t-1} - η b_t
    else:
        param.addcdiv_(grad, avg, value=-lr)                # (eq-rmsprop-step)    θ_t = θ_{t-1} - η g_t / (√v_t + ε)
# [rmsprop-end]


# [adam-start]
def adam_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Optional[Tensor],
    step: float,
    *,
    lr: Scalar,
    beta1: Scalar,
    beta2: Scalar,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decoupled_weight_decay: bool,
) -> None:
    """Adam (and AMSGrad, and AdamW) for one tensor at step t = ``step`` >= 1."""
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)               # (eq-adamw)      θ <- (1 - ηλ) θ
        else:
            grad = grad.add(param, alpha=weight_decay)      # (eq-l2)         g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    ewma_update_(exp_avg, grad, beta1)                      # (eq-adam-m)     m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_sq_update_(exp_avg_sq, grad, beta2)                # (eq-adam-v)     v_t = β2 v_{t-1} + (1-β2) g_t²
    bias_correction1 = 1 - beta1**step                      # (eq-adam-mhat)  m̂_t = m_t / (1-β1^t)
    bias_correction2 = 1 - beta2**step                      # (eq-adam-vhat)  v̂_t = v_t / (1-β2^t)
    step_size = lr / bias_correction1                       #                 fold 1/(1-β1^t) into η
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)  # (eq-amsgrad-max) v^max_t = max(v^max_{t-1}, v_t)
        exp_avg_sq = max_exp_avg_sq                         #                 and use it in place of v_t
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # (eq-adam-step)  √v̂_t + ε
    param.addcdiv_(exp_avg, denom, value=-step_size)        # (eq-adam-step)  θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε)
# [adam-end]
