"""The C kernels under AddressSanitizer and UndefinedBehaviorSanitizer.

Compiles the kernel library's sources (build.py's SOURCES) with the driver
tests/c/test_kernels.c (every kernel against reference loops, once per instruction set this
CPU runs) into tmp_path and runs it: it must exit 0 with no sanitizer report, having run every
set research.kernels.supported_isas() names.
"""

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from research.kernels import supported_isas

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
DRIVER = Path(__file__).resolve().parent / "c" / "test_kernels.c"
FLAGS = [
    "-std=c11",
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fopenmp-simd",
    "-ffp-contract=off",
    "-Wall",
    "-Wextra",
    "-Werror",
]


def _compiler():
    """Path of $CC (default cc), else gcc or clang; None when there is no C compiler."""
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def _library_sources() -> list[str]:
    """The kernel library's C files, as build.py lists them (csrc/step.c is a Python module)."""
    spec = importlib.util.spec_from_file_location("research_build", ROOT / "build.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder.SOURCES


def test_kernels_clean_under_sanitizers(tmp_path):
    cc = _compiler()
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) found")
    exe = tmp_path / "test_kernels"
    sources = [str(ROOT / source) for source in _library_sources()]
    build = subprocess.run(
        [cc, *FLAGS, f"-I{CSRC}", *sources, str(DRIVER), "-o", str(exe), "-lm"],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    env = {
        **os.environ,
        "ASAN_OPTIONS": "abort_on_error=0:detect_leaks=1",
        "UBSAN_OPTIONS": "print_stacktrace=1",
    }
    run = subprocess.run([str(exe)], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Sanitizer" not in run.stderr and "runtime error" not in run.stderr, run.stderr
    # The driver prints each instruction set it ran: every one this CPU runs is covered.
    assert run.stdout.split() == list(supported_isas())
