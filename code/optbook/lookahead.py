"""Lookahead (Zhang, Lucas, Hinton & Ba, 2019): no torch.optim twin.

It wraps any optimizer: it keeps a copy ϑ of the weights (the *slow* weights), lets
the wrapped optimizer take ``k`` steps on the *fast* weights θ, then moves ϑ a
fraction ``alpha`` of the way to θ and restarts θ from ϑ. Tested against a float64
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

#: What a Lookahead state_dict adds to each of the base optimizer's groups.
_GROUP_KEYS = ("lookahead_k", "lookahead_alpha", "lookahead_fast_steps")


def _check_k_alpha(k: Any, alpha: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"Invalid k: {k!r} (must be an integer >= 1)")
    if (isinstance(alpha, bool) or not isinstance(alpha, numbers.Real)
            or not 0.0 < alpha <= 1.0):
        raise ValueError(f"Invalid alpha: {alpha!r} (must be in (0, 1])")


def _from_legacy_layout(state_dict: dict) -> dict:
    """optbook's first Lookahead layout ({"base", "slow_params", "fast_steps", "k",
    "alpha"}, slow weights by position) in today's, so old checkpoints still load."""
    if "base" not in state_dict or "slow_params" not in state_dict:
        return state_dict
    base = state_dict["base"]
    state = {key: dict(entry) for key, entry in base["state"].items()}
    ids = [pid for group in base["param_groups"] for pid in group["params"]]
    for position, slow in state_dict["slow_params"].items():
        if not 0 <= position < len(ids):
            raise ValueError(f"Invalid Lookahead state_dict: slow weights for "
                             f"parameter {position}, which this optimizer lacks")
        state.setdefault(ids[position], {})["slow_param"] = slow
    extra = dict(zip(_GROUP_KEYS, (state_dict.get("k"), state_dict.get("alpha"),
                                   state_dict.get("fast_steps"))))
    return {"state": state, "param_groups": [{**group, **extra}
                                             for group in base["param_groups"]]}


def _graph_break_if_compiling() -> None:
    """End the compiled graph after the base optimizer's step.  torch.compile (torch
    2.15) drops attribute stores on an Optimizer that wraps another whose step traced
    without a graph break (optbook's twins' steps do; torch.optim's break twice), so
    ``fast_steps`` would stay 0 and the slow weights would never be synchronised."""
    if torch.compiler.is_compiling():
        torch._dynamo.graph_break()


