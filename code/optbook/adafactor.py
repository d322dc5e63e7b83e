"""Adafactor (Shazeer & Stern, 2018): twin of torch.optim.Adafactor.

Adafactor keeps Adam's per-coordinate second moment, but for a matrix (or the last
two dimensions of a tensor) it stores only the EWMAs of the row means and the column
means of g ⊙ g, and rebuilds a rank-1 estimate from them: n + m numbers for an
n × m matrix instead of n m.  It has no first moment, and its step size is relative
to the size of the parameter.  For a parameter θ_{t-1}, gradient g_t, step t >= 1
(torch's conventions: means rather than the paper's sums, ε1 in the denominators):

    1 - β2_t = t^c                          c = ``beta2_decay`` <= 0      (eq-af-beta2)
    ρ_t = min(η, 1/√t),  α_t = max(ε2, RMS(θ_{t-1})) ρ_t                   (eq-af-rho)
    θ <- (1 - ηλ) θ_{t-1}                                                  (eq-af-wd)
    matrix  R_t = β2_t R_{t-1} + (1 - β2_t) mean_j g_t²    (n × 1)       (eq-af-row)
            C_t = β2_t C_{t-1} + (1 - β2_t) mean_i g_t²    (1 × m)       (eq-af-col)
            V̂_t = R_t C_t / max(mean_i R_t, ε1)                           (eq-af-vhat)
    vector  V̂_t = β2_t V̂_{t-1} + (1 - β2_t) g_t²                          (eq-af-v)
    U_t = g_t / max(√V̂_t, ε1)                                             (eq-af-u)
    Û_t = U_t / max(1, RMS(U_t) / d)                                      (eq-af-clip)
    θ_t = θ - α_t Û_t                                                      (eq-af-step)

RMS(x) = ‖x‖₂ / √numel(x).  Why (eq-af-vhat) rebuilds V: if the EWMA of g ⊙ g were
exactly rank 1, V = a bᵀ, its row means would be a·mean(b), its column means
mean(a)·bᵀ and the mean of the row means mean(a)·mean(b), so R C / mean(R) = a bᵀ
(:func:`factored_second_moment`; the chapter measures the error when V is not rank 1).

ε1 = None (the default) means machine epsilon of the dtype, resolved as torch does:
once per parameter group and step, from the first parameter with a gradient
(single-tensor path) or the first (device, dtype) bucket (foreach path), and then
used for every parameter of the group, whatever its dtype.

As torch/optim/_adafactor.py: the single-tensor update, the multi-tensor update and
the class; the comments name the equations of the chapter on Adafactor.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from .base import (
    ParamsT,
    Scalar,
    TensorList,
    TwinOptimizer,
    increment_steps,
    new_step_counter,
    step_value,
    to_scalar,
)

__all__ = [
    "Adafactor",
    "adafactor_update",
    "adafactor_foreach_update",
    "factored_second_moment",
]


# ----------------------------------------------------------------------------------
# The rank-1 reconstruction, on its own so that a chapter can measure it.
# ----------------------------------------------------------------------------------


# [adafactor-vhat-start]
def factored_second_moment(row_var: Tensor, col_var: Tensor,
                           eps1: float = 0.0) -> Tensor:
    """V̂ = R C / max(mean_i R, ε1): the full (..., n, m) second-moment estimate
    rebuilt from the row factor R (..., n, 1) and the column factor C (..., 1, m)."""
    var_estimate = row_var @ col_var                        # (eq-af-vhat) R_t C_t
    # (eq-af-vhat) / max(mean_i R_t, ε1)
    return var_estimate.div_(row_var.mean(dim=-2, keepdim=True).clamp_(min=eps1))
# [adafactor-vhat-end]


# ----------------------------------------------------------------------------------
# Single-tensor update (the foreach=False path), op for op as torch's
# _single_tensor_adafactor.
# ----------------------------------------------------------------------------------


# [adafactor-start]
def adafactor_update(
    param: Tensor,
    grad: Tensor,
    row_var: Optional[Tensor],
    col_var: Optional[Tensor],
    variance: Optional[Tensor],
    step: float,
    *,
    lr: Scalar,
    beta2_decay: float,
    eps1: float,
    eps2: float,
    d: float,
    weight_decay: float,
) -> None:
    """Adafactor for one tensor at step t = ``step`` >= 1: factored (``row_var``,
    ``col_var``) if ``grad`` has two or more dimensions, else ``variance``."""
    one_minus_beta2_t = step**beta2_decay                   # (eq-af-beta2) 1-β2_t = t^c
    rho_t = min(lr, 1 / (step**0.5))                        # (eq-af-rho)   ρ_t
    rms_param = param.norm(2).item() / (param.numel() ** 0.5)  # RMS(θ_{t-1})
    alpha = max(eps2, rms_param) * rho_t                    # (eq-af-rho)   α_t
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)                   # (eq-af-wd)    θ <- (1-ηλ)θ
    if grad.dim() > 1:
        # mean_j g² as ‖g_i,:‖² / m: no temporary of g's size
        row_mean = torch.linalg.vector_norm(grad, dim=-1, keepdim=True)
        row_mean = row_mean.square_().div_(grad.size(-1))
        row_var.lerp_(row_mean, one_minus_beta2_t)          # (eq-af-row)   R_t
        col_mean = torch.linalg.vector_norm(grad, dim=-2, keepdim=True)
        col_mean = col_mean.square_().div_(grad.size(-2))
        col_var.lerp_(col_mean, one_minus_beta2_t)          # (eq-af-col)   C_t
        # (eq-af-vhat) V̂_t = R_t C_t / max(mean R_t, ε1)
        var_estimate = factored_second_moment(row_var, col_var, eps1)
    else:
        variance.lerp_(grad * grad, one_minus_beta2_t)      # (eq-af-v)     V̂_t
        var_estimate = variance.clone()                     # keep V̂ out of the update
    # (eq-af-u) 1 / max(√V̂_t, ε1), as max(V̂_t, ε1²)^(-1/2)
    update = var_estimate.clamp_(min=eps1 * eps1).rsqrt_()
    update.mul_(grad)                                       # (eq-af-u)     U_t
    # (eq-af-clip) max(1, RMS(U_t) / d)
    denom = max(1.0, update.norm(2).item() / ((update.numel() ** 0.5) * d))
    param.add_(update, alpha=-alpha / denom)                # (eq-af-step)  θ - α_t Û_t
# [adafactor-end]


# ----------------------------------------------------------------------------------
# Multi-tensor update (the foreach=True path), op for op as torch's
# _multi_tensor_adafactor.
# ----------------------------------------------------------------------------------


# [adafactor-foreach-start]
def adafactor_foreach_update(
    params: TensorList,
    grads: TensorList,
    row_vars: list,
    col_vars: list,
    variances: list,
    steps: TensorList,
    *,
    lr: Scalar,
    beta2_decay: float,
    eps1: Optional[float],
    eps2: float,
    d: float,
    weight_decay: float,
    maximize: bool = False,
) -> None:
    """Adafactor on a list of tensors of one device and dtype; ``steps`` already hold
    t.  Split, as torch's, into the factored tensors (two or more dimensions) and the
    others, each part one pass per line."""
    if eps1 is None:
        eps1 = torch.finfo(params[0].dtype).eps
    factored = [i for i, g in enumerate(grads) if g.dim() > 1]
    unfactored = [i for i, g in enumerate(grads) if g.dim() <= 1]
    buffers = (params, grads, row_vars, col_vars, variances, steps)
    # torch visits the two parts in the order in which they first appear
    for part in sorted((p for p in (factored, unfactored) if p), key=lambda p: p[0]):
        _adafactor_foreach_part(
            *([tensors[i] for i in part] for tensors in buffers),
            is_factored=part is factored, lr=lr, beta2_decay=beta2_decay, eps1=eps1,
            eps2=eps2, d=d, weight_decay=weight_decay, maximize=maximize,
        )


def _adafactor_foreach_part(
    params: TensorList,
    grads: TensorList,
    row_vars: list,
    col_vars: list,
    variances: list,
    steps: TensorList,
    *,
    is_factored: bool,
    lr: Scalar,
    beta2_decay: float,
    eps1: float,
    eps2: float,
    d: float,
    weight_decay: float,
    maximize: bool,
) -> None:
    if maximize:
        grads = torch._foreach_neg(grads)                   # ascent: -g
    one_minus_beta2_ts = [step_value(s) ** beta2_decay for s in steps]  # (eq-af-beta2)
    rho_ts = [min(lr, 1 / (step_value(s) ** 0.5)) for s in steps]      # (eq-af-rho)
    alphas = [max(eps2, p.norm(2).item() / (p.numel() ** 0.5)) * rho   # (eq-af-rho)
              for p, rho in zip(params, rho_ts)]
    if weight_decay != 0:
        torch._foreach_mul_(params, 1 - lr * weight_decay)  # (eq-af-wd)
    if is_factored:
        row_means = [torch.linalg.vector_norm(g, dim=-1, keepdim=True) for g in grads]
        torch._foreach_mul_(row_means, row_means)           # ‖g_i,:‖²
        torch._foreach_div_(row_means, [g.size(-1) for g in grads])  # mean_j g²
        torch._foreach_lerp_(row_vars, row_means, one_minus_beta2_ts)  # (eq-af-row)
        del row_means
        col_means = [torch.linalg.vector_norm(g, dim=-2, keepdim=True) for g in grads]
        torch._foreach_mul_(col_means, col_means)           # ‖g_:,j‖²
        torch._foreach_div_(col_means, [g.size(-2) for g in grads])  # mean_i g²
        torch._foreach_lerp_(col_vars, col_means, one_minus_beta2_ts)  # (eq-af-col)
        del col_means
        var_estimates = [r @ c for r, c in zip(row_vars, col_vars)]    # (eq-af-vhat)
        row_var_means = [r.mean(dim=-2, keepdim=True) for r in row_vars]
        torch._foreach_clamp_min_(row_var_means, eps1)      # max(mean R_t, ε1)
        torch._foreach_div_(var_estimates, row_var_means)   # (eq-af-vhat)
        del row_var_means
    else:
        grads_squared = torch._foreach_mul(grads, grads)    # g²
        torch._foreach_lerp_(variances, grads_squared, one_minus_beta2_ts)  # (eq-af-v)
        del grads_squared
        var_estimates = [v.clone() for v in variances]      # keep V̂ out of the update
    torch._foreach_clamp_min_(var_estimates, eps1 * eps1)   # (eq-af-u) max(V̂_t, ε1²)
    torch._foreach_rsqrt_(var_estimates)                    #           ^(-1/2)
    torch._foreach_mul_(var_estimates, grads)               # (eq-af-u) U_t
    updates = var_estimates
    alphas = [-a / max(1.0, u.norm(2).item() / ((u.numel() ** 0.5) * d))  # (eq-af-clip)
              for a, u in zip(alphas, updates)]
    torch._foreach_mul_(updates, alphas)                    # -α_t Û_t
    torch._foreach_add_(params, updates)                    # (eq-af-step)
# [adafactor-foreach-end]


# ----------------------------------------------------------------------------------
# The optimizer class: torch.optim.Adafactor's constructor, defaults, validation and
# state.
# ----------------------------------------------------------------------------------


def _check_adafactor_hyper(lr, beta2_decay, eps, d, weight_decay) -> None:
    """torch.optim.Adafactor's checks, in its order and its words."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError(f"Tensor lr must be 1-element (got shape {tuple(lr.shape)})")
    if not 0.0 <= lr:
        raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
    if not 0.0 >= beta2_decay:
        raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
    if eps[0] is not None and not 0.0 <= eps[0]:
        raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
    if not 0.0 <= eps[1]:
        raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
    if not 1.0 <= d:
        raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")


