"""AdaGrad: twin of torch.optim.Adagrad.

As torch/optim/adagrad.py: the single-tensor update, the multi-tensor update and
the class. The comments name the equations of chapters/adagrad.md.
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
    new_step_counter,
    step_value,
    to_scalar,
)

__all__ = ["Adagrad", "adagrad_update", "adagrad_foreach_update"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_adagrad.
# ----------------------------------------------------------------------------------


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
        grad = grad.add(param, alpha=weight_decay)          # (eq-l2) g <- g + λθ
    param, grad = as_real(param), as_real(grad)             # complex -> pairs of reals
    # η_t = η / (1 + (t-1) d)
    clr = lr / (1 + (step - 1) * lr_decay)                  # (eq-adagrad-decay)
    # s_t = s_{t-1} + g_t²
    state_sum.addcmul_(grad, grad, value=1)                 # (eq-adagrad-s)
    std = state_sum.sqrt().add_(eps)                        # (eq-adagrad-step) √s_t + ε
    # θ_t = θ_{t-1} - η_t g_t / (√s_t + ε)
    param.addcdiv_(grad, std, value=-clr)                   # (eq-adagrad-step)
# [adagrad-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's
# _multi_tensor_adagrad.
# ----------------------------------------------------------------------------------


# [adagrad-foreach-start]
def adagrad_foreach_update(
    params: TensorList,
    grads: TensorList,
    state_sums: TensorList,
    steps: TensorList,
    *,
    lr: Scalar,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool = False,
) -> None:
    """AdaGrad on a list of tensors of one device and dtype."""
    params, grads, state_sums = (as_real_list(params), as_real_list(grads),
                                 as_real_list(state_sums))
    # a temporary we may overwrite
    grads_are_ours = maximize or weight_decay != 0
    # g <- g + λθ
    grads = ascent_and_l2(grads, params, weight_decay=weight_decay,  # (eq-l2)
                          maximize=maximize)
    # -η_t
    minus_clr = [-lr / (1 + (step_value(step) - 1) * lr_decay)      # (eq-adagrad-decay)
                 for step in steps]
    # s_t = s_{t-1} + g_t²
    torch._foreach_addcmul_(state_sums, grads, grads, value=1)      # (eq-adagrad-s)
    # √s_t
    std = torch._foreach_sqrt(state_sums)                           # (eq-adagrad-step)
    torch._foreach_add_(std, eps)                                   # + ε
    if grads_are_ours:
        # -η_t g_t
        torch._foreach_mul_(grads, minus_clr)                       # (eq-adagrad-step)
        numerator = grads
    else:
        # -η_t g_t
        numerator = torch._foreach_mul(grads, minus_clr)            # (eq-adagrad-step)
    # θ_t = θ_{t-1} - η_t g_t / (√s_t + ε)
    torch._foreach_addcdiv_(params, numerator, std)                 # (eq-adagrad-step)
# [adagrad-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.Adagrad's constructor, defaults, validation and
# state.
# ----------------------------------------------------------------------------------


class Adagrad(TwinOptimizer):
    """AdaGrad (Duchi, Hazan & Singer, 2011).  Twin of :class:`torch.optim.Adagrad`.

    State: ``step`` and ``sum``.  Like torch, the state is created for every
    parameter in the constructor, with the constructor's
    ``initial_accumulator_value``.
    """

    supports_foreach = True

    #: What torch.optim.Adagrad.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(foreach=None, maximize=False, differentiable=False,
                           fused=None)
    _optional_group_keys = ("initial_accumulator_value",)  # read at construction only

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        check_lr(lr)
        check_nonnegative("lr_decay", lr_decay)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("initial_accumulator_value", initial_accumulator_value)
        check_nonnegative("eps", eps)
        check_supported_flags(differentiable=differentiable, fused=fused)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(param, self.state[param], group)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        value = self.defaults["initial_accumulator_value"]
        if torch.is_complex(param):
            value = complex(value, value)
        state["step"] = new_step_counter()
        state["sum"] = torch.full_like(param, value,
                                       memory_format=torch.preserve_format)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        adagrad_update(
            param, grad, as_real(state["sum"]), step_value(state["step"]),
            lr=to_scalar(group["lr"]), lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"], eps=group["eps"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        steps = [s["step"] for s in states]
        increment_steps(steps)
        self._functional(adagrad_foreach_update)(
            params, grads, [s["sum"] for s in states], steps,
            lr=to_scalar(group["lr"]), lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"], eps=group["eps"],
            maximize=group["maximize"],
        )
