"""The kernels' arguments, declared once: the table every check, message and C call reads.

Each `Kernel` lists the arguments of one C function of csrc/kernels.h in the C order, after
the sizes the C function takes first ((n, c, inner) or (size,), from the `SOURCE` array):

- `Array`: a numpy array, its expected shape (`Shape`), whether the kernel writes it, the
  keyword of the function's output buffer when it is an output (`out="mean_out"`), and the
  name of the optimizer plans' sequence (`plural="ms"`);
- `Scalar`: a number and the `Range` it must be in; an integer's range ends where its C type's
  does (`integers(1, "long long")`), a float's at the largest double, so no value reaches C
  that C cannot hold.

`together` names optional arrays given all or none (NULL to C when none); `min_values` is the
number of values per channel the kernel needs. From this table the package derives the checked
functions (`_functions.py`, through `_codegen.py`), the plans (`_plans.py`), the order of the
C arguments and which arrays must not share memory: an array a kernel writes must not overlap
any other array of the call.
"""

from __future__ import annotations

import enum
import math
import sys
from dataclasses import dataclass
from functools import cached_property

INF = math.inf
DOUBLE_MAX = sys.float_info.max  # the largest finite C double: a number beyond it cannot be passed
# The C integer types a kernel's integer scalar may have, with their ranges (LP64/LLP64: a
# 64-bit size_t and long long). `_checks.c_signature_problems` compares the table with the
# compiled functions' own argument types (tests/test_limits.py runs it).
C_INTEGERS = {
    "int": (-(2**31), 2**31 - 1),
    "long long": (-(2**63), 2**63 - 1),
    "size_t": (0, 2**64 - 1),
}


class Layout(enum.Enum):
    """How the `SOURCE` array gives the sizes the C function takes first."""

    CHANNELS = ("n", "c", "inner")  # x (N, C, *spatial) seen as (n, c, inner = prod(spatial))
    ELEMENTS = ("size",)  # any shape, updated elementwise: size = number of values
    ROWS = ("n", "k")  # s (N, K): N rows of K >= 1 values (a classifier's logits)


class Shape(enum.Enum):
    """The shape an array must have, and how messages say where it comes from."""

    SOURCE = "the array that fixes the call's dtype (and sizes)"
    LIKE_SOURCE = "the shape of {source}"
    PER_CHANNEL = "(C,): one value per channel of {source}"
    PER_ROW = "(N,): one value per row of {source}"

    def what(self, source: str) -> str:
        """Where the expected shape comes from, for messages: `the shape of x`."""
        return self.value.format(source=source)


@dataclass(frozen=True)
class Range:
    """The values a scalar may take: from low to high, each end closed or open; integers
    only when `integer` (made by `integers`: then high is the largest value of the C integer
    type `c_type` the kernel takes). NaN is outside every range, and so is any number beyond
    the largest C double (`10**400`): "finite" means finite as a double."""

    low: float
    high: float = INF
    low_closed: bool = True
    high_closed: bool = False
    integer: bool = False
    c_type: str = "double"

    def __post_init__(self):
        if self.integer:
            assert self.c_type in C_INTEGERS, f"an integer range needs a C integer type, got {self.c_type!r}"
            c_low, c_high = C_INTEGERS[self.c_type]
            assert c_low <= self.low and self.high <= c_high and self.high_closed, "beyond the C type"

    def describe(self) -> str:
        """`a finite number > 0`, `in [0, 1)`, `an integer >= 1 and <= 9223372036854775807 (a C long long)`."""
        low = f"{self.low:g}"
        if self.integer:
            return (f"an integer {'>=' if self.low_closed else '>'} {self.low} and <= {self.high}"
                    f" (a C {self.c_type})")
        if self.high == INF:
            return f"a finite number {'>=' if self.low_closed else '>'} {low}"
        return (
            f"in {'[' if self.low_closed else '('}{low}, {self.high:g}"
            f"{']' if self.high_closed else ')'}"
        )

    def __contains__(self, value) -> bool:
        above = self.low <= value if self.low_closed else self.low < value
        below = value <= self.high if self.high_closed else value < self.high
        return above and below and (self.integer or -DOUBLE_MAX <= value <= DOUBLE_MAX)


def integers(low: int, c_type: str) -> Range:
    """The integers from `low` up to the largest value of the C integer type `c_type`."""
    return Range(low, C_INTEGERS[c_type][1], high_closed=True, integer=True, c_type=c_type)


