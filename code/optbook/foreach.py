"""Multi-tensor functional updates: one step of each algorithm on a *list* of tensors.

The single-tensor updates of :mod:`optbook.functional` are called once per
parameter, and each line of them is one kernel over one tensor: a model with
``n`` parameter tensors pays ``n`` Python calls and ``n`` kernel launches per line.
The functions here take lists (all tensors of one device and dtype; the optimizer
classes bucket them) and express each line as one ``torch._foreach_*`` operation
over the whole list: ``torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)`` updates
every first moment at once.  On CUDA a ``_foreach_`` operation is a handful of
kernel launches for the whole list; on the CPU it is a C++ loop over the per-tensor
kernels, which saves the Python overhead but not the passes over memory (each line
still reads and writes every tensor once: that is what compilation removes).  On a
CPU it can even be slower than the loop: the loop runs all lines on one tensor while
that tensor is still in cache, the multi-tensor path streams the whole list through
memory once per line.  That is why torch (and optbook) default to the loop there.

They follow torch.optim's ``_multi_tensor_*`` functions operation for operation, so
an optbook optimizer with ``foreach=True`` produces the same bits as its torch twin
with ``foreach=True``.  Every comment names the equation of the book that the line
implements, e.g. ``# (eq-adam-m)``.  As in :mod:`optbook.functional`:

* gradients arrive already negated when ``maximize=True``;
* step counters ``steps`` are the 0-d tensors ``state["step"]``, already incremented
  (t >= 1); the update reads them with one ``.item()`` each, except under
  ``torch.compile``, where they stay tensors so that the compiled code does not
  depend on the value of t;
* the adaptive methods view complex tensors as pairs of reals (torch's multi-tensor
  path does so before weight decay; the single-tensor path after it).

Two deliberate differences from torch, neither changing a bit of the result:

* torch reuses the negated-gradient temporary of ``maximize`` for weight decay in
  place; here ``maximize`` is applied by the optimizer class, so weight decay makes
  its own temporary (one extra allocation when both are set);
* torch's SGD with Nesterov momentum (no weight decay, no maximize) adds into
  ``p.grad`` in place; here ``p.grad`` is left untouched, as in the single-tensor
  path.

Adam is split in two: :func:`adam_step_scalars` computes the two numbers per tensor
that depend on its step t (β^t needs a ``pow``), and :func:`adam_foreach_apply` does
the elementwise work.  In eager mode :func:`adam_foreach_update` calls one after the
other.  The compiled path (:func:`optbook.compile_step`) compiles only the
elementwise part and hands it the scalars as one float64 tensor each: compiled
together, TorchInductor would inline ``pow`` into the fused loop and evaluate it
again for every 16 elements (it does not hoist loop-invariant code), which makes the
step compute-bound.  Given tensors, the last line uses torch's "capturable" form
(divide the denominator by the step size, then ``addcdiv`` with value 1).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from .base import as_real

__all__ = [
    "sgd_foreach_update",
    "adagrad_foreach_update",
    "rmsprop_foreach_update",
    "adam_foreach_update",
    "adam_step_scalars",
    "adam_foreach_apply",
]

Scalar = Union[float, Tensor]
TensorList = List[Tensor]


def _as_real(tensors: Optional[Sequence[Tensor]]) -> Optional[TensorList]:
    """Real views of a list's complex tensors (pairs of floats); others unchanged."""
    return None if tensors is None else [as_real(t) for t in tensors]


def _value(step: Tensor) -> Scalar:
    """The step number t: a Python float (one ``.item()``, as torch does), or under
    ``torch.compile`` a 0-d tensor, so the graph is not specialised on t.  In float64,
    like the Python float: β^t and 1 - β^t computed from a float32 counter would
    lose the precision of a float64 parameter."""
    return step.to(torch.float64) if torch.compiler.is_compiling() else step.item()


