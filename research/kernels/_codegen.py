"""Python functions written from the table: the checked functions and the plans' `step`.

A call on small arrays costs a few microseconds, most of it the checks, so the checks of each
kernel run as straight-line code: one statement per argument and one chain of comparisons for
all the scalars, as one would write them by hand. `checked` and `step` write that code from a
`Kernel` of the table (the way `dataclasses` writes `__init__`), compile it once at import and
register its text with `linecache`, so tracebacks and debuggers show the lines that ran.

Both take a stub: a function with the public signature (names, order, defaults) and the
docstring, and nothing else. A checked function's parameters are its kernel's arguments (the
output buffers under their keywords: `out`, `dx_out`); a `step` takes the kernel's scalars in
order, under names of its own (`t` for `step`). A stub that does not fit is refused at import.
"""

from __future__ import annotations

import inspect
import linecache
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

import numpy as np

from research._step import call as packed_step
from research.kernels import _checks
from research.kernels._c import F32, F64, LABELS, LABELS_CTYPE, NULL, from_buffer
from research.kernels._table import DOUBLE_MAX, INF, Array, Kernel, Layout, Range, Scalar, Shape

F = TypeVar("F", bound=Callable)

_HELPERS = {
    "_INF": INF,
    "_NULL": NULL,
    "_from_buffer": from_buffer,
    "_source": _checks.source,
    "_buffer": _checks.buffer,
    "_output": _checks.output,
    "_channels": _checks.channels,
    "_rows": _checks.rows,
    "_labels": _checks.labels,
    "_owned_distinct": _checks.owned_distinct,
    "_disjoint": _checks.disjoint,
    "_scalars": _checks.scalars,
    "_ndarray": np.ndarray,
    "_empty": np.empty,
    "_prod": math.prod,
    "_F32": F32,
    "_F64": F64,
    "_DT32": F32.dtype,  # numpy's float32 and float64 dtypes are singletons: `is` tests them
    "_DT64": F64.dtype,
    "_DTL": LABELS,
    "_DTU": np.dtype(np.uint64),  # labels seen as unsigned: a negative one is huge, so max < K tests both ends
    "_LABELS_CT": LABELS_CTYPE,
    "_maximum": np.maximum.reduce,
}


class _Slow(Exception):
    """Raised by a checked function's common-case path to hand the call to the full checks."""

# The largest int CPython compares in one step (one 30-bit digit, specialized in 3.11): an
# integer scalar's inline test stops there, saving a few percent of a plan's step.
_COMPACT = 2**30 - 1

# The local names of the expected shapes, in both the inline path and the full checks.
_SHAPES = {Shape.LIKE_SOURCE: "_like", Shape.PER_CHANNEL: "_per_channel", Shape.PER_ROW: "_per_row"}


def range_test(range_: Range, label: str) -> str:
    """A Python expression true when `label` is in the range: `0.0 < eps and eps <=
    1.7976931348623157e+308`.

    An open-ended float's range ends at the largest double (written out: a constant costs less
    than a global), which also refuses inf, NaN and a Python int too large for a double
    (`10**400`). An integer's test ends at `_COMPACT`, below its C type's largest value
    (`type(t) is int and 1 <= t and t <= 1073741823`): a larger one in the range fails it and
    passes the exact check (`_checks.scalar`) that every failed test calls. A float's test
    holds for a Python float only; any other number (an int, numpy's scalars) takes the exact
    check, which reads numpy's floats as Python floats. The comparisons
    are joined by `and` rather than chained (`0.0 < eps <= ...`): the same tests without the
    stack shuffling of a chain. Each of the three saves a few percent of a plan's step."""
    low = f"{range_.low!r} {'<=' if range_.low_closed else '<'} {label}"
    if range_.integer:
        return f"type({label}) is int and {low} and {label} <= {min(range_.high, _COMPACT)!r}"
    # Only a Python float takes the fast test: numpy's float32 would compare in float32, where
    # the largest double is inf (so inf passes) and every comparison warns of the overflow.
    if range_.high == INF:
        return f"type({label}) is float and {low} and {label} <= {DOUBLE_MAX!r}"
    return f"type({label}) is float and {low} and {label} {'<=' if range_.high_closed else '<'} {range_.high!r}"


