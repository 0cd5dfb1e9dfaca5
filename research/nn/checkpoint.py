"""Checkpoints as .npz files (never pickle), written atomically.

A checkpoint is a flat dict of arrays. Structured values (RNG state, configuration,
history) travel as JSON strings in 0-d unicode arrays, which load without pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from research.errors import UsageError


class CheckpointError(UsageError):
    """A checkpoint that cannot be read; the message names the file."""


def pack_json(value: Any) -> np.ndarray:
    """A JSON-able value as a 0-d unicode array."""
    return np.array(json.dumps(value))


def unpack_json(array: np.ndarray) -> Any:
    return json.loads(str(array[()]))


FORMAT = 1
"""The checkpoint format this research writes and reads, stored in every file under
``FORMAT_KEY``; a file without it is of format 1 (written before the key existed)."""
FORMAT_KEY = "research_checkpoint_format"


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` so a killed process leaves either the old file or the new
    one (written aside, then renamed). Not fsynced, like the store's commits."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays, **{FORMAT_KEY: np.array(FORMAT)})
    os.replace(tmp, path)


def restore(target: Any, path: str | os.PathLike) -> None:
    """``target.load_state`` from the checkpoint at ``path``; one that belongs to another
    configuration is a CheckpointError naming it."""
    state = load(path)
    try:
        target.load_state(state)
    except (KeyError, ValueError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"checkpoint {path} does not fit this run ({text}); "
                              "use the options it was written with, or delete it") from None


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of a checkpoint into memory."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be read ({err}); delete it to start over") from None
    written = arrays.pop(FORMAT_KEY, np.array(1))
    if written.shape != () or not np.issubdtype(written.dtype, np.integer) or int(written) != FORMAT:
        raise CheckpointError(f"checkpoint {path} is of format {written!s}, but this research reads format {FORMAT}; "
                              "use the research that wrote it, or delete it to start that trial over")
    return arrays
