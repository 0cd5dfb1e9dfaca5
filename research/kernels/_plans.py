"""Plans: kernels bound to fixed arrays, checked once, then one C call per call.

A plan checks its arrays as the functions do, from the same declarations (`_table.py`) and
with the same checks (`_checks.py`), then keeps what the C calls take: `BatchNormPlan` cffi
partials with every argument bound, so a call passes nothing; the optimizer plans the
arguments of the batched kernels (one C call per step for all the arrays of a dtype), to
which a step adds its scalars.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from itertools import groupby
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NoReturn, TypeVar, overload

import numpy as np

from research._step import make as make_packed
from research.kernels import _checks
from research.kernels._c import NULL, address, from_buffer, isa, new
from research.kernels._codegen import packed_ranges
from research.kernels._codegen import step as _step
from research.kernels._table import (
    ADAM_UPDATE,
    BATCHNORM_BACKWARD,
    BATCHNORM_FORWARD,
    BATCHNORM_INFERENCE,
    BATCHNORM_RELU_BACKWARD,
    BATCHNORM_RELU_FORWARD,
    BATCHNORM_RELU_INFERENCE,
    MOMENTUM_UPDATE,
    RMSPROP_UPDATE,
    SGD_UPDATE,
    Array,
    Kernel,
    Layout,
    Scalar,
    Shape,
)

T = TypeVar("T")
Arrays = tuple[np.ndarray, ...]


class Bound(Generic[T]):
    """A plan's read-only attribute: an array (or scalar) the plan was made with."""

    __slots__ = ("name",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, plan: None, owner: type | None = None) -> Bound[T]: ...
    @overload
    def __get__(self, plan: _Plan, owner: type | None = None) -> T: ...
    def __get__(self, plan, owner=None):
        return self if plan is None else plan._bound[self.name]

    if not TYPE_CHECKING:  # read-only to type checkers; at run time, a message saying why

        def __set__(self, plan, value) -> NoReturn:
            raise AttributeError(
                f"{type(plan).__name__} is bound to its arrays for good; make a new plan "
                "to use other arrays"
            )

        def __delete__(self, plan) -> NoReturn:
            self.__set__(plan, None)


class _Plan:
    """Base of the plans: what a plan is made with is fixed, and a plan is never copied.

    A plan holds cffi pointers into its arrays, so a copy of a plan would still write the
    original arrays: copying (or pickling) raises TypeError instead.
    """

    __slots__ = ("_bound", "_isa")
    _bound: dict[str, Any]
    _isa: str

    @property
    def isa(self) -> str:
        """The instruction set this plan's kernels run: `research.kernels.isa()` when it was
        made (a later `use_isa` changes the plans made after it)."""
        return self._isa

    def __reduce__(self):
        raise TypeError(
            f"this {type(self).__name__} cannot be copied or pickled: it points into its arrays; "
            "make a new plan from the copied arrays"
        )


def _fail(kind: type, message: str) -> NoReturn:
    """Raise a new `kind(message)`: what a plan calls in place of a kernel it cannot run."""
    raise kind(message)


@dataclass(frozen=True)
class _Recipe:
    """What binding some kernels to arrays checks, worked out once from their declarations.

    The first kernel's arrays must be given, except its optional groups (`together`); the
    arrays that another kernel adds come all or none, and without them that kernel cannot
    run. An array is checked writable when any of the kernels writes it.
    """

    source: str
    source_written: bool
    channels: bool  # Layout.CHANNELS: sizes (n, c, inner); else (size,)
    arrays: tuple[tuple[str, bool, bool, bool], ...]  # (name, like source, written, required)
    groups: tuple[tuple[str | None, tuple[str, ...]], ...]  # (the kernel needing them, names)
    scalars: tuple[Scalar, ...]
    overlaps: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # (written, read) per kernel
    calls: dict[str, tuple[str, ...]]  # kernel name -> its arguments after the sizes


