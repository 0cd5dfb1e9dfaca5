"""The CNN's 3x3 convolutions by Winograd's F(2x2, 3x3), bound to fixed arrays: `WinogradPlan`.

A 3x3 "same" convolution of an even image, computed per 4x4 input tile (2x2 outputs) as
16 products instead of 36 (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks"):

    V[p] = (B^T d B)[p]        d: each input tile, every channel          C: rs_winograd_input_forward
    U[p] = (G g G^T)[p]        g: each 3x3 kernel                          numpy: (16, 9) @ (9, K * C)
    M[p] = U[p] @ V[p]         (K, C) @ (C, tiles * n), p = 0..15          16 BLAS matmuls
    y    = A^T M A             each tile's 2x2 outputs                     C: rs_winograd_output_forward

and backward the adjoint of each step (dM = A dy A^T, dU[p] = dM[p] @ V[p]^T, dg = G^T dU G,
dV[p] = U[p]^T @ dM[p], dx = the tiles of B dV B^T summed where they lie). The products are
2.25x fewer multiplications than an im2col's, which is where a CNN block with many channels
spends its time. The layouts are the CNN's own (research/nn/cnn.py): the input (C, H, W, n)
with the batch innermost, the output (K, 4, tiles * n), each corner of the 2x2 tiles one run
(a tile is a pooling window). This plan checks its arrays once, with the same checks and
messages as the table's functions (`_checks`).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from research.kernels import _c, _checks

# G of F(2, 3), and (G kron G) applied to a kernel g flattened by rows: U = G g G^T, flattened.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.kron(_G, _G)  # (16, 9)


class WinogradPlan:
    """A 3x3 "same" convolution (cross-correlation, as PyTorch's Conv2d) by F(2x2, 3x3), bound to:

    - x: (C, H, W, n), H and W even, float32 or float64, C-contiguous; only read
    - weight: (K, C, 3, 3), the kernels; only read (forward() reads their current values)
    - z: (K, 4, H * W / 4 * n), written by forward(): z[o, 2 * a + b, t * n + i] is the output
      at row 2 * ti + a, column 2 * tj + b of sample i, tile t = ti * (W / 2) + tj
    - dz: (K, 4, H * W / 4 * n), the gradient with respect to z; only read
    - dweight: (K, C, 3, 3), written by backward()
    - dx: (C, H, W, n) written by backward(), or None when no input gradient is needed

    Work arrays (the 16 transformed planes) are the plan's own, made once. The arrays'
    contents may change between calls, their identity may not (as for `BatchNormPlan`);
    backward() reads what the last forward() transformed.
    """

    __slots__ = ("_weight", "_dweight", "_dx", "_u", "_v", "_m", "_dm", "_du", "_dv", "_w9", "_dw9", "_gg",
                 "_input", "_output", "_output_backward", "_input_backward")

    def __init__(self, x, weight, z, dz, dweight, dx=None):
        twin = _checks.source("x", x)
        if x.ndim != 4 or x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(f"x must have shape (C, H, W, n) with H and W even, got {x.shape}")
        c, h, w, n = x.shape
        if not isinstance(weight, np.ndarray):
            raise TypeError(f"weight must be a numpy.ndarray of {twin.dtype}, got {type(weight).__name__}")
        if weight.ndim != 4:
            raise ValueError(f"weight must have shape (K, {c}, 3, 3): K kernels 3x3 over the channels of x, "
                             f"got {weight.shape}")
        k = weight.shape[0]
        length = h * w // 4 * n
        bx = _c.from_buffer(twin.ctype, x, False)  # checked by source() above
        _checks.buffer("weight", weight, twin, (k, c, 3, 3), "K kernels 3x3 over the channels of x")
        bz = _checks.buffer("z", z, twin, (k, 4, length), "4 corners of each tile of x", True)
        bdz = _checks.buffer("dz", dz, twin, (k, 4, length), "the shape of z")
        _checks.buffer("dweight", dweight, twin, weight.shape, "the shape of weight", True)
        bdx = None if dx is None else _checks.buffer("dx", dx, twin, x.shape, "the shape of x", True)
        _checks.disjoint([("z", z)], [("x", x), ("weight", weight)])
        _checks.disjoint([("dweight", dweight)] + ([("dx", dx)] if dx is not None else []),
                         [("dz", dz), ("x", x), ("weight", weight), ("z", z)])
        dt = twin.dtype
        self._weight, self._dweight, self._dx = weight, dweight, dx
        self._v = np.empty((16, c, length), dt)
        self._m = np.empty((16, k, length), dt)
        self._u = np.empty((16, k, c), dt)
        self._dm, self._du = np.empty_like(self._m), np.empty_like(self._u)
        self._dv = None if dx is None else np.empty_like(self._v)
        self._w9, self._dw9 = np.empty((9, k, c), dt), np.empty((9, k, c), dt)
        self._gg = _GG.astype(dt)
        lib, suffix, isa = _c.lib, twin.suffix, twin.isa  # the instruction set when the plan was made
        self._input = partial(getattr(lib, f"rs_winograd_input_forward_{suffix}"), isa, c, h, w, n,
                              bx, _c.from_buffer(twin.ctype, self._v))
        self._output = partial(getattr(lib, f"rs_winograd_output_forward_{suffix}"), isa, k, length,
                               _c.from_buffer(twin.ctype, self._m), bz)
        self._output_backward = partial(getattr(lib, f"rs_winograd_output_backward_{suffix}"), isa, k, length,
                                        bdz, _c.from_buffer(twin.ctype, self._dm))
        self._input_backward = None if dx is None else partial(
            getattr(lib, f"rs_winograd_input_backward_{suffix}"), isa, c, h, w, n,
            _c.from_buffer(twin.ctype, self._dv), bdx)

    def forward(self) -> None:
        """z = the convolution of x with weight."""
        self._input()
        np.copyto(self._w9, self._weight.reshape(*self._u.shape[1:], 9).transpose(2, 0, 1))
        np.matmul(self._gg, self._w9.reshape(9, -1), out=self._u.reshape(16, -1))
        np.matmul(self._u, self._v, out=self._m)
        self._output()

    def backward(self) -> None:
        """dweight (and dx, when bound) from dz and the last forward()'s input."""
        self._output_backward()
        np.matmul(self._dm, self._v.transpose(0, 2, 1), out=self._du)
        np.matmul(self._gg.T, self._du.reshape(16, -1), out=self._dw9.reshape(9, -1))
        np.copyto(self._dweight.reshape(*self._u.shape[1:], 9), self._dw9.transpose(1, 2, 0))
        if self._input_backward is not None:
            np.matmul(self._u.transpose(0, 2, 1), self._dm, out=self._dv)
            self._input_backward()
