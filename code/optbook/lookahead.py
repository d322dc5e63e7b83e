"""Lookahead (Zhang, Lucas, Hinton & Ba, 2019): no torch.optim twin.

It wraps any optimizer: it keeps a copy φ of the weights (the *slow* weights), lets
the wrapped optimizer take ``k`` steps on the *fast* weights θ, then moves φ a
fraction ``alpha`` of the way to θ and restarts θ from φ. Tested against a float64
reference written from the paper's pseudo-code (tests/test_lookahead.py).
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Optional

import torch
from torch.optim import Optimizer

__all__ = ["Lookahead"]


# ----------------------------------------------------------------------------------
# Lookahead
# ----------------------------------------------------------------------------------


class Lookahead(Optimizer):
    """Lookahead(base_optimizer, k=5, alpha=0.5)  (Zhang et al., 2019, Algorithm 1).

    With slow weights φ (a copy of the parameters, taken at the first step)::

        every step:        θ <- base_optimizer step on θ            (fast weights)
        every k-th step:   φ <- φ + α (θ - φ);   θ <- φ              (slow weights)

    The wrapper shares the base optimizer's ``param_groups`` (a learning-rate
    scheduler attached to either drives both; :meth:`add_param_group` adds to both).
    Its ``state_dict`` holds the base optimizer's ``state_dict``, the slow weights
    (by parameter index, in ``param_groups`` order), the fast-step counter, ``k``
    and ``alpha``.  The base optimizer's own state (Adam's moments, ...) is
    *not* reset at synchronisation, as in the paper's experiments.
    """

    def __init__(self, base_optimizer: Optimizer, k: int = 5, alpha: float = 0.5) -> None:
        if not isinstance(base_optimizer, Optimizer):
            raise TypeError(f"Lookahead wraps a torch.optim.Optimizer, got {type(base_optimizer).__name__}")
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"Invalid k: {k!r} (must be an integer >= 1)")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < alpha <= 1.0:
            raise ValueError(f"Invalid alpha: {alpha!r} (must be in (0, 1])")
        self.base_optimizer = base_optimizer
        self.k = int(k)
        self.alpha = float(alpha)
        self.fast_steps = 0
        # Optimizer.__init__ registers the base optimizer's group dicts themselves
        # (they already carry every default); then the list itself is shared too.
        super().__init__(base_optimizer.param_groups, base_optimizer.defaults)
        self.param_groups = base_optimizer.param_groups

    def add_param_group(self, param_group: dict) -> None:
        if hasattr(self, "base_optimizer") and self.param_groups is self.base_optimizer.param_groups:
            self.base_optimizer.add_param_group(param_group)
        else:  # during Optimizer.__init__: the dicts are the base optimizer's already
            super().add_param_group(param_group)

    def _params(self) -> list:
        return [p for group in self.param_groups for p in group["params"]]

    # [lookahead-start]
    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One fast step of the base optimizer; every k-th, the slow-weight update."""
        for param in self._params():
            state = self.state[param]
            if "slow_param" not in state:
                state["slow_param"] = param.detach().clone()  # φ_0 = θ_0
        loss = self.base_optimizer.step(closure)            # θ_{t,i} = θ_{t,i-1} + A(L, θ_{t,i-1})
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            for param in self._params():
                slow = self.state[param]["slow_param"]
                slow.add_(param - slow, alpha=self.alpha)   # φ_t = φ_{t-1} + α (θ_{t,k} - φ_{t-1})
                param.copy_(slow)                           # θ_{t+1,0} = φ_t
        return loss
    # [lookahead-end]

    def state_dict(self) -> dict:
        params = self._params()
        slow = {index: self.state[p]["slow_param"].clone()
                for index, p in enumerate(params) if "slow_param" in self.state.get(p, {})}
        return {
            "base": self.base_optimizer.state_dict(),
            "slow_params": slow,
            "fast_steps": self.fast_steps,
            "k": self.k,
            "alpha": self.alpha,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        params = self._params()
        missing = {"base", "slow_params", "fast_steps", "k", "alpha"} - set(state_dict)
        if missing:
            raise ValueError(f"Invalid Lookahead state_dict: missing {sorted(missing)}")
        if any(not 0 <= index < len(params) for index in state_dict["slow_params"]):
            raise ValueError("Invalid Lookahead state_dict: slow weights for parameters "
                             f"this optimizer does not have ({len(params)} parameters)")
        self.base_optimizer.load_state_dict(state_dict["base"])
        for p in params:
            self.state[p].pop("slow_param", None)
        for index, value in state_dict["slow_params"].items():
            param = params[index]
            self.state[param]["slow_param"] = value.detach().to(
                dtype=param.dtype, device=param.device, copy=True)
        self.fast_steps = int(state_dict["fast_steps"])
        self.k = int(state_dict["k"])
        self.alpha = float(state_dict["alpha"])

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha}, base_optimizer={self.base_optimizer!r})"
