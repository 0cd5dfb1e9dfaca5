"""The compiled C core by precision: the only importer of `research._kernels`.

`research._kernels` is csrc/kernels.h compiled by cffi (build.py). Each kernel of the table
comes as `rs_<name>_f32` and `rs_<name>_f64`; a `Twin` holds one precision's numpy dtype, its
cffi array type and its C functions, as attributes named after the kernels
(`TWINS[np.dtype(np.float32)].adam_update` is `rs_adam_update_f32`).
"""

from __future__ import annotations

import numpy as np

from research._kernels import ffi, lib
from research.kernels._table import KERNELS

NULL = ffi.NULL
from_buffer = ffi.from_buffer


class Twin:
    """numpy dtype, cffi array type and C functions of one precision."""

    def __init__(self, dtype: type, ctype: str, suffix: str):
        self.dtype = np.dtype(dtype)
        self.ctype = ffi.typeof(f"{ctype}[]")
        for kernel in KERNELS:
            setattr(self, kernel.name, getattr(lib, f"rs_{kernel.name}_{suffix}"))

    def __repr__(self) -> str:
        return f"Twin({self.dtype})"


F32 = Twin(np.float32, "float", "f32")
F64 = Twin(np.float64, "double", "f64")
TWINS = {F32.dtype: F32, F64.dtype: F64}  # a byte-swapped dtype is equal to neither
