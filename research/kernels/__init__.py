"""Batchnorm (alone or fused with a ReLU), softmax cross-entropy and optimizer kernels: validated numpy
wrappers over the C core.

This package is the only importer of `research._kernels` (csrc/kernels.h compiled by cffi).
Every function checks types, dtypes, shapes, contiguity, writability, aliasing and scalar
ranges before any C runs, then calls the `_f32` or `_f64` twin for the arrays' dtype.

Conventions:
- Arrays are numpy, C-contiguous, and all float32 or all float64 (mixing is a TypeError).
- x is (N, C) or (N, C, *spatial); statistics are per channel over all other axes, so the
  C layout is (n, c, inner) with inner = prod(spatial) (1 for (N, C) input).
- Functions allocate their outputs unless `out=`-style buffers are given; a given buffer
  is filled and returned (the returned object is the buffer).
- Arrays a kernel writes (outputs, running statistics, optimizer state) must not share
  memory with any other argument: the C code declares them `restrict`.
- The C calls release the GIL, so threads can run kernels side by side.
- Every kernel is compiled for several instruction sets (baseline, avx2, avx512 on x86-64);
  the best one this CPU runs is used unless the environment variable RESEARCH_KERNELS names
  another. All give bit-identical results. `isa()` says which one runs, `supported_isas()`
  which ones this CPU can run, `use_isa(name)` switches (for measuring and testing).

The checks read array attributes only (no copies, no conversions) because the wrappers run
once per layer per step: a call on tiny arrays costs a few microseconds.

Plans (`BatchNormPlan`, `AdamPlan`, `MomentumPlan`, `RMSpropPlan`, `SGDPlan`) bind a kernel
to fixed arrays: every array check above runs once, when the plan is made, and each later
call is one C call on the bound arrays (an optimizer plan's step: one for all its arrays of a
dtype; their contents change between calls, their identity does not). Training loops that
reuse their work arrays use plans; the functions stay for everything else.

Layout of the package:
- `_table.py`: each kernel's arguments declared once (roles, shapes, ranges, C order);
- `_c.py`: the compiled C functions by dtype (the only importer of `research._kernels`);
- `_checks.py`: the checks and their messages;
- `_codegen.py`: the checked functions' bodies and the plans' `step`, written from the table;
- `_functions.py`: the checked functions; `_plans.py`: the plans;
- `_pooling.py`: the cnn's max pooling plan (a layout of the model's own, outside the table);
- `_winograd.py`: the cnn's 3x3 convolution by Winograd's F(2x2, 3x3), its transforms in C (the
  same).
"""

from research.kernels._c import isa, supported_isas, use_isa
from research.kernels._functions import (
    adam_update,
    batchnorm_backward,
    batchnorm_forward,
    batchnorm_inference,
    batchnorm_relu_backward,
    batchnorm_relu_forward,
    batchnorm_relu_inference,
    momentum_update,
    rmsprop_update,
    sgd_update,
    softmax_cross_entropy,
)
from research.kernels._plans import AdamPlan, BatchNormPlan, MomentumPlan, RMSpropPlan, SGDPlan

__all__ = [
    "AdamPlan",
    "BatchNormPlan",
    "MomentumPlan",
    "RMSpropPlan",
    "SGDPlan",
    "adam_update",
    "batchnorm_backward",
    "batchnorm_forward",
    "batchnorm_inference",
    "batchnorm_relu_backward",
    "batchnorm_relu_forward",
    "batchnorm_relu_inference",
    "isa",
    "momentum_update",
    "rmsprop_update",
    "sgd_update",
    "softmax_cross_entropy",
    "supported_isas",
    "use_isa",
]