POSITIVE = Range(0.0, low_closed=False)  # finite, > 0: eps
NONNEGATIVE = Range(0.0)  # finite, >= 0: lr, weight_decay
UNIT = Range(0.0, 1.0, high_closed=True)  # [0, 1]: momentum of the running statistics
BETA = Range(0.0, 1.0)  # [0, 1): decay rates
COUNT = integers(1, "long long")  # integer >= 1 (a C long long): Adam's step


@dataclass(frozen=True)
class Array:
    """A numpy array argument.

    name: as the formulas, the C header and the plans call it (`y`, `m`).
    out: the keyword of the function's optional output buffer (`out`, `dx_out`): the function
        allocates the array when it is None and returns it.
    plural: the optimizer plans' sequence of these arrays (`params`, `ms`).
    labels: class labels, int64 whatever the call's dtype, each in [0, K) (K the source's
        second axis), checked before any C runs since C indexes with them.
    """

    name: str
    shape: Shape
    written: bool = False
    out: str | None = None
    plural: str | None = None
    labels: bool = False

    @property
    def keyword(self) -> str:
        """The function's name for the argument."""
        return self.out or self.name


@dataclass(frozen=True)
class Scalar:
    """A number argument; `note` follows the range in messages."""

    name: str
    range: Range
    note: str = ""

    @property
    def keyword(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class Kernel:
    """One C kernel: `rs_<name>_f32` / `rs_<name>_f64`, its arguments in the C order.

    Each declaration is its own identity (compared and hashed as an object); the views below
    are computed once.
    """

    name: str
    layout: Layout
    args: tuple[Array | Scalar, ...]
    together: tuple[tuple[str, ...], ...] = ()
    min_values: int = 0

    def __post_init__(self):
        names = [a.name for a in self.args]
        assert len(set(names)) == len(names), f"{self.name}: an argument is declared twice"
        assert not any(n.startswith("_") for n in names), f"{self.name}: names start with a letter"
        assert len([a for a in self.arrays if a.shape is Shape.SOURCE]) == 1, self.name
        assert all(n in names for group in self.together for n in group), self.name

    @cached_property
    def arrays(self) -> tuple[Array, ...]:
        return tuple(a for a in self.args if isinstance(a, Array))

    @cached_property
    def scalars(self) -> tuple[Scalar, ...]:
        return tuple(a for a in self.args if isinstance(a, Scalar))

    @cached_property
    def source(self) -> Array:
        """The array that fixes the dtype (and the sizes) of a call."""
        return next(a for a in self.arrays if a.shape is Shape.SOURCE)

    @cached_property
    def written(self) -> tuple[Array, ...]:
        return tuple(a for a in self.arrays if a.written)

    @cached_property
    def read(self) -> tuple[Array, ...]:
        return tuple(a for a in self.arrays if not a.written)

    @cached_property
    def outputs(self) -> tuple[Array, ...]:
        """The arrays the function returns (allocated unless given as buffers)."""
        return tuple(a for a in self.arrays if a.out)

    @cached_property
    def optional_names(self) -> frozenset[str]:
        """The arrays of the `together` groups."""
        return frozenset(name for group in self.together for name in group)

    def optional(self, name: str) -> bool:
        return name in self.optional_names

    @cached_property
    def batched(self) -> bool:
        """Whether C also runs the kernel on many arrays in one call: the optimizer updates,
        whose arrays the plans take in sequences (`plural`). `rs_<name>s_f32(isa, count,
        arrays, <the scalars>)` makes the update of each `struct rs_<name>_arrays_f32` (the
        sizes and the arrays, named as here) in turn."""
        return all(a.plural for a in self.arrays)


# Arguments that several kernels share, declared once.
X = Array("x", Shape.SOURCE)
GAMMA = Array("gamma", Shape.PER_CHANNEL)
BETA_SHIFT = Array("beta", Shape.PER_CHANNEL)
Y = Array("y", Shape.LIKE_SOURCE, written=True, out="out")
EPS = Scalar("eps", POSITIVE)
PARAM = Array("param", Shape.SOURCE, written=True, plural="params")
GRAD = Array("grad", Shape.LIKE_SOURCE, plural="grads")
LR = Scalar("lr", NONNEGATIVE)
WEIGHT_DECAY = Scalar("weight_decay", NONNEGATIVE)


def _state(name: str, plural: str) -> Array:
    """An optimizer's state array: the shape of param, updated in place."""
    return Array(name, Shape.LIKE_SOURCE, written=True, plural=plural)


# The batchnorm kernels' arguments, which the fused batchnorm + ReLU kernels share: the
# forwards take the same ones; the fused backward also reads y, the forward's output, for
# the ReLU's mask.
_FORWARD_ARGS = (
    X,
    GAMMA,
    BETA_SHIFT,
    EPS,
    Scalar("momentum", UNIT),
    Array("running_mean", Shape.PER_CHANNEL, written=True),
    Array("running_var", Shape.PER_CHANNEL, written=True),
    Y,
    Array("mean", Shape.PER_CHANNEL, written=True, out="mean_out"),
    Array("invstd", Shape.PER_CHANNEL, written=True, out="invstd_out"),
)
_INFERENCE_ARGS = (
    X,
    GAMMA,
    BETA_SHIFT,
    Array("running_mean", Shape.PER_CHANNEL),
    Array("running_var", Shape.PER_CHANNEL),
    EPS,
    Y,
)
DY = Array("dy", Shape.LIKE_SOURCE)
_BACKWARD_SAVED = (
    X,
    GAMMA,
    Array("mean", Shape.PER_CHANNEL),
    Array("invstd", Shape.PER_CHANNEL),
    Array("dx", Shape.LIKE_SOURCE, written=True, out="dx_out"),
    Array("dgamma", Shape.PER_CHANNEL, written=True, out="dgamma_out"),
    Array("dbeta", Shape.PER_CHANNEL, written=True, out="dbeta_out"),
)
_RUNNING = (("running_mean", "running_var"),)

BATCHNORM_FORWARD = Kernel(
    "batchnorm_forward", Layout.CHANNELS, _FORWARD_ARGS, together=_RUNNING, min_values=2
)
BATCHNORM_INFERENCE = Kernel("batchnorm_inference", Layout.CHANNELS, _INFERENCE_ARGS)
BATCHNORM_BACKWARD = Kernel("batchnorm_backward", Layout.CHANNELS, (DY, *_BACKWARD_SAVED))
BATCHNORM_RELU_FORWARD = Kernel(
    "batchnorm_relu_forward", Layout.CHANNELS, _FORWARD_ARGS, together=_RUNNING, min_values=2
)
BATCHNORM_RELU_INFERENCE = Kernel("batchnorm_relu_inference", Layout.CHANNELS, _INFERENCE_ARGS)
BATCHNORM_RELU_BACKWARD = Kernel(
    "batchnorm_relu_backward",
    Layout.CHANNELS,
    (DY, Array("y", Shape.LIKE_SOURCE), *_BACKWARD_SAVED),
)
ADAM_UPDATE = Kernel(
    "adam_update",
    Layout.ELEMENTS,
    (
        PARAM,
        GRAD,
        _state("m", "ms"),
        _state("v", "vs"),
        Scalar("step", COUNT, note=" (1 for the first update)"),
        LR,
        Scalar("beta1", BETA),
        Scalar("beta2", BETA),
        Scalar("eps", POSITIVE),
        WEIGHT_DECAY,
    ),
)
MOMENTUM_UPDATE = Kernel(
    "momentum_update",
    Layout.ELEMENTS,
    (PARAM, GRAD, _state("velocity", "velocities"), LR, Scalar("beta", BETA)),
)
RMSPROP_UPDATE = Kernel(
    "rmsprop_update",
    Layout.ELEMENTS,
    (PARAM, GRAD, _state("sq", "sqs"), LR, Scalar("beta", BETA), EPS),
)
SGD_UPDATE = Kernel("sgd_update", Layout.ELEMENTS, (PARAM, GRAD, LR, WEIGHT_DECAY))

SOFTMAX_CROSS_ENTROPY = Kernel(
    "softmax_cross_entropy",
    Layout.ROWS,
    (
        Array("logits", Shape.SOURCE),
        Array("labels", Shape.PER_ROW, labels=True),
        Scalar("scale", POSITIVE, note=" (1 / N for the gradient of the mean loss)"),
        Array("loss", Shape.PER_ROW, written=True, out="loss_out"),
        Array("hit", Shape.PER_ROW, written=True, out="hit_out"),
        Array("grad", Shape.LIKE_SOURCE, written=True, out="grad_out"),
    ),
)

KERNELS = (
    BATCHNORM_FORWARD,
    BATCHNORM_INFERENCE,
    BATCHNORM_BACKWARD,
    BATCHNORM_RELU_FORWARD,
    BATCHNORM_RELU_INFERENCE,
    BATCHNORM_RELU_BACKWARD,
    SOFTMAX_CROSS_ENTROPY,
    ADAM_UPDATE,
    MOMENTUM_UPDATE,
    RMSPROP_UPDATE,
    SGD_UPDATE,
)