class Lookahead(Optimizer):
    """Lookahead(base_optimizer, k=5, alpha=0.5)  (Zhang et al., 2019, Algorithm 1).

    With slow weights ϑ (a copy of the parameters, taken at the first step)::

        every step:        θ <- base_optimizer step on θ            (fast weights)
        every k-th step:   ϑ <- ϑ + α (θ - ϑ);   θ <- ϑ              (slow weights)

    The wrapper shares the base optimizer's ``param_groups`` (a learning-rate
    scheduler attached to either drives both; :meth:`add_param_group` adds to both).
    Its ``state_dict`` has torch.optim's layout (see :meth:`state_dict`): the base
    optimizer's, plus each parameter's slow weights in its state and k, alpha and
    the fast-step count in the groups, so that torch.distributed.checkpoint saves
    and reshards it like any optimizer's.  The base optimizer's own state (Adam's
    moments, ...) is *not* reset at synchronisation, as in the paper's experiments.
    """

    def __init__(self, base_optimizer: Optimizer, k: int = 5,
                 alpha: float = 0.5) -> None:
        if not isinstance(base_optimizer, Optimizer):
            raise TypeError("Lookahead wraps a torch.optim.Optimizer, "
                            f"got {type(base_optimizer).__name__}")
        _check_k_alpha(k, alpha)
        self.base_optimizer = base_optimizer
        self.k = int(k)
        self.alpha = float(alpha)
        self.fast_steps = 0
        # Optimizer.__init__ registers the base optimizer's group dicts themselves
        # (they already carry every default); then the list itself is shared too.
        super().__init__(base_optimizer.param_groups, base_optimizer.defaults)
        self.param_groups = base_optimizer.param_groups

    def add_param_group(self, param_group: dict) -> None:
        if (hasattr(self, "base_optimizer")
                and self.param_groups is self.base_optimizer.param_groups):
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
                state["slow_param"] = param.detach().clone()  # ϑ_0 = θ_0
        # θ_{t,i} = θ_{t,i-1} + A(L, θ_{t,i-1})
        loss = self.base_optimizer.step(closure)
        _graph_break_if_compiling()                         # (torch.compile: see there)
        self.fast_steps += 1
        if self.fast_steps % self.k == 0:
            for param in self._params():
                slow = self.state[param]["slow_param"]
                # ϑ_t = ϑ_{t-1} + α (θ_{t,k} - ϑ_{t-1})
                slow.add_(param - slow, alpha=self.alpha)
                param.copy_(slow)                           # θ_{t+1,0} = ϑ_t
        return loss
    # [lookahead-end]

    def state_dict(self) -> dict:
        """torch.optim's layout, ``{"state": ..., "param_groups": ...}``, so that
        torch.distributed.checkpoint and other code that reads it work unchanged:
        the base optimizer's state_dict, with each parameter's slow weights ϑ as one
        more entry of its state (``slow_param``) and k, alpha and the fast-step
        count in every group (``lookahead_k``, ``lookahead_alpha``,
        ``lookahead_fast_steps``).  Hooks registered on the wrapper run as torch's
        ``Optimizer.state_dict`` runs them (the base optimizer's own run too)."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        saved = self.base_optimizer.state_dict()
        state = saved["state"]
        for index, param in enumerate(self._params()):
            slow = self.state.get(param, {}).get("slow_param")
            if slow is not None:
                if "slow_param" in state.get(index, {}):
                    raise RuntimeError("Lookahead: the base optimizer's state has its "
                                       "own 'slow_param' (a Lookahead in a Lookahead?)")
                # a new dict: the base's state_dict holds its live per-parameter dicts
                state[index] = {**state.get(index, {}), "slow_param": slow}
        for group in saved["param_groups"]:
            group.update(lookahead_k=self.k, lookahead_alpha=self.alpha,
                         lookahead_fast_steps=self.fast_steps)
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, saved)
            if result is not None:
                saved = result
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a :meth:`state_dict` (or one in optbook's first Lookahead layout, with
        ``base`` and ``slow_params``).  Everything is checked before anything is
        changed; the wrapper's load hooks run as torch's do."""
        state_dict = state_dict.copy()
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        state_dict = _from_legacy_layout(state_dict)
        if not isinstance(state_dict.get("state"), dict) or \
                not isinstance(state_dict.get("param_groups"), list):
            raise ValueError("Invalid Lookahead state_dict: needs 'state' and "
                             f"'param_groups', got keys {sorted(state_dict)}")
        groups = state_dict["param_groups"]
        for index, group in enumerate(groups):
            missing = [key for key in _GROUP_KEYS if key not in group]
            if missing:
                raise ValueError(
                    f"Invalid Lookahead state_dict: parameter group {index} lacks "
                    f"{missing}; a plain optimizer's state_dict loads into "
                    "lookahead.base_optimizer.load_state_dict(...)")
        settings = {tuple(group[key] for key in _GROUP_KEYS) for group in groups}
        if len(settings) > 1:
            raise ValueError(f"Invalid Lookahead state_dict: the groups disagree on "
                             f"(k, alpha, fast_steps): {sorted(settings)}")
        k, alpha, fast_steps = settings.pop() if settings else (self.k, self.alpha,
                                                                 self.fast_steps)
        _check_k_alpha(k, alpha)
        params = self._params()
        saved_ids = [pid for group in groups for pid in group["params"]]
        id_map = dict(zip(saved_ids, params))  # as torch maps them: by position
        base_state, slow = {}, {}
        for key, entry in state_dict["state"].items():
            entry = dict(entry)
            if "slow_param" in entry:
                if key not in id_map:
                    raise ValueError(f"Invalid Lookahead state_dict: slow weights "
                                     f"for parameter {key!r}, which this optimizer "
                                     f"lacks ({len(params)} parameters)")
                slow[key] = entry.pop("slow_param")
            if entry:
                base_state[key] = entry
        base_groups = [{key: value for key, value in group.items()
                        if key not in _GROUP_KEYS} for group in groups]
        self.base_optimizer.load_state_dict({**state_dict, "state": base_state,
                                             "param_groups": base_groups})
        # load_state_dict gave the base optimizer new group dicts: share them again
        self.param_groups = self.base_optimizer.param_groups
        for param in params:
            self.state[param].pop("slow_param", None)
        for key, value in slow.items():
            param = id_map[key]
            self.state[param]["slow_param"] = value.detach().to(
                dtype=param.dtype, device=param.device, copy=True)
        self.k, self.alpha, self.fast_steps = int(k), float(alpha), int(fast_steps)
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def __repr__(self) -> str:
        return (f"Lookahead(k={self.k}, alpha={self.alpha}, "
                f"base_optimizer={self.base_optimizer!r})")