def packed_ranges(kernel: Kernel) -> tuple[tuple, ...]:
    """The ranges of the kernel's scalars as the plans' C step tests them (research._step):
    (integer, low, low closed, high, high closed) each. An integer's ends are included and stop
    at 2**53, beyond which a double (the packed kernels' type) is not exact: a larger step
    takes the plan's Python path. An open-ended float ends at the largest double, included."""
    ranges = []
    for scalar in kernel.scalars:
        r = scalar.range
        if r.integer:
            ranges.append((True, int(r.low) + (0 if r.low_closed else 1), True, min(int(r.high), 2**53), True))
        elif r.high == INF:
            ranges.append((False, float(r.low), r.low_closed, DOUBLE_MAX, True))
        else:
            ranges.append((False, float(r.low), r.low_closed, float(r.high), r.high_closed))
    return tuple(ranges)


def _scalar_check(scalars: Sequence[Scalar], labels: Sequence[str]) -> list[str]:
    """Lines testing every scalar in one chain; the culprit is named only when it fails."""
    if not scalars:
        return []
    chain = " and ".join(range_test(s.range, label) for s, label in zip(scalars, labels))
    return ["try:", f"    _ok = {chain}", "except TypeError:  # a string or None: compared, it raises", "    _ok = False",
            "if not _ok:", f"    _scalars(_SCALARS, _LABELS, ({', '.join(labels)},))"]


def _compile(stub: Callable, params: str, body: list[str], constants: dict, part: str = "") -> Callable:
    """Compile `def <stub name>(<params>): <body>` and give it the stub's defaults and docs
    (`part` names a second function of one stub in tracebacks: `<...batchnorm_forward.checks>`)."""
    name = stub.__name__
    text = f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in body)
    filename = f"<{stub.__module__}.{stub.__qualname__}{'.' + part if part else ''}>"
    namespace = {**_HELPERS, **constants}
    exec(compile(text, filename, "exec"), namespace)  # the text written above, nothing else
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    fn = namespace[name]
    fn.__defaults__ = stub.__defaults__
    fn.__kwdefaults__ = stub.__kwdefaults__
    fn.__doc__ = stub.__doc__
    fn.__module__ = stub.__module__
    fn.__qualname__ = stub.__qualname__
    fn.__annotations__ = dict(stub.__annotations__)
    return fn


def _parameters(stub: Callable, skip_self: bool = False) -> list[inspect.Parameter]:
    params = list(inspect.signature(stub).parameters.values())[1 if skip_self else 0 :]
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind not in kinds for p in params):
        raise TypeError(f"{stub.__qualname__}: plain and keyword-only parameters only")
    return params


def _header(params: list[inspect.Parameter], first: str = "") -> str:
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    keyword = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    names = [first] if first else []
    return ", ".join([*names, *positional, *(["*", *keyword] if keyword else [])])


def checked(kernel: Kernel) -> Callable[[F], F]:
    """Decorator: the stub's signature and docstring, with the kernel's checks and C call.

    The function checks its arguments in this order, before any C runs: the source array
    (type, dtype, contiguity) and the sizes; the other required arrays (type, dtype, shape,
    contiguity, writability when written); the scalars; the optional groups (all or none);
    the output buffers, allocated when not given; the overlap of written arrays with the
    others. Then it calls the C function of the source's dtype and returns the outputs.

    Two functions are written. The one returned runs the common case with every test inline
    (`_Fast`): plain aligned ndarrays of the right dtype and shape, scalars in range, arrays that own
    their memory. Anything else (a subclass, a wrong dtype or shape, a non-contiguous or
    read-only array, a view whose overlap must be measured) hands the same arguments to the
    second, the full checks above (`_Body`), which raise the error or run the call. Both
    accept exactly the same calls; the first only costs less (about 40% less on small arrays).
    """

    def decorate(stub: F) -> F:
        params = _parameters(stub)
        if sorted(p.name for p in params) != sorted(a.keyword for a in kernel.args):
            raise TypeError(
                f"{stub.__qualname__} must take exactly the arguments of {kernel.name}: "
                f"{', '.join(a.keyword for a in kernel.args)}"
            )
        body = _Body(kernel)
        full = _compile(stub, _header(params), body.lines, body.constants, part="checks")
        fast = _Fast(kernel, params)
        constants = {**body.constants, "_checked": full, "_Slow": _Slow}
        return _compile(stub, _header(params), fast.lines, constants)  # type: ignore

    return decorate


