"""AdaBound (Luo, Xiong, Liu & Sun, 2019): no torch.optim twin.

Adam whose per-coordinate step size is clipped into a band [η_l(t), η_u(t)] that
narrows around ``final_lr``, so that it behaves like Adam early and like SGD late.
Tested against a float64 reference written from the paper's pseudo-code
(tests/test_adabound.py).
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import Tensor

from .base import (
    ParamsT,
    TwinOptimizer,
    check_betas_in_unit_interval,
    check_lr,
    check_nonnegative,
    new_step_counter,
    step_value,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = ["AdaBound", "adabound_update", "adabound_bounds"]


# ----------------------------------------------------------------------------------
# AdaBound
# ----------------------------------------------------------------------------------


def adabound_bounds(step: float, final_lr: float, gamma: float) -> Tuple[float, float]:
    """The band at step t:  η_l(t) = η* (1 - 1/(γt + 1)),  η_u(t) = η* (1 + 1/(γt)),
    with η* = ``final_lr`` (already scaled by lr / base_lr)."""
    lower = final_lr * (1 - 1 / (gamma * step + 1))
    upper = final_lr * (1 + 1 / (gamma * step))
    return lower, upper


# [adabound-start]
def adabound_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Optional[Tensor],
    step: float,
    *,
    lr: float,
    base_lr: float,
    beta1: float,
    beta2: float,
    final_lr: float,
    gamma: float,
    eps: float,
    weight_decay: float,
    amsbound: bool,
) -> None:
    """AdaBound, in the form of the authors' implementation (see :class:`AdaBound`)."""
    if weight_decay != 0:
        # g <- g + λθ  (L2, as the official code)
        grad = grad.add(param, alpha=weight_decay)
    ewma_update_(exp_avg, grad, beta1)              # m_t = β1 m_{t-1} + (1-β1) g_t
    ewma_sq_update_(exp_avg_sq, grad, beta2)        # v_t = β2 v_{t-1} + (1-β2) g_t²
    if amsbound:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        exp_avg_sq = max_exp_avg_sq                 # AMSBound: v_t <- max(v_1..v_t)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    compiling = isinstance(step, Tensor)            # torch.compile: t a 0-d tensor
    root2 = bias_correction2.sqrt() if compiling else math.sqrt(bias_correction2)
    step_size = lr * root2 / bias_correction1       # η √(1-β2^t) / (1-β1^t)
    scaled_final_lr = final_lr * lr / base_lr       # η* follows lr schedules
    lower, upper = adabound_bounds(step, scaled_final_lr, gamma)
    denom = exp_avg_sq.sqrt().add_(eps)             # √v_t + ε
    if compiling:
        clipped = (step_size / denom).clamp_(lower, upper)
    else:
        # Clip(η_t/(√v_t+ε), η_l, η_u)
        clipped = torch.full_like(denom, step_size).div_(denom).clamp_(lower, upper)
    param.addcmul_(clipped, exp_avg, value=-1)      # θ_t = θ_{t-1} - clipped ⊙ m_t
# [adabound-end]


class AdaBound(TwinOptimizer):
    """AdaBound (Luo et al., 2019): Adam with its step size clipped into a band that
    shrinks to ``final_lr``.

    **The form implemented** is the authors' reference implementation, not the
    paper's Algorithm 2 verbatim.  At step t (t = 1, 2, ...)::

        m_t  = β1 m_{t-1} + (1-β1) g_t,     v_t = β2 v_{t-1} + (1-β2) g_t²
        η_t  = lr · √(1-β2^t) / (1-β1^t)                    (Adam's bias corrections)
        η*   = final_lr · lr / base_lr                      (base_lr: the group's lr
                                                             at construction)
        η_l  = η* (1 - 1/(γ t + 1)),        η_u = η* (1 + 1/(γ t))
        θ_t  = θ_{t-1} - clip(η_t / (√v_t + ε), η_l, η_u) ⊙ m_t

    Differences from the paper's Algorithm 2: bias correction of both moments
    (folded into η_t, as Adam's efficient form), ε in the denominator, no extra
    1/√t decay of the clipped step, and ``final_lr`` rescaled by lr/base_lr so that
    a learning-rate schedule also moves the band.  ``weight_decay`` is L2 (added to
    the gradient) and ``amsbound=True`` uses max(v_1..v_t), as in the official code.
    ``gamma`` must be > 0 (the upper bound divides by γ t).

    State: ``step``, ``exp_avg``, ``exp_avg_sq`` (+ ``max_exp_avg_sq`` if amsbound).
    Each param group gets a ``base_lr`` key, its lr when it was added.
    """

    algorithm = "AdaBound"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        final_lr: float = 0.1,
        gamma: float = 1e-3,
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsbound: bool = False,
    ) -> None:
        check_lr(lr)
        if torch.is_tensor(lr):
            raise ValueError(f"Invalid learning rate: {lr} (a Tensor lr is not "
                             "supported by AdaBound; pass a float)")
        check_betas_in_unit_interval(betas)
        check_nonnegative("final_lr", final_lr)
        if not 0.0 < gamma < 1.0:
            raise ValueError(f"Invalid gamma value: {gamma} (must be in (0, 1))")
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        defaults = dict(lr=lr, betas=betas, final_lr=final_lr, gamma=gamma, eps=eps,
                        weight_decay=weight_decay, amsbound=amsbound, maximize=False)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["lr"] == 0:
            raise ValueError(f"Invalid learning rate: {group['lr']} (AdaBound needs "
                             "lr > 0 when a group is added: final_lr is scaled by "
                             "lr / base_lr)")
        group.setdefault("base_lr", group["lr"])

    def _required_group_keys(self) -> set:
        # An Adam state_dict lacks these; refused at load, not at the next step.
        return super()._required_group_keys() | {"base_lr"}

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
        if group["amsbound"]:
            state["max_exp_avg_sq"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        if torch.is_complex(param):
            raise RuntimeError("optbook.AdaBound does not support complex parameters")
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adabound_update(
            param, grad, state["exp_avg"], state["exp_avg_sq"],
            state.get("max_exp_avg_sq"), step_value(state["step"]),
            lr=float(to_scalar(group["lr"])), base_lr=group["base_lr"], beta1=beta1,
            beta2=beta2, final_lr=group["final_lr"], gamma=group["gamma"],
            eps=group["eps"], weight_decay=group["weight_decay"],
            amsbound=group["amsbound"],
        )
