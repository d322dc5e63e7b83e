"""Textbook variants that differ from torch.optim *on purpose*.

Papers and textbooks write these algorithms slightly differently from torch.optim.
Each difference is a named optimizer here, so the chapters can measure it rather
than argue about it; the tests measure each one's distance from torch and never
claim it is zero.

=========================  =============================================================
``AdamNoBiasCorrection``   Adam with the raw moments m_t, v_t (no division by 1-β^t).
``AdamKingmaBa``           Kingma & Ba's "efficient" form: step size
                           α_t = α √(1-β2^t)/(1-β1^t) and ε̂ added to the raw √v_t.
``AdagradEpsInside``       AdaGrad with ε inside the square root, √(s_t + ε) (d2l).
``RMSpropEpsInside``       RMSProp with ε inside the square root, √(v_t + ε) (d2l).
``AMSGradReddi``           Reddi et al.'s AMSGrad: max of raw v_t, no bias correction.
``AMSGradMaxVhat``         optax's ``scale_by_amsgrad``: max of the bias-corrected v̂_t.
=========================  =============================================================

Reddi et al.'s algorithm also decays α_t = α/√t and β1t; here the step size is the
constant ``lr`` (any torch lr_scheduler can add the decay), so that the only
difference from ``torch.optim.Adam(amsgrad=True)`` is the bias correction.  Their
paper has no ε; pass ``eps=0`` for that exact form (the default keeps torch's 1e-8
so a zero gradient does not divide 0 by 0).
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
from torch import Tensor

from .base import (
    ParamsT,
    TwinOptimizer,
    as_real,
    check_betas,
    check_lr,
    check_nonnegative,
    new_step_counter,
    step_value,
    to_scalar,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_

__all__ = [
    "AdamNoBiasCorrection",
    "AdamKingmaBa",
    "AdagradEpsInside",
    "RMSpropEpsInside",
    "AMSGradReddi",
    "AMSGradMaxVhat",
    "VARIANTS",
]

Scalar = Union[float, Tensor]


# ----------------------------------------------------------------------------------
# Functional updates (what the chapters display next to torch's form).
# ----------------------------------------------------------------------------------


# [adam-no-bias-start]
def adam_no_bias_correction_update(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, *,
    lr: Scalar, beta1: float, beta2: float, eps: float,
) -> None:
    """Adam without bias correction: θ_t = θ_{t-1} - η m_t / (√v_t + ε)."""
    ewma_update_(exp_avg, grad, beta1)         # (eq-adam-m)  m_t, biased towards 0
    ewma_sq_update_(exp_avg_sq, grad, beta2)   # (eq-adam-v)  v_t, biased towards 0
    denom = exp_avg_sq.sqrt().add_(eps)        # √v_t + ε     (no 1/(1-β2^t))
    param.addcdiv_(exp_avg, denom, value=-lr)  # no 1/(1-β1^t) either
# [adam-no-bias-end]


# [adam-kingma-ba-start]
def adam_kingma_ba_update(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: float, *,
    lr: Scalar, beta1: float, beta2: float, eps_hat: float,
) -> None:
    """Kingma & Ba's efficient form (Algorithm 1, last paragraph of their Sec. 2)."""
    ewma_update_(exp_avg, grad, beta1)                  # (eq-adam-m)
    ewma_sq_update_(exp_avg_sq, grad, beta2)            # (eq-adam-v)
    alpha_t = lr * (1 - beta2**step)**0.5 / (1 - beta1**step)  # (eq-adam-efficient) α_t
    denom = exp_avg_sq.sqrt().add_(eps_hat)             # √v_t + ε̂ on the *raw* v_t
    # θ_t = θ_{t-1} - α_t m_t / (√v_t + ε̂)
    param.addcdiv_(exp_avg, denom, value=-alpha_t)
# [adam-kingma-ba-end]


# [adagrad-eps-inside-start]
def adagrad_eps_inside_update(
    param: Tensor, grad: Tensor, state_sum: Tensor, *, lr: Scalar, eps: float,
) -> None:
    """AdaGrad as d2l writes it: θ_t = θ_{t-1} - η g_t / √(s_t + ε)."""
    state_sum.addcmul_(grad, grad, value=1)  # (eq-adagrad-s) s_t = s_{t-1} + g_t²
    param.addcdiv_(grad, state_sum.add(eps).sqrt(), value=-lr)  # ε inside the root
# [adagrad-eps-inside-end]


# [rmsprop-eps-inside-start]
def rmsprop_eps_inside_update(
    param: Tensor, grad: Tensor, square_avg: Tensor, *, lr: Scalar, alpha: float,
    eps: float,
) -> None:
    """RMSProp as d2l writes it: θ_t = θ_{t-1} - η g_t / √(v_t + ε)."""
    ewma_sq_update_(square_avg, grad, alpha)            # (eq-rmsprop-v)
    param.addcdiv_(grad, square_avg.add(eps).sqrt(), value=-lr)  # ε inside the root
# [rmsprop-eps-inside-end]


# [amsgrad-reddi-start]
def amsgrad_reddi_update(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor, *, lr: Scalar, beta1: float, beta2: float, eps: float,
) -> None:
    """Reddi et al.'s AMSGrad with a constant step: no bias correction anywhere."""
    ewma_update_(exp_avg, grad, beta1)                  # (eq-adam-m)
    ewma_sq_update_(exp_avg_sq, grad, beta2)            # (eq-adam-v)
    # of the raw v_t
    torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)  # (eq-amsgrad-max)
    param.addcdiv_(exp_avg, max_exp_avg_sq.sqrt().add_(eps), value=-lr)
