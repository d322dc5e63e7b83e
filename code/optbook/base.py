"""Plumbing shared by every optbook optimizer, written once.

An optbook optimizer is two things:

* a *pure functional update* for one tensor (e.g. ``adam_update`` in
  :mod:`optbook.adam`), which is what the chapters display and annotate, and
* a thin :class:`torch.optim.Optimizer` subclass that validates hyperparameters,
  walks the parameter groups, creates state lazily, applies ``maximize`` and hands
  each parameter to the functional update.

The second part is identical for every algorithm, so it lives here in
:class:`TwinOptimizer`.  Subclasses only say which state a parameter needs
(:meth:`TwinOptimizer._init_state`) and how to call their functional update
(:meth:`TwinOptimizer._update` for one tensor, and, for the multi-tensor path of
the module's ``*_foreach_update``, :meth:`TwinOptimizer._foreach_update` for a list of
tensors of one device and dtype).

Three code paths, chosen per parameter group at every step:

* **single-tensor** (``foreach=False``, and the default on the CPU): a Python loop
  over the parameters, one functional update each;
* **multi-tensor** (``foreach=True``, and the default when every parameter is on a
  CUDA (or other native foreach) device): the parameters are bucketed by device and
  dtype, and each bucket is updated by ``torch._foreach_*`` operations, one kernel
  launch per operation for the whole bucket instead of one per tensor;
* **compiled** (opt in with :func:`compile_step`): the multi-tensor update, compiled
  by ``torch.compile`` so that its operations are fused into one pass over memory.

Complex parameters: torch's adaptive methods update them through
``torch.view_as_real`` views, i.e. as pairs of real numbers.  :func:`as_real` makes
those views; the state buffers are passed as views, and the functional updates view
the parameter and gradient as real right after weight decay, exactly where torch
does (SGD keeps complex arithmetic throughout, as torch's does).
"""

from __future__ import annotations

import types
from typing import Any, Callable, Iterable, List, Optional, Sequence, Union

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.utils._foreach_utils import _get_foreach_kernels_supported_devices

__all__ = [
    "Scalar",
    "TensorList",
    "TwinOptimizer",
    "compile_step",
    "default_to_foreach",
    "as_real",
    "check_nonnegative",
    "check_unit_interval",
    "check_lr",
    "check_beta",
    "check_betas",
    "check_betas_in_unit_interval",
    "check_adam_hyper",
    "check_one_element",
    "invalid",
    "IncompatibleStateDict",
    "scalar_dtype",
    "scalar_tensor",
    "to_scalar",
    "ascent_and_l2",
    "foreach_addcdiv_",
]

#: A hyperparameter that may be a Python number or a 0-d tensor.
Scalar = Union[float, Tensor]
TensorList = List[Tensor]


# ----------------------------------------------------------------------------------
# Validation: every rule raises ValueError naming the parameter and the value, in
# torch.optim's own words (its messages, e.g. "Invalid learning rate: -0.1", are what
# torch's test-suite and users' code match); where torch's message names no value,
# optbook appends one in parentheses.  Rules run in torch's order, so an input with
# two faults gets the message torch gives.
# ----------------------------------------------------------------------------------

#: How torch.optim names a hyperparameter in "Invalid <label>: <value>".
_LABELS = {"lr": "learning rate", "eps": "epsilon value"}


def _is_tensor(x: Any) -> bool:
    return isinstance(x, Tensor)


def _number(x: Any) -> Any:
    """The value to compare: a Python number, or a 1-element tensor's item."""
    return x.item() if _is_tensor(x) else x


def invalid(name: str, value: Any) -> ValueError:
    """torch.optim's message for a hyperparameter out of range, e.g.
    ``Invalid learning rate: -0.1`` or ``Invalid momentum value: -0.5``."""
    return ValueError(f"Invalid {_LABELS.get(name, name + ' value')}: {value}")


