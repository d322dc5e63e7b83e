"""Plumbing shared by every optbook optimizer, written once.

An optbook optimizer is two things:

* a *pure functional update* for one tensor (in :mod:`optbook.functional`), which is
  what the chapters display and annotate, and
* a thin :class:`torch.optim.Optimizer` subclass that validates hyperparameters,
  walks the parameter groups, creates state lazily, applies ``maximize`` and hands
  each parameter to the functional update.

The second part is identical for every algorithm, so it lives here in
:class:`TwinOptimizer`.  Subclasses only say which state a parameter needs
(:meth:`TwinOptimizer._init_state`) and how to call their functional update
(:meth:`TwinOptimizer._update`).

Complex parameters: torch's adaptive methods update them through
``torch.view_as_real`` views, i.e. as pairs of real numbers.  :func:`as_real` makes
those views; the state buffers are passed as views, and the functional updates view
the parameter and gradient as real right after weight decay, exactly where torch
does (SGD keeps complex arithmetic throughout, as torch's does).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch
from torch import Tensor
from torch.optim import Optimizer

__all__ = [
    "TwinOptimizer",
    "as_real",
    "check_nonnegative",
    "check_unit_interval",
    "check_lr",
    "scalar_dtype",
    "to_scalar",
]


# ----------------------------------------------------------------------------------
# Validation: every rule raises ValueError naming the parameter and the value.
# ----------------------------------------------------------------------------------


def _is_tensor(x: Any) -> bool:
    return isinstance(x, Tensor)


def _number(x: Any) -> Any:
    """The value to compare: a Python number, or a 1-element tensor's item."""
    return x.item() if _is_tensor(x) else x


def check_nonnegative(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value >= 0`` (NaN is rejected too)."""
    if not 0.0 <= _number(value):
        raise ValueError(f"Invalid {name}: {value!r} (must be >= 0)")


def check_unit_interval(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (an EWMA coefficient)."""
    if not 0.0 <= _number(value) < 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (must be in [0, 1))")


def check_lr(lr: Any) -> None:
    """The learning rate: a non-negative float or a 1-element tensor."""
    if _is_tensor(lr) and lr.numel() != 1:
        raise ValueError(f"Invalid lr: a Tensor lr must have 1 element, got shape {tuple(lr.shape)}")
    check_nonnegative("lr", lr)


def check_betas(betas: Any) -> None:
    """Adam's ``betas``: two floats (or two 1-element tensors), each in [0, 1)."""
    b1, b2 = betas
    both_floats = isinstance(b1, float) and isinstance(b2, float)
    both_tensors = _is_tensor(b1) and _is_tensor(b2)
    if not (both_floats or both_tensors):
        # torch.optim rejects e.g. betas=(0, 0) because the ints are not floats.
        raise ValueError(f"Invalid betas: {betas!r} (must be two floats or two Tensors)")
    for index, beta in enumerate(betas):
        if both_tensors and beta.numel() != 1:
            raise ValueError(f"Invalid betas[{index}]: a Tensor beta must have 1 element")
        check_unit_interval(f"betas[{index}]", beta)


def check_supported_flags(**flags: Any) -> None:
    """Reject torch.optim flags whose code path optbook does not (yet) implement.

    Rather than silently ignoring ``foreach=True`` and running the single-tensor
    loop, say so.
    """
    for name, value in flags.items():
        if value:
            raise ValueError(
                f"Invalid {name}: {value!r} (optbook implements the single-tensor path; "
                f"use {name}=None/False, or torch.optim for this path)"
            )


# ----------------------------------------------------------------------------------
# Helpers that mirror torch.optim's own conventions.
# ----------------------------------------------------------------------------------


def scalar_dtype() -> torch.dtype:
    """dtype of ``state["step"]``: float64 when it is the default dtype, else float32.

    This is torch.optim's convention; matching it keeps state_dicts interchangeable.
    """
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def new_step_counter() -> Tensor:
    """A fresh step counter t = 0, as a CPU scalar tensor like torch.optim's."""
    return torch.tensor(0.0, dtype=scalar_dtype())


def to_scalar(x: Any) -> Any:
    """A hyperparameter given as a 1-element tensor of any shape becomes 0-d."""
    return x.squeeze() if _is_tensor(x) and x.dim() != 0 else x


def as_real(t: Optional[Tensor]) -> Optional[Tensor]:
    """A real view of a complex tensor (pairs of floats); other tensors unchanged."""
    if t is not None and torch.is_complex(t):
        return torch.view_as_real(t)
    return t


class TwinOptimizer(Optimizer):
    """Base class: parameter groups, lazy state, ``maximize``, closures.

    Subclasses implement

    * ``_init_state(param, state, group)`` to create the per-parameter state the
      first time a parameter has a gradient (names as in torch.optim), and
    * ``_update(param, grad, state, group)``, which calls the algorithm's functional
      update on one parameter.  ``grad`` is already negated when ``maximize`` is set.

    ``_needs_state(group)`` says whether the algorithm keeps per-parameter state at
    all for this group (plain SGD does not, and then torch.optim creates none).
    """

    #: Name used in error messages, e.g. "Adam".
    algorithm: str = "optimizer"

    def _needs_state(self, group: dict) -> bool:
        return True

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _update(self, param: Tensor, grad: Tensor, state: Optional[dict], group: dict) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Perform one optimization step; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue  # a parameter without a gradient is left untouched
                if param.grad.is_sparse:
                    raise RuntimeError(
                        f"optbook.{type(self).__name__} does not support sparse gradients; "
                        "use a dense gradient or torch.optim (SparseAdam, SGD, Adagrad)"
                    )
                state = None
                if self._needs_state(group):
                    state = self.state[param]
                    if len(state) == 0:
                        self._init_state(param, state, group)
                # torch negates a copy of the gradient; p.grad itself is not modified.
                grad = -param.grad if group["maximize"] else param.grad
                self._update(param, grad, state, group)
        return loss


def zeros_like(param: Tensor) -> Tensor:
    """A zero state buffer with the parameter's shape, dtype, device and layout."""
    return torch.zeros_like(param, memory_format=torch.preserve_format)


ParamsT = Iterable[Any]
