"""SOAP (Vyas et al., 2024, "SOAP: Improving and Stabilizing Shampoo using Adam"):
no torch.optim twin.

SOAP runs Adam in the eigenbasis of Shampoo's preconditioner.  For a matrix
parameter W (m x n) with gradient G_t it keeps EWMAs L, R of G Gᵀ and GᵀG (as
Shampoo's statistics, but averaged), their eigenbases Q_L, Q_R, and Adam's
moments M (in the original coordinates) and V (in the rotated ones).  One step
(the paper's Algorithm 3, with Adam's bias correction and AdamW's weight decay)::

    G'  = Q_Lᵀ G Q_R,    M' = Q_Lᵀ M Q_R                            (eq-soap-rot)
    M   = β1 M + (1-β1) G,    V = β2 V + (1-β2) G'²
    N'  = M̂' / (√V̂ + ε)   (M̂, V̂ bias-corrected as torch.optim.Adam)  (eq-soap-adam)
    W   = W - η Q_L N' Q_Rᵀ                                           (eq-soap-back)
    L   = β_s L + (1-β_s) G Gᵀ,    R = β_s R + (1-β_s) GᵀG            (eq-soap-stats)
    every f-th step:  Q <- QR(P Q) for (P, Q) = (L, Q_L), (R, Q_R)    (eq-soap-basis)

with β_s = ``shampoo_beta`` (default β2) and f = ``precondition_frequency``.  The
basis refresh (the paper's Algorithm 4) is one step of power iteration followed by
a QR decomposition; as in the authors' code the columns of P Q are first sorted by
the eigenvalue estimates diag(Qᵀ P Q), largest first, and V's coordinates are
permuted with them, so that each entry of V stays with its eigenvector.

An order-k tensor gets one statistic and one basis per mode (the mode-i unfolding
G_(i) in place of G), the rotation acting on every mode.  A mode larger than
``max_precond_dim``, and every vector and 0-d tensor, is not rotated: along it
SOAP is Adam.  With no rotated mode at all SOAP *is* AdamW, op for op
(tests/test_soap.py checks ``torch.equal`` with torch.optim.AdamW).

The first step: the eigenbases come from ``torch.linalg.eigh`` of the first
statistics, L_1 = (1-β_s) G_1 G_1ᵀ and R_1 = (1-β_s) G_1ᵀ G_1, computed before the
rotation; the parameters move at step 1 (by about -η U Vᵀ, the polar factor of
G_1, since G_1' is then diagonal).  The authors' code, and pytorch-optimizer's
port, spend the first step on the statistics only and count Adam's steps from the
second; tests/test_soap.py measures this and the other differences (ε after √v
with the bias corrections folded into η, weight decay after the step, QR in
float32).

Left out of the authors' code (and pytorch-optimizer's): ``merge_dims`` (small
dimensions of a convolution kernel merged into one mode up to max_precond_dim),
``precondition_1d`` (a full basis for vectors), ``normalize_gradient`` and the
channels-last layout.  Each is an engineering option, off by default there too;
the sharded versions for many devices (one basis per block of a large dimension,
eigendecompositions spread over workers) are left out for the reasons given in
:mod:`optbook.shampoo`: they need workers, and each adds hyperparameters to a
method the book tests against the paper's pseudo-code.
"""

from __future__ import annotations

import numbers
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from .base import (
    ParamsT,
    TwinOptimizer,
    check_beta,
    check_lr,
    check_nonnegative,
    new_step_counter,
    step_value,
    zeros_like,
)
from .ewma import ewma_sq_update_, ewma_update_
from .shampoo import _unfold

__all__ = ["SOAP", "soap_update", "rotate", "refresh_basis"]


def _linalg_dtype(dtype: torch.dtype) -> torch.dtype:
    """eigh and QR need float32 or float64: half and bfloat16 are upcast."""
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def rotate(tensor: Tensor, bases: List[Optional[Tensor]], back: bool = False) -> Tensor:
    """Q_Lᵀ X Q_R (or, ``back=True``, Q_L X Q_Rᵀ), and for order k every mode's
    basis; a mode whose basis is None is left as it is.  Each contraction moves
    its axis to the end, so after k of them the axes are back in order."""
    for basis in bases:
        if basis is None:
            tensor = tensor.movedim(0, -1)
        else:
            tensor = torch.tensordot(tensor, basis, dims=([0], [1 if back else 0]))
    return tensor