def check_nonnegative(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value >= 0`` (NaN is rejected too)."""
    if not 0.0 <= _number(value):
        raise invalid(name, value)


def check_unit_interval(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1`` (an EWMA coefficient)."""
    if not 0.0 <= _number(value) < 1.0:
        raise invalid(name, value)


def check_one_element(name: str, value: Any) -> None:
    """A hyperparameter given as a Tensor must hold one number."""
    if _is_tensor(value) and value.numel() != 1:
        raise ValueError(f"Tensor {name} must be 1-element "
                         f"(got shape {tuple(value.shape)})")


def check_lr(lr: Any) -> None:
    """The learning rate: a non-negative float or a 1-element tensor."""
    check_one_element("lr", lr)
    check_nonnegative("lr", lr)


def check_beta(index: int, beta: Any) -> None:
    """``betas[index]`` in [0, 1): torch's "Invalid beta parameter at index i"."""
    check_one_element(f"betas[{index}]", beta)
    if not 0.0 <= _number(beta) < 1.0:
        raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


def check_betas_in_unit_interval(betas: Any) -> None:
    """torch.optim's rule for NAdam, RAdam and Adamax: each beta in [0, 1)
    (unlike Adam's, ints are accepted)."""
    for index in (0, 1):
        check_beta(index, betas[index])


def check_betas_alike(betas: Any) -> None:
    """torch.optim.Adam's rule: two floats or two Tensors (so ``(0, 0)``, two ints,
    is refused)."""
    b1, b2 = betas
    if not ((isinstance(b1, float) and isinstance(b2, float))
            or (_is_tensor(b1) and _is_tensor(b2))):
        raise ValueError(f"betas must be either both floats or both Tensors "
                         f"(got betas={betas!r})")


def check_adam_hyper(lr: Any, betas: Any, eps: Any, weight_decay: Any,
                     foreach: Optional[bool], capturable: bool) -> None:
    """torch.optim.Adam's checks, in its order.  A Tensor ``lr`` or beta on the
    foreach path needs ``capturable=True`` in torch; optbook refuses capturable
    itself afterwards (:func:`check_supported_flags`)."""
    tensor_foreach = bool(foreach) and not capturable
    if _is_tensor(lr) and tensor_foreach:
        raise ValueError("lr as a Tensor is not supported for capturable=False and "
                         "foreach=True")
    check_lr(lr)
    check_nonnegative("eps", eps)
    check_betas_in_unit_interval(betas)
    check_nonnegative("weight_decay", weight_decay)
    check_betas_alike(betas)
    for index in (0, 1):
        if _is_tensor(betas[index]) and tensor_foreach:
            raise ValueError(f"betas[{index}] as a Tensor is not supported for "
                             "capturable=False and foreach=True")


def check_betas(betas: Any) -> None:
    """Adam's ``betas``: two floats (or two 1-element tensors), each in [0, 1)."""
    check_betas_in_unit_interval(betas)
    check_betas_alike(betas)


def check_supported_flags(**flags: Any) -> None:
    """Reject torch.optim flags whose code path optbook does not implement.

    optbook implements the single-tensor and the multi-tensor (``foreach``) paths,
    plus a compiled one (:func:`compile_step`); ``fused``, ``capturable`` and
    ``differentiable`` are refused rather than silently ignored.
    """
    for name, value in flags.items():
        if value:
            raise ValueError(
                f"Invalid {name}: {value!r} (optbook implements the single-tensor and "
                f"foreach paths; use {name}=None/False, or torch.optim for this path)"
            )


# ----------------------------------------------------------------------------------
# Helpers that mirror torch.optim's own conventions.
# ----------------------------------------------------------------------------------


def scalar_dtype() -> torch.dtype:
    """dtype of ``state["step"]``: float64 when it is the default dtype, else float32.

    This is torch.optim's convention; matching it keeps state_dicts interchangeable.
    """
    return (torch.float64 if torch.get_default_dtype() == torch.float64
            else torch.float32)


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


def as_real_list(tensors: Optional[Sequence[Tensor]]) -> Optional[TensorList]:
    """Real views of a list's complex tensors (pairs of floats); others unchanged."""
    return None if tensors is None else [as_real(t) for t in tensors]


def step_value(step: Tensor) -> Scalar:
    """The step number t: a Python float (one ``.item()``, as torch does), or under
    ``torch.compile`` a 0-d tensor, so the graph is not specialised on t.  In float64,
    like the Python float: β^t and 1 - β^t computed from a float32 counter would
    lose the precision of a float64 parameter.  torch's ``_get_value`` does the same;
    one ``.item()`` per parameter would break the compiled graph once per parameter.
    Also used for other 0-d state (NAdam's ``mu_product``)."""
    return step.to(torch.float64) if torch.compiler.is_compiling() else step.item()


def foreach_addcdiv_(params: TensorList, numerators: TensorList,
                     denominators: TensorList, scalars: Sequence[Scalar]) -> None:
    """θ_i += s_i · n_i / d_i with one scalar per tensor.  Eager, the scalars are
    Python numbers (the ScalarList overload, as torch); under ``torch.compile`` they
    are 0-d tensors (:func:`step_value`), multiplied into the numerators instead, since
    the Tensor-scalars overload fails in AOTAutograd ("Expected scalars to be on CPU,
    got meta", torch 2.15) and so under inductor."""
    if scalars and isinstance(scalars[0], Tensor):
        numerators = torch._foreach_mul(numerators, list(scalars))
        torch._foreach_addcdiv_(params, numerators, denominators)
    else:
        torch._foreach_addcdiv_(params, numerators, denominators, scalars)


def is_compiled_tensor_lr(lr: Scalar) -> bool:
    """A Tensor lr under torch.compile: use tensor arithmetic, never ``.item()``."""
    return isinstance(lr, Tensor) and torch.compiler.is_compiling()


def ascent_and_l2(grads: TensorList, params: TensorList, *, weight_decay: float,
                  maximize: bool) -> TensorList:
    """The gradients a multi-tensor update works on: -g for ``maximize`` (a copy),
    plus λθ for L2 weight decay, added into that copy when there is one (torch's
    order and torch's temporaries, so the peak memory is torch's too)."""
    if maximize:
        grads = torch._foreach_neg(grads)                      # ascent: -g
    if weight_decay != 0:
        if maximize:
            torch._foreach_add_(grads, params, alpha=weight_decay)       # (eq-l2)
        else:
            grads = torch._foreach_add(grads, params, alpha=weight_decay)  # (eq-l2)
    return grads


def default_to_foreach(params: list, differentiable: bool = False) -> bool:
    """torch.optim's default for ``foreach=None``: the multi-tensor path when every
    parameter is a plain tensor on a device with native ``_foreach_`` kernels
    (CUDA, XPU, MTIA, a PrivateUse1 backend) and the step is not differentiable.

    On the CPU the default is the single-tensor loop: there ``torch._foreach_*``
    operations are themselves a C++ loop over per-tensor kernels, so they save the
    Python overhead but not a pass over memory, and they give up the loop's cache
    reuse (the loop runs every line on one tensor while it is still in cache).
    ``python -m optbook.bench`` measures the difference.
    """
    if differentiable:
        return False
    devices = _get_foreach_kernels_supported_devices()
    return all(
        p is None or (type(p) in (Tensor, torch.nn.Parameter)
                      and p.device.type in devices)
        for p in params
    )


def scalar_tensor(values: Any, device: torch.device) -> Tensor:
    """Python numbers as a tensor on ``device`` (float64 where the device has it), to
    hand to compiled code as an input rather than as constants baked into it."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.tensor(values, dtype=dtype, device=device)


def increment_steps(steps: list) -> None:
    """t <- t + 1 for a list of step counters, as torch's multi-tensor path does it.

    CPU counters get the 1 as one CPU tensor (rather than a Python 1 wrapped into a
    tensor once per counter); the values are the same either way.
    """
    if steps[0].is_cpu:
        torch._foreach_add_(steps, torch.tensor(1.0, device="cpu"), alpha=1.0)
    else:
        torch._foreach_add_(steps, 1)


class IncompatibleStateDict(KeyError, ValueError):
    """A state_dict this optimizer cannot resume from (saved by another optimizer,
    or missing hyperparameters), raised by ``load_state_dict`` rather than by the
    next ``step``.  A ``KeyError``, as torch.optim raises where it notices at load
    (e.g. Adam given SGD's state: ``KeyError: 'step'``), and a ``ValueError``, like
    any other bad input to optbook."""

    def __str__(self) -> str:  # KeyError would print the message's repr
        return str(self.args[0]) if self.args else ""


class TwinOptimizer(Optimizer):
    """Base class: parameter groups, lazy state, ``maximize``, closures, code paths.

    Subclasses implement

    * ``_init_state(param, state, group)`` to create the per-parameter state the
      first time a parameter has a gradient (names as in torch.optim),
    * ``_update(param, grad, state, group)``, which calls the algorithm's functional
      update on one parameter, and, if ``supports_foreach``,
    * ``_foreach_update(group, params, grads, states)``, which calls the algorithm's
      multi-tensor update on lists of tensors that share one device and dtype.

    ``grad`` arrives already negated when ``maximize`` is set; ``grads`` do not (the
    multi-tensor update negates a copy itself, as torch's do, see ``maximize``).
    ``_needs_state(group)`` says whether the algorithm keeps per-parameter state at
    all for this group (plain SGD does not, and then torch.optim creates none).

    Which path a group takes at a step: ``foreach=True`` the multi-tensor one,
    ``foreach=False`` the single-tensor one, and ``foreach=None`` (the default)
    what torch.optim picks, :func:`default_to_foreach`: multi-tensor when all the
    group's parameters with a gradient are on CUDA (or another native foreach
    device), single-tensor on the CPU.  After :func:`compile_step` every group takes
    the compiled multi-tensor path.
    """

    #: Whether the subclass implements ``_foreach_update``.
    supports_foreach: bool = False
    #: Group keys torch.optim's ``__setstate__`` fills in, with its values, when a
    #: state_dict saved by an older torch lacks them (one table per class).
    _group_backfill: dict = {}
    #: Group keys that no step reads (a state_dict may lack them too).
    _optional_group_keys: tuple = ()
    #: 0-d state that an old state_dict may hold as a number (torch's ``__setstate__``
    #: makes it a tensor again).
    _scalar_state: tuple = ("step",)

    def _needs_state(self, group: dict) -> bool:
        return True

    # ------------------------------------------------------------------------------
    # Loading: what torch.optim's per-class __setstate__ does, in one place, plus
    # checks that make a mismatched state_dict fail at load_state_dict, not at step.
    # ------------------------------------------------------------------------------

    def __setstate__(self, state: dict) -> None:
        """Called by ``load_state_dict`` (and by unpickling) with the new state.

        Missing group keys are back-filled with torch's values
        (``_group_backfill``), a step saved as a number becomes a tensor with torch's
        dtype, and the result is checked: every hyperparameter the step reads is
        there, and every parameter's state has the keys this optimizer keeps.  On a
        failed check the optimizer keeps the state it had before the load.
        """
        before = {k: self.__dict__[k] for k in ("defaults", "state", "param_groups")
                  if k in self.__dict__}
        super().__setstate__(state)
        try:
            self._upgrade_loaded_state()
        except IncompatibleStateDict:
            self.__dict__.update(before)
            raise

    def _required_group_keys(self) -> set:
        # torch's Optimizer.__setstate__ adds "differentiable" to every defaults
        return (set(self.defaults) - set(self._group_backfill)
                - set(self._optional_group_keys) - {"differentiable"})

    def _fresh_state(self, param: Tensor, group: dict) -> dict:
        """The state ``_init_state`` would create (shape-only buffers, on "meta")."""
        state: dict = {}
        self._init_state(torch.empty(param.shape, dtype=param.dtype, device="meta"),
                         state, group)
        return state

    def _upgrade_loaded_state(self) -> None:
        problems = []
        for index, group in enumerate(self.param_groups):
            for key, value in self._group_backfill.items():
                group.setdefault(key, value)
            missing = sorted(self._required_group_keys() - set(group))
            if missing:
                problems.append(f"parameter group {index} lacks {missing}")
        position, state_told = -1, False
        for group in self.param_groups:
            for param in group["params"]:
                position += 1
                state = self.state.get(param)
                if not state:
                    continue  # no state yet: created lazily at the next step
                try:
                    fresh = (self._fresh_state(param, group)
                             if self._needs_state(group) else None)
                except KeyError:  # the group lacks what these read: told above
                    fresh = {}
                if fresh is not None:
                    missing = sorted(k for k, v in fresh.items()
                                     if v is not None and k not in state)
                    if missing and not state_told:  # the first such parameter
                        state_told = True
                        problems.append(
                            f"the state of parameter {position} lacks {missing} (it "
                            f"has {sorted(state)})")
                    for key, value in fresh.items():  # None: created at the step
                        if value is None:
                            state.setdefault(key, None)
                for key in self._scalar_state:
                    if key in state and not torch.is_tensor(state[key]):
                        state[key] = _loaded_scalar(state[key], param, group)
        if problems:
            name = f"optbook.{type(self).__name__}"
            raise IncompatibleStateDict(
                f"{name}.load_state_dict: {'; '.join(problems)}; {name} needs them at "
                "every step: was this state_dict saved by another optimizer?")

    def _init_state(self, param: Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _update(self, param: Tensor, grad: Tensor, state: Optional[dict],
                group: dict) -> None:
        raise NotImplementedError

    def _foreach_update(self, group: dict, params: list, grads: list,
                        states: list) -> None:
        raise NotImplementedError

    def _foreach_by_default(self, group: dict) -> bool:
        """Extra condition for ``foreach=None`` to pick the multi-tensor path."""
        return True

    @property
    def compiled(self) -> bool:
        """Whether :func:`compile_step` switched this optimizer to the compiled path."""
        return getattr(self, "_compile_options", None) is not None

    def _functional(self, update: Callable) -> Callable:
        """``update`` itself, or its ``torch.compile``-d version after
        :func:`compile_step`.

        Each (parameter group, device, dtype) bucket gets its own compiled copy:
        dynamo keeps its cache, and its limit of 8 recompilations, per code object,
        so a copy per bucket keeps one optimizer's buckets (or several optimizers in
        one process) from using up each other's budget.
        """
        options = getattr(self, "_compile_options", None)
        if options is None or torch.compiler.is_compiling():
            # Inside an outer torch.compile the plain update is traced into the outer
            # graph: a nested torch.compile would recompile at every call.
            return update
        cache = self.__dict__.setdefault("_compiled_updates", {})
        key = (update, getattr(self, "_bucket", None))
        if key not in cache:
            compiled = torch.compile(_own_code_copy(update), **options)

            def call(params: list, *args: Any, lr: Any, **kwargs: Any) -> Any:
                # A float lr would be baked into the compiled code (a scheduler would
                # force a recompilation at every change); a 0-d tensor is an input.
                if not _is_tensor(lr):
                    lr = scalar_tensor(lr, params[0].device)
                return compiled(params, *args, lr=lr, **kwargs)

            cache[key] = call
        return cache[key]

    def _use_foreach(self, group: dict, params: list) -> bool:
        if not self.supports_foreach:
            return False
        if self.compiled:
            return True
        foreach = group.get("foreach")
        if foreach is None:
            foreach = (default_to_foreach(params, group.get("differentiable", False))
                       and self._foreach_by_default(group))
        return bool(foreach)

    def _collect(self, group: dict) -> tuple:
        """The group's parameters that have a gradient, their gradients and states;
        state is created here, lazily, the first time a parameter has a gradient."""
        params, grads, states = [], [], []
        needs_state = self._needs_state(group)
        for param in group["params"]:
            if param.grad is None:
                continue  # a parameter without a gradient is left untouched
            if param.grad.is_sparse:
                raise RuntimeError(
                    f"optbook.{type(self).__name__} does not support sparse gradients; "
                    "use a dense gradient or torch.optim (SparseAdam, SGD, Adagrad)"
                )
            state = None
            if needs_state:
                state = self.state[param]
                if len(state) == 0:
                    self._init_state(param, state, group)
            params.append(param)
            grads.append(param.grad)
            states.append(state)
        return params, grads, states

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Perform one optimization step; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group_index, group in enumerate(self.param_groups):
            params, grads, states = self._collect(group)
            if not params:
                continue
            if self._use_foreach(group, params):
                # One bucket per (device, dtype): a _foreach_ kernel needs its tensors
                # alike.  Indices map each bucket back to the states.
                buckets = Optimizer._group_tensors_by_device_and_dtype(
                    [params, grads], with_indices=True)
                for bucket, ((bucket_params, bucket_grads), indices) in buckets.items():
                    # names the compiled copy to use
                    self._bucket = (group_index, bucket)
                    # ``maximize`` is applied inside the multi-tensor update, as in
                    # torch, so that its negated copy is reused for weight decay and
                    # freed early.
                    self._foreach_update(group, bucket_params, bucket_grads,
                                         [states[i] for i in indices])
            else:
                for param, grad, state in zip(params, grads, states):
                    # torch negates a copy of the gradient; p.grad itself is not
                    # modified.  (Passed without a name here, so that the update can
                    # free it.)
                    self._update(param, -grad if group["maximize"] else grad, state,
                                 group)
        return loss


def _loaded_scalar(value: Any, param: Tensor, group: dict) -> Tensor:
    """A step (or NAdam's mu_product) saved as a number, as torch's __setstate__
    rebuilds it: on the parameter's device for capturable or fused groups (float32
    when fused), else a CPU tensor of :func:`scalar_dtype`."""
    if group.get("capturable") or group.get("fused"):
        dtype = torch.float32 if group.get("fused") else scalar_dtype()
        return torch.tensor(float(value), dtype=dtype, device=param.device)
    return torch.tensor(float(value), dtype=scalar_dtype())


def _own_code_copy(function: Callable) -> Callable:
    """The same function with a code object of its own (see ``_functional``)."""
    copy = types.FunctionType(function.__code__.replace(), function.__globals__,
                              function.__name__, function.__defaults__,
                              function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__qualname__, copy.__doc__ = function.__qualname__, function.__doc__
    return copy


def compile_step(optimizer: TwinOptimizer, **compile_options: Any) -> TwinOptimizer:
    """Switch ``optimizer`` to the compiled path and return it.

    From the next :meth:`~TwinOptimizer.step` on, every parameter group is updated by
    the algorithm's multi-tensor functional update (e.g.
    :func:`optbook.adam.adam_foreach_update`) compiled with ``torch.compile(update,
    **compile_options)`` (default ``fullgraph=True``): the compiler fuses the chain of
    elementwise ``_foreach_`` operations into one pass over memory per tensor, the way
    torch's ``fused=True`` kernels are written by hand.  On the CPU TorchInductor
    generates C++ (a C++ compiler must be installed); on CUDA it generates Triton
    kernels (the CUDA tests in ``tests/test_compile.py`` run only where a GPU is
    present).

    Why a function and not a constructor flag: the constructors stay the exact twins
    of torch.optim's, and ``param_groups`` keep torch's keys, so a ``state_dict``
    still loads into torch.optim and back.  The choice is stored on the optimizer
    (``optimizer.compiled``), not in its ``state_dict``; it is not pickled either.

    Only the functional update is compiled; the bookkeeping around it (grouping,
    lazy state, step counters, ``maximize``) stays eager, and so do Adam's per-tensor
    step scalars (:func:`optbook.adam.adam_step_scalars`: compiled into the loop,
    their ``pow`` would be recomputed for every vector of elements).  The first step
    compiles (seconds to a minute on a CPU); later steps reuse the compiled code unless
    the tensors' shapes, dtypes or the Python-level options (``amsgrad``, ``momentum !=
    0``, ...) change.  A float learning rate changed by a scheduler does not force a
    recompilation: it is passed to the compiled code as a 0-d tensor.  Other
    hyperparameters are constants of the compiled code; changing them (e.g. OneCycleLR
    cycling momentum or betas) recompiles, as with torch.compile of torch.optim (whose
    remedy, Tensor betas with capturable=True, optbook lacks).

    Inside an outer ``torch.compile`` (a compiled training step calling
    ``optimizer.step()``) the compiled path steps aside: ``step`` runs the plain
    multi-tensor update, which the outer compilation traces and compiles into its own
    graph.  A ``torch.compile`` nested in another's tracing would build a new function
    at each call and recompile at every step; so compiling the training step makes
    ``compile_step`` unnecessary, and combining the two costs nothing.
    """
    if not isinstance(optimizer, TwinOptimizer) or not optimizer.supports_foreach:
        raise TypeError(f"compile_step needs an optbook twin optimizer (SGD, Adagrad, "
                        f"RMSprop, Adam, AdamW), got {type(optimizer).__name__}")
    optimizer._compile_options = {"fullgraph": True, **compile_options}
    optimizer.__dict__.pop("_compiled_updates", None)
    return optimizer


def zeros_like(param: Tensor) -> Tensor:
    """A zero state buffer with the parameter's shape, dtype, device and layout."""
    return torch.zeros_like(param, memory_format=torch.preserve_format)


ParamsT = Iterable[Any]