@cache
def _recipe(kernels: tuple[Kernel, ...]) -> _Recipe:
    first = kernels[0]
    src = first.source
    assert all(k.source.name == src.name for k in kernels), "the kernels share their source"
    assert all(k.layout is first.layout for k in kernels), "the kernels share their layout"
    required = {a.name for a in first.arrays if not first.optional(a.name)}
    specs: dict[str, Array] = {}
    for kernel in kernels:
        for a in kernel.arrays:
            assert specs.setdefault(a.name, a).shape is a.shape, f"{a.name}: one shape"
    written = {a.name for k in kernels for a in k.written}
    groups: list[tuple[str | None, tuple[str, ...]]] = [(None, g) for g in first.together]
    for kernel in kernels[1:]:
        extra = tuple(a.name for a in kernel.arrays if a.name not in required)
        if extra:
            groups.append((kernel.name, extra))
    return _Recipe(
        source=src.name,
        source_written=src.name in written,
        channels=first.layout is Layout.CHANNELS,
        arrays=tuple(
            (name, a.shape is Shape.LIKE_SOURCE, name in written, name in required)
            for name, a in specs.items()
            if name != src.name
        ),
        groups=tuple(groups),
        scalars=tuple({s.name: s for k in kernels for s in k.scalars}.values()),
        overlaps=tuple(
            (tuple(a.name for a in k.written), tuple(a.name for a in k.read)) for k in kernels
        ),
        calls={k.name: tuple(a.name for a in k.args) for k in kernels},
    )


_what = lru_cache(maxsize=256)(Shape.what)  # `the shape of params[3]`, made once


class _Binding:
    """The arrays of one or more kernels, checked once: the C functions of their dtype, the
    sizes and a cffi pointer per array (NULL for an optional array not given)."""

    def __init__(
        self,
        kernels: tuple[Kernel, ...],
        values: Mapping[str, Any],
        label: Callable[[str], str] = str,
    ):
        """Check `values` (arrays and scalars by their declared names) as the functions
        check their arguments (see `_Recipe` for what is required); `label` gives the name
        a message uses for a declared name."""
        recipe = _recipe(kernels)
        src = label(recipe.source)
        x = values[recipe.source]
        twin = _checks.source(src, x, recipe.source_written)
        if recipe.channels:
            sizes: tuple[int, ...] = _checks.channels(src, x)
            per_channel, per_channel_what = (sizes[1],), _what(Shape.PER_CHANNEL, src)
        else:
            sizes = (x.size,)
        like, like_what = x.shape, _what(Shape.LIKE_SOURCE, src)

        self.missing: dict[str, tuple[str, ...]] = {}  # kernel name -> the arrays not given
        for kernel, group in recipe.groups:
            given = [values[name] is not None for name in group]
            if any(given) and not all(given):
                raise ValueError(_checks.together([label(name) for name in group]))
            if kernel and not any(given):
                self.missing[kernel] = group

        pointers = {recipe.source: from_buffer(twin.ctype, x, recipe.source_written)}
        for name, like_source, written, required in recipe.arrays:
            value = values[name]
            if value is None and not required:
                pointers[name] = NULL
            elif like_source:
                pointers[name] = _checks.buffer(label(name), value, twin, like, like_what, written)
            else:
                pointers[name] = _checks.buffer(
                    label(name), value, twin, per_channel, per_channel_what, written
                )
        for spec in recipe.scalars:
            if spec.name in values:
                _checks.scalar(spec, label(spec.name), values[spec.name])
        # Arrays that own their memory, each given once, overlap nowhere; else look at each
        # kernel's: an array it writes must not overlap another of its arrays.
        given = [values[name] for name in pointers if values[name] is not None]
        if not _checks.owned_distinct(*given):
            for written_names, read_names in recipe.overlaps:
                _checks.disjoint(
                    [(label(name), values[name]) for name in written_names],
                    [(label(name), values[name]) for name in read_names],
                )
        self.recipe = recipe
        self.twin = twin
        self.sizes = sizes
        self.pointers = pointers
        self.values = values

    def call(self, kernel: Kernel) -> partial:
        """The kernel's C function with every argument bound, in the C order: the instruction set
        (the one in use now), the sizes, the arrays and the scalars in `values`."""
        pointers, values = self.pointers, self.values
        names = self.recipe.calls[kernel.name]
        args = [pointers[name] if name in pointers else values[name] for name in names]
        return partial(getattr(self.twin, kernel.name), self.twin.isa, *self.sizes, *args)


