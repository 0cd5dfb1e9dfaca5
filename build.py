"""The one cffi builder: compiles csrc/*.c into research._kernels.

The cdef is csrc/kernels.h with its preprocessor lines dropped (cdef cannot read them).
Portable flags by default: the baseline variant of each kernel runs on any x86-64, and the
avx2 and avx512 variants beside it are compiled under their own `#pragma GCC target`
(csrc/each_isa.h). Set RESEARCH_NATIVE=1 to add -march=native (then the baseline too is for
the machine that built it), or RESEARCH_CFLAGS for any extra flags.
"""

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).parent
CSRC = "csrc"
SOURCES = [f"{CSRC}/{name}.c" for name in ("batchnorm", "loss", "pool", "winograd", "optim", "isa")]
# Every header, the template files (batchnorm_impl.h, optim_impl.h ...) included: editing one
# must rebuild the extension.
HEADERS = sorted(f"{CSRC}/{path.name}" for path in (ROOT / CSRC).glob("*.h"))


def _cdef_text(header: Path) -> str:
    """Header text without preprocessor lines, which cffi's cdef rejects."""
    lines = header.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def _compile_args() -> list[str]:
    # -fno-math-errno: sqrt never sets errno, so the optimizer loops vectorize (csrc/optim.c).
    # -ffp-contract=off: no fused multiply-adds, so every instruction set's variant gives the
    # same bits (csrc/kernels.h); C11 mode already implies it, this keeps it explicit.
    args = ["-O3", "-std=c11", "-fopenmp-simd", "-fno-math-errno", "-ffp-contract=off"]
    if os.environ.get("RESEARCH_NATIVE") == "1":
        args.append("-march=native")
    args += os.environ.get("RESEARCH_CFLAGS", "").split()
    return args


def _require_compiler() -> None:
    """Fail with one clear line rather than a distutils traceback when no C compiler exists."""
    compiler = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        sys.exit(
            f"error: research needs a C compiler to build its kernels and '{compiler}' was not "
            "found; install one (Debian/Ubuntu: apt-get install gcc python3-dev) or set CC"
        )


ffi = FFI()
ffi.cdef(_cdef_text(ROOT / CSRC / "kernels.h"))
ffi.set_source(
    "research._kernels",
    '#include "kernels.h"',
    sources=SOURCES,
    depends=HEADERS,
    include_dirs=[CSRC],
    extra_compile_args=_compile_args(),
    py_limited_api=True,
)

_require_compiler()