class _Fast:
    """The lines of a checked function's common case, every test inline; any other case
    raises `_Slow`, and the function hands its arguments to the full checks (`_checked`).

    `from_buffer` itself refuses a non-contiguous array, or a read-only one it must write,
    with a ValueError: that, and a TypeError from a scalar of another type, hand over too.
    Nothing is written before the C call, which comes after the hand-over point."""

    def __init__(self, kernel: Kernel, params: list[inspect.Parameter]):
        self.kernel = kernel
        src = kernel.source.keyword
        self.like = "_like"
        checks = [f"if type({src}) is not _ndarray:", "    raise _Slow", f"_dt = {src}.dtype",
                  "if _dt is _DT32:", "    _twin = _F32", "elif _dt is _DT64:", "    _twin = _F64",
                  "else:", "    raise _Slow", f"if not {src}.flags.aligned:", "    raise _Slow",
                  "_ct = _twin.ctype", f"_like = {src}.shape"]
        if kernel.layout is Layout.CHANNELS:
            checks += ["if len(_like) == 2:", "    _n, _c = _like", "    _inner = 1",
                       "elif len(_like) > 2:", "    _n, _c, _inner = _like[0], _like[1], _prod(_like[2:])",
                       "else:", "    raise _Slow"]
            if kernel.min_values:
                checks += [f"if _n * _inner < {kernel.min_values}:", "    raise _Slow"]
            checks.append("_per_channel = (_c,)")
            sizes = "_n, _c, _inner"
        elif kernel.layout is Layout.ROWS:
            checks += ["if len(_like) != 2:", "    raise _Slow", "_n, _k = _like", "if _k < 1:", "    raise _Slow",
                       "_per_row = (_n,)"]
            sizes = "_n, _k"
        else:
            sizes = f"{src}.size"
        required = [a for a in kernel.arrays
                    if a.shape is not Shape.SOURCE and not a.out and not kernel.optional(a.name)]
        if required:
            checks += [f"if not ({' and '.join(self.fits(a.keyword, a) for a in required)}):", "    raise _Slow"]
        if kernel.scalars:
            chain = " and ".join(range_test(s.range, s.keyword) for s in kernel.scalars)
            checks += [f"if not ({chain}):", "    raise _Slow"]
        pointers = [f"_p_{kernel.source.name} = {self.pointer(src, kernel.source)}"]
        pointers += [f"_p_{a.name} = {self.pointer(a.keyword, a)}" for a in required]
        groups = [[a for a in kernel.arrays if a.name in g] for g in kernel.together]
        for arrays in groups:
            checks += ["if " + " and ".join(f"{a.keyword} is None" for a in arrays) + ":",
                       "    " + " = ".join(f"_p_{a.name}" for a in arrays) + " = _NULL",
                       "elif " + " and ".join(self.fits(a.keyword, a) for a in arrays) + ":",
                       *(f"    _p_{a.name} = {self.pointer(a.keyword, a)}" for a in arrays),
                       "else:", "    raise _Slow"]
        for a in kernel.outputs:
            shape = _SHAPES[a.shape]
            checks += [f"if {a.keyword} is None:", f"    _o_{a.name} = _empty({shape}, _dt)",
                       f"elif {self.fits(a.keyword, a)}:", f"    _o_{a.name} = {a.keyword}",
                       "else:", "    raise _Slow"]
            pointers.append(f"_p_{a.name} = _from_buffer(_ct, _o_{a.name}, True)")
        checks += self.owned(groups)
        handed = ", ".join(p.name if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD else f"{p.name}={p.name}"
                           for p in params)
        c_args = [f"_p_{a.name}" if isinstance(a, Array) else a.keyword for a in kernel.args]
        returned = ", ".join(f"_o_{a.name}" for a in kernel.outputs)
        # The hand-over is outside the `except`, so its errors do not chain onto `_Slow`.
        self.lines = ["try:", *(f"    {line}" for line in checks + pointers),
                      "except (_Slow, ValueError, TypeError):", "    pass", "else:",
                      f"    _twin.{kernel.name}(_twin.isa, {sizes}, {', '.join(c_args)})",
                      f"    return {returned}".rstrip(), f"return _checked({handed})"]

    def fits(self, label: str, a: Array) -> str:
        """True when `label` is a plain ndarray of the call's dtype (int64 labels in [0, K)), its
        expected shape, and aligned to its dtype."""
        shape = _SHAPES[a.shape]
        if a.labels:
            return (f"type({label}) is _ndarray and {label}.dtype is _DTL and {label}.shape == {shape} "
                    f"and {label}.flags.aligned and (_n == 0 or _maximum({label}.view(_DTU)) < _k)")
        return (f"type({label}) is _ndarray and {label}.dtype is _dt and {label}.shape == {shape} "
                f"and {label}.flags.aligned")

    def pointer(self, label: str, a: Array) -> str:
        """Its cffi buffer (a ValueError when not C-contiguous, or read-only and written)."""
        if a.labels:
            return f"_from_buffer(_LABELS_CT, {label})"
        return f"_from_buffer(_ct, {label}{', True' if a.written else ''})"

    def owned(self, groups: list[list[Array]]) -> list[str]:
        """Hand over when a written array the caller gave might overlap another argument: the
        arrays must each own their memory (no base) and a written one must not be passed again
        (fresh outputs never are). Inline, for the table's kernels, which have at most one
        optional group."""
        kernel = self.kernel
        assert len(groups) <= 1, f"{kernel.name}: the inline overlap test handles one optional group"
        given = [f"{a.keyword} is not None" for a in kernel.outputs]
        given += [f"{g[0].keyword} is not None" for g in groups if g[0].written]
        always = any(a.written and not a.out and not kernel.optional(a.name) for a in kernel.arrays)
        if not (always or given):
            return []
        named = [(f"_o_{a.name}" if a.out else a.keyword, a) for a in kernel.arrays if not kernel.optional(a.name)]
        lines = [f"if not ({self.distinct(named)}):", "    raise _Slow"]
        if groups:
            first = groups[0][0].keyword
            lines = [f"if {first} is None:", *(f"    {line}" for line in lines),
                     f"elif not ({self.distinct(named + [(a.keyword, a) for a in groups[0]])}):", "    raise _Slow"]
        if always:
            return lines
        return [f"if {' or '.join(given)}:", *(f"    {line}" for line in lines)]

    def distinct(self, named: list[tuple[str, Array]]) -> str:
        """True when every array owns its memory and no written one is passed twice.

        Arrays that own their memory overlap only when they are the same object, and the fast
        path has checked every dtype and shape by then: only two arrays of one dtype and one
        rank can be the same object (the source and those shaped like it have two axes or more
        except in the ELEMENTS layout; per-channel and per-row arrays one; labels are int64).
        So the test is one `is not` per such pair with a written array in it: 15 for a
        batchnorm forward with running statistics, about a third of the cost of a set of 8
        ids (0.8 us of a 5.5 us call on (64, 128)).
        """
        def rank(a: Array) -> tuple[bool, bool]:
            vector = a.shape in (Shape.PER_CHANNEL, Shape.PER_ROW) and self.kernel.layout is not Layout.ELEMENTS
            return a.labels, vector

        bases = [f"{name}.base is None" for name, _ in named]
        pairs = [f"{n1} is not {n2}" for i, (n1, a1) in enumerate(named) for n2, a2 in named[i + 1:]
                 if (a1.written or a2.written) and rank(a1) == rank(a2)]
        return " and ".join(bases + pairs)


