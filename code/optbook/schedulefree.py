"""Schedule-Free AdamW and SGD (Defazio et al., 2024, "The Road Less Scheduled"):
twins of ``schedulefree.AdamWScheduleFree`` and ``schedulefree.SGDScheduleFree``
(schedulefree 1.4.1), which torch.optim does not have.

Schedule-free learning replaces both momentum and the learning-rate schedule by
two averages.  Three sequences live side by side: z, the plain (Adam or SGD)
iterate; x, a weighted average of the z's, the point to evaluate and to ship; and
y, between the two, where the gradient is taken::

    y_t     = (1 - β1) z_t + β1 x_t                     (eq-sf-y)      interpolation
    g_t     = ∇f(y_t)
    γ_t     = γ min(1, t / T_warmup)                    (eq-sf-warmup)
    ĝ_t     = g_t / (√v̂_t + ε) + λ y_t                  (eq-sf-wd)     SGD: g_t + λ y_t
    z_{t+1} = z_t - γ_t ĝ_t                             (eq-sf-z)
    w_t     = t^r (max_{i≤t} γ_i)^p                     (eq-sf-w)      weights
    c_{t+1} = w_t / Σ_{i<=t} w_i
    x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}       (eq-sf-x)

with p = ``weight_lr_power``, v̂_t = v_t / (1 - β2^t) and v_t = β2 v_{t-1} +
(1 - β2) g_t², Adam's second moment (SGD: ĝ_t = g_t + λ y_t, β1 named
``momentum``).  With a constant γ, no warm-up and r = 0 every weight is the same,
c_{t+1} = 1/t, and x_{t+1} is the plain average of z_2, ..., z_{t+1} (x_1 = z_1 is
dropped at the first step, where c_2 = 1): Polyak-Ruppert averaging, computed
online, with the gradient taken at y instead of at x.

Only y and z are stored, as in schedulefree: the parameters hold y during training
(``optimizer.train()``) and x for evaluation (``optimizer.eval()``), and x is never a
tensor of its own.  Substituting x = (y - (1-β1) z) / β1 into (eq-sf-x) and
(eq-sf-y) gives the update of y used here::

    y_{t+1} = (1 - c) y_t + c z_t - (1 - β1 (1 - c)) γ_t ĝ_t.

The parameters must be switched between the two points by the user: call
``optimizer.train()`` before the first step (a step in eval mode raises, as
schedulefree's does) and ``optimizer.eval()`` before evaluating or saving.  A model
with BatchNorm keeps running statistics of the activations at y, not at x;
:func:`recompute_bn_stats` recomputes them at x.

Differences from schedulefree, none of them in the parameters or the state:

* ``p.grad`` is left as the gradient; schedulefree overwrites it with ĝ_t (the
  normalised gradient plus λy), "for memory efficiency".  The single-tensor path
  writes ĝ_t into the buffer of √v̂_t + ε instead, so its peak memory is
  schedulefree's (the multi-tensor path too, at the cost of one division kernel
  per tensor: foreach ops have no ``out=``).  ScheduleFreeSGD with weight decay
  needs one temporary per tensor for g + λy, which schedulefree adds into p.grad.
* Hyperparameters are validated (schedulefree's AdamW checks none).
* A step in eval mode raises ``RuntimeError`` (a subclass of the plain
  ``Exception`` schedulefree raises) with schedulefree's message.
* ``lr`` is a Python number (schedulefree's signature also admits a Tensor).

Differences between schedulefree's default class and the paper's Algorithm 1,
which ``schedulefree.AdamWScheduleFreePaper`` keeps: the paper folds the bias
correction into the step size, γ_t = γ √(1-β2^t) min(1, t/T_warmup), divides by
√v_t + ε and weights by γ_t²; the default class divides by √v̂_t + ε instead (the
paper's step with ε replaced by ε √(1-β2^t)) and weights by (max_{i<=t} γ_i)^p
without the √(1-β2^t) factor.  With a non-decreasing γ_t the max is γ_t itself.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Iterable, Optional, Tuple

import torch
from torch import Tensor

from .base import (
    ParamsT,
    TensorList,
    TwinOptimizer,
    check_lr,
    check_nonnegative,
    zeros_like,
)

__all__ = [
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "sf_step_scalars",
    "sf_adamw_update",
    "sf_adamw_foreach_update",
    "sf_sgd_update",
    "sf_sgd_foreach_update",
    "sf_eval_params_",
    "sf_train_params_",
    "recompute_bn_stats",
]

#: schedulefree's message for a step taken in eval mode.
NOT_IN_TRAIN_MODE = ("Optimizer was not in train mode when step is called. "
                     "Please insert .train() and .eval() calls on the "
                     "optimizer. See documentation for details.")


# ----------------------------------------------------------------------------------
# The update, op for op as schedulefree's (its single-tensor loop and its foreach code).
# ----------------------------------------------------------------------------------


# [sf-adamw-start]
def sf_step_scalars(
    k: int,
    *,
    lr: float,
    warmup_steps: float,
    r: float,
    weight_lr_power: float,
    lr_max: float,
    weight_sum: float,
) -> Tuple[float, float, float, float]:
    """The scalars of step t = k + 1: (γ_t, the new lr_max, the new Σw, c_{t+1})."""
    sched = (k + 1) / warmup_steps if k < warmup_steps else 1.0  # (eq-sf-warmup)
    lr_t = lr * sched                                            # γ_t = γ min(1, t/T)
    lr_max = max(lr_t, lr_max)                                   #       max_{i<=t} γ_i
    weight = ((k + 1) ** r) * (lr_max**weight_lr_power)          # (eq-sf-w) w_t
    weight_sum = weight_sum + weight                             #           Σ w_i
    ckp1 = weight / weight_sum if weight_sum != 0 else 0.0       # c_{t+1} = w_t / Σ w_i
    return lr_t, lr_max, weight_sum, ckp1


def sf_adamw_update(
    y: Tensor,
    grad: Tensor,
    z: Tensor,
    exp_avg_sq: Tensor,
    *,
    lr: float,
    ckp1: float,
    beta1: float,
    beta2: float,
    bias_correction2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """Schedule-free AdamW on one tensor: ``y`` (the parameter) and ``z`` in place."""
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v = β2 v + (1-β2) g²
    denom = exp_avg_sq.div(bias_correction2).sqrt_().add_(eps)     # √v̂_t + ε
    g_hat = torch.div(grad, denom, out=denom)                      # g_t / (√v̂_t + ε)
    if weight_decay != 0:
        g_hat.add_(y, alpha=weight_decay)                          # (eq-sf-wd)  + λ y_t
    # (eq-sf-x) and (eq-sf-y) in one: y <- (1-c) y + c z - (1 - β1(1-c)) γ ĝ
    y.lerp_(z, ckp1)
    y.add_(g_hat, alpha=lr * (beta1 * (1 - ckp1) - 1))
    z.sub_(g_hat, alpha=lr)                                        # (eq-sf-z) z - γ ĝ
# [sf-adamw-end]


def sf_adamw_foreach_update(
    ys: TensorList,
    grads: TensorList,
    zs: TensorList,
    exp_avg_sqs: TensorList,
    *,
    lr: float,
    ckp1: float,
    beta1: float,
    beta2: float,
    bias_correction2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """:func:`sf_adamw_update` on lists of tensors of one device and dtype."""
    torch._foreach_mul_(exp_avg_sqs, beta2)                            # v_t
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
    denom = torch._foreach_div(exp_avg_sqs, bias_correction2)          # √v̂_t + ε
    torch._foreach_sqrt_(denom)
    torch._foreach_add_(denom, eps)
    # g / (√v̂+ε), written into the buffer of √v̂+ε (p.grad is kept, and no second
    # buffer is allocated): one division per tensor, there being no foreach `out=`.
    for grad, d in zip(grads, denom):
        torch.div(grad, d, out=d)
    g_hat = denom
    if weight_decay != 0:
        torch._foreach_add_(g_hat, ys, alpha=weight_decay)             # (eq-sf-wd)
    # (eq-sf-x) and (eq-sf-y) in one: y <- (1-c) y + c z - (1 - β1(1-c)) γ ĝ
    torch._foreach_lerp_(ys, zs, weight=ckp1)
    torch._foreach_add_(ys, g_hat, alpha=lr * (beta1 * (1 - ckp1) - 1))
    torch._foreach_sub_(zs, g_hat, alpha=lr)                           # (eq-sf-z)


# [sf-sgd-start]
def sf_sgd_update(
    y: Tensor,
    grad: Tensor,
    z: Tensor,
    *,
    lr: float,
    ckp1: float,
    momentum: float,
    weight_decay: float,
) -> None:
    """Schedule-free SGD on one tensor (β1 is ``momentum``)."""
    if weight_decay != 0:
        grad = grad.add(y, alpha=weight_decay)                  # (eq-sf-wd) ĝ = g + λ y
    # (eq-sf-x) and (eq-sf-y) in one: y <- (1-c) y + c z - (1 - β1(1-c)) γ ĝ
    y.lerp_(z, ckp1)
    y.add_(grad, alpha=lr * (momentum * (1 - ckp1) - 1))
    z.sub_(grad, alpha=lr)                                      # (eq-sf-z) z <- z - γ ĝ
# [sf-sgd-end]


def sf_sgd_foreach_update(
    ys: TensorList,
    grads: TensorList,
    zs: TensorList,
    *,
    lr: float,
    ckp1: float,
    momentum: float,
    weight_decay: float,
) -> None:
    """:func:`sf_sgd_update` on lists of tensors of one device and dtype."""
    if weight_decay != 0:
        grads = torch._foreach_add(grads, ys, alpha=weight_decay)  # (eq-sf-wd)
    # (eq-sf-x) and (eq-sf-y) in one: y <- (1-c) y + c z - (1 - β1(1-c)) γ ĝ
    torch._foreach_lerp_(ys, zs, weight=ckp1)
    torch._foreach_add_(ys, grads, alpha=lr * (momentum * (1 - ckp1) - 1))
    torch._foreach_sub_(zs, grads, alpha=lr)                       # (eq-sf-z)


# [sf-eval-start]
def sf_eval_params_(y: Tensor, z: Tensor, beta1: float) -> Tensor:
    """y -> x in place: x = (y - (1-β1) z) / β1, as y + (1 - 1/β1)(z - y)."""
    return y.lerp_(z, 1 - 1 / beta1)                            # (eq-sf-y) solved for x


def sf_train_params_(x: Tensor, z: Tensor, beta1: float) -> Tensor:
    """x -> y in place: y = (1-β1) z + β1 x, as x + (1-β1)(z - x)."""
    return x.lerp_(z, 1 - beta1)                                # (eq-sf-y)
# [sf-eval-end]


@torch.no_grad()
def recompute_bn_stats(model: torch.nn.Module, batches: Iterable[Any],
                       forward: Optional[Callable[[Any], Any]] = None) -> int:
    """Recompute every BatchNorm layer's running mean and variance at the model's
    current parameters (call it after ``optimizer.eval()``, so at x): the running
    statistics are reset, then ``batches`` are passed through the model in train
    mode with a cumulative average (``momentum=None``).  The model is left in eval
    mode with each layer's momentum restored.  ``forward(batch)`` runs the model on
    a batch (default ``model(batch)``).  Returns the number of layers reset."""
    layers = [m for m in model.modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
              and m.track_running_stats]
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # the plain average over the batches given
    model.train()
    try:
        for batch in batches:
            forward(batch) if forward is not None else model(batch)
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.eval()
    return len(layers)


# ----------------------------------------------------------------------------------
# The classes: schedulefree's constructors, defaults, group keys, state and modes.
# ----------------------------------------------------------------------------------


def _check_real(name: str, value: Any) -> None:
    """A non-negative real number (not a bool, not a Tensor)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"Invalid {name} value: {value}")