def _tensor_lr_compiled(lr: Scalar) -> bool:
    """A Tensor lr under torch.compile: use tensor arithmetic, never ``.item()``."""
    return isinstance(lr, Tensor) and torch.compiler.is_compiling()


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
) -> List[Optional[Tensor]]:
    """SGD with heavy-ball or Nesterov momentum on a list; returns the buffers m_t."""
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)  # (eq-l2)        g <- g + λθ
    if momentum != 0:
        if all(buf is not None for buf in momentum_buffers):
            torch._foreach_mul_(momentum_buffers, momentum)            # (eq-sgd-m)     m_t = μ m_{t-1}
            torch._foreach_add_(momentum_buffers, grads, alpha=1 - dampening)  #          + (1-τ) g_t
        else:  # first step of some tensor: tensor by tensor, as the single-tensor loop
            momentum_buffers = [
                grad.detach().clone() if buf is None                   # (eq-sgd-m1)    m_1 = g_1
                else buf.mul_(momentum).add_(grad, alpha=1 - dampening)  # (eq-sgd-m)
                for buf, grad in zip(momentum_buffers, grads)
            ]
        if nesterov:
            grads = torch._foreach_add(grads, momentum_buffers, alpha=momentum)  # (eq-nesterov) d_t = g_t + μ m_t
        else:
            grads = momentum_buffers                                   # (eq-heavy-ball) d_t = m_t
    if _tensor_lr_compiled(lr):
        torch._foreach_add_(params, torch._foreach_mul(grads, -lr))    # (eq-sgd-step)  θ_t = θ_{t-1} - η d_t
    else:
        torch._foreach_add_(params, grads, alpha=-lr)                  # (eq-sgd-step)  θ_t = θ_{t-1} - η d_t
    return momentum_buffers
# [sgd-foreach-end]


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
) -> None:
    """AdaGrad on a list of tensors of one device and dtype."""
    params, grads, state_sums = _as_real(params), _as_real(grads), _as_real(state_sums)
    grads_are_ours = weight_decay != 0                                 # a temporary we may overwrite
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)  # (eq-l2)           g <- g + λθ
    minus_clr = [-lr / (1 + (_value(step) - 1) * lr_decay) for step in steps]  # (eq-adagrad-decay) -η_t
    torch._foreach_addcmul_(state_sums, grads, grads, value=1)         # (eq-adagrad-s)    s_t = s_{t-1} + g_t²
    std = torch._foreach_sqrt(state_sums)                              # (eq-adagrad-step) √s_t
    torch._foreach_add_(std, eps)                                      #                   + ε
    if grads_are_ours:
        torch._foreach_mul_(grads, minus_clr)                          # (eq-adagrad-step) -η_t g_t
        numerator = grads
    else:
        numerator = torch._foreach_mul(grads, minus_clr)               # (eq-adagrad-step) -η_t g_t
    torch._foreach_addcdiv_(params, numerator, std)                    # (eq-adagrad-step) θ_t = θ_{t-1} - η_t g_t / (√s_t + ε)
# [adagrad-foreach-end]


# [rmsprop-foreach-start]
def rmsprop_foreach_update(
    params: TensorList,
    grads: TensorList,
    square_avgs: TensorList,
    grad_avgs: Optional[TensorList],
    momentum_buffers: Optional[TensorList],
    *,
    lr: Scalar,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
) -> None:
    """RMSProp (optionally centered, with momentum) on a list of tensors."""
    params, grads, square_avgs = _as_real(params), _as_real(grads), _as_real(square_avgs)
    grad_avgs, momentum_buffers = _as_real(grad_avgs), _as_real(momentum_buffers)
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)  # (eq-l2)              g <- g + λθ
    torch._foreach_mul_(square_avgs, alpha)                            # (eq-rmsprop-v)       v_t = β v_{t-1}
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1 - alpha)  #                      + (1-β) g_t²
    if centered:
        torch._foreach_lerp_(grad_avgs, grads, 1 - alpha)              # (eq-rmsprop-gbar)    ḡ_t = β ḡ_{t-1} + (1-β) g_t
        avg = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1)  # (eq-rmsprop-centered) v_t - ḡ_t²
        torch._foreach_sqrt_(avg)                                      #                      √(v_t - ḡ_t²)
    else:
        avg = torch._foreach_sqrt(square_avgs)                         # (eq-rmsprop-step)    √v_t
    torch._foreach_add_(avg, eps)                                      #                      + ε
    if momentum > 0:
        torch._foreach_mul_(momentum_buffers, momentum)                # (eq-rmsprop-momentum) b_t = μ b_{t-1}
        torch._foreach_addcdiv_(momentum_buffers, grads, avg)          #                      + g_t / (√v_t + ε)
        if _tensor_lr_compiled(lr):
            torch._foreach_add_(params, torch._foreach_mul(momentum_buffers, -lr))
        else:
            torch._foreach_add_(params, momentum_buffers, alpha=-lr)   #                      θ_t = θ_{t-1} - η b_t
    else:
        if _tensor_lr_compiled(lr):
            torch._foreach_div_(avg, -lr)
            torch._foreach_addcdiv_(params, grads, avg)
        else:
            torch._foreach_addcdiv_(params, grads, avg, value=-lr)     # (eq-rmsprop-step)    θ_t = θ_{t-1} - η g_t / (√v_t + ε)