class _Body:
    """The lines of one checked function, in the order `checked` describes."""

    def __init__(self, kernel: Kernel):
        self.kernel = kernel
        self.src = kernel.source.keyword
        scalars = [s.keyword for s in kernel.scalars]
        self.constants: dict = {"_SCALARS": kernel.scalars, "_LABELS": scalars}
        self.groups = [[a for a in kernel.arrays if a.name in g] for g in kernel.together]
        self.lines = self.sizes()
        required = [a for a in kernel.arrays if a.shape is not Shape.SOURCE and not a.out]
        self.lines += [f"_p_{a.name} = {self.check(a)}" for a in required
                       if not kernel.optional(a.name)]
        self.lines += _scalar_check(kernel.scalars, scalars)
        for i, arrays in enumerate(self.groups):
            self.lines += self.together(i, arrays)
        self.lines += self.outputs_and_overlaps()
        c_args = [f"_p_{a.name}" if isinstance(a, Array) else a.keyword for a in kernel.args]
        self.lines.append(f"_twin.{kernel.name}(_twin.isa, {self.c_sizes}, {', '.join(c_args)})")
        if kernel.outputs:
            self.lines.append(f"return {', '.join(a.keyword for a in kernel.outputs)}")

    def sizes(self) -> list[str]:
        """The source array's checks and pointer, the C sizes, the expected shapes."""
        kernel, src = self.kernel, self.src
        written = ", True" if kernel.source.written else ""
        lines = [f"_twin = _source({src!r}, {src}{written})"]
        shapes = {a.shape for a in kernel.arrays}
        if kernel.layout is Layout.CHANNELS:
            lines.append(f"_n, _c, _inner = _channels({src!r}, {src})")
            if kernel.min_values:
                self.constants["_TOO_FEW"] = partial(_checks.too_few_values, src,
                                                     minimum=kernel.min_values)
                lines += [f"if _n * _inner < {kernel.min_values}:",
                          f"    raise ValueError(_TOO_FEW({src}.shape))"]
            self.c_sizes = "_n, _c, _inner"
            if Shape.PER_CHANNEL in shapes:
                lines.append("_per_channel = (_c,)")
        elif kernel.layout is Layout.ROWS:
            lines.append(f"_n, _k = _rows({src!r}, {src})")
            self.c_sizes = "_n, _k"
            if Shape.PER_ROW in shapes:
                lines.append("_per_row = (_n,)")
        else:
            self.c_sizes = f"{src}.size"
        if Shape.LIKE_SOURCE in shapes:
            lines.append(f"_like = {src}.shape")
        lines.append(f"_p_{kernel.source.name} = _from_buffer(_twin.ctype, {src}{written})")
        return lines

    def check(self, a: Array) -> str:
        """The expression checking array `a` and giving its pointer."""
        if a.labels:
            return f"_labels({a.keyword!r}, {a.keyword}, {_SHAPES[a.shape]}, _k)"
        shape, what = _SHAPES[a.shape], a.shape.what(self.src)
        written = ", True" if a.written else ""  # an argument fewer for the arrays only read
        return f"_buffer({a.keyword!r}, {a.keyword}, _twin, {shape}, {what!r}{written})"

    def together(self, i: int, arrays: list[Array]) -> list[str]:
        """Optional arrays: all None (NULL to C), all checked, or an error."""
        self.constants[f"_TOGETHER{i}"] = _checks.together([a.keyword for a in arrays])
        return [
            "if " + " and ".join(f"{a.keyword} is None" for a in arrays) + ":",
            "    " + " = ".join(f"_p_{a.name}" for a in arrays) + " = _NULL",
            "elif " + " or ".join(f"{a.keyword} is None" for a in arrays) + ":",
            f"    raise ValueError(_TOGETHER{i})",
            "else:",
            *(f"    _p_{a.name} = {self.check(a)}" for a in arrays),
        ]

    def outputs_and_overlaps(self) -> list[str]:
        """Output buffers (fresh ones when not given), then the overlap of written arrays with
        the others, skipped when the caller gave no written array (fresh outputs overlap
        nothing) and, cheaply, when every array owns its memory and comes once."""
        kernel = self.kernel
        given = [f"{a.keyword} is not None" for a in kernel.outputs]
        given += [f"{g[0].keyword} is not None" for g in self.groups if g[0].written]
        always = any(a.written and not a.out and not kernel.optional(a.name) for a in kernel.arrays)
        lines = [f"_given = {' or '.join(given)}"] if given and not always else []
        for a in kernel.outputs:
            shape, what = _SHAPES[a.shape], a.shape.what(self.src)
            lines.append(f"{a.keyword}, _p_{a.name} = "
                         f"_output({a.keyword!r}, {a.keyword}, _twin, {shape}, {what!r})")
        if not (always or given):
            return lines
        arrays = ", ".join(a.keyword for a in kernel.arrays if not kernel.optional(a.name))
        overlap = []
        if self.groups:
            overlap.append(f"_arrays = ({arrays},)")
            for group in self.groups:
                overlap += [f"if {group[0].keyword} is not None:",
                            f"    _arrays += ({', '.join(a.keyword for a in group)},)"]
            arrays = "*_arrays"
        pairs = ["(" + ", ".join(f"({a.keyword!r}, {a.keyword})" for a in side) + ",)"
                 for side in (kernel.written, kernel.read)]
        overlap += [f"if not _owned_distinct({arrays}):", f"    _disjoint({pairs[0]}, {pairs[1]})"]
        return lines + (overlap if always else ["if _given:", *(f"    {x}" for x in overlap)])


