"""Learning-rate schedules and warm-up, written from scratch.

Two layers, as for the optimizers:

* **pure functions of the step** (``linear_warmup``, ``step_decay``, ``cosine``,
  ``sgdr``, ``one_cycle``, ``cyclic``, ``warmup_cosine``): the closed forms the
  chapter derives, one number (or an ``(lr, momentum)`` pair) per step, no state;
  plus the one-step *recursive* forms (``linear_warmup_recursive``,
  ``step_decay_recursive``, ``cosine_recursive``) that torch.optim.lr_scheduler
  actually evaluates for its chainable schedulers;
* **scheduler classes** (``LinearLR``, ``StepLR``, ``CosineAnnealingLR``,
  ``CosineAnnealingWarmRestarts``, ``OneCycleLR``, ``CyclicLR``, ``SequentialLR``)
  that drive any :class:`torch.optim.Optimizer` (optbook's or torch's) through its
  ``param_groups`` with ``step()``, ``get_last_lr()``, ``state_dict()`` and
  ``load_state_dict()``.

Each class is a twin of the torch scheduler of the same name: the learning rate (and,
for one-cycle and cyclic schedules, the momentum or Adam's beta1) that it writes into
the optimizer is the same float, bit for bit, at every step.  For the three
chainable schedulers torch multiplies the previous learning rate by a ratio
(a recursion); the classes use the same recursion, in the same floating-point
order, and the closed forms agree with it only to a few units in the last place
(the tests measure how many).  The non-chainable ones (SGDR, one-cycle, cyclic) are
closed forms in torch too, and the pure functions equal them exactly.

Not implemented: resuming through a ``last_epoch`` argument (use
``state_dict``/``load_state_dict``), ``CyclicLR``'s custom ``scale_fn``, and
Tensor-valued learning rates changed in place.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from torch import Tensor
from torch.optim import Optimizer

__all__ = [
    "linear_warmup", "linear_warmup_recursive", "step_decay", "step_decay_recursive",
    "cosine", "cosine_recursive", "sgdr", "sgdr_position", "one_cycle", "cyclic",
    "warmup_cosine",
    "Schedule", "LinearLR", "StepLR", "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts", "OneCycleLR", "CyclicLR", "SequentialLR",
]


# --------------------------------------------------------------------------------------
# Validation: a ValueError that names the parameter and the value.
# --------------------------------------------------------------------------------------

def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Invalid {name}: {value!r} (must be a positive integer)")


def _nonnegative(name: str, value: Any) -> None:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not value >= 0.0):
        raise ValueError(f"Invalid {name}: {value!r} (must be a number >= 0)")


def _in_interval(name: str, value: Any, low: float, high: float,
                 low_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (low < value if low_open else low <= value) and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"Invalid {name}: {value!r} "
                         f"(must be in {bracket}{low}, {high}])")


# --------------------------------------------------------------------------------------
# Pure functions of the step.  ``step`` counts scheduler steps from 0: the value at
# step s is the learning rate used by the optimizer's (s+1)-th update, i.e. eta_{t}
# with t = s + 1 in the book's notation.
# --------------------------------------------------------------------------------------

# [sched-warmup-start]
def linear_warmup(step: int, *, base_lr: float, start_factor: float = 1.0 / 3,
                  end_factor: float = 1.0, total_iters: int = 5) -> float:
    """Linear warm-up, closed form: the factor goes from ``start_factor`` to
    ``end_factor`` in ``total_iters`` steps, then stays."""
    ramp = (end_factor - start_factor) * min(total_iters, step) / total_iters
    return base_lr * (start_factor + ramp)                  # (eq-sched-warmup)


def linear_warmup_recursive(prev_lr: float, step: int, *, start_factor: float = 1.0 / 3,
                            end_factor: float = 1.0, total_iters: int = 5) -> float:
    """The same schedule as a ratio of consecutive values (what torch's LinearLR
    computes, step >= 1)."""
    if step > total_iters:
        return prev_lr                                      # warm-up over: constant
    slope = end_factor - start_factor                       # (eq-sched-warmup-rec)
    return prev_lr * (1.0 + slope / (total_iters * start_factor + (step - 1) * slope))
# [sched-warmup-end]


# [sched-step-start]
def step_decay(step: int, *, base_lr: float, step_size: int,
               gamma: float = 0.1) -> float:
    """Step decay: multiply by ``gamma`` every ``step_size`` steps (closed form)."""
    return base_lr * gamma ** (step // step_size)           # (eq-sched-step)


def step_decay_recursive(prev_lr: float, step: int, *, step_size: int,
                         gamma: float = 0.1) -> float:
    """Step decay as torch's StepLR computes it: one multiplication per decay."""
    if step == 0 or step % step_size != 0:
        return prev_lr
    return prev_lr * gamma                                  # (eq-sched-step)
