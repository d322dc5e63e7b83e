"""Drop-in twins of torch.optim's SGD, Adagrad, RMSprop, Adam and AdamW.

Each class has its torch.optim twin's constructor signature, defaults, validation
rules, ``param_groups`` keys and state names, so a ``state_dict`` saved by one loads
into the other.  The arithmetic is in :mod:`optbook.functional`; this module only
connects it to :class:`optbook.base.TwinOptimizer`.

Two code paths per class, as in torch.optim: the single-tensor loop
(:mod:`optbook.functional`, ``foreach=False``) and the multi-tensor one
(:mod:`optbook.foreach`, ``foreach=True``).  ``foreach=None`` (the default) picks what
torch.optim picks (:func:`optbook.base.default_to_foreach`): multi-tensor when every
parameter is on CUDA, single-tensor on the CPU.  :func:`optbook.compile_step` adds a
third, compiled path.  Flags for code paths optbook does not implement (``fused``,
``capturable``, ``differentiable``) are accepted in the signature for compatibility and
rejected with a ``ValueError`` when set, never silently ignored.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from .base import (
    ParamsT,
    TwinOptimizer,
    as_real,
    check_betas,
    check_lr,
    check_nonnegative,
    check_supported_flags,
    check_tensor_hyper_with_foreach,
    increment_steps,
    new_step_counter,
    scalar_tensor,
    to_scalar,
    zeros_like,
)
from .foreach import (
    adagrad_foreach_update,
    adam_foreach_apply,
    adam_foreach_update,
    adam_step_scalars,
    rmsprop_foreach_update,
    sgd_foreach_update,
)
from .functional import adagrad_update, adam_update, rmsprop_update, sgd_update

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


class SGD(TwinOptimizer):
    """Stochastic gradient descent with heavy-ball or Nesterov momentum.

    Twin of :class:`torch.optim.SGD`.  State: ``momentum_buffer`` (only when
    ``momentum != 0``), initialised to the first gradient, as in torch.
    """

    supports_foreach = True

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: Union[float, Tensor] = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        check_lr(lr)
        check_nonnegative("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                f"Invalid nesterov: True needs momentum > 0 and dampening == 0, "
                f"got momentum={momentum!r}, dampening={dampening!r}"
            )
        check_supported_flags(differentiable=differentiable, fused=fused)
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach,
            differentiable=differentiable, fused=fused,
        )
        super().__init__(params, defaults)

    def _needs_state(self, group: dict) -> bool:
        return group["momentum"] != 0

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["momentum_buffer"] = None  # created from the first gradient

    def _update(self, param: Tensor, grad: Tensor, state: Optional[dict], group: dict) -> None:
        # Unlike the adaptive methods, torch's SGD updates complex tensors with complex
        # arithmetic (no real view), and so do we: the two are not bitwise equal.
        buf = None if state is None else state["momentum_buffer"]
        new_buf = sgd_update(
            param, grad, buf,
            lr=to_scalar(group["lr"]), momentum=group["momentum"],
            dampening=group["dampening"], nesterov=group["nesterov"],
            weight_decay=group["weight_decay"],
        )
        if state is not None:
            state["momentum_buffer"] = new_buf

    def _foreach_update(self, group: dict, params: list, grads: list, states: list) -> None:
        momentum = group["momentum"]
        bufs = [s["momentum_buffer"] for s in states] if momentum != 0 else []
        real_views = self.compiled and torch.is_complex(params[0])
        if real_views:
            # TorchInductor cannot compile SGD's complex arithmetic (torch 2.15).  With a
            # real lr, momentum and weight decay the update treats the real and imaginary
            # parts alike, so the compiled code runs on real views instead.
            params, grads, bufs = ([as_real(t) for t in ts] for ts in (params, grads, bufs))
        new_bufs = self._functional(sgd_foreach_update)(
            params, grads, bufs,
            lr=to_scalar(group["lr"]), momentum=momentum, dampening=group["dampening"],
            nesterov=group["nesterov"], weight_decay=group["weight_decay"],
        )
        if momentum != 0:
            for state, buf in zip(states, new_bufs):
                state["momentum_buffer"] = torch.view_as_complex(buf) if real_views else buf


class Adagrad(TwinOptimizer):
    """AdaGrad (Duchi, Hazan & Singer, 2011).  Twin of :class:`torch.optim.Adagrad`.

    State: ``step`` and ``sum``.  Like torch, the state is created for every
    parameter in the constructor, with the constructor's
    ``initial_accumulator_value``.
    """

    supports_foreach = True

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        check_lr(lr)
        check_nonnegative("lr_decay", lr_decay)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("initial_accumulator_value", initial_accumulator_value)
        check_nonnegative("eps", eps)
        check_supported_flags(differentiable=differentiable, fused=fused)
        defaults = dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(param, self.state[param], group)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        value = self.defaults["initial_accumulator_value"]
        if torch.is_complex(param):
            value = complex(value, value)
        state["step"] = new_step_counter()
        state["sum"] = torch.full_like(param, value, memory_format=torch.preserve_format)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        adagrad_update(
            param, grad, as_real(state["sum"]), state["step"].item(),
            lr=to_scalar(group["lr"]), lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"], eps=group["eps"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list, states: list) -> None:
        steps = [s["step"] for s in states]
        increment_steps(steps)
        self._functional(adagrad_foreach_update)(
            params, grads, [s["sum"] for s in states], steps,
            lr=to_scalar(group["lr"]), lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"], eps=group["eps"],
        )


class RMSprop(TwinOptimizer):
    """RMSProp (Tieleman & Hinton, 2012).  Twin of :class:`torch.optim.RMSprop`.

    State: ``step``, ``square_avg``, plus ``momentum_buffer`` if ``momentum > 0``
    and ``grad_avg`` if ``centered``.
    """

    supports_foreach = True

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        check_nonnegative("momentum", momentum)
        check_nonnegative("weight_decay", weight_decay)
        check_nonnegative("alpha", alpha)  # torch.optim accepts alpha >= 1, and so do we
        check_supported_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, capturable=capturable, foreach=foreach,
            maximize=maximize, differentiable=differentiable,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["square_avg"] = zeros_like(param)
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        rmsprop_update(
            param, grad, as_real(state["square_avg"]),
            as_real(state.get("grad_avg")), as_real(state.get("momentum_buffer")),
            lr=to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=group["momentum"],
            centered=group["centered"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list, states: list) -> None:
        increment_steps([s["step"] for s in states])  # RMSprop counts steps but never reads them
        momentum, centered = group["momentum"], group["centered"]
        self._functional(rmsprop_foreach_update)(
            params, grads, [s["square_avg"] for s in states],
            [s["grad_avg"] for s in states] if centered else None,
            [s["momentum_buffer"] for s in states] if momentum > 0 else None,
            lr=to_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
            weight_decay=group["weight_decay"], momentum=momentum, centered=centered,
        )


class Adam(TwinOptimizer):
    """Adam (Kingma & Ba, 2015), with AMSGrad (Reddi et al., 2018) and decoupled
    weight decay (Loshchilov & Hutter, 2019) as options.  Twin of
    :class:`torch.optim.Adam`.

    State: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), plus ``max_exp_avg_sq``
    if ``amsgrad``.

    As in torch, a Tensor ``lr`` keeps ``foreach=None`` on the single-tensor path,
    and is refused with ``foreach=True`` (torch needs ``capturable=True`` for it).
    """

    supports_foreach = True

    def _foreach_by_default(self, group: dict) -> bool:
        return not torch.is_tensor(group["lr"])

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        betas: Tuple[Union[float, Tensor], Union[float, Tensor]] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_lr(lr)
        check_nonnegative("eps", eps)
        check_betas(betas)
        check_nonnegative("weight_decay", weight_decay)
        check_tensor_hyper_with_foreach(foreach, lr=lr, **{"betas[0]": betas[0], "betas[1]": betas[1]})
        check_supported_flags(capturable=capturable, differentiable=differentiable, fused=fused)
        defaults = dict(
            lr=lr, betas=(to_scalar(betas[0]), to_scalar(betas[1])), eps=eps,
            weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize, foreach=foreach,
            capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        state["step"] = new_step_counter()
        state["exp_avg"] = zeros_like(param)
        state["exp_avg_sq"] = zeros_like(param)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_like(param)

    def _update(self, param: Tensor, grad: Tensor, state: dict, group: dict) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        adam_update(
            param, grad, as_real(state["exp_avg"]),
            as_real(state["exp_avg_sq"]), as_real(state.get("max_exp_avg_sq")),
            state["step"].item(),
            lr=to_scalar(group["lr"]), beta1=to_scalar(beta1), beta2=to_scalar(beta2),
            eps=group["eps"], weight_decay=group["weight_decay"], amsgrad=group["amsgrad"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
        )

    def _foreach_update(self, group: dict, params: list, grads: list, states: list) -> None:
        lr = to_scalar(group["lr"])
        if torch.is_tensor(lr) and not self.compiled:
            raise RuntimeError("lr as a Tensor is not supported for foreach=True in optbook.Adam, "
                               "as in torch.optim.Adam without capturable=True; use a float lr")
        steps = [s["step"] for s in states]
        increment_steps(steps)
        amsgrad = group["amsgrad"]
        beta1, beta2 = group["betas"]
        buffers = (params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                   [s["max_exp_avg_sq"] for s in states] if amsgrad else None)
        hyper = dict(eps=group["eps"], weight_decay=group["weight_decay"], amsgrad=amsgrad,
                     decoupled_weight_decay=group["decoupled_weight_decay"])
        if not self.compiled:
            adam_foreach_update(*buffers, steps, lr=lr, beta1=beta1, beta2=beta2, **hyper)
            return
        # Compiled: the per-tensor scalars (β^t needs a pow) eagerly, once per tensor, as
        # in the eager path; the elementwise part compiled, with the scalars as inputs.
        lr, beta1, beta2 = (x.item() if torch.is_tensor(x) else x for x in (lr, beta1, beta2))
        step_sizes, bias_correction2_sqrt = adam_step_scalars(steps, lr=lr, beta1=beta1, beta2=beta2)
        device = params[0].device
        self._functional(adam_foreach_apply)(
            *buffers, scalar_tensor(step_sizes, device), scalar_tensor(bias_correction2_sqrt, device),
            lr=lr, beta1=beta1, beta2=beta2, **hyper,
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019).

    Twin of :class:`torch.optim.AdamW`: ``Adam(..., decoupled_weight_decay=True)``
    with a default ``weight_decay`` of 1e-2.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: Union[float, Tensor] = 1e-3,
        betas: Tuple[Union[float, Tensor], Union[float, Tensor]] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
            capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=True,
        )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