class BatchNormPlan(_Plan):
    """Batchnorm bound to one layer's fixed arrays: each call is one C call, unchecked.

    Every check `batchnorm_forward`, `batchnorm_inference` and `batchnorm_backward` make
    (types, dtypes, shapes, contiguity, writability, aliasing, eps and momentum ranges) runs
    here, once. The plan then reads and writes these very arrays on every call: fill `x`
    (and `dy`) in place, call, read `y` (and `dx`, `dgamma`, `dbeta`). Their contents may
    change freely between calls; their identity may not: a new array (another batch size, a
    rebound attribute) needs a new plan. The checks are not repeated, so do not change a
    bound array's shape, dtype or flags in place while the plan is in use.

    Formulas, conventions and shapes are those of the functions (same C kernels, same
    arguments, so the same results bit for bit):

        forward():    y = gamma * (x - mean) * invstd + beta   from the batch statistics,
                      written to mean, invstd (and the running statistics, when bound)
        inference():  y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
        backward():   dx, dgamma, dbeta from dy, x, gamma, mean, invstd

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64; only read
    - gamma, beta: (C,) scale and shift; only read
    - y: the shape of x, written by forward() and inference()
    - mean, invstd: (C,), written by forward(), read by backward()
    - running_mean, running_var: (C,) or None (both or neither); updated by forward(), read
      by inference(), which needs them
    - dy, dx, dgamma, dbeta: all four or none, for backward(): dy has the shape of x and is
      only read; dx (shape of x), dgamma, dbeta (C,) are written
    - eps: finite, > 0; momentum: in [0, 1]; both fixed for the plan

    Aliasing: as in the functions, an array an operation writes must not share memory with
    any other array of that operation (so y may be dy, but not x; dx may be y). Arrays that
    are only read may repeat.

    relu=True binds the fused kernels instead (`batchnorm_relu_forward`,
    `batchnorm_relu_inference`, `batchnorm_relu_backward`): forward() and inference() write
    y = relu(...), and backward() takes dy as the gradient with respect to that y, reading
    y for the ReLU's mask (so y must hold the last forward()'s output, and dx must not share
    memory with y either). Fixed for the plan, like eps and momentum.

    forward() needs N * prod(spatial) >= 2; a plan with fewer values per channel (a single
    sample, for evaluation) is made anyway and raises ValueError from forward() only.

    The bound arrays and scalars are read-only attributes (`plan.x`, `plan.eps`, ...).
    """

    __slots__ = ("_forward", "_inference", "_backward")
    # Each method and its kernel, without and with the ReLU (`relu_` + the method's name);
    # forward's arrays are required (but for its optional running statistics), the arrays
    # inference and backward add come all or none.
    _operations: ClassVar[dict[str, Kernel]] = {
        "forward": BATCHNORM_FORWARD,
        "inference": BATCHNORM_INFERENCE,
        "backward": BATCHNORM_BACKWARD,
        "relu_forward": BATCHNORM_RELU_FORWARD,
        "relu_inference": BATCHNORM_RELU_INFERENCE,
        "relu_backward": BATCHNORM_RELU_BACKWARD,
    }
    _methods: ClassVar[tuple[str, ...]] = ("forward", "inference", "backward")

    x: Bound[np.ndarray] = Bound()
    gamma: Bound[np.ndarray] = Bound()
    beta: Bound[np.ndarray] = Bound()
    y: Bound[np.ndarray] = Bound()
    mean: Bound[np.ndarray] = Bound()
    invstd: Bound[np.ndarray] = Bound()
    running_mean: Bound[np.ndarray | None] = Bound()
    running_var: Bound[np.ndarray | None] = Bound()
    dy: Bound[np.ndarray | None] = Bound()
    dx: Bound[np.ndarray | None] = Bound()
    dgamma: Bound[np.ndarray | None] = Bound()
    dbeta: Bound[np.ndarray | None] = Bound()
    eps: Bound[float] = Bound()
    momentum: Bound[float] = Bound()
    relu: Bound[bool] = Bound()

    def __init__(
        self,
        x,
        gamma,
        beta,
        y,
        mean,
        invstd,
        running_mean=None,
        running_var=None,
        *,
        dy=None,
        dx=None,
        dgamma=None,
        dbeta=None,
        eps=1e-5,
        momentum=0.1,
        relu=False,
    ):
        if isinstance(relu, np.bool_):  # a comparison's result, say
            relu = bool(relu)
        if type(relu) is not bool:
            raise TypeError(f"relu must be True or False, got {relu!r} ({type(relu).__name__})")
        values = dict(locals())  # the arguments by name, as the table declares them
        del values["self"]
        prefix = "relu_" if relu else ""
        operations = {name: self._operations[prefix + name] for name in self._methods}
        binding = _Binding(tuple(operations.values()), values)
        calls = {name: self._operation(binding, k, name) for name, k in operations.items()}
        self._bound = values
        self._isa = isa()
        self._forward = calls["forward"]
        self._inference = calls["inference"]
        self._backward = calls["backward"]

    @staticmethod
    def _operation(binding: _Binding, kernel: Kernel, name: str) -> partial:
        """The bound C call of `kernel`, or a call raising why this plan cannot run it."""
        missing = binding.missing.get(kernel.name)
        if missing:
            message = f"{name}() needs {_checks.join(missing)}; this plan was made without"
            return partial(_fail, ValueError, message)
        n, _, inner = binding.sizes
        if n * inner < kernel.min_values:
            shape = binding.values[kernel.source.name].shape
            message = _checks.too_few_values(kernel.source.name, shape, kernel.min_values)
            return partial(_fail, ValueError, f"{message}: this plan cannot run {name}()")
        return binding.call(kernel)

    def forward(self) -> None:
        """Training forward of `batchnorm_forward` (`batchnorm_relu_forward` with relu=True):
        y, mean, invstd from x (and the running statistics updated, when bound). Returns
        None: read the bound arrays."""
        self._forward()

    def inference(self) -> None:
        """Inference forward of `batchnorm_inference` (`batchnorm_relu_inference` with
        relu=True): y from x and the running statistics. Returns None: read `y`."""
        self._inference()

    def backward(self) -> None:
        """`batchnorm_backward` (`batchnorm_relu_backward` with relu=True, which also reads
        y): dx, dgamma, dbeta from dy, x, gamma and the mean and invstd of the last
        forward(). Returns None: read the bound arrays."""
        self._backward()

    def __repr__(self) -> str:
        parts = [f"x={self.x.shape} {self.x.dtype}"]
        parts.append("running stats" if self.running_mean is not None else "no running stats")
        parts.append("backward" if self.dy is not None else "no backward")
        if self.relu:
            parts.append("relu")
        return f"BatchNormPlan({', '.join(parts)}, eps={self.eps!r}, momentum={self.momentum!r})"