def _update_statistics(grad: Tensor, factors: List[Optional[Tensor]],
                       shampoo_beta: float) -> None:
    for mode, factor in enumerate(factors):
        if factor is not None:
            unfolded = _unfold(grad, mode)
            # (eq-soap-stats) L = β_s L + (1-β_s) G Gᵀ, R = β_s R + (1-β_s) GᵀG
            ewma_update_(factor, unfolded @ unfolded.mT, shampoo_beta)


def _eigenbasis(factor: Tensor) -> Tensor:
    """Eigenvectors of a symmetric matrix, largest eigenvalue first."""
    _, eigenvectors = torch.linalg.eigh(factor.to(_linalg_dtype(factor.dtype)))
    return eigenvectors.flip(-1).to(factor.dtype)


def refresh_basis(factor: Tensor, basis: Tensor, exp_avg_sq: Tensor, mode: int) -> None:
    """Algorithm 4: one power-iteration step and a QR decomposition, in place.
    The columns are sorted by their eigenvalue estimates first, and V's
    coordinates along ``mode`` are permuted with them."""
    power = factor @ basis                                  # S = P Q
    estimates = (basis * power).sum(0)                      # diag(Qᵀ P Q) ≈ eigenvalues
    order = torch.argsort(estimates, descending=True)
    exp_avg_sq.copy_(exp_avg_sq.index_select(mode, order))  # V follows its eigenvectors
    power = power.index_select(1, order)
    q, _ = torch.linalg.qr(power.to(_linalg_dtype(power.dtype)))
    basis.copy_(q)                                          # (eq-soap-basis) Q = QR(PQ)


# ----------------------------------------------------------------------------------
# Single-tensor update
# ----------------------------------------------------------------------------------


# [soap-start]
def soap_update(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    factors: List[Optional[Tensor]],
    bases: List[Optional[Tensor]],
    step: float,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    shampoo_beta: float,
    eps: float,
    weight_decay: float,
    precondition_frequency: int,
    correct_bias: bool,
) -> None:
    """SOAP for one tensor at step t >= 1.  ``factors[i]`` and ``bases[i]`` are the
    mode-i statistic and eigenbasis (L, Q_L and R, Q_R for a matrix), or None for
    a mode that is not rotated."""
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)                   # θ <- (1 - ηλ) θ  (AdamW)
    rotated = any(basis is not None for basis in bases)
    if step == 1 and rotated:
        _update_statistics(grad, factors, shampoo_beta)     # (eq-soap-stats) L_1, R_1
        for factor, basis in zip(factors, bases):
            if basis is not None:
                basis.copy_(_eigenbasis(factor))            # Q_L, Q_R by eigh at t = 1
    grad_rotated = rotate(grad, bases)                      # (eq-soap-rot) G'=Q_LᵀGQ_R
    ewma_update_(exp_avg, grad, beta1)                      # M = β1 M + (1-β1) G
    exp_avg_rotated = rotate(exp_avg, bases)                # (eq-soap-rot) M'=Q_LᵀMQ_R
    # (eq-soap-adam) V = β2 V + (1-β2) G'², in the rotated coordinates
    ewma_sq_update_(exp_avg_sq, grad_rotated, beta2)
    if correct_bias:
        bias_correction1 = 1 - beta1**step                  # M̂ = M / (1-β1^t)
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5    # V̂ = V / (1-β2^t)
        step_size = lr / bias_correction1
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # √V̂ + ε
    else:
        step_size = lr
        denom = exp_avg_sq.sqrt().add_(eps)                 # √V + ε  (Algorithm 3)
    if rotated:
        # (eq-soap-adam) N' = M̂' / (√V̂ + ε);  (eq-soap-back) θ <- θ - η Q_L N' Q_Rᵀ
        param.add_(rotate(exp_avg_rotated / denom, bases, back=True), alpha=-step_size)
    else:
        param.addcdiv_(exp_avg, denom, value=-step_size)    # no basis: AdamW, op for op
    if step > 1 and rotated:
        _update_statistics(grad, factors, shampoo_beta)     # (eq-soap-stats)
        if step % precondition_frequency == 0:
            for mode, (factor, basis) in enumerate(zip(factors, bases)):
                if basis is not None:
                    # (eq-soap-basis) Q_L <- QR(L Q_L), Q_R <- QR(R Q_R)
                    refresh_basis(factor, basis, exp_avg_sq, mode)
