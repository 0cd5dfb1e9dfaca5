"""The CNN's 2x2 max pooling in C, bound to fixed arrays: `CornerPoolPlan`.

The kernels (`rs_max_pool_corners_forward/backward`, csrc/kernels.h) read a layout of the
CNN's own (research/nn/cnn.py): each channel's row holds the (0, 0) corners of its windows,
then the (0, 1), (1, 0) and (1, 1) corners, then values no window covers. That layout is not
one the table's checked functions describe, so this plan checks its arrays itself, with the
same checks and messages (`_checks`), once; each call is then one C call.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from research.kernels import _c, _checks


class CornerPoolPlan:
    """Max pooling over window corners, bound to x, y (forward) and dy, dx (backward).

    - x: (C, L), float32 or float64, C-contiguous: per channel the s (0, 0) corners of the
      windows, then the (0, 1), (1, 0), (1, 1) corners, then L - 4 * s values no window
      covers; only read
    - y: (C, s), written by forward(): the maximum of each window (numpy's maximum: a NaN wins)
    - dy: (C, s), the gradient with respect to y; only read
    - dx: (C, L), written by backward(): dy at each window's first corner equal to its
      maximum (the last corner when none is), zero everywhere else

    The arrays' contents may change between calls, their identity may not (as for
    `BatchNormPlan`); backward() reads y as the last forward() wrote it.
    """

    __slots__ = ("_forward", "_backward")

    def __init__(self, x, y, dy, dx):
        twin = _checks.source("x", x)
        if x.ndim != 2:
            raise ValueError(f"x must have shape (C, L): a row of window corners per channel, got {x.shape}")
        if not isinstance(y, np.ndarray):
            raise TypeError(f"y must be a numpy.ndarray of {twin.dtype}, got {type(y).__name__}")
        c, length = x.shape
        if y.ndim != 2 or y.shape[0] != c or 4 * y.shape[1] > length:
            raise ValueError(f"y must have shape (C, s) with 4 * s <= L for x (C, L) = {x.shape}, got {y.shape}")
        s = y.shape[1]
        bx = _checks.buffer("x", x, twin, (c, length), "the windows' corners")
        by = _checks.buffer("y", y, twin, (c, s), "one value per window", True)
        bdy = _checks.buffer("dy", dy, twin, (c, s), "the shape of y")
        bdx = _checks.buffer("dx", dx, twin, (c, length), "the shape of x", True)
        _checks.disjoint([("y", y)], [("x", x)])
        _checks.disjoint([("dx", dx)], [("dy", dy), ("x", x), ("y", y)])
        isa = twin.isa  # the instruction set when the plan was made, as other plans keep theirs
        self._forward = partial(getattr(_c.lib, f"rs_max_pool_corners_forward_{twin.suffix}"), isa, c, length, s,
                                bx, by)
        self._backward = partial(getattr(_c.lib, f"rs_max_pool_corners_backward_{twin.suffix}"), isa, c, length, s,
                                 bdy, bx, by, bdx)

    def forward(self) -> None:
        """y = the maximum of each window of x."""
        self._forward()

    def backward(self) -> None:
        """dx = dy routed to each window's first maximum, zero elsewhere."""
        self._backward()