def _sequence(name: str, arrays) -> tuple:
    """A plan's sequence of arrays as a tuple (an array itself is refused: it is a sequence
    of rows, not of arrays)."""
    if isinstance(arrays, np.ndarray) or not hasattr(arrays, "__iter__"):
        raise TypeError(
            f"{name} must be a sequence of numpy arrays (one per parameter), "
            f"got {type(arrays).__name__}"
        )
    return tuple(arrays)


class _UpdatePlan(_Plan):
    """Shared binding of the optimizer plans: params[i] is updated from grads[i] and the
    state arrays [i], by the kernel's call on them, for each i in order.

    The calls on small arrays cost more than the updates, so a step makes them in C: the
    batched kernel (`Kernel.batched`) takes the arrays of a run of consecutive updates of one
    dtype as an array of structs, made here (one run, one C call, when every array has one
    dtype). `_packed` holds the runs for the step's C path (research._step: the packed
    kernels' addresses, instruction set, counts, structs, the scalars' ranges); `_calls` for
    its Python path, the first run's (C function, instruction set, count, structs, the next
    run's tuple or `()`): a step unpacks one after another, which costs less than a `for`
    over a tuple of them.

    A subclass names its kernel in the class statement (`kernel=ADAM_UPDATE`), takes one
    sequence per array of the kernel in `__init__` (named by the arrays' `plural`, each with
    a `Bound` attribute) and declares `step` with the kernel's scalars as parameters: a stub
    (signature and docstring), whose body is written from the kernel's declaration: check the
    scalars in one chain of comparisons, then make the bound calls.
    """

    __slots__ = ("_calls", "_buffers", "_packed")
    _kernel: ClassVar[Kernel]
    _ranges: ClassVar[tuple[tuple, ...]]

    params: Bound[Arrays] = Bound()
    grads: Bound[Arrays] = Bound()

    def __init_subclass__(cls, kernel: Kernel, **kwargs):
        super().__init_subclass__(**kwargs)
        plurals = [a.plural or a.name for a in kernel.arrays]
        taken = list(inspect.signature(cls.__init__).parameters)[1:]
        if taken != plurals or not all(isinstance(getattr(cls, n, None), Bound) for n in plurals):
            raise TypeError(
                f"{cls.__name__} must take and expose one sequence per array of {kernel.name}: "
                f"{', '.join(plurals)}"
            )
        cls._kernel = kernel
        cls._ranges = packed_ranges(kernel)  # the scalars' ranges as the C step tests them, once per class
        setattr(cls, "step", _step(kernel)(cls.__dict__["step"]))  # the stub, given its body

    def __init__(self, *sequences):
        kernel = self._kernel
        arrays = kernel.arrays
        sequences = tuple(_sequence(a.plural, s) for a, s in zip(arrays, sequences))
        params = sequences[0]
        if not params:
            raise ValueError("params is empty: a plan needs at least one array to update")
        for a, seq in zip(arrays[1:], sequences[1:]):
            if len(seq) != len(params):
                raise ValueError(
                    f"{a.plural} has {len(seq)} arrays but params has {len(params)}: "
                    "one per parameter array"
                )
        plural = {a.name: a.plural for a in arrays}
        bindings = [
            _Binding((kernel,), {a.name: seq[i] for a, seq in zip(arrays, sequences)},
                     lambda name, i=i: f"{plural[name]}[{i}]")
            for i in range(len(params))
        ]
        sizes = kernel.layout.value  # the structs' first fields, then the arrays by name
        runs = [(twin, list(run)) for twin, run in groupby(bindings, lambda b: b.twin)]
        structs = [new(twin.batch_types[kernel.name], [dict(zip(sizes, b.sizes), **b.pointers) for b in run])
                   for twin, run in runs]
        calls: tuple = ()
        for (twin, run), batch in zip(reversed(runs), reversed(structs)):  # each run's call holds the next one's
            calls = (getattr(twin, f"{kernel.name}s"), twin.isa, len(run), batch, calls)
        self._bound = {a.plural: seq for a, seq in zip(arrays, sequences)}
        self._isa = isa()
        self._calls = calls
        self._buffers = [b.pointers for b in bindings]  # the structs' pointers live as long as these
        packed = tuple((twin.packed[kernel.name], twin.isa, len(run), address(batch))
                       for (twin, run), batch in zip(runs, structs))
        self._packed = make_packed(packed, self._ranges, sum(p.size for p in params),
                                   (structs, self._buffers))

    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        size = sum(p.size for p in self.params)
        return f"{type(self).__name__}({len(self)} arrays, {size} values)"


