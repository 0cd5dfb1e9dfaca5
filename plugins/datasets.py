"""Built-in datasets: the vendored digits, three synthetic 2-D sets and the user's .npz/.csv files.

Each loader declares its options in its signature and checks them itself (research.data).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from research import hookimpl
from research.data import load_csv, load_digits, load_npz, make_blobs, make_moons, make_spirals


@hookimpl
def register_datasets(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register each built-in dataset factory under its short name."""
    register("digits", load_digits)
    register("spirals", make_spirals)
    register("moons", make_moons)
    register("blobs", make_blobs)
    register("npz", load_npz)
    register("csv", load_csv)