class _ScheduleFree(TwinOptimizer):
    """What the two schedule-free optimizers share: the group-level scalars
    (step counter k, Σw, lr_max), the train/eval switch and the step loop.

    k, Σw and lr_max live in the parameter groups, as in schedulefree, so that its
    state_dicts and optbook's load into each other."""

    supports_foreach = True
    _optional_group_keys = ("scheduled_lr",)  # written for logging, never read
    _scalar_state = ()

    def _beta1(self, group: dict) -> float:
        """β1: ``betas[0]`` (AdamW) or ``momentum`` (SGD)."""
        raise NotImplementedError

    # torch.compile of this update would bake c_{t+1} and γ_t, new at every step,
    # into the compiled code and recompile at every step: compile_step is refused.
    @property
    def _compile_options(self) -> None:
        return None

    @_compile_options.setter
    def _compile_options(self, value: Any) -> None:
        raise TypeError(f"compile_step does not support optbook.{type(self).__name__}: "
                        "its per-step scalars c and γ_t would recompile every step")

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["z"] = torch.clone(param, memory_format=torch.preserve_format)

    @torch.no_grad()
    def eval(self) -> None:
        """Parameters to x, the average (to evaluate, or before saving a checkpoint)."""
        for group in self.param_groups:
            if group["train_mode"]:
                beta1 = self._beta1(group)
                for param in group["params"]:
                    state = self.state[param]  # (creates empty entries, as theirs)
                    if "z" in state:
                        sf_eval_params_(param, state["z"].to(param.device), beta1)
                group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        """Parameters to y, where the gradients are taken (call before stepping)."""
        for group in self.param_groups:
            if not group["train_mode"]:
                beta1 = self._beta1(group)
                for param in group["params"]:
                    state = self.state[param]
                    if "z" in state:
                        sf_train_params_(param, state["z"].to(param.device), beta1)
                group["train_mode"] = True

    def _advance(self, group: dict) -> Tuple[float, float]:
        """The group's scalars for this step (γ_t, c_{t+1}); Σw and lr_max updated."""
        lr_t, lr_max, weight_sum, ckp1 = sf_step_scalars(
            group["k"], lr=group["lr"], warmup_steps=group["warmup_steps"],
            r=group["r"], weight_lr_power=group["weight_lr_power"],
            lr_max=group["lr_max"], weight_sum=group["weight_sum"])
        group["scheduled_lr"] = lr_t  # for logging, as schedulefree
        group["lr_max"], group["weight_sum"] = lr_max, weight_sum
        return lr_t, ckp1

    def _sf_update(self, group: dict, params: list, grads: list, states: list,
                   lr: float, ckp1: float, foreach: bool) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One step at y; the parameters must be in train mode (:meth:`train`)."""
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError(NOT_IN_TRAIN_MODE)
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, ckp1 = self._advance(group)  # even without gradients, as schedulefree
            params, grads, states = self._collect(group)
            if params:
                if self._use_foreach(group, params):
                    buckets = torch.optim.Optimizer._group_tensors_by_device_and_dtype(
                        [params, grads], with_indices=True)
                    for (bucket_params, bucket_grads), indices in buckets.values():
                        self._sf_update(group, bucket_params, bucket_grads,
                                        [states[i] for i in indices], lr, ckp1, True)
                else:
                    self._sf_update(group, params, grads, states, lr, ckp1, False)
            group["k"] = group["k"] + 1
        return loss


class ScheduleFreeAdamW(_ScheduleFree):
    """Schedule-free AdamW (Defazio et al., 2024).  Twin of
    ``schedulefree.AdamWScheduleFree``: same constructor and defaults, parameter-group
    keys (``k``, ``train_mode``, ``weight_sum``, ``lr_max``, ``scheduled_lr``, ...) and
    state (``z``, ``exp_avg_sq``).  ``foreach`` defaults to True, as schedulefree's;
    None picks torch's default (multi-tensor on CUDA, the loop on the CPU).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 0.0025,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: Optional[bool] = hasattr(torch, "_foreach_mul_"),
    ) -> None:
        _check_sf_lr(lr)
        check_nonnegative("eps", eps)
        _check_sf_betas(betas)
        check_nonnegative("weight_decay", weight_decay)
        _check_schedule(warmup_steps, r, weight_lr_power)
        defaults = dict(lr=lr, betas=betas, eps=eps, r=r, k=0,
                        warmup_steps=warmup_steps, train_mode=False, weight_sum=0.0,
                        lr_max=-1.0, scheduled_lr=0.0, weight_lr_power=weight_lr_power,
                        weight_decay=weight_decay, foreach=foreach)
        super().__init__(params, defaults)

    def _beta1(self, group: dict) -> float:
        return group["betas"][0]

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        super()._init_state(param, state, group)
        state["exp_avg_sq"] = zeros_like(param)

    def _sf_update(self, group: dict, params: list, grads: list, states: list,
                   lr: float, ckp1: float, foreach: bool) -> None:
        beta1, beta2 = group["betas"]
        scalars = dict(lr=lr, ckp1=ckp1, beta1=beta1, beta2=beta2,
                       bias_correction2=1 - beta2 ** (group["k"] + 1),
                       eps=group["eps"], weight_decay=group["weight_decay"])
        if foreach:
            sf_adamw_foreach_update(params, grads, [s["z"] for s in states],
                                    [s["exp_avg_sq"] for s in states], **scalars)
        else:
            for y, grad, state in zip(params, grads, states):
                sf_adamw_update(y, grad, state["z"], state["exp_avg_sq"], **scalars)


