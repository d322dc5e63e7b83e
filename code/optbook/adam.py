"""Adam (with AMSGrad) and AdamW: twins of torch.optim.Adam and torch.optim.AdamW.

As torch/optim/adam.py: the single-tensor update, the multi-tensor update (split
into the per-tensor step scalars and the elementwise part, see adam_foreach_update)
and the classes. The comments name the equations of chapters/adam.md and
chapters/amsgrad.md.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

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
    check_adam_hyper,
    check_supported_flags,
    increment_steps,
    new_step_counter,
    scalar_tensor,
    step_value,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = ["Adam", "AdamW", "adam_update", "adam_foreach_update", "adam_step_scalars",
           "adam_foreach_apply"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_adam.
# ----------------------------------------------------------------------------------


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
            param.mul_(1 - lr * weight_decay)               # (eq-adamw) θ <- (1 - ηλ) θ
        else:
            grad = grad.add(param, alpha=weight_decay)      # (eq-l2)    g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    # m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_update_(exp_avg, grad, beta1)                      # (eq-adam-m)
    # v_t = β2 v_{t-1} + (1-β2) g_t²
    ewma_sq_update_(exp_avg_sq, grad, beta2)                # (eq-adam-v)
    # m̂_t = m_t / (1-β1^t)
    bias_correction1 = 1 - beta1**step                      # (eq-adam-mhat)
    # v̂_t = v_t / (1-β2^t)
    bias_correction2 = 1 - beta2**step                      # (eq-adam-vhat)
    step_size = lr / bias_correction1                       # fold 1/(1-β1^t) into η
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:
        # v^max_t = max(v^max_{t-1}, v_t)
        torch.maximum(max_exp_avg_sq, exp_avg_sq,           # (eq-amsgrad-max)
                      out=max_exp_avg_sq)
        exp_avg_sq = max_exp_avg_sq                         # and use it in place of v_t
    # √v̂_t + ε
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # (eq-adam-step)
    # θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε)
    param.addcdiv_(exp_avg, denom, value=-step_size)        # (eq-adam-step)
# [adam-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's _multi_tensor_adam.
# ----------------------------------------------------------------------------------


# [adam-foreach-start]
def adam_foreach_update(
    params: TensorList,
    grads: TensorList,
    exp_avgs: TensorList,
    exp_avg_sqs: TensorList,
    max_exp_avg_sqs: Optional[TensorList],
    steps: TensorList,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decoupled_weight_decay: bool,
    maximize: bool = False,
) -> None:
    """Adam (and AMSGrad, and AdamW) on a list of tensors of one device and dtype."""
    step_sizes, bias_correction2_sqrt = adam_step_scalars(steps, lr=lr, beta1=beta1,
                                                          beta2=beta2)
    adam_foreach_apply(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step_sizes,
        bias_correction2_sqrt,
        lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
        amsgrad=amsgrad, decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


def adam_step_scalars(steps: TensorList, *, lr: float, beta1: float,
                      beta2: float) -> tuple:
    """The two numbers per tensor that depend on its step t (scalar work, done once):
    Python floats, or under ``torch.compile`` 0-d tensors (see :func:`step_value`)."""
    # 1 - β1^t
    bias_correction1 = [1 - beta1**step_value(step) for step in steps]  # (eq-adam-mhat)
    # 1 - β2^t
    bias_correction2 = [1 - beta2**step_value(step) for step in steps]  # (eq-adam-vhat)
    step_sizes = [(lr / bc) * -1 for bc in bias_correction1]            # -η / (1-β1^t)
    bias_correction2_sqrt = [bc**0.5 for bc in bias_correction2]        # √(1-β2^t)
    return step_sizes, bias_correction2_sqrt


def adam_foreach_apply(
    params: TensorList,
    grads: TensorList,
    exp_avgs: TensorList,
    exp_avg_sqs: TensorList,
    max_exp_avg_sqs: Optional[TensorList],
    step_sizes: Union[Sequence[Scalar], Tensor],
    bias_correction2_sqrt: Union[Sequence[Scalar], Tensor],
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decoupled_weight_decay: bool,
    maximize: bool = False,
) -> None:
    """The elementwise part of Adam: every line one pass over every tensor.

    Peak memory as torch's: the gradient temporary (the negated copy of ``maximize``,
    reused for weight decay) is freed before the square root allocates its own."""
    params, grads = as_real_list(params), as_real_list(grads)
    exp_avgs, exp_avg_sqs = as_real_list(exp_avgs), as_real_list(exp_avg_sqs)
    max_exp_avg_sqs = as_real_list(max_exp_avg_sqs)
    if weight_decay != 0 and decoupled_weight_decay:
        # θ <- (1 - ηλ) θ
        torch._foreach_mul_(params, 1 - lr * weight_decay)            # (eq-adamw)
    l2 = 0 if decoupled_weight_decay else weight_decay
    # g <- g + λθ
    grads = ascent_and_l2(grads, params, weight_decay=l2, maximize=maximize)  # (eq-l2)
    # m_t = β1 m_{t-1} + (1-β1) g_t
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)                  # (eq-adam-m)
    # v_t = β2 v_{t-1}
    torch._foreach_mul_(exp_avg_sqs, beta2)                           # (eq-adam-v)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)     # + (1-β2) g_t²
    del grads                                                         # its last use
    if amsgrad:
        # v^max_t = max(v^max_{t-1}, v_t)
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)         # (eq-amsgrad-max)
        # and use it in place of v_t
        exp_avg_sqs = max_exp_avg_sqs
    # √v_t
    denom = torch._foreach_sqrt(exp_avg_sqs)                          # (eq-adam-step)
    if isinstance(step_sizes, Tensor):  # compile_step: one tensor of scalars
        step_sizes, bias_correction2_sqrt = (step_sizes.unbind(0),
                                             bias_correction2_sqrt.unbind(0))
    # compiled: 0-d tensors (torch's capturable form)
    if isinstance(step_sizes[0], Tensor):
        # √v̂_t = √v_t / √(1-β2^t)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, eps)                               # √v̂_t + ε
        # (√v̂_t + ε) / (-η/(1-β1^t))
        torch._foreach_div_(denom, step_sizes)
        torch._foreach_addcdiv_(params, exp_avgs, denom)              # (eq-adam-step)
    else:
        # √v̂_t = √v_t / √(1-β2^t)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, eps)                               # √v̂_t + ε
        # θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε)
        torch._foreach_addcdiv_(params, exp_avgs, denom, step_sizes)  # (eq-adam-step)
# [adam-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.Adam's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class Adam(TwinOptimizer):
    """Adam (Kingma & Ba, 2015), with AMSGrad (Reddi et al., 2018) and decoupled
    weight decay (Loshchilov & Hutter, 2019) as options.  Twin of
    :class:`torch.optim.Adam`.

    State: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), plus ``max_exp_avg_sq``
    if ``amsgrad``.

    As in torch, a Tensor ``lr`` keeps ``foreach=None`` on the single-tensor path,
    and is refused with ``foreach=True`` (torch needs ``capturable=True`` for it).
    """

    supports_foreach = True

    def _foreach_by_default(self, group: dict) -> bool:
        return not torch.is_tensor(group["lr"])

    #: What torch.optim.Adam.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(amsgrad=False, maximize=False, foreach=None,
                           capturable=False, differentiable=False,
                           decoupled_weight_decay=False, fused=None)

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        betas: Tuple[Union[float, Tensor], Union[float, Tensor]] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_adam_hyper(lr, betas, eps, weight_decay, foreach, capturable)
        check_supported_flags(capturable=capturable, differentiable=differentiable,
                              fused=fused)
        defaults = dict(
            lr=lr, betas=(to_scalar(betas[0]), to_scalar(betas[1])), eps=eps,
            weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
            foreach=foreach, capturable=capturable, differentiable=differentiable,
            fused=fused, decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adam_update(
            param, grad, as_real(state["exp_avg"]),
            as_real(state["exp_avg_sq"]), as_real(state.get("max_exp_avg_sq")),
            step_value(state["step"]),
            lr=to_scalar(group["lr"]), beta1=to_scalar(beta1), beta2=to_scalar(beta2),
            eps=group["eps"], weight_decay=group["weight_decay"],
            amsgrad=group["amsgrad"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        lr = to_scalar(group["lr"])
        if torch.is_tensor(lr) and not self.compiled:
            # torch's words (optbook has no capturable mode)
            raise RuntimeError("lr as a Tensor is not supported for capturable=False "
                               "and foreach=True")
        steps = [s["step"] for s in states]
        increment_steps(steps)
        amsgrad = group["amsgrad"]
        beta1, beta2 = group["betas"]
        buffers = (params, grads, [s["exp_avg"] for s in states],
                   [s["exp_avg_sq"] for s in states],
                   [s["max_exp_avg_sq"] for s in states] if amsgrad else None)
        hyper = dict(eps=group["eps"], weight_decay=group["weight_decay"],
                     amsgrad=amsgrad,
                     decoupled_weight_decay=group["decoupled_weight_decay"],
                     maximize=group["maximize"])
        if not self.compiled or torch.compiler.is_compiling():
            # also inside an outer torch.compile, which compiles it (see compile_step)
            adam_foreach_update(*buffers, steps, lr=lr, beta1=beta1, beta2=beta2,
                                **hyper)
            return
        # Compiled: the per-tensor scalars (β^t needs a pow) eagerly, once per tensor,
        # as in the eager path; the elementwise part compiled, with the scalars as
        # inputs.
        lr, beta1, beta2 = (x.item() if torch.is_tensor(x) else x
                            for x in (lr, beta1, beta2))
        step_sizes, bias_correction2_sqrt = adam_step_scalars(steps, lr=lr, beta1=beta1,
                                                              beta2=beta2)
        device = params[0].device
        self._functional(adam_foreach_apply)(
            *buffers, scalar_tensor(step_sizes, device),
            scalar_tensor(bias_correction2_sqrt, device),
            lr=lr, beta1=beta1, beta2=beta2, **hyper,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Twin of :class:`torch.optim.AdamW`: ``Adam(..., decoupled_weight_decay=True)``
    with a default ``weight_decay`` of 1e-2.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        betas: Tuple[Union[float, Tensor], Union[float, Tensor]] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
            maximize=maximize,
            capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
