"""Exponentially weighted moving averages (EWMA), the building block of momentum,
RMSProp and Adam.

The recursion, with :math:`m_0 = 0`,

.. math::  m_t = \\beta\\, m_{t-1} + (1 - \\beta)\\, x_t ,

unrolls to :math:`m_t = (1-\\beta)\\sum_{k=1}^{t} \\beta^{t-k} x_k`, whose weights sum
to :math:`1 - \\beta^t`.  Dividing by that sum removes the bias of the zero start:
:math:`\\hat m_t = m_t / (1 - \\beta^t)`.

:func:`ewma_update_` is written as ``lerp`` because that is how torch.optim updates
Adam's first moment (``exp_avg.lerp_(grad, 1 - beta1)``); ``mul_().add_()`` computes
the same number in exact arithmetic but can differ in the last bit.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from .base import check_unit_interval

__all__ = ["EWMA", "ewma_update_", "ewma_sq_update_"]


# [ewma-update-start]
def ewma_update_(avg: Tensor, x: Tensor, beta: Union[float, Tensor]) -> Tensor:
    """In place: ``avg <- beta * avg + (1 - beta) * x``   (eq-ewma).

    ``lerp(a, b, w) = a + w (b - a)`` with ``w = 1 - beta`` is the same average,
    computed the way torch.optim computes it.
    """
    # m_t = β m_{t-1} + (1-β) x_t
    return avg.lerp_(x, 1 - beta)                   # (eq-ewma)


def ewma_sq_update_(avg_sq: Tensor, x: Tensor, beta: Union[float, Tensor]) -> Tensor:
    """In place: ``avg_sq <- beta * avg_sq + (1 - beta) * x * x``   (eq-ewma-sq).

    The EWMA of the elementwise square, computed as torch.optim computes Adam's and
    RMSprop's second moment (``mul_`` then ``addcmul_``).
    """
    # v_t = β v_{t-1} + (1-β) x_t²
    return avg_sq.mul_(beta).addcmul_(x, x, value=1 - beta)  # (eq-ewma-sq)
# [ewma-update-end]


class EWMA:
    """A running exponentially weighted average of a stream of tensors.

    >>> avg = EWMA(beta=0.9, bias_correction=True)
    >>> avg.update(torch.tensor(1.0))
    tensor(1.)

    Parameters
    ----------
    beta:
        The decay, in [0, 1). The effective window is about ``1 / (1 - beta)``.
    bias_correction:
        If True, :attr:`value` is ``m_t / (1 - beta**t)`` (unbiased for a constant
        stream); if False it is the raw ``m_t``, biased towards the zero start.
    """

    def __init__(self, beta: float, bias_correction: bool = False) -> None:
        check_unit_interval("beta", beta)
        self.beta = float(beta)
        self.bias_correction = bool(bias_correction)
        self.step = 0
        self.average: Optional[Tensor] = None  # raw m_t

    def update(self, x: Union[Tensor, float]) -> Tensor:
        """Fold in one observation and return the current :attr:`value`."""
        x = torch.as_tensor(x)
        if self.average is None:
            # m_0 = 0 in the dtype that floating-point arithmetic on x produces
            self.average = torch.zeros_like(x, dtype=torch.result_type(x, 1.0))
        self.step += 1
        ewma_update_(self.average, x.to(self.average.dtype), self.beta)
        return self.value

    @property
    def value(self) -> Tensor:
        """The current average (bias-corrected if requested)."""
        if self.average is None:
            raise RuntimeError("EWMA.value: no observation yet; call update() first")
        if self.bias_correction:
            return self.average / (1 - self.beta**self.step)
        return self.average.clone()

    def __repr__(self) -> str:
        return (f"EWMA(beta={self.beta}, bias_correction={self.bias_correction}, "
                f"step={self.step})")