# [sched-step-end]


# [sched-cosine-start]
def cosine(step: int, *, base_lr: float, T_max: int, eta_min: float = 0.0) -> float:
    """Cosine annealing from ``base_lr`` (step 0) to ``eta_min`` (step T_max), closed
    form."""
    return (eta_min + (base_lr - eta_min)                   # (eq-sched-cosine)
            * (1 + math.cos(math.pi * step / T_max)) / 2)


def cosine_recursive(prev_lr: float, step: int, *, base_lr: float, T_max: int,
                     eta_min: float = 0.0) -> float:
    """The value at ``step`` (>= 1) from the value at ``step - 1``: torch's
    CosineAnnealingLR recursion, operation for operation."""
    if (step - 1 - T_max) % (2 * T_max) == 0:
        # the ratio would be 0/0 at the bottom of the cosine: add the increment instead
        return (prev_lr + (base_lr - eta_min)               # (eq-sched-cosine-bottom)
                * (1 - math.cos(math.pi / T_max)) / 2)
    ratio = ((1 + math.cos(math.pi * step / T_max))
             / (1 + math.cos(math.pi * (step - 1) / T_max)))
    return ratio * (prev_lr - eta_min) + eta_min            # (eq-sched-cosine-rec)
# [sched-cosine-end]


# [sched-sgdr-start]
def sgdr_position(step: int, *, T_0: int, T_mult: int = 1) -> Tuple[int, int]:
    """(T_cur, T_i): steps since the last restart, and the length of the current run."""
    T_cur, T_i = step, T_0
    while T_cur >= T_i:                                     # (eq-sched-sgdr-len)
        T_cur, T_i = T_cur - T_i, T_i * T_mult              # T_{i+1} = T_mult T_i
    return T_cur, T_i


def sgdr(step: int, *, base_lr: float, T_0: int, T_mult: int = 1,
         eta_min: float = 0.0) -> float:
    """Cosine annealing with warm restarts (SGDR): a cosine over each run."""
    T_cur, T_i = sgdr_position(step, T_0=T_0, T_mult=T_mult)
    return (eta_min + (base_lr - eta_min)                   # (eq-sched-sgdr)
            * (1 + math.cos(math.pi * T_cur / T_i)) / 2)
# [sched-sgdr-end]


def _anneal(start: float, end: float, pct: float, strategy: str) -> float:
    """From ``start`` (pct = 0) to ``end`` (pct = 1), along a half cosine or a line."""
    if strategy == "cos":
        return (end + (start - end) / 2.0                   # (eq-sched-anneal-cos)
                * (math.cos(math.pi * pct) + 1))
    return (end - start) * pct + start                      # (eq-sched-anneal-lin)


def _one_cycle_phases(total_steps: int, pct_start: float, three_phase: bool):
    """(end_step, start, end, start_momentum, end_momentum) of each phase; the names
    are 'initial', 'max', 'min' for the learning rate and 'max', 'base' for momentum."""
    first = float(pct_start * total_steps) - 1
    if three_phase:
        return [(first, "initial", "max", "max", "base"),
                (float(2 * pct_start * total_steps) - 2,
                 "max", "initial", "base", "max"),
                (total_steps - 1, "initial", "min", "max", "max")]
    return [(first, "initial", "max", "max", "base"),
            (total_steps - 1, "max", "min", "base", "max")]


