"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"): a twin
of ``lion_pytorch.Lion`` (lion-pytorch 0.2.5), which torch.optim does not have.

Lion keeps one buffer, the EWMA m of the gradients, and steps by the *sign* of an
interpolation between m and the new gradient, so that every coordinate moves by
exactly η (plus the decay)::

    θ <- θ (1 - ηλ)                          (eq-lion-wd)    decoupled weight decay
    c  = β1 m + (1 - β1) g                   (eq-lion-c)     interpolation
    θ <- θ - η sign(c)                       (eq-lion-step)  the sign step
    m <- β2 m + (1 - β2) g                   (eq-lion-m)     the momentum, with β2

The paper writes the first three as one line, θ <- θ - η (sign(c) + λθ); in exact
arithmetic it is the same, and lion-pytorch (like optbook) decays first.  Two
betas: β1 for the interpolation the step uses, β2 (> β1 by default) for the memory
kept; with β1 = β2 Lion is signed momentum (signum).

Two code paths, each matching one of lion-pytorch's classes bit for bit:

* single-tensor (:func:`lion_update`, ``foreach=False`` and the CPU default):
  ``lion_pytorch.Lion``, whose EWMAs are ``mul_`` then ``add_``;
* multi-tensor (:func:`lion_foreach_update`, ``foreach=True`` and the CUDA default):
  ``lion_pytorch.foreach.Lion``, whose EWMAs are ``lerp``.  ``lerp`` and
  ``mul_().add_()`` differ in the last bit, so the two paths (in lion-pytorch as in
  optbook) are not bitwise equal to each other: tests/test_lion.py measures by how much.

Not carried over from lion-pytorch: ``use_triton`` (its Triton kernel) and the
``cautious_lion`` variant.  ``decoupled_weight_decay`` is, with lion-pytorch's
meaning (λ is divided by the initial lr, so the decay per step is λ·lr/lr_0) and
its storage (attributes of the optimizer, not of the parameter groups, so not in
the state_dict).  Added: ``maximize`` and ``foreach``.
"""

from __future__ import annotations

import numbers
from typing import Any, Tuple

import torch
from torch import Tensor

from .base import (
    ParamsT,
    Scalar,
    TensorList,
    TwinOptimizer,
    check_lr,
    check_nonnegative,
    to_scalar,
    zeros_like,
)

__all__ = ["Lion", "lion_update", "lion_foreach_update"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as lion_pytorch's update_fn.
# ----------------------------------------------------------------------------------


# [lion-start]
def lion_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
) -> None:
    """Lion (Chen et al., 2023, Algorithm 2) on one tensor, in place."""
    if weight_decay != 0:  # a product with 1.0 would change no bit: skipped
        param.mul_(1 - lr * weight_decay)               # (eq-lion-wd) θ(1 - ηλ)
    c = exp_avg.mul(beta1).add_(grad, alpha=1 - beta1)  # (eq-lion-c) β1 m + (1-β1) g
    param.add_(c.sgn_(), alpha=-lr)                     # (eq-lion-step) θ - η sign(c)
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)     # (eq-lion-m) β2 m + (1-β2) g
# [lion-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as lion_pytorch.foreach.Lion.
# ----------------------------------------------------------------------------------


# [lion-foreach-start]
def lion_foreach_update(
    params: TensorList,
    grads: TensorList,
    exp_avgs: TensorList,
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    """Lion on a list of real tensors of one device and dtype, in place."""
    if maximize:
        grads = torch._foreach_neg(grads)                        # ascent: -g (a copy)
    tensor_lr = isinstance(lr, Tensor)  # compiled: lr is a 0-d float64 tensor
    if weight_decay != 0:
        decay = 1 - lr * weight_decay
        if tensor_lr:  # rounded to the parameters' dtype once, as eager rounds a
            decay = decay.to(params[0].dtype)  # Python scalar (a 0-d θ would not)
        torch._foreach_mul_(params, decay)                       # (eq-lion-wd)
    updates = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)    # (eq-lion-c)
    torch._foreach_sign_(updates)                                # sign(c)
    if tensor_lr:  # -η·sign(c) is exact: the same sum as alpha=-η
        torch._foreach_mul_(updates, (-lr).to(params[0].dtype))
        torch._foreach_add_(params, updates)                     # (eq-lion-step)
    else:
        torch._foreach_add_(params, updates, alpha=-lr)          # (eq-lion-step)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta2)             # (eq-lion-m)
# [lion-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: lion_pytorch.Lion's constructor, defaults and state.
# ----------------------------------------------------------------------------------


def _check_lion_betas(betas: Any) -> None:
    """lion-pytorch's range, 0 <= β <= 1 (β1 = 1 steps by sign(m) alone, a valid,
    if unusual, choice), as a ValueError in torch's words."""
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (two coefficients, (beta1, beta2))")
    for index, beta in enumerate(betas):
        if (isinstance(beta, bool) or not isinstance(beta, numbers.Real)
                or not 0.0 <= beta <= 1.0):
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


class Lion(TwinOptimizer):
    """Lion (Chen et al., 2023).  Twin of ``lion_pytorch.Lion``.

    State: ``exp_avg`` (m), as lion-pytorch's, so state_dicts load both ways; no step
    counter (Lion has no bias correction).  lion-pytorch asserts ``lr > 0`` and
    ``0 <= beta <= 1``; optbook raises ``ValueError`` instead, accepts ``lr = 0``
    (a scheduler's endpoint) unless ``decoupled_weight_decay`` divides by it, and
    refuses a negative ``weight_decay`` (which lion-pytorch's two paths treat
    differently: its foreach path skips any ``weight_decay <= 0``).
    """

    supports_foreach = True

    #: What a lion_pytorch.Lion state_dict lacks (see TwinOptimizer).
    _group_backfill = dict(maximize=False, foreach=None)

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-4,
        betas: Tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        check_lr(lr)
        _check_lion_betas(betas)
        check_nonnegative("weight_decay", weight_decay)
        if decoupled_weight_decay and not to_scalar(lr) > 0:
            raise ValueError(f"Invalid learning rate: {lr} (decoupled_weight_decay "
                             "divides weight_decay by the initial lr)")
        # As lion-pytorch keeps them: on the optimizer, read at every step.
        self._init_lr = lr
        self.decoupled_wd = bool(decoupled_weight_decay)
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay,
                        maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _weight_decay(self, group: dict) -> float:
        """λ, or λ / lr_0 with ``decoupled_weight_decay`` (lion-pytorch's rule)."""
        wd = group["weight_decay"]
        return wd / self._init_lr if self.decoupled_wd else wd

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["exp_avg"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        beta1, beta2 = group["betas"]
        lion_update(param, grad, state["exp_avg"], lr=to_scalar(group["lr"]),
                    beta1=beta1, beta2=beta2, weight_decay=self._weight_decay(group))

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        if torch.is_complex(params[0]):  # torch's sign has no complex kernel: sgn,
            for param, grad, state in zip(params, grads, states):  # tensor by tensor
                self._update(param, -grad if group["maximize"] else grad, state, group)
            return
        beta1, beta2 = group["betas"]
        self._functional(lion_foreach_update)(
            params, grads, [s["exp_avg"] for s in states], lr=to_scalar(group["lr"]),
            beta1=beta1, beta2=beta2, weight_decay=self._weight_decay(group),
            maximize=group["maximize"],
        )
