"""Stochastic gradient descent with heavy-ball or Nesterov momentum: twin of
torch.optim.SGD.

As torch/optim/sgd.py: the single-tensor update, the multi-tensor update and the
class, in that order. The comments name the equations of chapters/momentum.md.
"""

from __future__ import annotations

from typing import List, Optional, Union

import torch
from torch import Tensor

from .base import (
    ParamsT,
    Scalar,
    TensorList,
    TwinOptimizer,
    as_real,
    ascent_and_l2,
    check_lr,
    check_nonnegative,
    check_supported_flags,
    is_compiled_tensor_lr,
    to_scalar,
)

__all__ = ["SGD", "sgd_update", "sgd_foreach_update"]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_sgd.
# ----------------------------------------------------------------------------------


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
        else:                                               # (eq-sgd-m)
            # m_t = μ m_{t-1} + (1-τ) g_t
            momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        if nesterov:
            # d_t = g_t + μ m_t
            grad = grad.add(momentum_buffer, alpha=momentum)  # (eq-nesterov)
        else:
            grad = momentum_buffer                          # (eq-heavy-ball) d_t = m_t
    # θ_t = θ_{t-1} - η d_t
    param.add_(grad, alpha=-lr)                             # (eq-sgd-step)
    return momentum_buffer
# [sgd-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's _multi_tensor_sgd.
# ----------------------------------------------------------------------------------


# [sgd-foreach-start]
def sgd_foreach_update(
    params: TensorList,
    grads: TensorList,
    momentum_buffers: List[Optional[Tensor]],
    *,
    lr: Scalar,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool = False,
) -> List[Optional[Tensor]]:
    """SGD with heavy-ball or Nesterov momentum on a list; returns the buffers m_t.

    As torch's: a temporary only where one is needed (the negated gradient for
    ``maximize``, reused for weight decay), and Nesterov's d_t is added into the
    gradients in place (into ``p.grad`` itself when there is no such temporary)."""
    # g <- g + λθ
    grads = ascent_and_l2(grads, params, weight_decay=weight_decay,   # (eq-l2)
                          maximize=maximize)
    if momentum != 0:
        if all(buf is not None for buf in momentum_buffers):
            # m_t = μ m_{t-1}
            torch._foreach_mul_(momentum_buffers, momentum)            # (eq-sgd-m)
            # + (1-τ) g_t
            torch._foreach_add_(momentum_buffers, grads, alpha=1 - dampening)
        else:  # first step of some tensor: tensor by tensor, as the single-tensor loop
            momentum_buffers = [
                # m_1 = g_1
                grad.detach().clone() if buf is None                   # (eq-sgd-m1)
                else buf.mul_(momentum).add_(grad, alpha=1 - dampening)  # (eq-sgd-m)
                for buf, grad in zip(momentum_buffers, grads)
            ]
        if nesterov:
            # d_t = g_t + μ m_t
            torch._foreach_add_(grads, momentum_buffers,               # (eq-nesterov)
                                alpha=momentum)
        else:
            # d_t = m_t
            grads = momentum_buffers                                   # (eq-heavy-ball)
    if is_compiled_tensor_lr(lr):
        # θ_t = θ_{t-1} - η d_t
        torch._foreach_add_(params, torch._foreach_mul(grads, -lr))    # (eq-sgd-step)
    else:
        # θ_t = θ_{t-1} - η d_t
        torch._foreach_add_(params, grads, alpha=-lr)                  # (eq-sgd-step)
    return momentum_buffers
# [sgd-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.SGD's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class SGD(TwinOptimizer):
    """Stochastic gradient descent with heavy-ball or Nesterov momentum.

    Twin of :class:`torch.optim.SGD`.  State: ``momentum_buffer`` (only when
    ``momentum != 0``), initialised to the first gradient, as in torch.
    """

    supports_foreach = True

    #: What torch.optim.SGD.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(nesterov=False, maximize=False, foreach=None,
                           differentiable=False, fused=False)

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: Union[float, Tensor] = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        check_lr(lr)
        check_nonnegative("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Nesterov momentum requires a momentum and zero dampening "
                f"(got nesterov=True, momentum={momentum!r}, dampening={dampening!r})"
            )
        check_supported_flags(differentiable=differentiable, fused=fused)
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach,
            differentiable=differentiable, fused=fused,
        )
        super().__init__(params, defaults)

    def _needs_state(self, group: dict) -> bool:
        return group["momentum"] != 0

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["momentum_buffer"] = None  # created from the first gradient

    def _update(self, param: Tensor, grad: Tensor, state: Optional[dict],
                group: dict) -> None:
        # Unlike the adaptive methods, torch's SGD updates complex tensors with complex
        # arithmetic (no real view), and so do we: the two are not bitwise equal.
        buf = None if state is None else state["momentum_buffer"]
        new_buf = sgd_update(
            param, grad, buf,
            lr=to_scalar(group["lr"]), momentum=group["momentum"],
            dampening=group["dampening"], nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
        )
        if state is not None:
            state["momentum_buffer"] = new_buf

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        momentum = group["momentum"]
        bufs = [s["momentum_buffer"] for s in states] if momentum != 0 else []
        real_views = self.compiled and torch.is_complex(params[0])
        if real_views:
            # TorchInductor cannot compile SGD's complex arithmetic (torch 2.15).  With
            # a real lr, momentum and weight decay the update treats the real and
            # imaginary parts alike, so the compiled code runs on real views instead.
            params, grads, bufs = ([as_real(t) for t in ts]
                                   for ts in (params, grads, bufs))
        new_bufs = self._functional(sgd_foreach_update)(
            params, grads, bufs,
            lr=to_scalar(group["lr"]), momentum=momentum, dampening=group["dampening"],
            nesterov=group["nesterov"], weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )
        if momentum != 0:
            for state, buf in zip(states, new_bufs):
                state["momentum_buffer"] = (torch.view_as_complex(buf) if real_views
                                            else buf)