# [sched-onecycle-start]
def one_cycle(step: int, *, max_lr: float, total_steps: int, pct_start: float = 0.3,
              anneal_strategy: str = "cos", div_factor: float = 25.0,
              final_div_factor: float = 1e4, three_phase: bool = False,
              base_momentum: float = 0.85,
              max_momentum: float = 0.95) -> Tuple[float, float]:
    """One-cycle policy: (learning rate, momentum) at ``step``; momentum moves opposite
    to the learning rate."""
    # the three rates
    lrs = {"initial": max_lr / div_factor, "max": max_lr}   # (eq-sched-onecycle)
    lrs["min"] = lrs["initial"] / final_div_factor
    momenta = {"max": max_momentum, "base": base_momentum}
    phases = _one_cycle_phases(total_steps, pct_start, three_phase)
    start_step = 0.0
    for i, (end_step, lr_a, lr_b, mom_a, mom_b) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            # position in the phase
            pct = (step - start_step) / (end_step - start_step)
            return (_anneal(lrs[lr_a], lrs[lr_b], pct,      # (eq-sched-onecycle)
                            anneal_strategy),
                    _anneal(momenta[mom_a], momenta[mom_b], pct, anneal_strategy))
        start_step = end_step
    raise AssertionError("unreachable")
# [sched-onecycle-end]


# [sched-cyclic-start]
def cyclic(step: int, *, base_lr: float, max_lr: float, step_size_up: int = 2000,
           step_size_down: Optional[int] = None, mode: str = "triangular",
           gamma: float = 1.0, base_momentum: float = 0.8,
           max_momentum: float = 0.9) -> Tuple[float, float]:
    """Cyclical learning rate (triangular, triangular2, exp_range): (lr, momentum)."""
    up = float(step_size_up)
    total = up + (float(step_size_down) if step_size_down is not None else up)
    cycle = math.floor(1 + step / total)            # (eq-sched-cyclic-cycle)
    x = 1.0 + step / total - cycle                  # position in the cycle, [0, 1)
    ratio = up / total
    # 0 -> 1 -> 0
    height = x / ratio if x <= ratio else (x - 1) / (ratio - 1)  # (eq-sched-cyclic-tri)
    if mode == "triangular":
        amplitude = 1.0                             # (eq-sched-cyclic) a = 1
    elif mode == "triangular2":
        amplitude = 1 / (2.0 ** (cycle - 1))        # (eq-sched-cyclic) a = 2^-(c-1)
    else:
        amplitude = gamma ** step                   # (eq-sched-cyclic) a = gamma^s
    lr = base_lr + (max_lr - base_lr) * height * amplitude  # (eq-sched-cyclic)
    momentum = max_momentum - (max_momentum - base_momentum) * height * amplitude
    return lr, momentum
# [sched-cyclic-end]


# [sched-warmup-cosine-start]
def warmup_cosine(step: int, *, base_lr: float, warmup_steps: int, total_steps: int,
                  start_factor: float = 0.01, eta_min: float = 0.0) -> float:
    """Linear warm-up for ``warmup_steps`` steps, then a cosine to ``eta_min`` at
    ``total_steps`` (the closed form of SequentialLR([LinearLR, CosineAnnealingLR]))."""
    if step < warmup_steps:
        return linear_warmup(step, base_lr=base_lr, start_factor=start_factor,
                             end_factor=1.0, total_iters=warmup_steps)
    return cosine(step - warmup_steps, base_lr=base_lr,
                  T_max=total_steps - warmup_steps, eta_min=eta_min)
# [sched-warmup-cosine-end]


# --------------------------------------------------------------------------------------
# Scheduler classes.
# --------------------------------------------------------------------------------------

def _set(group: Dict[str, Any], key: str, value: float) -> None:
    if isinstance(group[key], Tensor):
        group[key].fill_(value)
    else:
        group[key] = value


def _per_group(name: str, optimizer: Optimizer,
               value: Union[float, Sequence[float]]) -> List[float]:
    if isinstance(value, (list, tuple)):
        if len(value) != len(optimizer.param_groups):
            raise ValueError(f"Invalid {name}: {value!r} (needs one value per "
                             f"parameter group, {len(optimizer.param_groups)} groups)")
        return list(value)
    return [value] * len(optimizer.param_groups)