class ScheduleFreeSGD(_ScheduleFree):
    """Schedule-free SGD (Defazio et al., 2024).  Twin of
    ``schedulefree.SGDScheduleFree`` (state ``z``; β1 is named ``momentum`` and must
    lie in (0, 1), as there)."""

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2,
        foreach: Optional[bool] = hasattr(torch, "_foreach_mul_"),
    ) -> None:
        _check_sf_lr(lr)
        check_nonnegative("weight_decay", weight_decay)
        if not 0 < momentum < 1:  # schedulefree's rule and words
            raise ValueError(f"Momentum must be between 0 and 1 exclusive: {momentum}")
        _check_schedule(warmup_steps, r, weight_lr_power)
        defaults = dict(lr=lr, momentum=momentum, r=r, k=0, warmup_steps=warmup_steps,
                        train_mode=False, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0,
                        weight_lr_power=weight_lr_power, weight_decay=weight_decay,
                        foreach=foreach)
        super().__init__(params, defaults)

    def _beta1(self, group: dict) -> float:
        return group["momentum"]

    def _sf_update(self, group: dict, params: list, grads: list, states: list,
                   lr: float, ckp1: float, foreach: bool) -> None:
        scalars = dict(lr=lr, ckp1=ckp1, momentum=group["momentum"],
                       weight_decay=group["weight_decay"])
        if foreach:
            sf_sgd_foreach_update(params, grads, [s["z"] for s in states], **scalars)
        else:
            for y, grad, state in zip(params, grads, states):
                sf_sgd_update(y, grad, state["z"], **scalars)


def _check_sf_lr(lr: Any) -> None:
    if isinstance(lr, Tensor):
        raise ValueError(f"Invalid learning rate: {lr} (optbook's schedule-free "
                         "optimizers take lr as a Python number)")
    check_lr(lr)


def _check_sf_betas(betas: Any) -> None:
    """β1 in (0, 1): eval() divides by β1 (β1 = 0 would lose x, since y = z); β2 in
    [0, 1).  torch's words, with the reason where torch's range is not the rule."""
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (two coefficients, (beta1, beta2))")
    beta1, beta2 = betas
    if not 0.0 < beta1 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {beta1} (schedule-free "
                         "needs 0 < beta1 < 1: eval() divides by beta1)")
    if not 0.0 <= beta2 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {beta2}")


def _check_schedule(warmup_steps: Any, r: Any, weight_lr_power: Any) -> None:
    _check_real("warmup_steps", warmup_steps)
    _check_real("r", r)
    _check_real("weight_lr_power", weight_lr_power)
