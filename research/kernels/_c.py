"""The compiled C core by precision and instruction set: the only importer of `research._kernels`.

`research._kernels` is csrc/kernels.h compiled by cffi (build.py). Each kernel of the table
comes as `rs_<name>_f32` and `rs_<name>_f64`; a `Twin` holds one precision's numpy dtype, its
cffi array type and its C functions, as attributes named after the kernels
(`TWINS[np.dtype(np.float32)].adam_update` is `rs_adam_update_f32`), the batched ones too
(`.adam_updates` is `rs_adam_updates_f32`, with `.batch_types["adam_update"]` the cffi type
of the array of structs it takes, and `.packed["adam_update"]` the address of
`rs_adam_updates_packed_f32`, which the plans' step calls from C: research._step).

Every C kernel takes the instruction set to run first (baseline, avx2 or avx512, csrc/isa.h);
`Twin.isa` holds the one in use, the best this CPU runs unless RESEARCH_KERNELS names another.
All of them give the same bits, so the choice changes only the speed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from research.errors import UsageError

try:
    from research._kernels import ffi, lib
except ModuleNotFoundError as missing:  # a source tree imported in place of the installed package
    import research

    raise UsageError(
        f"research's compiled kernels are missing: the research imported is {Path(research.__file__).parent}, "
        "a source tree without them (a checkout on PYTHONPATH or the folder you run in?); run from elsewhere, "
        "or build them in place with `pip install -e .`") from missing
from research.kernels._table import KERNELS

NULL = ffi.NULL
from_buffer = ffi.from_buffer
new = ffi.new
LABELS = np.dtype(np.int64)  # class labels, passed to C as long long
LABELS_CTYPE = ffi.typeof("long long[]")

ISAS = {"baseline": lib.RS_ISA_BASELINE, "avx2": lib.RS_ISA_AVX2, "avx512": lib.RS_ISA_AVX512}
ENVIRONMENT = "RESEARCH_KERNELS"


def address(pointer: Any) -> int:
    """A cffi pointer's address, as C code outside cffi takes it (research._step)."""
    return int(ffi.cast("uintptr_t", pointer))


class Twin:
    """numpy dtype, cffi array type, C functions and instruction set of one precision."""

    def __init__(self, dtype: type, ctype: str, suffix: str):
        self.dtype = np.dtype(dtype)
        self.suffix = suffix  # of its C functions' names: rs_<name>_f32
        self.ctype = ffi.typeof(f"{ctype}[]")
        self.isa = lib.RS_ISA_BASELINE
        self.batch_types = {}
        self.packed = {}
        for kernel in KERNELS:
            setattr(self, kernel.name, getattr(lib, f"rs_{kernel.name}_{suffix}"))
            if kernel.batched:
                setattr(self, f"{kernel.name}s", getattr(lib, f"rs_{kernel.name}s_{suffix}"))
                self.batch_types[kernel.name] = ffi.typeof(f"struct rs_{kernel.name}_arrays_{suffix}[]")
                self.packed[kernel.name] = address(ffi.addressof(lib, f"rs_{kernel.name}s_packed_{suffix}"))

    def __repr__(self) -> str:
        return f"Twin({self.dtype})"


F32 = Twin(np.float32, "float", "f32")
F64 = Twin(np.float64, "double", "f64")
TWINS = {F32.dtype: F32, F64.dtype: F64}  # a byte-swapped dtype is equal to neither


def supported_isas() -> tuple[str, ...]:
    """The instruction sets this build has and this CPU runs, narrowest first:
    ``('baseline', 'avx2')`` on an AVX2 machine."""
    return tuple(name for name, value in ISAS.items() if lib.rs_isa_supported(value))


def isa() -> str:
    """The instruction set the kernels run now: ``'avx2'``."""
    return next(name for name, value in ISAS.items() if value == F32.isa)


def use_isa(name: str) -> None:
    """Run the kernels with instruction set `name` from now on (plans made before keep theirs).
    Every set gives the same results: this is for measuring and testing them. Any case, as
    RESEARCH_KERNELS takes it ("AVX2" is avx2)."""
    if not isinstance(name, str):  # the wrong kind of argument: a TypeError, as everywhere in research.kernels
        raise TypeError(f"the kernels' instruction set must be a string, one of {', '.join(ISAS)}, got {name!r}")
    if name.strip().lower() not in ISAS:
        raise UsageError(f"the kernels' instruction set must be one of {', '.join(ISAS)}, got {name!r}")
    name = name.strip().lower()
    supported = supported_isas()
    if name not in supported:
        raise UsageError(f"this CPU cannot run the {name} kernels (it runs {', '.join(supported)}): "
                         "choose one of those")
    F32.isa = F64.isa = ISAS[name]


def _choose() -> None:
    """The best instruction set this CPU runs, or the one RESEARCH_KERNELS names."""
    wanted = os.environ.get(ENVIRONMENT, "").strip().lower()  # AVX2 is avx2
    supported = supported_isas()
    if not wanted:
        use_isa(supported[-1])
        return
    if wanted not in ISAS:
        raise UsageError(f"{ENVIRONMENT}={wanted} is not an instruction set: set it to one of "
                         f"{', '.join(supported)} (this CPU's), or unset it for the best one")
    if wanted not in supported:
        raise UsageError(f"{ENVIRONMENT}={wanted} asks for kernels this CPU cannot run (it runs "
                         f"{', '.join(supported)}): set it to one of those, or unset it for the best one")
    use_isa(wanted)


_choose()