class Schedule:
    """Base class: sets ``group['initial_lr']`` (as torch does), keeps ``last_epoch``
    (the number of ``step()`` calls; torch's name), applies the first value on
    construction, and saves everything but the optimizer in ``state_dict``.

    Subclasses implement ``_initial_lrs()`` (the value set at construction),
    ``_next_lrs()`` (the value after ``last_epoch`` was incremented) and
    ``_restart_lrs()`` (the value at step 0 when a :class:`SequentialLR` hands over)."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply(self._initial_lrs())

    # the three hooks ---------------------------------------------------------------
    def _initial_lrs(self) -> List[float]:
        return self._current_lrs()

    def _next_lrs(self) -> List[float]:
        raise NotImplementedError

    def _restart_lrs(self) -> List[float]:
        return self._next_lrs()

    # machinery ---------------------------------------------------------------------
    def _current_lrs(self) -> List[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def _apply(self, lrs: List[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            _set(group, "lr", lr)
        self._last_lr = self._current_lrs()

    def step(self) -> None:
        """Advance one step (call it after ``optimizer.step()``)."""
        self.last_epoch += 1
        self._apply(self._next_lrs())

    def get_last_lr(self) -> List[float]:
        """The learning rates set by the latest ``step()`` (one per parameter group)."""
        return list(self._last_lr)

    def state_dict(self) -> Dict[str, Any]:
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.__dict__.update({key: (list(value) if isinstance(value, list) else value)
                              for key, value in state_dict.items()})


class LinearLR(Schedule):
    """Linear warm-up (twin of torch.optim.lr_scheduler.LinearLR)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5) -> None:
        _in_interval("start_factor", start_factor, 0.0, 1.0, low_open=True)
        _in_interval("end_factor", end_factor, 0.0, 1.0)
        _positive_int("total_iters", total_iters)
        self.start_factor, self.end_factor, self.total_iters = (
            start_factor, end_factor, total_iters)
        super().__init__(optimizer)

    def _initial_lrs(self):
        return [lr * self.start_factor for lr in self._current_lrs()]

    def _next_lrs(self):
        return [linear_warmup_recursive(lr, self.last_epoch,
                                        start_factor=self.start_factor,
                                        end_factor=self.end_factor,
                                        total_iters=self.total_iters)
                for lr in self._current_lrs()]

    def _restart_lrs(self):
        return [linear_warmup(self.last_epoch, base_lr=b,
                              start_factor=self.start_factor,
                              end_factor=self.end_factor, total_iters=self.total_iters)
                for b in self.base_lrs]


class StepLR(Schedule):
    """Step decay (twin of torch.optim.lr_scheduler.StepLR)."""

    def __init__(self, optimizer: Optimizer, step_size: int,
                 gamma: float = 0.1) -> None:
        _positive_int("step_size", step_size)
        _nonnegative("gamma", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def _next_lrs(self):
        return [step_decay_recursive(lr, self.last_epoch, step_size=self.step_size,
                                     gamma=self.gamma)
                for lr in self._current_lrs()]

    def _restart_lrs(self):
        return [step_decay(self.last_epoch, base_lr=b, step_size=self.step_size,
                           gamma=self.gamma)
                for b in self.base_lrs]


class CosineAnnealingLR(Schedule):
    """Cosine annealing (twin of torch.optim.lr_scheduler.CosineAnnealingLR: the same
    recursion, so the same bits; :func:`cosine` is the closed form)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        _positive_int("T_max", T_max)
        _nonnegative("eta_min", eta_min)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def _next_lrs(self):
        return [cosine_recursive(lr, self.last_epoch, base_lr=b, T_max=self.T_max,
                                 eta_min=self.eta_min)
                for lr, b in zip(self._current_lrs(), self.base_lrs)]

    def _restart_lrs(self):
        return [cosine(self.last_epoch, base_lr=b, T_max=self.T_max,
                       eta_min=self.eta_min)
                for b in self.base_lrs]


class CosineAnnealingWarmRestarts(Schedule):
    """SGDR (twin of torch.optim.lr_scheduler.CosineAnnealingWarmRestarts, stepped
    without an epoch argument)."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1,
                 eta_min: float = 0.0) -> None:
        _positive_int("T_0", T_0)
        _positive_int("T_mult", T_mult)
        _nonnegative("eta_min", eta_min)
        self.T_0, self.T_mult, self.eta_min = T_0, T_mult, eta_min
        super().__init__(optimizer)

    def _initial_lrs(self):
        return self._next_lrs()

    def _next_lrs(self):
        return [sgdr(self.last_epoch, base_lr=b, T_0=self.T_0, T_mult=self.T_mult,
                     eta_min=self.eta_min)
                for b in self.base_lrs]


