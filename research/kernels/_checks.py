"""The argument checks and their messages, shared by the functions and the plans.

Each check reads array attributes only (no copies, no conversions) and raises TypeError for a
wrong type or dtype, ValueError for a wrong shape, layout, writability, overlap or value, with
a one-line message naming the argument and what it should be. `label` is the argument's name
as the caller knows it: `out`, `y`, `grads[3]`.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from research.kernels import _c
from research.kernels._c import LABELS, LABELS_CTYPE, TWINS, Twin, from_buffer
from research.kernels._table import C_INTEGERS, DOUBLE_MAX, KERNELS, Array, Kernel, Scalar

_twin_of = TWINS.get  # bound once: a method of an imported name is looked up on every call


def source(label: str, a, writable: bool = False) -> Twin:
    """Check the array that fixes a call's dtype; return the C functions of that dtype."""
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{label} must be a numpy.ndarray of float32 or float64, got {type(a).__name__}"
        )
    twin = _twin_of(a.dtype)
    if twin is None:
        raise TypeError(
            f"{label} must have dtype float32 or float64 (native byte order), got {a.dtype}"
        )
    laid_out(label, a, writable)
    return twin


def laid_out(label: str, a: np.ndarray, writable: bool = False) -> None:
    """Refuse an array C cannot read as a plain C array: a masked one (the kernels read every
    value, so its mask would be ignored), one not C-contiguous, not aligned to its dtype (a
    view at an odd byte offset, as numpy.frombuffer can make), or read-only but written."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{label} is a masked array, whose mask the kernels would ignore; pass "
                        f"{label}.filled(value) or {label}.data")
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{label} must be C-contiguous (use numpy.ascontiguousarray)")
    if not flags.aligned:
        raise ValueError(f"{label} is not aligned to its {a.dtype.itemsize}-byte values (a view at an odd byte "
                         f"offset); pass {label}.copy()")
    if writable and not flags.writeable:
        raise ValueError(f"{label} is read-only but is written; pass a writable array")


def buffer(label: str, a, twin: Twin, shape: tuple, what: str, writable: bool = False):
    """Check an array against the call's dtype and its expected shape; return its cffi buffer.

    `what` says where the expected shape comes from, for the message.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{label} must be a numpy.ndarray of {twin.dtype}, got {type(a).__name__}")
    dt = a.dtype
    if dt is not twin.dtype and dt != twin.dtype:
        raise TypeError(f"{label} must have dtype {twin.dtype} like the other arrays, got {dt}")
    if a.shape != shape:
        raise ValueError(f"{label} must have shape {shape} ({what}), got {a.shape}")
    laid_out(label, a, writable)
    return from_buffer(twin.ctype, a, writable)


def output(label: str, a, twin: Twin, shape: tuple, what: str):
    """An output: a fresh array when `a` is None, else `a` checked as a written buffer.
    Returns (the array, its cffi buffer)."""
    if a is None:
        a = np.empty(shape, twin.dtype)
        return a, from_buffer(twin.ctype, a)
    return a, buffer(label, a, twin, shape, what, True)


def channels(label: str, x: np.ndarray) -> tuple[int, int, int]:
    """(n, c, inner) of x viewed as (N, C, prod(spatial)), the layout of the C kernels."""
    shape = x.shape
    if len(shape) < 2:
        raise ValueError(f"{label} must have shape (N, C) or (N, C, *spatial), got {shape}")
    return shape[0], shape[1], 1 if len(shape) == 2 else math.prod(shape[2:])


def rows(label: str, s: np.ndarray) -> tuple[int, int]:
    """(n, k) of s, which must be (N, K) with K >= 1: N rows of K values."""
    shape = s.shape
    if len(shape) != 2 or shape[1] < 1:
        raise ValueError(f"{label} must have shape (N, K) with K >= 1 (a row of K class scores per "
                         f"sample), got {shape}")
    return shape