# [rmsprop-foreach-end]


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
) -> None:
    """Adam (and AMSGrad, and AdamW) on a list of tensors of one device and dtype."""
    step_sizes, bias_correction2_sqrt = adam_step_scalars(steps, lr=lr, beta1=beta1, beta2=beta2)
    adam_foreach_apply(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step_sizes, bias_correction2_sqrt,
        lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
        decoupled_weight_decay=decoupled_weight_decay,
    )


def adam_step_scalars(steps: TensorList, *, lr: float, beta1: float, beta2: float) -> tuple:
    """The two numbers per tensor that depend on its step t (scalar work, done once)."""
    bias_correction1 = [1 - beta1 ** _value(step) for step in steps]   # (eq-adam-mhat)  1 - β1^t
    bias_correction2 = [1 - beta2 ** _value(step) for step in steps]   # (eq-adam-vhat)  1 - β2^t
    step_sizes = [(lr / bc) * -1 for bc in bias_correction1]           #                 -η / (1-β1^t)
    bias_correction2_sqrt = [bc**0.5 for bc in bias_correction2]       #                 √(1-β2^t)
    return step_sizes, bias_correction2_sqrt


def adam_foreach_apply(
    params: TensorList,
    grads: TensorList,
    exp_avgs: TensorList,
    exp_avg_sqs: TensorList,
    max_exp_avg_sqs: Optional[TensorList],
    step_sizes: Union[Sequence[float], Tensor],
    bias_correction2_sqrt: Union[Sequence[float], Tensor],
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    decoupled_weight_decay: bool,
) -> None:
    """The elementwise part of Adam: every line one pass over every tensor."""
    params, grads = _as_real(params), _as_real(grads)
    exp_avgs, exp_avg_sqs = _as_real(exp_avgs), _as_real(exp_avg_sqs)
    max_exp_avg_sqs = _as_real(max_exp_avg_sqs)
    if weight_decay != 0:
        if decoupled_weight_decay:
            torch._foreach_mul_(params, 1 - lr * weight_decay)         # (eq-adamw)      θ <- (1 - ηλ) θ
        else:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)  # (eq-l2)     g <- g + λθ
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)                   # (eq-adam-m)     m_t = β1 m_{t-1} + (1-β1) g_t
    torch._foreach_mul_(exp_avg_sqs, beta2)                            # (eq-adam-v)     v_t = β2 v_{t-1}
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)      #                 + (1-β2) g_t²
    if amsgrad:
        torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)          # (eq-amsgrad-max) v^max_t = max(v^max_{t-1}, v_t)
        exp_avg_sqs = max_exp_avg_sqs                                  #                 and use it in place of v_t
    denom = torch._foreach_sqrt(exp_avg_sqs)                           # (eq-adam-step)  √v_t
    if isinstance(step_sizes, Tensor):  # compiled: one tensor of scalars, torch's capturable form
        torch._foreach_div_(denom, bias_correction2_sqrt.unbind(0))    #                 √v̂_t = √v_t / √(1-β2^t)
        torch._foreach_add_(denom, eps)                                #                 √v̂_t + ε
        torch._foreach_div_(denom, step_sizes.unbind(0))               #                 (√v̂_t + ε) / (-η/(1-β1^t))
        torch._foreach_addcdiv_(params, exp_avgs, denom)               # (eq-adam-step)
    else:
        torch._foreach_div_(denom, bias_correction2_sqrt)              #                 √v̂_t = √v_t / √(1-β2^t)
        torch._foreach_add_(denom, eps)                                #                 √v̂_t + ε
        torch._foreach_addcdiv_(params, exp_avgs, denom, step_sizes)   # (eq-adam-step)  θ_t = θ_{t-1} - η m̂_t / (√v̂_t + ε)
# [adam-foreach-end]