class AdamPlan(_UpdatePlan, kernel=ADAM_UPDATE):
    """`adam_update` bound to fixed lists of arrays: `step(t, ...)` updates every params[i].

        plan = AdamPlan(params, grads, ms, vs)
        plan.step(t, lr, beta1, beta2, eps, weight_decay)

    does what `for i: adam_update(params[i], grads[i], ms[i], vs[i], t, lr, ...)` does (same C
    calls, same order, same results), with the array checks made once, here: each params[i]
    float32 or float64, C-contiguous and writable; grads[i], ms[i], vs[i] of its dtype and
    shape, C-contiguous, ms[i] and vs[i] writable; params[i], ms[i], vs[i] sharing memory with
    no other array of update i. Arrays of different updates may differ in dtype and shape.
    The sequences are copied to tuples (`plan.params`, `plan.grads`, `plan.ms`, `plan.vs`):
    the plan reads and writes these very arrays, whose contents change between steps. A new
    array (a rebound gradient) needs a new plan; so does an in-place change of a bound
    array's shape, dtype or flags, which the plan does not see.

    The scalars may change from step to step, so `step` checks them on every call, as
    `adam_update` does (t an integer >= 1; lr, weight_decay finite >= 0; betas in [0, 1);
    eps finite > 0), before anything is updated.
    """

    __slots__ = ()
    ms: Bound[Arrays] = Bound()
    vs: Bound[Arrays] = Bound()

    def __init__(self, params, grads, ms, vs):
        super().__init__(params, grads, ms, vs)

    def step(self, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0) -> None:
        """One Adam update of every bound parameter array (t = 1 for the first)."""


