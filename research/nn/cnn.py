"""A small convolutional classifier for image-shaped samples: im2col matmuls, C batchnorm kernels.

Architecture, with B = `blocks`, samples of shape (C_0, H_0, W_0) (``input_shape``) and K =
`n_classes` outputs. Block b = 1..B has C_b = round(channels * widen**(b - 1)) channels (at least
1, halves rounded up) and k x k kernels (k = `kernel_size`, odd, p = (k - 1) / 2)::

    h_0 = x                                              (N, C_0, H_0, W_0)
    block b = 1..B, on h_{b-1} of shape (N, C, H, W):
        z = conv(h_{b-1}, W_b)                           (N, C_b, H, W)   W_b: (C_b, C, k, k), no bias
            z[n, o, r, c] = sum_{i, u, v} W_b[o, i, u, v] * h_{b-1}[n, i, r + u - p, c + v - p]
            ("same" zero padding, stride 1, cross-correlation as in PyTorch's Conv2d)
        a = gamma_b * (z - mean) * invstd + beta_b      batchnorm per channel over (N, H, W)
        h_b = pool(max(a, 0))                            (N, C_b, H', W')  ReLU, then pool
            pool: 2x2 max pooling with stride 2 when H >= 4 and W >= 4, H' = H // 2, W' = W // 2
            (an odd size loses its last row or column, as with PyTorch's MaxPool2d(2)); else no
            pooling, H' = H, W' = W. So pooling never takes an image below 2x2.
    f = h_B flattened per sample in (channel, row, column) order     (N, D), D = C_B * H' * W'
    s = f @ W_{B+1} + b_{B+1}                            (N, K)   logits
    loss = mean_n [log sum_k exp(s_nk) - s_{n, y_n}]             softmax cross-entropy

The ReLU is fused into the batchnorm (`kernels.BatchNormPlan(..., relu=True)`: one C pass
forward, and backward one that masks the gradient by the ReLU's output on the fly), so it costs
no pass of its own; ReLU and max pooling commute (the max of the ReLUs is the ReLU of the max),
so this is the same as pooling first. The pooling is C too (`CornerPoolPlan`, csrc/pool_impl.h:
one pass each way over the corner runs below); a window's gradient goes to its first maximum in
row order, as in PyTorch. Batchnorm follows `research.kernels` (and PyTorch): the biased batch
variance normalizes, the unbiased one (over the m = N * H * W values of a channel) feeds the
running variance, and `momentum` weights the new value.

Parameters live in `CNN.params` (names in `CNN.param_names`), in a fixed order::

    W1, gamma1, beta1, ..., WB, gammaB, betaB, W{B+1}, b{B+1}

W1..WB are the convolution kernels (C_b, C_{b-1}, k, k), laid out as PyTorch's Conv2d weights;
W{B+1} (D, K) and b{B+1} (K,) are the head. The running statistics (`running_mean{b}`,
`running_var{b}`) are buffers. Optimizers update the parameters in place; the model never
rebinds them. He initialization: W ~ N(0, 2 / fan_in) with fan_in = C_{b-1} * k * k for a kernel
and D for the head; gamma = 1, beta = 0, b = 0.

Layout. Samples arrive NCHW and the parameters are laid out for NCHW, but the work arrays are
channel-major with the batch innermost: (C, H * W, N). A pixel's N values are then one
contiguous run, and so is every channel, so every loop below (the im2col gathers, the pooling)
runs over long contiguous runs, where in (N, C, H, W) the runs would be one image row (4 to
8 values for small images) and numpy's strided loops several times slower. Batchnorm is the
kernels' NCHW path with these arrays seen as (1, C, H * W * N): the statistics of a channel are
over the same N * H * W values. The head reads the last block's output (C_B, H' * W', N) as
f.T (D, N), and the logits are class-major (K, N) as in the MLP.

Convolution: an im2col and one matmul per direction. Pixels have a natural index r * W + c; a
pooling block orders its conv output (and batchnorm) pixel by window corner instead, the (0, 0)
corners of all windows first, then (0, 1), (1, 0), (1, 1), then any pixels pooling drops, so
that each corner of all windows is one contiguous run per channel::

    cols[(i, u, v), (q, n)] = h_{b-1}[i, pixel q + (u - p, v - p), n]   (C*k*k, H*W*N): one np.take
        from the input stored as (C * H * W + 1, N), whose last row is zeros: every pixel
        outside the image reads that row (the padding)
    z = W_b.reshape(C_b, C*k*k) @ cols                                   forward
    dW_b = dz @ cols.T                                                   backward
    dh_{b-1} = W'_b @ dcols,  W'_b[i, (o, u, v)] = W_b[o, i, u, v],
        dcols[(o, u, v), (pixel, n)] = dz[o, pixel - (u - p, v - p), n]  (zero outside)

i.e. the input gradient is the convolution of dz with the kernels transposed and flipped, through
the same gather (np.take with precomputed indices) rather than a scatter-add.

A block with 3x3 kernels, at least WINOGRAD_MIN_CHANNELS input channels and an even image of at
least 4x4 (the digits CNN's second block) convolves by Winograd's F(2x2, 3x3) instead
(`kernels._winograd.WinogradPlan`): 16 products per 4x4 tile of the input rather than the
im2col's 36, the same convolution to rounding. Its tiles' 2x2 outputs are the pooling windows, so
it writes z in block order directly, and its backward writes dW and dh_{b-1}.

Speed: every work array is preallocated per batch size (views, index maps, one
`kernels.BatchNormPlan` per block, one pooling plan per pooling block and one WinogradPlan per
Winograd block, bound once), each block writes its output straight into the next block's input,
matmuls and ufuncs write through `out=`. The gradient arrays returned by `loss_and_grads` are the
model's own (`CNN.grads`), overwritten by the next call: copy them to keep them.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np

from research import kernels
from research.errors import UsageError
from research.kernels._pooling import CornerPoolPlan
from research.kernels._winograd import WinogradPlan
from research.nn.model import (
    _N_CLASSES,
    MAX_DEPTH,
    MAX_PARAMS,
    BnEps,
    BnMomentum,
    Classifier,
    _LossArrays,
    _output_backward,
    _output_forward,
    _softmax_cross_entropy,
)
from research.options import Option, OptionError, Spec

__all__ = ["CNN"]

# The options, declared once here for CNN.__init__'s signature (research.options); the batchnorm
# ones mean what the MLP's of the same names mean, with the same ranges.
Channels = Annotated[int, Option("Channels of the first block", min=1, flag="--channels")]
Blocks = Annotated[int, Option("Blocks conv -> batchnorm -> ReLU -> pool", min=1, max=MAX_DEPTH, flag="--blocks")]
KernelSize = Annotated[int, Option("Side of the square kernels (odd)", min=1, odd=True, flag="--kernel-size")]
Widen = Annotated[float, Option("Channel multiplier from one block to the next", above=0.0, flag="--widen")]
_SIZE = Spec("input_shape", int, option=Option(min=1))


class _Block:
    """One block's parameters, gradients, buffers, sizes and gather indices (fixed for the
    model's life).

    The block's input and output list pixels in natural order (r * W + c); its convolution
    output and batchnorm in *block order*: for a pooling block the (0, 0) corners of all
    windows, then the (0, 1), (1, 0) and (1, 1) corners (each in natural order of the windows),
    then the pixels pooling drops (the last row or column of an odd size); else natural order.
    """

    def __init__(self, c_in, c_out, h, w, k):
        self.c_in, self.c_out, self.h, self.w, self.k = c_in, c_out, h, w, k
        self.pad = p = (k - 1) // 2
        self.pool = h >= 4 and w >= 4
        self.h_out, self.w_out = (h // 2, w // 2) if self.pool else (h, w)
        self.winograd = _by_winograd(c_in, h, w, k)
        self.W = self.dW = None                          # (C_out, C_in, k, k)
        self.gamma = self.dgamma = self.beta = self.dbeta = None   # (C_out,)
        self.running_mean = self.running_var = None     # (C_out,) buffers
        self.mean = self.invstd = None                  # (C_out,) of the last training forward
        if self.winograd:                                # its tiles are the pooling windows
            return
        hw = h * w
        natural = np.arange(hw).reshape(h, w)
        if self.pool:
            ho, wo = self.h_out, self.w_out
            corners = [natural[r0:2 * ho:2, c0:2 * wo:2].ravel() for r0 in (0, 1) for c0 in (0, 1)]
            kept = np.zeros(hw, bool)
            kept[np.concatenate(corners)] = True
            order = np.concatenate(corners + [np.flatnonzero(~kept)])
        else:
            order = natural.ravel()
        rank = np.empty(hw, np.intp)
        rank[order] = np.arange(hw)
        r, c = np.divmod(order, w)                      # the pixel at each block position
        shifts = [(u - p, v - p) for u in range(k) for v in range(k)]
        # Forward im2col: cols[(i, u, v), (q, n)] = h_in[i, pixel at q shifted by (u - p, v - p), n],
        # taken from the input stored as (C_in * H * W + 1, N); the last row is zeros (padding).
        self.gather_input = _shifted(c_in, hw, r, c, shifts, h, w, natural.ravel(), c_in * hw)
        # Backward: dcols[(o, u, v), (pixel, n)] = dz[o, block position of pixel - (u - p, v - p), n],
        # taken from dz stored as (C_out * H * W + 1, N), the last row zeros.
        r, c = np.divmod(np.arange(hw), w)
        self.gather_grad = _shifted(c_out, hw, r, c, [(-du, -dv) for du, dv in shifts], h, w, rank, c_out * hw)


def _shifted(channels, hw, r, c, shifts, h, w, index, zero):
    """For each channel i and shift (du, dv), in that order, flattened: `i * hw + index[r' * w + c']`
    where (r', c') = (r + du, c + dv) is inside the h x w image, `zero` elsewhere. Built in one
    broadcast (a model with 64 channels has thousands of such rows)."""
    du, dv = (np.array([shift[axis] for shift in shifts])[:, None] for axis in (0, 1))
    rr, cc = r[None, :] + du, c[None, :] + dv                       # (k * k, positions)
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    local = index[np.where(inside, rr * w + cc, 0)]
    full = np.arange(channels)[:, None, None] * hw + local[None]    # (channels, k * k, positions)
    return np.where(inside[None], full, zero).ravel()


class _BlockWork:
    """One block's work arrays for a batch of N, and the views and plans bound to them.

    Arrays are channel-major with the batch innermost. `h_in` (C_in, H * W * N) holds the
    input h_{b-1} in natural order (written by the previous block or the input copy; `h_rows`
    is the same values as (C_in * H * W, N)). `out` (C_out, H' * W' * N) is where the block
    writes its output h_b: the next block's input or the head's input. `dout` receives
    d loss / d h_b; `dh_in` (C_in, H * W * N) is where the backward writes d loss / d h_{b-1}:
    the previous block's `dout` (None for the first block, whose input needs no gradient).
    `conv` computes z from h_in, and backward dW and dh_in from dz: an `_Im2col` or, for the
    blocks `_by_winograd` picks, a `kernels.WinogradPlan`.

    The batchnorm plan (`bind_plans`, once `out` and `dh_in` are set) is fused with the ReLU:
    it writes relu(BN(z)) into `a` (pooling block, whose pooling plan then pools `a` into
    `out`) or straight into `out` (no pooling), and its backward masks the gradient of that
    output (`da`, which the pooling's backward writes from `dout`, or `dout`) by the output's
    sign on the fly, into `dz`.
    """

    def __init__(self, block, n, dtype):
        b = block
        hw, s = b.h * b.w, b.h_out * b.w_out * n         # pixels in, values per channel out
        # an im2col block reads a row of zeros after its input (the padding); WinogradPlan pads itself
        self.h_pad = np.zeros((b.c_in * hw + (0 if b.winograd else 1), n), dtype)
        self.h_rows = self.h_pad[:b.c_in * hw]              # (C_in * H * W, N)
        self.h_in = self.h_rows.reshape(b.c_in, hw * n)
        self.z = np.empty((1, b.c_out, hw * n), dtype)      # batchnorm sees (1, C, H*W*N)
        self.dz_pad = np.zeros((b.c_out * hw + (0 if b.winograd else 1), n), dtype)
        self.dz = self.dz_pad[:b.c_out * hw].reshape(1, b.c_out, hw * n)
        self.out = None                       # set by _Workspace: next h_in, or the head's input
        self.dout = np.empty((b.c_out, s), dtype)
        self.dh_in = None                     # set by _Workspace: the previous block's dout
        self.bn = self.pooling = self.conv = None   # set by bind_plans, once out and dh_in are set
        if b.pool:
            self.a = np.empty_like(self.z)    # relu(BN(z)), pooled into out
            self.da = np.empty_like(self.z)   # the pooling's backward writes all of it

    def bind_plans(self, block, eps, momentum):
        """Bind the convolution, the fused batchnorm + ReLU plan and the pooling.

        Batchnorm + ReLU: z -> relu(BN(z)) into `a` (pooling) or `out` (seen as
        (1, C, H*W*N)); backward from `da` or `dout`, masked by that output being > 0, into
        `dz`, dgamma, dbeta. A pooling block's C max pooling: `a` (whose corners block order
        lays out as runs) -> `out`, `dout` -> `da`."""
        b = block
        if b.winograd:
            corners = (b.c_out, 4, -1)    # block order: each corner of the windows (the tiles) a run
            image = (b.c_in, b.h, b.w, -1)
            self.conv = WinogradPlan(
                self.h_in.reshape(image), b.W, self.z.reshape(corners), self.dz.reshape(corners), b.dW,
                None if self.dh_in is None else self.dh_in.reshape(image))
        else:
            self.conv = _Im2col(b, self)
        if b.pool:
            y, dy = self.a, self.da
            self.pooling = CornerPoolPlan(self.a[0], self.out, self.dout, self.da[0])
        else:
            y, dy = (array.reshape(self.z.shape) for array in (self.out, self.dout))   # views
        self.bn = kernels.BatchNormPlan(
            self.z, b.gamma, b.beta, y, b.mean, b.invstd, b.running_mean, b.running_var,
            dy=dy, dx=self.dz, dgamma=b.dgamma, dbeta=b.dbeta, eps=eps, momentum=momentum, relu=True)


class _Im2col:
    """A block's convolution as an im2col and one matmul per direction (the module docstring),
    on its `_BlockWork`'s arrays: `h_pad` -> z; dz (through `dz_pad`) -> dW and `dh_in`."""

    def __init__(self, block, work):
        b, k, hw = block, block.k, block.h * block.w
        n = work.h_pad.shape[1]
        dtype = work.h_pad.dtype
        self.block, self.work = b, work
        self.cols = np.empty((b.c_in * k * k * hw, n), dtype)
        self.cols2 = self.cols.reshape(b.c_in * k * k, hw * n)
        self.z2, self.dz2 = work.z[0], work.dz[0]           # (C, H*W*N)
        if work.dh_in is not None:
            # dh_in = W' @ dcols with W'[i, (o, u, v)] = W[o, i, u, v] (copied each step into
            # W_t) and dcols the im2col of dz through `block.gather_grad`
            self.dcols = np.empty((b.c_out * k * k * hw, n), dtype)
            self.dcols2 = self.dcols.reshape(b.c_out * k * k, hw * n)
            self.W_t = np.empty((b.c_in, b.c_out, k, k), dtype)
            self.W_t2 = self.W_t.reshape(b.c_in, -1)
            self.W_swapped = b.W.transpose(1, 0, 2, 3)       # a view: follows W's updates

    def forward(self):
        b, work = self.block, self.work
        work.h_pad.take(b.gather_input, axis=0, out=self.cols, mode="clip")   # im2col
        np.matmul(b.Wm, self.cols2, out=self.z2)                                # z = W @ cols

    def backward(self):
        b, work = self.block, self.work
        np.matmul(self.dz2, self.cols2.T, out=b.dWm)                           # dW = dz @ cols.T
        if work.dh_in is not None:                                              # dh_in = W' @ im2col(dz)
            work.dz_pad.take(b.gather_grad, axis=0, out=self.dcols, mode="clip")
            np.copyto(self.W_t, self.W_swapped)
            np.matmul(self.W_t2, self.dcols2, out=work.dh_in)


