"""The base of optimizer plugins: parameters, checked hyperparameters, a step counter, state
and kernel plans. The built-ins (research_plugins.optimizers) and third parties build on it.

An optimizer is built from the model's parameter arrays (updated in place) and keyword
hyperparameters::

    opt = Adam(model.params, lr=3e-4)
    opt.step(grads)             # grads[i] has the shape and dtype of params[i]
    opt.set("lr", 1e-4)         # between steps (schedules and babysitting do this)
    arrays = opt.state()        # everything needed to continue exactly
    opt.load_state(arrays)

Writing one: subclass ``Optimizer``, declare the hyperparameters as keyword-only arguments
of ``__init__`` (``Annotated`` with an ``Option`` giving the range, see research.options;
the aliases below state the usual ranges once), pass each of them on to
``Optimizer.__init__``, and define ``step``::

    from research.nn.optimizer import Beta, LearningRate, Optimizer

    class Lion(Optimizer):
        '''p -= lr * sign(beta1 * m + (1 - beta1) * g);  m = beta2 * m + (1 - beta2) * g'''

        name = "lion"
        buffer_names = ("m",)            # zeros like each parameter: self.buffers["m"][i]

        def __init__(self, params, *, lr: LearningRate = 1e-4, beta1: Beta = 0.9, beta2: Beta = 0.99):
            super().__init__(params, lr=lr, beta1=beta1, beta2=beta2)

        def step(self, grads):
            grads, h = self._grads(grads), self.hyper
            for p, g, m in zip(self.params, grads, self.buffers["m"]):
                p -= h["lr"] * np.sign(h["beta1"] * m + (1 - h["beta1"]) * g)
                m *= h["beta2"]
                m += (1 - h["beta2"]) * g
            self.t += 1

The base then gives: options checked and converted before ``__init__``'s body runs
(strings from ``--optimizer-opt lr=0.01`` too; an unknown name or a bad value is one line,
``optimizer 'lion': beta1 must be a number in [0, 1), got 1.5``), the same checks for
``set``, for assignments to ``opt.hyper[name]`` and for ``load_state``; the parameter and
gradient checks (``_grads``); ``state``/``load_state`` with keys ``"t"`` (steps taken, a 0-d
int64 array), ``"<buffer>.<i>"`` and ``"hyper.<name>"`` (0-d arrays). ``step`` reads
``self.hyper`` every time, so a change takes effect at the next step. Set ``search_space``
(research.space) to give the hyperparameters' default search space on the right scales.

Speed: an optimizer on a C kernel sets ``plan_type`` (``research.kernels.AdamPlan`` etc.,
built as ``plan_type(params, grads, *buffers)`` with the buffers in ``buffer_names``
order) and gets the plan from ``self._plan(grads)`` in ``step``. The plan is bound to the
parameters, the buffers and the gradient arrays of the first step, so the array checks run
once: it is kept while each step passes the very same gradient arrays, unchanged in shape
(a model that reuses its gradient arrays does), and the parameter and buffer lists hold the
same arrays; otherwise the new gradients are checked and a new plan is made. Results are
the same either way: the same C calls on the same arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from operator import attrgetter, is_
from typing import Annotated, Any, ClassVar

import numpy as np

from research.options import Configurable, Option, Spec, check, declared
from research.space import Param

LearningRate = Annotated[float, Option("Learning rate", above=0.0)]
Beta = Annotated[float, Option("Decay of a running average", min=0.0, below=1.0)]
Epsilon = Annotated[float, Option("Added to the root mean square", above=0.0)]
WeightDecay = Annotated[float, Option("Weight decay coefficient", min=0.0)]


class Hyperparameters(dict):
    """An optimizer's current hyperparameters: a dict whose assignments are converted and
    checked against the declared options (``hyper["lr"] = "0.1"`` stores 0.1; a bad value
    raises and changes nothing). Its keys are fixed: an unknown name is an
    ``UnknownOptionError`` and nothing can be removed."""

    def __init__(self, owner: str, specs: Mapping[str, Spec], values: Mapping[str, Any]) -> None:
        self.owner, self.specs = owner, dict(specs)
        super().__init__(self.checked(values))

    def checked(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` converted and checked, or an OptionError naming the optimizer."""
        return check(self.owner, self.specs, values)

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, self.checked({name: value})[name])

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(self.checked(dict(*args, **kwargs)))

    def setdefault(self, name: str, default: Any = None) -> Any:
        if name not in self:
            self.checked({name: default})  # the names are fixed: this raises
        return self[name]

    def _fixed(self, *args: Any) -> None:
        raise TypeError(f"{self.owner}: hyperparameters cannot be removed")

    __delitem__ = pop = popitem = clear = _fixed  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        # Rebuild through __init__ (copy/pickle would otherwise set items before `specs`).
        return (type(self), (self.owner, self.specs, dict(self)))


