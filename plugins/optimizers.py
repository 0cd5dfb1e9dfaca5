"""The built-in optimizers: sgd, momentum, rmsprop, adam and adamw, on the C kernels.

Each optimizer is a class built from the model's parameter arrays (updated in place) and
keyword hyperparameters::

    opt = Adam(model.params, lr=3e-4)
    opt.step(grads)             # grads[i] has the shape and dtype of params[i]
    opt.set("lr", 1e-4)         # between steps (schedules and babysitting do this)
    arrays = opt.state()        # everything needed to continue exactly
    opt.load_state(arrays)

Hyperparameters may arrive as strings from the command line (``--optimizer-opt lr=0.01``);
they are converted to float and range-checked on construction, by ``set`` and by assignment
to ``opt.hyper[name]``. ``step`` reads ``opt.hyper`` every time, so a change takes effect at
the next step. Each class declares ``search_space``: its hyperparameters' default search
space on the right scale (learning rate log, betas log(1 - beta)).

State buffers (``m``, ``v``, ``velocity``, ``sq``) are zeros shaped like each parameter,
allocated once. ``state()`` names them ``"m.0"``, ``"v.0"``, ...; ``"t"`` is the number of
steps taken (a 0-d int64 array) and ``"hyper.lr"`` etc. the hyperparameters (0-d float64).

Speed: ``step`` runs the kernels through a plan (``research.kernels.AdamPlan`` etc.) bound
to the parameters, the state buffers and the gradient arrays of the first step, so the array
checks run once, not on every step. The plan is kept while each step passes the very same
gradient arrays, unchanged in shape (a model that reuses its gradient arrays does), and the
parameter and buffer lists hold the same arrays; otherwise the new gradients are checked and
a new plan is made. Results are the same either way: the same C calls on the same arrays.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import attrgetter, is_
from typing import Any, ClassVar

import numpy as np

from research import hookimpl, kernels
from research.space import Float, Param


class UnknownHyperparameterError(TypeError, ValueError):
    """A hyperparameter name the optimizer does not have; the message lists the valid ones.

    Both a TypeError (like Python's own error for an unexpected keyword) and a ValueError
    (like every other bad option).
    """


# Range checks: name -> (condition on a finite float, the valid range as the message says it).
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda x: x > 0.0, "> 0"),
    "beta": (lambda x: 0.0 <= x < 1.0, "in [0, 1)"),
    "beta1": (lambda x: 0.0 <= x < 1.0, "in [0, 1)"),
    "beta2": (lambda x: 0.0 <= x < 1.0, "in [0, 1)"),
    "eps": (lambda x: x > 0.0, "> 0"),
    "weight_decay": (lambda x: x >= 0.0, ">= 0"),
}


def _check(owner: str, name: str, value: Any) -> float:
    """``value`` as a float (strings converted), or a one-line ValueError naming ``name``."""
    valid, text = _RANGES[name]
    try:
        if isinstance(value, (bool, np.bool_)):
            raise ValueError
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number {text}, got {value!r}") from None
    if not (math.isfinite(x) and valid(x)):
        raise ValueError(f"{owner}: {name} must be {text}, got {value!r}")
    return x


def _unknown(owner: str, names: Sequence[str], valid: Sequence[str]) -> UnknownHyperparameterError:
    quoted = ", ".join(f"'{n}'" for n in names)
    plural = "s" if len(names) > 1 else ""
    return UnknownHyperparameterError(
        f"{owner}: unknown hyperparameter{plural} {quoted}; valid names: {', '.join(valid)}"
    )


class Hyperparameters(dict):
    """An optimizer's current hyperparameters: a dict of floats whose assignments are converted
    and checked (``hyper["lr"] = "0.1"`` stores 0.1; a bad value raises and changes nothing).
    Its keys are fixed: unknown names are errors and nothing can be removed."""

    def __init__(self, owner: str, values: Mapping[str, Any]) -> None:
        super().__init__({name: _check(owner, name, value) for name, value in values.items()})
        self.owner = owner

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self:
            raise _unknown(self.owner, [name], list(self))
        super().__setitem__(name, _check(self.owner, name, value))

    def update(self, *args: Any, **kwargs: Any) -> None:
        new = dict(*args, **kwargs)
        unknown = [name for name in new if name not in self]
        if unknown:
            raise _unknown(self.owner, unknown, list(self))
        super().update({name: _check(self.owner, name, value) for name, value in new.items()})

    def setdefault(self, name: str, default: Any = None) -> float:
        if name not in self:
            raise _unknown(self.owner, [name], list(self))
        return self[name]

    def _fixed(self, *args: Any) -> None:
        raise TypeError(f"{self.owner}: hyperparameters cannot be removed")

    __delitem__ = pop = popitem = clear = _fixed  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        # Rebuild through __init__ (copy/pickle would otherwise set items before `owner`).
        return (type(self), (self.owner, dict(self)))


_shape = attrgetter("shape")

_LR = Float(1e-4, 1.0, "log", name="lr")
_EPS = Float(1e-10, 1e-6, "log", name="eps")


class Optimizer:
    """Shared machinery: parameter checks, hyperparameters, step counter, state round trip.

    Subclasses set ``name``, ``buffer_names`` and ``search_space``, define ``__init__`` with
    explicit keyword-only hyperparameters that calls ``Optimizer.__init__``, and ``step``.
    Those built on a kernel plan set ``plan_type`` (its state arguments are the buffers, in
    ``buffer_names`` order) and get it from ``_plan(grads)`` in ``step``.
    """

    name: ClassVar[str] = "optimizer"
    buffer_names: ClassVar[tuple[str, ...]] = ()
    search_space: ClassVar[dict[str, Param]] = {}
    plan_type: ClassVar[type | None] = None
    # The plan of the last step and the arrays it is bound to: params, grads, then buffers.
    _bound_plan: Any = None
    _bound_arrays: tuple[np.ndarray, ...] = ()
    _bound_shapes: tuple[tuple[int, ...], ...] = ()

    def __new__(cls, *args: Any, **hyper: Any) -> Optimizer:
        # Python's error for an unexpected keyword does not list the valid ones: check here,
        # before __init__ binds its (explicit, keyword-only) hyperparameters.
        valid = cls.hyper_names()
        unknown = [name for name in hyper if name not in valid]
        if unknown:
            raise _unknown(f"optimizer '{cls.name}'", unknown, valid)
        return super().__new__(cls)

    @classmethod
    def hyper_names(cls) -> list[str]:
        """The keyword-only hyperparameters of ``__init__``, in order."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]

    def __init__(self, params: Sequence[np.ndarray], hyper: Mapping[str, Any]) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{self.owner}: no parameter arrays to optimize")
        for i, p in enumerate(self.params):
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                kind = f"a {p.dtype} array" if isinstance(p, np.ndarray) else f"a {type(p).__name__}"
                raise TypeError(f"{self.owner}: params[{i}] must be a float32 or float64 array, got {kind}")
            if not (p.flags.c_contiguous and p.flags.writeable):
                raise ValueError(f"{self.owner}: params[{i}] must be C-contiguous and writeable")
        self.hyper = Hyperparameters(self.owner, hyper)
        self.t = 0
        self.buffers: dict[str, list[np.ndarray]] = {
            buffer: [np.zeros_like(p) for p in self.params] for buffer in self.buffer_names
        }

    @property
    def owner(self) -> str:
        """How messages name this optimizer."""
        return f"optimizer '{self.name}'"

    def set(self, name: str, value: Any) -> None:
        """Change one hyperparameter (checked; strings converted); the next step uses it."""
        self.hyper[name] = value

    def _grads(self, grads: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        """``grads`` checked against the parameters before anything is updated (C-contiguous
        copies of any that are not)."""
        if len(grads) != len(self.params):
            raise ValueError(
                f"{self.owner}: got {len(grads)} gradients for {len(self.params)} parameter arrays"
            )
        contiguous = True
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if getattr(g, "shape", None) != p.shape or getattr(g, "dtype", None) != p.dtype:
                got = f"{g.shape} {g.dtype}" if isinstance(g, np.ndarray) else type(g).__name__
                raise ValueError(
                    f"{self.owner}: grads[{i}] must be a {p.shape} {p.dtype} array like params[{i}], got {got}"
                )
            contiguous = contiguous and g.flags.c_contiguous
        return grads if contiguous else [np.ascontiguousarray(g) for g in grads]

    def _plan(self, grads: Sequence[np.ndarray]) -> Any:
        """The ``plan_type`` plan that updates the parameters from ``grads``: the last step's
        when ``grads`` holds the same arrays with the same shapes (and the parameter and buffer
        lists are unchanged), else a new one, made after ``_grads`` checked ``grads``. Raises,
        changing nothing, when the arrays do not fit."""
        arrays = (*self.params, *grads, *chain.from_iterable(self.buffers.values()))
        bound = self._bound_arrays
        if (
            len(arrays) == len(bound)
            and all(map(is_, arrays, bound))
            and tuple(map(_shape, grads)) == self._bound_shapes
        ):
            return self._bound_plan
        grads = self._grads(grads)
        buffers = [self.buffers[name] for name in self.buffer_names]
        plan = self.plan_type(self.params, grads, *buffers)
        self._bound_plan = plan
        self._bound_arrays = (*self.params, *grads, *chain.from_iterable(buffers))
        self._bound_shapes = tuple(g.shape for g in grads)
        return plan

    def __getstate__(self) -> dict[str, Any]:
        # A plan points into this optimizer's arrays: a copy binds its own at its first step.
        state = self.__dict__.copy()
        for name in ("_bound_plan", "_bound_arrays", "_bound_shapes"):
            state.pop(name, None)
        return state

    def state(self) -> dict[str, np.ndarray]:
        """Copies of everything needed to continue exactly: ``"t"``, buffers ``"<buffer>.<i>"``
        and hyperparameters ``"hyper.<name>"``."""
        out = {"t": np.array(self.t, dtype=np.int64)}
        for buffer, arrays in self.buffers.items():
            out |= {f"{buffer}.{i}": a.copy() for i, a in enumerate(arrays)}
        out |= {f"hyper.{name}": np.array(value, dtype=np.float64) for name, value in self.hyper.items()}
        return out

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state()``, copying into the existing buffers. Everything is checked
        before anything changes: the keys must be exactly those ``state()`` gives."""
        expected = self.state().keys()
        keys = set(state.keys())
        missing = [k for k in expected if k not in keys]
        extra = sorted(keys - set(expected))
        if missing or extra:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unexpected {', '.join(extra)}"] if extra else []
            )
            raise ValueError(f"{self.owner}: state does not fit this optimizer: {'; '.join(parts)}")
        t = np.asarray(state["t"])
        if t.ndim != 0 or t.dtype.kind not in "iu" or int(t) < 0:
            raise ValueError(f"{self.owner}: state 't' must be a non-negative integer, got {state['t']!r}")
        hyper = {}
        for name in self.hyper:
            hyper[name] = _check(self.owner, name, np.asarray(state[f"hyper.{name}"])[()])
        arrays = {}
        for buffer, targets in self.buffers.items():
            for i, target in enumerate(targets):
                key = f"{buffer}.{i}"
                a = np.asarray(state[key])
                if a.shape != target.shape or a.dtype.kind != "f":
                    raise ValueError(
                        f"{self.owner}: state '{key}' must be a {target.shape} float array, "
                        f"got {a.shape} {a.dtype}"
                    )
                arrays[key] = (target, a)
        for target, a in arrays.values():
            np.copyto(target, a, casting="same_kind")
        self.t = int(t)
        self.hyper.update(hyper)

    def __repr__(self) -> str:
        hyper = ", ".join(f"{name}={value:g}" for name, value in self.hyper.items())
        return f"{type(self).__name__}({hyper}; {len(self.params)} arrays, t={self.t})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (coupled, L2) weight decay::

        p -= lr * (g + weight_decay * p)

    :param params: the arrays to update in place (float32/float64, C-contiguous).
    :param lr: learning rate, > 0.
    :param weight_decay: L2 penalty coefficient, >= 0.
    """

    name = "sgd"
    search_space = {"lr": _LR}
    plan_type = kernels.SGDPlan

    def __init__(
        self, params: Sequence[np.ndarray], *, lr: float | str = 0.01, weight_decay: float | str = 0.0
    ) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter array from ``grads`` (same shapes and dtypes)."""
        plan = self._plan(grads)
        plan.step(self.hyper["lr"], self.hyper["weight_decay"])
        self.t += 1


class Momentum(Optimizer):
    """SGD with momentum as an exponentially weighted average of the gradients::

        velocity = beta * velocity + (1 - beta) * g
        p -= lr * velocity

    (The average form: the step size does not grow by 1 / (1 - beta) as in the
    ``v = beta * v + g`` form.)

    :param lr: learning rate, > 0.
    :param beta: averaging coefficient, in [0, 1); 0 is plain SGD.
    """

    name = "momentum"
    buffer_names = ("velocity",)
    search_space = {"lr": _LR, "beta": Float(0.9, 0.999, "log1m", name="beta")}
    plan_type = kernels.MomentumPlan

    def __init__(
        self, params: Sequence[np.ndarray], *, lr: float | str = 0.01, beta: float | str = 0.9
    ) -> None:
        super().__init__(params, {"lr": lr, "beta": beta})

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter array from ``grads`` (same shapes and dtypes)."""
        plan = self._plan(grads)
        plan.step(self.hyper["lr"], self.hyper["beta"])
        self.t += 1


class RMSprop(Optimizer):
    """RMSprop: divide the gradient by a running root mean square of recent gradients::

        sq = beta * sq + (1 - beta) * g * g
        p -= lr * g / (sqrt(sq) + eps)

    :param lr: learning rate, > 0.
    :param beta: decay of the squared-gradient average, in [0, 1). The default 0.9 is the
        usual RMSprop decay (Hinton's lecture 6e, Keras' ``rho``); the kernel's own default,
        0.999, is Adam's beta2.
    :param eps: added to the root mean square, > 0.
    """

    name = "rmsprop"
    buffer_names = ("sq",)
    search_space = {"lr": _LR, "beta": Float(0.9, 0.999, "log1m", name="beta"), "eps": _EPS}
    plan_type = kernels.RMSpropPlan

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float | str = 1e-3,
        beta: float | str = 0.9,
        eps: float | str = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "beta": beta, "eps": eps})

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter array from ``grads`` (same shapes and dtypes)."""
        plan = self._plan(grads)
        h = self.hyper
        plan.step(h["lr"], h["beta"], h["eps"])
        self.t += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba), bias-corrected; at step t = 1, 2, ...::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

    No weight decay: for decoupled weight decay use ``adamw``.

    :param lr: learning rate, > 0.
    :param beta1: decay of the gradient average, in [0, 1).
    :param beta2: decay of the squared-gradient average, in [0, 1).
    :param eps: added to the root mean square, > 0.
    """

    name = "adam"
    buffer_names = ("m", "v")
    search_space = {
        "lr": _LR,
        "beta1": Float(0.9, 0.999, "log1m", name="beta1"),
        "beta2": Float(0.99, 0.9999, "log1m", name="beta2"),
        "eps": _EPS,
    }
    plan_type = kernels.AdamPlan

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float | str = 1e-3,
        beta1: float | str = 0.9,
        beta2: float | str = 0.999,
        eps: float | str = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps})

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter array from ``grads`` (same shapes and dtypes)."""
        plan = self._plan(grads)
        h = self.hyper
        t = self.t + 1
        plan.step(t, h["lr"], h["beta1"], h["beta2"], h["eps"], h.get("weight_decay", 0.0))
        self.t = t


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, applied first::

        p -= lr * weight_decay * p
        then the Adam step (see ``Adam``).

    :param weight_decay: decay coefficient, >= 0 (scaled by lr, not by the gradient statistics).
    """

    name = "adamw"
    search_space = {**Adam.search_space, "weight_decay": Float(1e-6, 1e-1, "log", name="weight_decay")}

    def __init__(
        self,
        params: Sequence[np.ndarray],
        *,
        lr: float | str = 1e-3,
        beta1: float | str = 0.9,
        beta2: float | str = 0.999,
        eps: float | str = 1e-8,
        weight_decay: float | str = 0.01,
    ) -> None:
        Optimizer.__init__(
            self, params, {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
        )


@hookimpl
def register_optimizers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register sgd, momentum, rmsprop, adam and adamw."""
    register("sgd", SGD)
    register("momentum", Momentum)
    register("rmsprop", RMSprop)
    register("adam", Adam)
    register("adamw", AdamW)