class _Workspace:
    """Work arrays of every block for one batch size N, chained: each block writes its output
    into the next block's input and reads its output gradient from the next block's input
    gradient; the last block writes the head's input f.T (D, N)."""

    def __init__(self, blocks, n, n_classes, dtype, eps, momentum):
        self.blocks = [_BlockWork(block, n, dtype) for block in blocks]
        for work, after in zip(self.blocks[1:], self.blocks):
            after.out, work.dh_in = work.h_in, after.dout
        last = self.blocks[-1]
        last.out = np.empty_like(last.dout)
        for block, work in zip(blocks, self.blocks):
            work.bind_plans(block, eps, momentum)
        self.fT = last.out.reshape(-1, n)               # (D, N): the flattened samples, transposed
        self.f = self.fT.T                              # (N, D), a view
        self.dfT = last.dout.reshape(-1, n)
        self.out = _LossArrays(n, n_classes, dtype)     # logits, their gradient, per-sample loss


class CNN(Classifier):
    """Convolutional classifier: blocks conv -> batchnorm -> ReLU -> 2x2 max pool, a linear head.

    :param input_shape: one sample's shape (C, H, W) (``Dataset.input_shape``); samples arrive
        as rows of C*H*W values in that order.
    :param n_classes: K, number of classes (>= 2).
    :param channels: channels of the first block (>= 1).
    :param blocks: number of blocks (>= 1).
    :param kernel_size: k, the side of the square kernels (odd, >= 1; "same" padding).
    :param widen: channel multiplier from one block to the next (> 0): block b has
        round(channels * widen**(b - 1)) channels, at least 1 (1: constant width, 2: doubling).
    :param dtype: float32 (default) or float64, for parameters, buffers and computation.
    :param rng: the only source of randomness (He initialization).
    :param bn_momentum: weight of the batch statistic in the running averages, in [0, 1].
    :param bn_eps: batchnorm epsilon (> 0).

    Options are declared in ``__init__``'s signature (research.options), as the MLP's; a bad
    one is one line (``model 'cnn': kernel_size must be an odd integer >= 1, got 4``). A flat
    input shape is refused: the model needs a dataset whose samples have a shape.

    Attributes: `params` and `param_names` (aligned, fixed order, updated in place by
    optimizers), `grads` (aligned with params, rewritten by every `loss_and_grads`), `buffers`
    and `buffer_names` (running statistics), `dtype`, `input_shape`, `config`.

    A model reuses its work arrays across calls: use one model from one thread at a time.
    """

    name = "cnn"
    SIZE_FLAGS = "--channels, --blocks, --widen or --kernel-size"

    def __init__(self, input_shape, n_classes, /, *, channels: Channels = 64, blocks: Blocks = 2,
                 kernel_size: KernelSize = 3, widen: Widen = 1.0, dtype: Any = np.float32,
                 rng: np.random.Generator, bn_momentum: BnMomentum = 0.1, bn_eps: BnEps = 1e-5):
        shape = (input_shape,) if isinstance(input_shape, (int, np.integer, str)) else tuple(input_shape)
        if len(shape) == 2:  # grey images saved as (N, H, W)
            raise UsageError(f"{self.owner}: input_shape must be (channels, height, width), got {shape}: images "
                             f"without a channel axis; save X with one, shape (N, 1, {shape[0]}, {shape[1]}) "
                             "(X[:, None])")
        if len(shape) != 3:
            raise UsageError(f"{self.owner}: input_shape must be (channels, height, width), got {shape}; "
                             "use a dataset whose samples have a shape (Dataset.sample_shape), e.g. digits")
        self.input_shape = tuple(_SIZE.convert(self.owner, size) for size in shape)
        widest = 2 * max(self.input_shape[1:]) - 1  # wider, every further tap reaches only the zero padding
        if kernel_size > widest:
            raise OptionError(f"{self.owner}: kernel_size must be at most {widest} for {self.input_shape[1]}x"
                              f"{self.input_shape[2]} inputs (a wider kernel sees only padding), got {kernel_size}; "
                              "lower --kernel-size")
        self.n_features = math.prod(self.input_shape)
        self.n_classes = _N_CLASSES.convert(self.owner, n_classes)
        self.dtype = _float_dtype(dtype)
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)),"
                            f" got {type(rng).__name__}")
        self.channels, self.blocks, self.kernel_size, self.widen = channels, blocks, kernel_size, widen
        self.bn_momentum, self.bn_eps = bn_momentum, bn_eps
        self._check_size(*_cnn_size(self.input_shape, self.n_classes, channels, blocks, kernel_size, widen),
                         f"channels={channels}, blocks={blocks}, kernel_size={kernel_size}, widen={widen:g} "
                         f"(input {self.input_shape}, {self.n_classes} classes)")

        self.params: list[np.ndarray] = []
        self.param_names: list[str] = []
        self.grads: list[np.ndarray] = []
        self.buffers: list[np.ndarray] = []
        self.buffer_names: list[str] = []
        dt = self.dtype

        def param(name, array):
            self.params.append(array)
            self.param_names.append(name)
            self.grads.append(np.zeros_like(array))
            return array, self.grads[-1]

        def buffer(name, value, c):
            self.buffer_names.append(name)
            self.buffers.append(np.full(c, value, dt))
            return self.buffers[-1]

        def he(fan_in, *shape):
            # drawn in float64 so that float32 and float64 models of one seed agree
            return np.ascontiguousarray(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), dtype=dt)

        self._blocks: list[_Block] = []
        c, h, w = self.input_shape
        k = kernel_size
        for b in range(1, blocks + 1):
            c_out = _block_channels(channels, widen, b)
            block = _Block(c, c_out, h, w, k)
            block.W, block.dW = param(f"W{b}", he(c * k * k, c_out, c, k, k))
            block.gamma, block.dgamma = param(f"gamma{b}", np.ones(c_out, dt))
            block.beta, block.dbeta = param(f"beta{b}", np.zeros(c_out, dt))
            block.running_mean = buffer(f"running_mean{b}", 0.0, c_out)
            block.running_var = buffer(f"running_var{b}", 1.0, c_out)
            block.mean, block.invstd = np.empty(c_out, dt), np.empty(c_out, dt)
            block.Wm, block.dWm = block.W.reshape(c_out, -1), block.dW.reshape(c_out, -1)   # views
            self._blocks.append(block)
            c, h, w = c_out, block.h_out, block.w_out
        self.n_head = c * h * w
        self._W_out, self._dW_out = param(f"W{blocks + 1}", he(self.n_head, self.n_head, self.n_classes))
        self._b_out, self._db_out = param(f"b{blocks + 1}", np.zeros(self.n_classes, dt))
        self._min_values = min(block.h * block.w for block in self._blocks)  # per channel and sample
        self._workspaces: dict[int, _Workspace] = {}

    EVAL_BATCH = 256  # the work arrays of a batch hold every pixel of every channel, k * k times

    @property
    def config(self) -> dict:
        """Constructor arguments except rng, enough to rebuild the model for `load_state`."""
        return {"input_shape": self.input_shape, "n_classes": self.n_classes, **self.options,
                "dtype": self.dtype.name}

    @property
    def block_shapes(self) -> list[tuple[int, int, int]]:
        """(channels, height, width) of each block's output, after pooling."""
        return [(b.c_out, b.h_out, b.w_out) for b in self._blocks]

    def __repr__(self):
        return (f"CNN({self.input_shape}, {self.n_classes}, channels={self.channels}, blocks={self.blocks}, "
                f"kernel_size={self.kernel_size}, widen={self.widen}, dtype={self.dtype.name})")

    def _workspace(self, n):
        """The work arrays for batches of n, made on first use; the most recently used
        _MAX_WORKSPACES batch sizes are kept (training, last batch, validation...)."""
        ws = self._workspaces.pop(n, None)
        if ws is None:
            self._make_room(n)
        ws = ws or _Workspace(self._blocks, n, self.n_classes, self.dtype,
                                                         self.bn_eps, self.bn_momentum)
        self._workspaces[n] = ws                                       # last: most recent
        return ws

    # ----------------------------------------------------------------------------------------------

    def _forward(self, x, ws, train):
        """Logits into ws.out.s (N, K); activations kept in ws for the backward pass.

        train: batchnorm from batch statistics (saved in block.mean, block.invstd; running
        averages updated); otherwise from the running averages, and nothing but ws is written.
        """
        np.copyto(ws.blocks[0].h_rows, x.T)                         # (C*H*W, N), natural order
        for block, work in zip(self._blocks, ws.blocks):
            work.conv.forward()                                      # z = conv(h_in)
            if train:                                                # relu(BN(z)) in one pass, into
                work.bn.forward()                                    # a (pooling) or out; batch
            else:                                                    # statistics
                work.bn.inference()
            if block.pool:                                           # out = max over the corners
                work.pooling.forward()
        return _output_forward(ws.f, self._W_out, self._b_out, ws.out.s)

    def _backward(self, ws):
        """Gradients into self.grads from ws.out.ds (N, K) and the activations of _forward."""
        ds = ws.out.ds
        _output_backward(ds, ws.f, self._W_out, self._dW_out, self._db_out, None)
        np.matmul(self._W_out, ds.T, out=ws.dfT)                    # df.T = W @ ds.T
        for block, work in zip(reversed(self._blocks), reversed(ws.blocks)):
            if block.pool:
                # Each window's gradient goes to its first maximum (of the ReLU's output; where
                # that maximum is 0 the fused backward zeroes it), the rest of da to zero.
                work.pooling.backward()
            work.bn.backward()                                       # da or dout, masked by the
                                                                     # ReLU -> dz, dgamma, dbeta
            work.conv.backward()                                     # dW, and dh_in but for the first

    # ----------------------------------------------------------------------------------------------

    def loss_and_grads(self, x, y, *, checked=False):
        """Training step's forward and backward on one mini-batch.

        Batchnorm uses the batch statistics and updates the running averages in place.

        :param x: (N, C*H*W) samples, each an image flattened in (channel, row, column) order
            (cast to the model dtype if needed).
        :param y: (N,) integer labels in [0, n_classes).
        :param checked: True when x and y come from `check_data` (or rows of its results):
            nothing is checked or converted then.
        :returns: (mean cross-entropy, accuracy, grads) with grads aligned with `params`. The
            grads are the model's own arrays (`self.grads`), overwritten by the next call.
        """
        if not checked:
            x, y = self.check_data(x, y)
        n = x.shape[0]
        if n * self._min_values < 2:
            raise ValueError(f"training with batchnorm needs at least 2 values per channel, got a batch of {n} "
                             f"with {self._min_values} pixel(s) per channel")
        ws = self._workspace(n)
        self._forward(x, ws, train=True)
        loss, n_correct = _softmax_cross_entropy(ws.out, y)
        self._backward(ws)
        return loss / n, n_correct / n, list(self.grads)


