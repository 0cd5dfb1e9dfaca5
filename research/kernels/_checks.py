"""The argument checks and their messages, shared by the functions and the plans.

Each check reads array attributes only (no copies, no conversions) and raises TypeError for a
wrong type or dtype, ValueError for a wrong shape, layout, writability, overlap or value, with
a one-line message naming the argument and what it should be. `label` is the argument's name
as the caller knows it: `out`, `y`, `grads[3]`.
"""

from __future__ import annotations

import math

import numpy as np

from research.kernels._c import TWINS, Twin, from_buffer
from research.kernels._table import Scalar

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
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{label} must be C-contiguous (use numpy.ascontiguousarray)")
    if writable and not flags.writeable:
        raise ValueError(f"{label} is read-only but is written; pass a writable array")
    return twin


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
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{label} must be C-contiguous (use numpy.ascontiguousarray)")
    if writable and not flags.writeable:
        raise ValueError(f"{label} is read-only but is written; pass a writable array")
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
    """Raise when `value` is not in the scalar's range (TypeError for a non-integer count)."""
    range_ = spec.range
    if range_.integer and type(value) is not int and not isinstance(value, np.integer):
        raise TypeError(f"{label} must be {range_.describe()}, got {type(value).__name__}")
    if value not in range_:
        raise ValueError(f"{label} must be {range_.describe()}{spec.note}, got {value!r}")


def scalars(specs, labels, values) -> None:
    """`scalar` for each value in turn. The hot paths test all their scalars in one chain of
    comparisons and call this, which names the culprit, only when that chain fails."""
    for spec, label, value in zip(specs, labels, values):
        scalar(spec, label, value)