_shape = attrgetter("shape")


class Optimizer(Configurable):
    """Shared machinery: parameter checks, hyperparameters, step counter, state round trip,
    kernel plans (see the module docstring for how to write a subclass).

    Subclasses set ``name`` (and, as needed, ``buffer_names``, ``search_space``,
    ``plan_type``), define ``__init__`` with the hyperparameters as declared keyword-only
    arguments, each passed on to ``Optimizer.__init__``, and ``step``.
    """

    kind = "optimizer"
    buffer_names: ClassVar[tuple[str, ...]] = ()
    search_space: ClassVar[dict[str, Param]] = {}
    plan_type: ClassVar[type | None] = None
    # The plan of the last step and the arrays it is bound to: params, grads, then buffers.
    _bound_plan: Any = None
    _bound_arrays: tuple[np.ndarray, ...] = ()
    _bound_shapes: tuple[tuple[int, ...], ...] = ()

    def __init__(self, params: Sequence[np.ndarray], /, **hyper: Any) -> None:
        specs = declared(type(self)) or {}
        if set(hyper) != set(specs):
            raise TypeError(f"{type(self).__name__}.__init__ must pass Optimizer.__init__ exactly the "
                            f"hyperparameters it declares ({', '.join(specs) or 'none'}), "
                            f"got {', '.join(hyper) or 'none'}")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{self.owner}: no parameter arrays to optimize")
        for i, p in enumerate(self.params):
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                kind = f"a {p.dtype} array" if isinstance(p, np.ndarray) else f"a {type(p).__name__}"
                raise TypeError(f"{self.owner}: params[{i}] must be a float32 or float64 array, got {kind}")
            if not (p.flags.c_contiguous and p.flags.writeable):
                raise ValueError(f"{self.owner}: params[{i}] must be C-contiguous and writeable")
        self.hyper = Hyperparameters(self.owner, specs, {name: hyper[name] for name in specs})
        self.t = 0
        self.buffers: dict[str, list[np.ndarray]] = {
            buffer: [np.zeros_like(p) for p in self.params] for buffer in self.buffer_names
        }

    @property
    def options(self) -> dict[str, Any]:
        """The current hyperparameters (what rebuilds this optimizer, state aside)."""
        return dict(self.hyper)

    def set(self, name: str, value: Any) -> None:
        """Change one hyperparameter (checked; strings converted); the next step uses it."""
        self.hyper[name] = value

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update of every parameter array from ``grads`` (same shapes and dtypes);
        ``self.t`` counts the steps taken."""
        raise NotImplementedError(f"{type(self).__name__} defines no step(grads), which every optimizer has")

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
        if self.plan_type is None:
            raise TypeError(f"{self.owner}: _plan needs a plan_type")
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
        and hyperparameters ``"hyper.<name>"`` (0-d arrays; float64 for a float)."""
        out = {"t": np.array(self.t, dtype=np.int64)}
        for buffer, arrays in self.buffers.items():
            out |= {f"{buffer}.{i}": a.copy() for i, a in enumerate(arrays)}
        out |= {f"hyper.{name}": np.array(value) for name, value in self.hyper.items()}
        return out

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state()``, copying into the existing buffers. Everything is checked
        before anything changes: the keys must be exactly those ``state()`` gives, the
        hyperparameters within their declared ranges."""
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
        hyper = self.hyper.checked({name: _scalar(state[f"hyper.{name}"]) for name in self.hyper})
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
        hyper = ", ".join(f"{name}={value:g}" if isinstance(value, float) else f"{name}={value!r}"
                          for name, value in self.hyper.items())
        return f"{type(self).__name__}({hyper}; {len(self.params)} arrays, t={self.t})"


def _scalar(value: Any) -> Any:
    """A stored 0-d array as the Python value it holds (other shapes as they are, to be refused)."""
    a = np.asarray(value)
    return a.item() if a.ndim == 0 else value