# Input channels from which a block's 3x3 convolution goes by Winograd: with fewer, its 16
# products are too thin for BLAS to run near the speed of the im2col's one product.
WINOGRAD_MIN_CHANNELS = 16


def _by_winograd(c_in: int, h: int, w: int, k: int) -> bool:
    """Whether a block convolves by Winograd's F(2x2, 3x3) (kernels.WinogradPlan) rather than an
    im2col: 3x3 kernels on an even image of at least 4x4 (so the 2x2 tiles are its pooling
    windows) with at least WINOGRAD_MIN_CHANNELS input channels."""
    return k == 3 and h >= 4 and w >= 4 and h % 2 == 0 and w % 2 == 0 and c_in >= WINOGRAD_MIN_CHANNELS


def _float_dtype(dtype):
    """numpy.dtype float32 or float64 from what the host passes; ValueError otherwise (None
    too, which numpy would take for float64)."""
    try:
        name = np.dtype(dtype).name if dtype is not None else None
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return np.dtype(name)


def _block_channels(channels: int, widen: float, b: int) -> int:
    """Channels of block b (from 1): round(channels * widen**(b - 1)), at least 1. A width too
    large for a float counts as MAX_PARAMS + 1, which the size check refuses."""
    try:
        return max(1, math.floor(channels * widen ** (b - 1) + 0.5))
    except OverflowError:  # widen**(b - 1) beyond a float, or its floor of inf
        return MAX_PARAMS + 1