def labels(label: str, a, shape: tuple, k: int):
    """Check class labels: int64, the expected shape, C-contiguous, each in [0, k); return the
    cffi buffer. C indexes a row with each label, so the range is checked here."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{label} must be a numpy.ndarray of int64 class labels, got {type(a).__name__}")
    if a.dtype != LABELS:
        raise TypeError(f"{label} must have dtype int64 (class labels; use {label}.astype(numpy.int64)), "
                        f"got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{label} must have shape {shape} (one label per row), got {a.shape}")
    laid_out(label, a)
    # One reduction: seen as unsigned, a negative label is at least 2**63, so over k too.
    if a.size and int(a.view(np.uint64).max()) >= k:
        raise ValueError(f"{label} must be class indices in [0, {k}), got values in [{int(a.min())}, {int(a.max())}]")
    return from_buffer(LABELS_CTYPE, a)


def too_few_values(label: str, shape: tuple, minimum: int) -> str:
    """The message for a batch with fewer than `minimum` values per channel."""
    return (
        f"{label} must have at least {minimum} values per channel "
        f"(N * prod(spatial) >= {minimum}), got {shape}"
    )


def join(labels) -> str:
    """`a`, `a and b`, `a, b and c`."""
    *head, last = labels
    return f"{', '.join(head)} and {last}" if head else last


def together(labels) -> str:
    """The message for optional arrays given in part."""
    both = "both or neither" if len(labels) == 2 else "all or none"
    return f"{join(labels)} must be given together ({both})"


def owned_distinct(*arrays) -> bool:
    """True when each array owns its memory (no base) and none is passed twice.

    Such arrays cannot overlap, so the exact (slower) check can be skipped.
    """
    for a in arrays:
        if a.base is not None:
            return False
    return len(set(map(id, arrays))) == len(arrays)


def disjoint(written, read) -> None:
    """Raise ValueError when an array a kernel writes shares memory with another argument.

    written and read are (label, array or None) pairs, in the C order. numpy's bounds check
    is exact here, as every array is C-contiguous. Callers skip this when owned_distinct holds.
    """
    written = [(label, a) for label, a in written if a is not None]
    others = written + [(label, a) for label, a in read if a is not None]
    for i, (label, a) in enumerate(written):
        for other, b in others[i + 1 :]:
            if np.may_share_memory(a, b):
                raise ValueError(
                    f"{label} shares memory with {other}; the kernel writes {label}, "
                    "so pass separate arrays"
                )


def scalar(spec: Scalar, label: str, value) -> None:
    """Raise when `value` is not in the scalar's range (TypeError for a non-integer count).

    The range ends where the C type does: an integer beyond its C type (`2**63` for a long
    long, numpy's uint64 included) or a number beyond the largest double (`10**400`) is a
    ValueError here, never cffi's OverflowError."""
    range_ = spec.range
    if range_.integer:
        if type(value) is not int and not isinstance(value, np.integer):
            raise TypeError(f"{label} must be {range_.describe()}, got {type(value).__name__}")
        value = int(value)  # exact comparisons, whatever numpy's integer type
    elif not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        # a string, None, a complex: no comparison to fail inside the range; True is no rate
        raise TypeError(f"{label} must be {range_.describe()}{spec.note}, got {type(value).__name__} {shown(value)}")
    elif isinstance(value, np.floating):  # compared as a double: in float32 the largest double is inf
        value = float(value)
    if value not in range_:
        raise ValueError(f"{label} must be {range_.describe()}{spec.note}, got {shown(value)}")


def shown(value) -> str:
    """`value` for a message: its repr, an integer of many digits abbreviated."""
    text = repr(value)
    if isinstance(value, int) and len(text) > 30:
        text = f"{text[:6]}...{text[-3:]} (an integer of {len(str(abs(value)))} digits)"
    if isinstance(value, int) and abs(value) > DOUBLE_MAX:
        text += ", beyond the largest C double"
    return text


def scalars(specs, labels, values) -> None:
    """`scalar` for each value in turn. The hot paths test all their scalars in one chain of
    comparisons and call this, which names the culprit, only when that chain fails."""
    for spec, label, value in zip(specs, labels, values):
        scalar(spec, label, value)


def c_signature_problems(kernels=KERNELS) -> list[str]:
    """Where the table disagrees with the compiled C functions' own argument types: an
    integer scalar whose C type is not its range's, a float one passed as an integer, an
    array passed as a number; for a batched kernel, arguments or struct fields other than
    the single kernel's. Empty when they agree (tests/test_limits.py checks it)."""
    problems = []
    for kernel in kernels:
        sizes = 1 + len(kernel.layout.value)  # the instruction set, then the sizes
        for suffix in ("f32", "f64"):
            c_name = f"rs_{kernel.name}_{suffix}"
            c_args = _c.ffi.typeof(_c.ffi.addressof(_c.lib, c_name)).args
            if len(c_args) != sizes + len(kernel.args):
                problems.append(f"{c_name} takes {len(c_args)} arguments, the table declares the instruction "
                                f"set, {sizes - 1} sizes and {len(kernel.args)} arguments")
                continue
            if kernel.batched:
                problems += _batched_problems(kernel, suffix, c_args)
            for arg, c_arg in zip(kernel.args, c_args[sizes:]):
                c_type = c_arg.cname
                if isinstance(arg, Array):
                    ok = c_arg.kind == "pointer"
                elif arg.range.integer:
                    ok = c_type == arg.range.c_type and _c.ffi.sizeof(c_type) * 8 == _bits(c_type)
                else:
                    ok = c_type in ("float", "double")
                if not ok:
                    problems.append(f"{c_name}: {arg.name} is a C {c_type}, which the table's declaration "
                                    "does not match")
    return problems


def _batched_problems(kernel: Kernel, suffix: str, single: list) -> list[str]:
    """Where `rs_<name>s_<suffix>` and its struct disagree with the single kernel's C types
    (`single`): it must take the instruction set, the count, the structs and then the same
    scalars, and each struct hold the sizes and the arrays under their names in the table."""
    c_name, struct = f"rs_{kernel.name}s_{suffix}", f"struct rs_{kernel.name}_arrays_{suffix}"
    typeof = _c.ffi.typeof
    by_name = dict(zip(("isa", *kernel.layout.value, *(a.name for a in kernel.args)), single))
    want = [by_name["isa"], typeof("size_t"), typeof(f"{struct} *"), *(by_name[s.name] for s in kernel.scalars)]
    fields = [(name, field.type) for name, field in typeof(struct).fields]
    problems = []
    if list(typeof(_c.ffi.addressof(_c.lib, c_name)).args) != want:
        problems.append(f"{c_name} must take ({', '.join(t.cname for t in want)})")
    if fields != [(name, by_name[name]) for name in (*kernel.layout.value, *(a.name for a in kernel.arrays))]:
        problems.append(f"{struct} must hold {', '.join(kernel.layout.value)} and the arrays of {kernel.name}, "
                        "named and typed as its arguments")
    return problems


def _bits(c_type: str) -> int:
    """Bits of a C integer type of `C_INTEGERS`, from its range."""
    low, high = C_INTEGERS[c_type]
    return (high - low).bit_length()