class Adafactor(TwinOptimizer):
    """Adafactor (Shazeer & Stern, 2018), with torch's use of ``lr`` (the cap of the
    relative step size ρ_t, and the coefficient of decoupled weight decay) and of ε1.
    Twin of :class:`torch.optim.Adafactor`.

    State: ``step``; ``row_var`` (R, shape (..., n, 1)) and ``col_var`` (C, shape
    (..., 1, m)) for a parameter with two or more dimensions, factored over its last
    two; ``variance`` (V̂, the parameter's shape) for a vector or a 0-d tensor.

    As in torch, ``foreach=None`` is the single-tensor path on every device (Adafactor
    is used where memory is short, and the multi-tensor path needs more of it), and
    complex parameters are refused at the step.  :func:`optbook.compile_step` leaves
    the update eager (the multi-tensor path): its norms are read with ``.item()``, as
    torch's are, which a compiled graph cannot hold.
    """

    supports_foreach = True

    #: What torch.optim.Adafactor.__setstate__ fills in (see TwinOptimizer).
    _group_backfill = dict(foreach=None)

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-2,
        beta2_decay: float = -0.8,
        eps: Tuple[Optional[float], float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
    ) -> None:
        _check_adafactor_hyper(lr, beta2_decay, eps, d, weight_decay)
        defaults = dict(
            lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
            foreach=foreach, maximize=maximize,
        )
        super().__init__(params, defaults)

    def _foreach_by_default(self, group: dict) -> bool:
        return False  # torch: the multi-tensor path only with foreach=True

    def _collect(self, group: dict) -> tuple:
        for param in group["params"]:
            if param.grad is None:
                continue
            if torch.is_complex(param):
                raise RuntimeError("Adafactor does not support complex parameters")
            if param.grad.is_sparse:
                break  # the base class says so
        # ε1 of this group at this step; None: resolved by the first update (see module)
        self._eps1 = group["eps"][0]
        return super()._collect(group)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        if param.dim() > 1:
            state["row_var"] = param.new_zeros(param.shape[:-1] + (1,))
            state["col_var"] = param.new_zeros(param.shape[:-2] + (1, param.shape[-1]))
        else:
            state["variance"] = torch.zeros_like(param,
                                                 memory_format=torch.preserve_format)

    def _hyper(self, group: dict) -> dict:
        return dict(lr=to_scalar(group["lr"]), beta2_decay=group["beta2_decay"],
                    eps1=self._eps1, eps2=group["eps"][1], d=group["d"],
                    weight_decay=group["weight_decay"])

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        if self._eps1 is None:
            self._eps1 = torch.finfo(param.dtype).eps
        state["step"] += 1
        adafactor_update(
            param, grad, state.get("row_var"), state.get("col_var"),
            state.get("variance"), step_value(state["step"]), **self._hyper(group),
        )

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        if self._eps1 is None:
            self._eps1 = torch.finfo(params[0].dtype).eps
        steps = [s["step"] for s in states]
        increment_steps(steps)
        adafactor_foreach_update(
            params, grads, [s.get("row_var") for s in states],
            [s.get("col_var") for s in states], [s.get("variance") for s in states],
            steps, maximize=group["maximize"], **self._hyper(group),
        )