class MomentumPlan(_UpdatePlan, kernel=MOMENTUM_UPDATE):
    """`momentum_update` bound to fixed lists of arrays, like `AdamPlan`:
    `MomentumPlan(params, grads, velocities).step(lr, beta)` does
    `for i: momentum_update(params[i], grads[i], velocities[i], lr, beta)`, with the array
    checks made once; lr (finite, >= 0) and beta (in [0, 1)) are checked on every step."""

    __slots__ = ()
    velocities: Bound[Arrays] = Bound()

    def __init__(self, params, grads, velocities):
        super().__init__(params, grads, velocities)

    def step(self, lr, beta=0.9) -> None:
        """One momentum update of every bound parameter array."""


class RMSpropPlan(_UpdatePlan, kernel=RMSPROP_UPDATE):
    """`rmsprop_update` bound to fixed lists of arrays, like `AdamPlan`:
    `RMSpropPlan(params, grads, sqs).step(lr, beta, eps)` does
    `for i: rmsprop_update(params[i], grads[i], sqs[i], lr, beta, eps)`, with the array
    checks made once; the scalars are checked on every step."""

    __slots__ = ()
    sqs: Bound[Arrays] = Bound()

    def __init__(self, params, grads, sqs):
        super().__init__(params, grads, sqs)

    def step(self, lr, beta=0.999, eps=1e-8) -> None:
        """One RMSprop update of every bound parameter array."""


class SGDPlan(_UpdatePlan, kernel=SGD_UPDATE):
    """`sgd_update` bound to fixed lists of arrays, like `AdamPlan`:
    `SGDPlan(params, grads).step(lr, weight_decay)` does
    `for i: sgd_update(params[i], grads[i], lr, weight_decay)`, with the array checks made
    once; lr and weight_decay (finite, >= 0) are checked on every step."""

    __slots__ = ()

    def __init__(self, params, grads):
        super().__init__(params, grads)

    def step(self, lr, weight_decay=0.0) -> None:
        """One SGD update of every bound parameter array."""