class _MomentumCycling(Schedule):
    """Shared by one-cycle and cyclic: write momentum (SGD, RMSprop) or beta1 (Adam)."""

    def _init_momentum(self, optimizer, cycle_momentum, base_momentum,
                       max_momentum) -> None:
        self.cycle_momentum = cycle_momentum
        if not cycle_momentum:
            return
        if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError(f"Invalid cycle_momentum: True needs an optimizer with "
                             f"momentum or betas, and {type(optimizer).__name__} has "
                             f"neither")
        self.use_beta1 = "betas" in optimizer.defaults
        self.base_momentums = _per_group("base_momentum", optimizer, base_momentum)
        self.max_momentums = _per_group("max_momentum", optimizer, max_momentum)
        for group, top, bottom in zip(optimizer.param_groups, self.max_momentums,
                                      self.base_momentums):
            self._set_momentum(group, top)
            group["max_momentum"], group["base_momentum"] = top, bottom

    def _set_momentum(self, group, value) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _lr_and_momentum(self, group_index: int) -> Tuple[float, float]:
        raise NotImplementedError

    def _next_lrs(self):
        lrs = []
        for i, group in enumerate(self.optimizer.param_groups):
            lr, momentum = self._lr_and_momentum(i)
            lrs.append(lr)
            if self.cycle_momentum:
                self._set_momentum(group, momentum)
        return lrs

    def _initial_lrs(self):
        return self._next_lrs()


class OneCycleLR(_MomentumCycling):
    """One-cycle policy (twin of torch.optim.lr_scheduler.OneCycleLR)."""

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: Optional[int] = None,
                 epochs: Optional[int] = None, steps_per_epoch: Optional[int] = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("Invalid total_steps: None (give total_steps, or "
                                 "epochs and steps_per_epoch)")
            _positive_int("epochs", epochs)
            _positive_int("steps_per_epoch", steps_per_epoch)
            total_steps = epochs * steps_per_epoch
        _positive_int("total_steps", total_steps)
        if not isinstance(pct_start, float):
            raise ValueError(f"Invalid pct_start: {pct_start!r} "
                             "(must be a float in [0, 1])")
        _in_interval("pct_start", pct_start, 0.0, 1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"Invalid anneal_strategy: {anneal_strategy!r} "
                             "(must be 'cos' or 'linear')")
        _in_interval("div_factor", div_factor, 0.0, math.inf, low_open=True)
        _in_interval("final_div_factor", final_div_factor, 0.0, math.inf, low_open=True)
        self.total_steps, self.pct_start, self.anneal_strategy = (
            total_steps, pct_start, anneal_strategy)
        self.div_factor, self.final_div_factor, self.three_phase = (
            div_factor, final_div_factor, three_phase)
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        for group, top in zip(optimizer.param_groups, self.max_lrs):
            group["initial_lr"] = top / div_factor
            group["max_lr"] = top
            group["min_lr"] = group["initial_lr"] / final_div_factor
        self._init_momentum(optimizer, cycle_momentum, base_momentum, max_momentum)
        super().__init__(optimizer)

    def _lr_and_momentum(self, i):
        if self.last_epoch > self.total_steps:
            raise ValueError(f"Invalid step: {self.last_epoch} "
                             f"(more than total_steps={self.total_steps})")
        return one_cycle(
            self.last_epoch, max_lr=self.max_lrs[i], total_steps=self.total_steps,
            pct_start=self.pct_start, anneal_strategy=self.anneal_strategy,
            div_factor=self.div_factor, final_div_factor=self.final_div_factor,
            three_phase=self.three_phase,
            base_momentum=self.base_momentums[i] if self.cycle_momentum else 0.0,
            max_momentum=self.max_momentums[i] if self.cycle_momentum else 0.0)