# [soap-end]


# ----------------------------------------------------------------------------------
# The optimizer class
# ----------------------------------------------------------------------------------


def _check_count(name: str, value, minimum: int) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or value < minimum):
        raise ValueError(f"Invalid {name} value: {value!r} (must be an integer "
                         f">= {minimum})")


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"Invalid {name} value: {value!r} (must be True or False)")


class SOAP(TwinOptimizer):
    """SOAP(params, lr=3e-3, betas=(0.95, 0.95), shampoo_beta=None, eps=1e-8,
    weight_decay=0.01, precondition_frequency=10, max_precond_dim=10000,
    correct_bias=True, *, maximize=False)  (Vyas et al., 2024).

    The defaults are the authors'.  ``shampoo_beta=None`` uses β2 for the
    statistics (the paper's Algorithm 3 uses β2 for both); ``weight_decay`` is
    decoupled, as torch.optim.AdamW's (θ <- (1-ηλ)θ before the step);
    ``correct_bias`` bias-corrects M and V as torch.optim.Adam does.  See the
    module docstring for the update and the first step.

    State per parameter: ``step``, ``exp_avg`` (M, original coordinates),
    ``exp_avg_sq`` (V, rotated coordinates) and, for each rotated mode i,
    ``factor_i`` (the EWMA statistic; L = ``factor_0``, R = ``factor_1`` for a
    matrix) and ``basis_i`` (its eigenbasis Q_i).  Float parameters only.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 3e-3,
        betas: Tuple[float, float] = (0.95, 0.95),
        shampoo_beta: Optional[float] = None,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        precondition_frequency: int = 10,
        max_precond_dim: int = 10000,
        correct_bias: bool = True,
        *,
        maximize: bool = False,
    ) -> None:
        if torch.is_tensor(lr):
            raise ValueError(f"Invalid learning rate: {lr} (a Tensor lr is not "
                             "supported by SOAP; pass a float)")
        check_lr(lr)
        for index in (0, 1):
            check_beta(index, betas[index])
        if shampoo_beta is not None and not (
                isinstance(shampoo_beta, numbers.Real) and 0.0 <= shampoo_beta < 1.0):
            raise ValueError(f"Invalid shampoo_beta value: {shampoo_beta!r} (must be "
                             "None or in [0, 1))")
        check_nonnegative("eps", eps)
        check_nonnegative("weight_decay", weight_decay)
        _check_count("precondition_frequency", precondition_frequency, 1)
        _check_count("max_precond_dim", max_precond_dim, 0)
        _check_bool("correct_bias", correct_bias)
        _check_bool("maximize", maximize)
        defaults = dict(lr=lr, betas=betas, shampoo_beta=shampoo_beta, eps=eps,
                        weight_decay=weight_decay,
                        precondition_frequency=precondition_frequency,
                        max_precond_dim=max_precond_dim, correct_bias=correct_bias,
                        maximize=maximize)
        super().__init__(params, defaults)

    @staticmethod
    def _rotated_modes(param: Tensor, group: dict) -> List[bool]:
        """Which modes get a basis: those of size <= max_precond_dim, for order >= 2."""
        if param.dim() < 2:
            return [False] * param.dim()
        return [size <= group["max_precond_dim"] for size in param.shape]

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
        for mode, rotated in enumerate(self._rotated_modes(param, group)):
            if rotated:
                size = param.shape[mode]
                like = dict(dtype=param.dtype, device=param.device)
                state[f"factor_{mode}"] = torch.zeros(size, size, **like)
                state[f"basis_{mode}"] = torch.eye(size, **like)  # set at step 1

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        if torch.is_complex(param):
            raise RuntimeError("optbook.SOAP does not support complex parameters")
        state["step"] += 1
        beta1, beta2 = group["betas"]
        shampoo_beta = group["shampoo_beta"]
        modes = range(param.dim())
        soap_update(
            param, grad, state["exp_avg"], state["exp_avg_sq"],
            [state.get(f"factor_{i}") for i in modes],
            [state.get(f"basis_{i}") for i in modes], step_value(state["step"]),
            lr=float(group["lr"]), beta1=beta1, beta2=beta2,
            shampoo_beta=beta2 if shampoo_beta is None else shampoo_beta,
            eps=group["eps"], weight_decay=group["weight_decay"],
            precondition_frequency=group["precondition_frequency"],
            correct_bias=group["correct_bias"],
        )

