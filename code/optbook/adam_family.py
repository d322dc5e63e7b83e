"""Beyond Adam: NAdam, RAdam, Adamax and Adadelta, twins of their torch.optim classes.

Each class has its torch.optim twin's constructor signature, defaults, validation
rules, ``param_groups`` keys and state names, so a ``state_dict`` saved by one loads
into the other, and its single-tensor step gives the same bits as torch's
``_single_tensor_nadam`` / ``_single_tensor_radam`` / ``_single_tensor_adamax`` /
``_single_tensor_adadelta``.

The pure functional updates (one tensor in, updated in place) come first; each line
names the equation of the chapter *Decoupled weight decay and modern Adam variants*
(``chapters/adam_variants.md``) that it implements, e.g. ``(eq-av-nadam-mu)``, and
each lies between start/end marker comments (``nadam-start`` / ``nadam-end``, ...) for
``literalinclude``.

Only the single-tensor path exists here: ``foreach=True``, ``capturable=True`` and
``differentiable=True`` are refused with a ``ValueError`` (``foreach=None`` and
``foreach=False`` both take the single-tensor loop, on every device).

Complex parameters are treated as pairs of reals, as torch does, and the real views
are taken at exactly the point where torch takes them: *before* weight decay in
NAdam and RAdam, *after* it in Adamax and Adadelta; Adadelta never views the
parameter itself as real, it views the step back as complex instead.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor

from .base import (
    ParamsT,
    TwinOptimizer,
    as_real,
    check_lr,
    check_nonnegative,
    check_supported_flags,
    check_unit_interval,
    new_step_counter,
    scalar_dtype,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = [
    "NAdam", "RAdam", "Adamax", "Adadelta",
    "nadam_update", "radam_update", "adamax_update", "adadelta_update",
    "nadam_mu", "radam_rho", "radam_rectification",
]

Scalar = Union[float, Tensor]


# ----------------------------------------------------------------------------------
# Scalar schedules, shared by the updates and by the chapter's plots.
# ----------------------------------------------------------------------------------


def nadam_mu(step: float, beta1: float, momentum_decay: float) -> float:
    """NAdam's momentum schedule  μ_t = β1 (1 - ½ · 0.96^(t ψ))   (eq-av-nadam-mu).

    ``momentum_decay`` is ψ (4e-3 by default): μ_t rises from about β1/2 towards β1.
    """
    return beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))


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
# Pure functional updates (one tensor), op for op as torch's _single_tensor_* loops.
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
    bias_correction2 = 1 - beta2**step                      # (eq-av-adam-vhat) v̂_t = v_t / (1-β2^t)
    if weight_decay != 0:
        if decoupled_weight_decay:
            param.mul_(1 - lr * weight_decay)               # (eq-av-adamw)     θ <- (1 - ηλ) θ
        else:
            grad = grad.add(param, alpha=weight_decay)      # (eq-av-l2)        g <- g + λθ
    mu = nadam_mu(step, beta1, momentum_decay)              # (eq-av-nadam-mu)  μ_t
    mu_next = nadam_mu(step + 1, beta1, momentum_decay)     # (eq-av-nadam-mu)  μ_{t+1}, the look-ahead
    mu_product *= mu                                        # (eq-av-nadam-prod) Π_t = Π_{t-1} μ_t
    ewma_update_(exp_avg, grad, beta1)                      # (eq-av-adam-m)    m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_sq_update_(exp_avg_sq, grad, beta2)                # (eq-av-adam-v)    v_t = β2 v_{t-1} + (1-β2) g_t²
    denom = exp_avg_sq.div(bias_correction2).sqrt()         # (eq-av-nadam-step) √v̂_t
    mu_product_next = mu_product.item() * mu_next           # (eq-av-nadam-prod) Π_{t+1} = Π_t μ_{t+1}
    denom.add_(eps)                                         #                   ... + ε
    param.addcdiv_(grad, denom,                             # (eq-av-nadam-step) - η (1-μ_t)/(1-Π_t) g_t / (√v̂_t + ε)
                   value=(-lr * (1.0 - mu) / (1.0 - mu_product.item())))
    param.addcdiv_(exp_avg, denom,                          # (eq-av-nadam-step) - η μ_{t+1}/(1-Π_{t+1}) m_t / (√v̂_t + ε)
                   value=((-lr * mu_next) / (1.0 - mu_product_next)))
# [nadam-end]


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
        grad = grad.add(param, alpha=weight_decay)          # (eq-av-l2)          g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    ewma_update_(exp_avg, grad, beta1)                      # (eq-av-adam-m)      m_t = β1 m_{t-1} + (1-β1) g_t
    torch.maximum(exp_inf.mul_(beta2),                      # (eq-av-adamax-u)    u_t = max(β2 u_{t-1}, |g_t| + ε)
                  grad.abs().add_(eps), out=exp_inf)
    bias_correction = 1 - beta1**step                       # (eq-av-adam-mhat)   m̂_t = m_t / (1-β1^t)
    clr = lr / bias_correction                              #                     fold 1/(1-β1^t) into η
    param.addcdiv_(exp_avg, exp_inf, value=-clr)            # (eq-av-adamax-step) θ_t = θ_{t-1} - η m̂_t / u_t
# [adamax-end]


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
# The optimizer classes.
# ----------------------------------------------------------------------------------


def _check_single_tensor_flags(foreach: Optional[bool], **flags: Any) -> None:
    """These classes have only the single-tensor path: foreach=True is refused
    (torch would take its multi-tensor path), as are the unimplemented flags."""
    if foreach:
        raise ValueError(f"Invalid foreach: {foreach!r} (optbook implements only the "
                         "single-tensor path for this optimizer; use foreach=None/False, "
                         "or torch.optim for the multi-tensor path)")
    check_supported_flags(**flags)


def _check_betas(betas: Any) -> None:
    """torch.optim's rule for NAdam, RAdam and Adamax: each beta in [0, 1)
    (unlike Adam's, ints are accepted)."""
    for index in (0, 1):
        check_unit_interval(f"betas[{index}]", betas[index])


class NAdam(TwinOptimizer):
    """NAdam (Dozat, 2016).  Twin of :class:`torch.optim.NAdam`.

    State: ``step``, ``mu_product`` (Π_t = μ_1 ⋯ μ_t, a CPU scalar tensor like
    ``step``), ``exp_avg`` (m) and ``exp_avg_sq`` (v).
    """


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
        _check_betas(betas)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("momentum_decay", momentum_decay)
        _check_single_tensor_flags(foreach, capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable,
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
            state["mu_product"], state["step"].item(),
            lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )


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
        _check_betas(betas)
        check_nonnegative("weight_decay", weight_decay)
        _check_single_tensor_flags(foreach, capturable=capturable, differentiable=differentiable)
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


class Adamax(TwinOptimizer):
    """Adamax (Kingma & Ba, 2015).  Twin of :class:`torch.optim.Adamax`.

    State: ``step``, ``exp_avg`` (m) and ``exp_inf`` (u, the decayed ∞-norm).
    """


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
        _check_betas(betas)
        check_nonnegative("weight_decay", weight_decay)
        _check_single_tensor_flags(foreach, differentiable=differentiable, capturable=capturable)
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
            state["step"].item(),
            lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
            weight_decay=group["weight_decay"],
        )


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
        _check_single_tensor_flags(foreach, capturable=capturable, differentiable=differentiable)
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