class CyclicLR(_MomentumCycling):
    """Cyclical learning rates (twin of torch.optim.lr_scheduler.CyclicLR, built-in
    modes)."""

    def __init__(self, optimizer: Optimizer, base_lr, max_lr, step_size_up: int = 2000,
                 step_size_down: Optional[int] = None, mode: str = "triangular",
                 gamma: float = 1.0, cycle_momentum: bool = True, base_momentum=0.8,
                 max_momentum=0.9) -> None:
        _positive_int("step_size_up", step_size_up)
        if step_size_down is not None:
            _positive_int("step_size_down", step_size_down)
        if mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"Invalid mode: {mode!r} "
                             "(must be 'triangular', 'triangular2' or 'exp_range')")
        _in_interval("gamma", gamma, 0.0, 1.0, low_open=True)
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        for group, lr in zip(optimizer.param_groups, base_lrs):
            _set(group, "lr", lr)
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        self.step_size_up, self.step_size_down, self.mode, self.gamma = (
            step_size_up, step_size_down, mode, gamma)
        self._init_momentum(optimizer, cycle_momentum, base_momentum, max_momentum)
        super().__init__(optimizer)
        self.base_lrs = base_lrs

    def _lr_and_momentum(self, i):
        # before super().__init__ finishes, base_lrs is the groups' initial_lr; torch
        # uses the same values for the first step, since it wrote base_lr into
        # group['lr'] first
        return cyclic(
            self.last_epoch, base_lr=self.base_lrs[i], max_lr=self.max_lrs[i],
            step_size_up=self.step_size_up, step_size_down=self.step_size_down,
            mode=self.mode, gamma=self.gamma,
            base_momentum=self.base_momentums[i] if self.cycle_momentum else 0.0,
            max_momentum=self.max_momentums[i] if self.cycle_momentum else 0.0)


class SequentialLR(Schedule):
    """Run ``schedules[0]`` until ``milestones[0]``, then ``schedules[1]`` from its own
    step 0, and so on (twin of torch.optim.lr_scheduler.SequentialLR for the
    chainable schedules above, e.g. warm-up then cosine)."""

    def __init__(self, optimizer: Optimizer, schedules: Sequence[Schedule],
                 milestones: Sequence[int]) -> None:
        if len(schedules) < 1:
            raise ValueError("Invalid schedules: [] (needs at least one schedule)")
        if len(milestones) != len(schedules) - 1:
            raise ValueError(f"Invalid milestones: {list(milestones)!r} "
                             f"(needs {len(schedules) - 1} "
                             f"values for {len(schedules)} schedules)")
        if list(milestones) != sorted(milestones) or any(m <= 0 for m in milestones):
            raise ValueError(f"Invalid milestones: {list(milestones)!r} "
                             "(must be increasing and positive)")
        for s in schedules:
            if s.optimizer is not optimizer:
                raise ValueError(f"Invalid schedules: {type(s).__name__} "
                                 "drives another optimizer")
        self.optimizer = optimizer
        self._schedules = list(schedules)
        self._milestones = list(milestones)
        self.last_epoch = 0
        # undo what the schedules' constructors did
        for group in optimizer.param_groups:
            _set(group, "lr", group["initial_lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        first = self._schedules[0]
        first.last_epoch = 0
        first._apply(first._initial_lrs())
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        schedule = self._schedules[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            # hand over: the next schedule starts at its step 0
            schedule.last_epoch = 0
            schedule._apply(schedule._restart_lrs())
        else:
            schedule.step()
        self._last_lr = schedule.get_last_lr()

    def state_dict(self) -> Dict[str, Any]:
        state = {key: value for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedules")}
        state["_schedules"] = [s.state_dict() for s in self._schedules]
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        state = dict(state_dict)
        for schedule, sub in zip(self._schedules, state.pop("_schedules"), strict=True):
            schedule.load_state_dict(sub)
        super().load_state_dict(state)