def step(kernel: Kernel) -> Callable[[F], F]:
    """Decorator of an optimizer plan's `step(self, <the kernel's scalars>)`. First the C path:
    `research._step.call(self._packed, <the scalars>)` tests them against their ranges
    (`packed_ranges`) and makes the plan's calls, all in C. When it declines (a scalar that is
    not a plain int or float in range: nothing was called), the Python path: check the scalars
    exactly (one chain of comparisons, then the error a checked function raises), then make the
    calls of the batched kernel in order, `_update(_isa, _count, _arrays, <the scalars>)` for
    each run of `self._calls`. Both call the same kernels with the same values.

    The stub's parameters after `self` are the kernel's scalars in the C order, under the
    names the plan gives them (`t` for `step`); the C calls take them last.
    """

    def decorate(stub: F) -> F:
        params = _parameters(stub, skip_self=True)
        scalars = kernel.scalars
        last = tuple(kernel.args[-len(scalars) :]) if scalars else ()
        if not kernel.batched:
            raise TypeError(f"{stub.__qualname__}: {kernel.name} has no batched C kernel to call")
        if not scalars or last != scalars or len(params) != len(scalars):
            raise TypeError(
                f"{stub.__qualname__} must take the scalars of {kernel.name}, which come last: "
                f"{', '.join(s.name for s in kernel.scalars)}"
            )
        labels = [p.name for p in params]
        call = f"_update(_isa, _count, _arrays, {', '.join(labels)})"
        body = [
            f"if _packed_step(self._packed, {', '.join(labels)}):",
            "    return",
            *_scalar_check(kernel.scalars, labels),
            "_update, _isa, _count, _arrays, _calls = self._calls",
            call,
            "while _calls:  # the next runs: the plan's arrays have several dtypes",
            "    _update, _isa, _count, _arrays, _calls = _calls",
            f"    {call}",
        ]
        constants = {"_SCALARS": kernel.scalars, "_LABELS": labels, "_packed_step": packed_step}
        return _compile(stub, _header(params, "self"), body, constants)  # type: ignore

    return decorate