# [amsgrad-reddi-end]


# [amsgrad-max-vhat-start]
def amsgrad_max_vhat_update(
    param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor, step: float, *, lr: Scalar, beta1: float, beta2: float,
    eps: float,
) -> None:
    """AMSGrad as optax writes it: the running max is taken of v̂_t = v_t/(1-β2^t)."""
    ewma_update_(exp_avg, grad, beta1)                  # (eq-adam-m)
    ewma_sq_update_(exp_avg_sq, grad, beta2)            # (eq-adam-v)
    torch.maximum(max_exp_avg_sq, exp_avg_sq / (1 - beta2**step),  # max of v̂_t
                  out=max_exp_avg_sq)
    denom = max_exp_avg_sq.sqrt().add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))  # m̂_t = m_t/(1-β1^t)
# [amsgrad-max-vhat-end]


# ----------------------------------------------------------------------------------
# Optimizer classes: validation and state, via the shared TwinOptimizer plumbing.
# ----------------------------------------------------------------------------------


class _AdamLike(TwinOptimizer):
    """Shared constructor and state for the Adam-family variants."""

    _max_buffer = False  # whether the state holds ``max_exp_avg_sq``

    def __init__(
        self,
        params: ParamsT,
        lr: Scalar = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        maximize: bool = False,
    ) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        check_betas(betas)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      maximize=maximize))

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
        if self._max_buffer:
            state["max_exp_avg_sq"] = zeros_like(param)

    def _buffers(self, param: Tensor, grad: Tensor, state: dict) -> list:
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if self._max_buffer
                                             else [])
        return [as_real(param), as_real(grad)] + [as_real(state[n]) for n in names]

    def _hyper(self, group: dict) -> dict:
        beta1, beta2 = group["betas"]
        return dict(lr=to_scalar(group["lr"]), beta1=beta1, beta2=beta2,
                    eps=group["eps"])


class AdamNoBiasCorrection(_AdamLike):
    """Adam without bias correction (the ablation of Kingma & Ba's Section 3)."""

    def _update(self, param, grad, state, group):
        state["step"] += 1
        adam_no_bias_correction_update(*self._buffers(param, grad, state),
                                       **self._hyper(group))


class AdamKingmaBa(_AdamLike):
    """Adam in Kingma & Ba's efficient form; ``eps`` here is their ε̂.

    Algebraically ε̂ = ε √(1-β2^t) would reproduce torch's update; with the same
    constant the two differ while √v_t is comparable to ε.
    """

    def _update(self, param, grad, state, group):
        state["step"] += 1
        hyper = self._hyper(group)
        hyper["eps_hat"] = hyper.pop("eps")
        adam_kingma_ba_update(*self._buffers(param, grad, state),
                              step_value(state["step"]), **hyper)


class AMSGradReddi(_AdamLike):
    """AMSGrad exactly as Reddi et al.'s Algorithm 2 with constant α and β1."""

    _max_buffer = True

    def _update(self, param, grad, state, group):
        state["step"] += 1
        amsgrad_reddi_update(*self._buffers(param, grad, state), **self._hyper(group))


class AMSGradMaxVhat(_AdamLike):
    """AMSGrad with the max over bias-corrected v̂_t (optax's ``scale_by_amsgrad``)."""

    _max_buffer = True

    def _update(self, param, grad, state, group):
        state["step"] += 1
        amsgrad_max_vhat_update(
            *self._buffers(param, grad, state), step_value(state["step"]),
            **self._hyper(group)
        )


class AdagradEpsInside(TwinOptimizer):
    """AdaGrad with ε inside the square root, as in Dive into Deep Learning."""

    def __init__(self, params: ParamsT, lr: Scalar = 1e-2, eps: float = 1e-10, *,
                 maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        super().__init__(params, dict(lr=lr, eps=eps, maximize=maximize))

    def _init_state(self, param, state, group):
        state["step"] = new_step_counter()
        state["sum"] = zeros_like(param)

    def _update(self, param, grad, state, group):
        state["step"] += 1
        adagrad_eps_inside_update(as_real(param), as_real(grad), as_real(state["sum"]),
                                  lr=to_scalar(group["lr"]), eps=group["eps"])


class RMSpropEpsInside(TwinOptimizer):
    """RMSProp with ε inside the square root, as in Dive into Deep Learning."""

    def __init__(self, params: ParamsT, lr: Scalar = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, *, maximize: bool = False) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        check_nonnegative("alpha", alpha)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, maximize=maximize))

    def _init_state(self, param, state, group):
        state["step"] = new_step_counter()
        state["square_avg"] = zeros_like(param)

    def _update(self, param, grad, state, group):
        state["step"] += 1
        rmsprop_eps_inside_update(as_real(param), as_real(grad),
                                  as_real(state["square_avg"]),
                                  lr=to_scalar(group["lr"]), alpha=group["alpha"],
                                  eps=group["eps"])


#: Each variant with the torch.optim configuration it is compared against.
VARIANTS = {
    "AdamNoBiasCorrection": (AdamNoBiasCorrection, torch.optim.Adam, {}),
    "AdamKingmaBa": (AdamKingmaBa, torch.optim.Adam, {}),
    "AdagradEpsInside": (AdagradEpsInside, torch.optim.Adagrad, {}),
    "RMSpropEpsInside": (RMSpropEpsInside, torch.optim.RMSprop, {}),
    "AMSGradReddi": (AMSGradReddi, torch.optim.Adam, {"amsgrad": True}),
    "AMSGradMaxVhat": (AMSGradMaxVhat, torch.optim.Adam, {"amsgrad": True}),
}
