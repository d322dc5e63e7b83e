"""Muon (MomentUm Orthogonalized by Newton-Schulz): twin of torch.optim.Muon.

Muon is a method for the 2-D weight matrices of a network's hidden layers.  It keeps
SGD's momentum buffer, but instead of stepping along the buffer it steps along the
buffer's *orthogonalised* version: the matrix with the same singular vectors and
every singular value (about) one.  For a gradient matrix G = U S V^T that is the
polar factor U V^T, the steepest-descent direction under the spectral norm; Muon
approximates it with a few Newton-Schulz iterations, matrix products only, no SVD.

For a parameter θ of shape d_out × d_in, gradient g_t, momentum μ, learning rate η,
weight decay λ, Newton-Schulz coefficients (a, b, c), k steps and ε::

    m_t = μ m_{t-1} + (1 - μ) g_t                    m_0 = 0          (eq-muon-m)
    u_t = (1 - μ) g_t + μ m_t  if nesterov,  else  u_t = m_t          (eq-muon-nesterov)
    X_0 = u_t / max(‖u_t‖_F, ε)          (u_t^T if d_out > d_in)
    X_{j+1} = a X_j + (b A_j + c A_j²) X_j,   A_j = X_j X_j^T         (eq-muon-ns)
    O_t = X_k                            (transposed back if d_out > d_in)
    η' = η r(d_out, d_in)                                             (eq-muon-scale)
    θ  <- (1 - η λ) θ                                                 (eq-muon-wd)
    θ_t = θ - η' O_t                                                  (eq-muon-step)

with the learning-rate ratio ``r`` chosen by ``adjust_lr_fn``:

* ``None`` or ``"original"`` (Keller Jordan's): r = sqrt(max(1, d_out / d_in));
* ``"match_rms_adamw"`` (Moonshot's, "Muon is Scalable for LLM Training"):
  r = 0.2 sqrt(max(d_out, d_in)), so that the update's RMS is AdamW's typical one;
* ``"spectral_unclamped"`` (Bernstein's "Deriving Muon"): r = sqrt(d_out / d_in).

Conventions worth knowing (measured in tests/test_muon.py):

* torch's docstring writes the momentum as a sum, B_t = μ B_{t-1} + g_t, and the
  Nesterov term as g_t + μ B_t; its code (and so this twin) keeps the EWMA form
  above, which is the sum form times (1 - μ).  Newton-Schulz divides by the
  Frobenius norm first, so the two give the same direction up to rounding.
* The Newton-Schulz iteration runs in bfloat16 whatever the parameter's dtype, as
  in torch (and in Keller Jordan's reference code): O_t is a bfloat16 matrix, added
  to a float32 or float64 parameter.  :func:`zeropower_via_newtonschulz` takes the
  working dtype as an optional keyword, so the book can run it in float64 too.
* Newton-Schulz maps each singular value σ of X_0 by the scalar polynomial
  p(σ) = aσ + bσ³ + cσ⁵, leaving the singular vectors alone.  The default quintic
  coefficients (3.4445, -4.7750, 2.0315) do not converge to U V^T: p maps the band
  [p(x*), p(p(x*))] = [0.6818, 1.1344] (x* = 1.0501, p's local minimum) onto itself,
  and five steps bring every σ >= 0.01 into it (bfloat16 rounding widens it to
  about [0.679, 1.137]).  The classic cubic (1.5, -0.5, 0) converges to U V^T:
  small σ grow by 1.5x a step, then converge quadratically.
* Weight decay multiplies by 1 - η λ with the *unadjusted* η; only the orthogonal
  step uses η'.
* Only 2-D parameters are accepted (the constructor raises ``ValueError``); there is
  no ``maximize``, no ``foreach`` path (torch.optim.Muon has neither), and complex
  parameters or sparse gradients raise ``RuntimeError`` at the step, as in torch.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional, Tuple, Union

import torch
from torch import Tensor

from .base import ParamsT, Scalar, TwinOptimizer, to_scalar, zeros_like

__all__ = [
    "Muon",
    "muon_update",
    "zeropower_via_newtonschulz",
    "adjust_lr",
    "DEFAULT_NS_COEFFICIENTS",
    "DEFAULT_NS_STEPS",
    "DEFAULT_EPS",
    "ADJUST_LR_FNS",
]

#: Keller Jordan's quintic coefficients (a, b, c), torch.optim.Muon's default.
DEFAULT_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
#: Newton-Schulz iterations per step, torch's default.
DEFAULT_NS_STEPS = 5
#: The floor of the Frobenius norm that the momentum is divided by.
DEFAULT_EPS = 1e-7
#: The learning-rate adjustments torch.optim.Muon accepts (None means "original").
ADJUST_LR_FNS = ("original", "match_rms_adamw", "spectral_unclamped")


# ----------------------------------------------------------------------------------
# Newton-Schulz orthogonalisation, op for op as torch's _zeropower_via_newtonschulz.
# ----------------------------------------------------------------------------------


# [muon-ns-start]
def zeropower_via_newtonschulz(
    grad: Tensor,
    ns_coefficients: Tuple[float, float, float],
    ns_steps: int,
    eps: float,
    *,
    dtype: torch.dtype = torch.bfloat16,
) -> Tensor:
    """O ≈ U V^T for G = U S V^T: ``ns_steps`` iterations of the odd polynomial
    X <- a X + b (X X^T) X + c (X X^T)² X, in ``dtype`` (torch: bfloat16)."""
    if ns_steps >= 100:
        raise ValueError(
            "Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    tall = grad.size(0) > grad.size(1)
    x = grad.to(dtype=dtype, copy=True)          # a working copy (torch: bfloat16)
    if tall:
        x = x.T                                  # iterate on the wide side: A is small
    x.div_(x.norm().clamp(min=eps))              # X_0 = u / max(‖u‖_F, ε): σ_i <= 1
    for _ in range(ns_steps):
        gram = x @ x.T                           # (eq-muon-ns) A = X X^T
        poly = torch.addmm(gram, gram, gram,     # (eq-muon-ns) b A + c A²
                           beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)      # (eq-muon-ns) X <- aX + (bA + cA²)X
    if tall:
        x = x.T                                  # back to d_out × d_in
    return x
# [muon-ns-end]


def adjust_lr(lr: Scalar, adjust_lr_fn: Optional[str], shape: Any) -> Scalar:
    """η' = η r(d_out, d_in) (eq-muon-scale), ``shape = (d_out, d_in, ...)``;
    an unknown ``adjust_lr_fn`` gives r = 1, as in torch."""
    d_out, d_in = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, d_out / d_in))      # Keller Jordan: sqrt(max(1, A/B))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(d_out, d_in))    # Moonshot: AdamW's update RMS
    elif adjust_lr_fn == "spectral_unclamped":
        ratio = math.sqrt(d_out / d_in)              # Bernstein: sqrt(A/B), unclamped
    else:
        ratio = 1.0
    return lr * ratio


# ----------------------------------------------------------------------------------
# Single-tensor update, op for op as torch's _single_tensor_muon (torch has no other).
# ----------------------------------------------------------------------------------


# [muon-start]
def muon_update(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor,
    *,
    lr: Scalar,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
    ns_coefficients: Tuple[float, float, float],
    ns_steps: int,
    eps: float,
    adjust_lr_fn: Optional[str],
) -> None:
    """One Muon step on a 2-D parameter (Jordan et al., 2024)."""
    if grad.ndim != 2:
        raise ValueError("Param gradient must be a 2D matrix")
    # (eq-muon-m)        m_t = μ m_{t-1} + (1-μ) g_t
    momentum_buffer.lerp_(grad, 1 - momentum)
    # (eq-muon-nesterov) u_t = (1-μ) g_t + μ m_t, or u_t = m_t
    update = grad.lerp(momentum_buffer, momentum) if nesterov else momentum_buffer
    # (eq-muon-ns)       O_t = NS_k(u_t), in bfloat16
    update = zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
    # (eq-muon-scale)    η' = η r(d_out, d_in)
    adjusted_lr = adjust_lr(lr, adjust_lr_fn, param.shape)
    # (eq-muon-wd)       θ <- (1 - ηλ) θ   (η, not η')
    param.mul_(1 - lr * weight_decay)
    # (eq-muon-step)     θ_t = θ - η' O_t
    param.add_(update, alpha=-adjusted_lr)
# [muon-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.Muon's constructor, defaults, validation and state.
# ----------------------------------------------------------------------------------


class Muon(TwinOptimizer):
    """Muon (Jordan et al., 2024).  Twin of :class:`torch.optim.Muon`.

    For 2-D parameters only (give biases, gains and embeddings to another optimizer,
    e.g. AdamW).  State: ``momentum_buffer`` (m), shaped like the gradient.

    On :class:`TwinOptimizer`, which gives the loading checks (a state_dict saved by
    another optimizer fails at ``load_state_dict``); ``step`` and ``_collect`` are
    torch.optim.Muon's own, since Muon has no ``maximize`` and checks complex
    parameters and sparse gradients with its own messages, in its own order.
    """

    #: No step counter: Muon's state is its momentum buffer alone.
    _scalar_state: tuple = ()

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: Tuple[float, float, float] = DEFAULT_NS_COEFFICIENTS,
        eps: float = DEFAULT_EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: Optional[str] = None,
    ) -> None:
        # torch.optim.Muon's checks and words, in its order (it checks nothing else:
        # eps, ns_steps and ns_coefficients are checked at the step, by Newton-Schulz)
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ADJUST_LR_FNS:
            raise ValueError(
                f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = dict(
            lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
            ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        super().__init__(params, defaults)
        # Only at construction, as torch: a group added later is checked at its step.
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a "
                        f"parameter with size: {p.size()}")

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        # torch shapes the buffer like the *gradient* (its dtype and memory format);
        # _collect passes the gradient here, the load checks a parameter's shape.
        state["momentum_buffer"] = zeros_like(param)

    def _collect(self, group: dict) -> tuple:
        params, grads, states = [], [], []
        for param in group["params"]:
            if param.grad is None:
                continue
            if torch.is_complex(param):
                raise RuntimeError("Muon does not support complex parameters")
            if param.grad.is_sparse:
                raise RuntimeError("Muon does not support sparse gradients")
            state = self.state[param]
            if "momentum_buffer" not in state:
                self._init_state(param.grad, state, group)
            params.append(param)
            grads.append(param.grad)
            states.append(state)
        return params, grads, states

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        muon_update(
            param, grad, state["momentum_buffer"],
            lr=to_scalar(group["lr"]), weight_decay=group["weight_decay"],
            momentum=group["momentum"], nesterov=group["nesterov"],
            ns_coefficients=group["ns_coefficients"], ns_steps=group["ns_steps"],
            eps=group["eps"], adjust_lr_fn=group["adjust_lr_fn"],
        )

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Perform one optimization step; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            # every parameter's state is made before the first update, as in torch
            params, grads, states = self._collect(group)
            for param, grad, state in zip(params, grads, states):
                self._update(param, grad, state, group)
        return loss