def _cnn_size(input_shape, n_classes: int, channels: int, blocks: int, k: int, widen: float) -> tuple[int, int]:
    """(parameters, work values per batch row) of a CNN, counted as __init__, _BlockWork, its
    convolution (_Im2col or WinogradPlan) and _Workspace allocate them (bool masks and gather
    indices counted as values: an overestimate), all of them, so a refusal gives the whole count
    (at most MAX_DEPTH blocks: cheap)."""
    c, h, w = input_shape
    n_params = per_row = 0
    for b in range(1, blocks + 1):
        c_out = _block_channels(channels, widen, b)
        pool = h >= 4 and w >= 4
        h_out, w_out = (h // 2, w // 2) if pool else (h, w)
        hw, out = h * w, c_out * h_out * w_out
        n_params += c_out * c * k * k + 2 * c_out
        winograd = _by_winograd(c, h, w, k)
        # the convolution's own arrays: an im2col's columns (and, but for the first block, its
        # gradient's), or Winograd's 16 planes of a quarter pixel each of V, M, dM (and dV)
        conv = 4 * c * hw + 8 * c_out * hw if winograd else c * k * k * hw
        if b > 1:
            conv += 4 * c * hw if winograd else c_out * k * k * hw
        per_row += (c * hw + 1) + conv + (4 if pool else 2) * c_out * hw + 1 + out
        c, h, w = c_out, h_out, w_out
    n_head = c * h * w
    return n_params + n_head * n_classes + n_classes, per_row + c * h * w + 2 * n_classes + 2
