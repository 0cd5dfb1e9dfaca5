"""Checkpoints as .npz files (never pickle), written atomically, read only when proven.

A checkpoint is a flat dict of arrays. Structured values (RNG state, configuration,
history) travel as JSON strings in 0-d unicode arrays, which load without pickle.

Every file this research writes also carries a record (``IDENTITY_KEY``, JSON): a checksum
of its arrays and, for a study's files, what it belongs to (an ``Identity``: the study's id,
name and creation time, the trial, a digest of the trial's configuration, the kind of file)
and the epoch its state is at. ``read_checkpoint`` is the one reader: it checks the file
against what the caller expects and answers a ``Checkpoint`` or raises a
``CheckpointProblem``, one line naming the file and why it cannot be used (truncated,
emptied, damaged, another trial's, another study's, from an earlier research without a
record). Readers in a study treat a problem as "not proven": they go back to an older
proven state, or to the start, and say so in one warning line.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from research.errors import UsageError, unreadable
from research.interrupts import interrupts_deferred


class CheckpointError(UsageError):
    """A checkpoint that cannot be read; the message names the file."""


class CheckpointProblem(CheckpointError):
    """A checkpoint that cannot be used: ``checkpoint PATH REASON`` (one line), with the
    file (``path``) and the reason alone (``reason``) for callers that say what happens next."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"checkpoint {shown(path)} {reason}")


def shown(path: str | os.PathLike) -> str:
    """A path as messages show it: relative to the working directory when it is inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def pack_json(value: Any) -> np.ndarray:
    """A JSON-able value as a 0-d unicode array."""
    return np.array(json.dumps(value))


def unpack_json(array: np.ndarray) -> Any:
    return json.loads(str(array[()]))


FORMAT = 1
"""The checkpoint format this research writes and reads, stored in every file under
``FORMAT_KEY``; a file without it is of format 1 (written before the key existed). The
record under ``IDENTITY_KEY`` is an addition to format 1: a file without it (written by an
earlier research) is still read where nothing is expected of it (a lone run's
``--checkpoint``, a model file), and is unproven everywhere else."""
FORMAT_KEY = "research_checkpoint_format"
IDENTITY_KEY = "research_checkpoint_identity"


@dataclass(frozen=True)
class Identity:
    """What a checkpoint of a study belongs to. ``study`` (the name when the file was
    written) is reported, not compared: a renamed study keeps its checkpoints."""

    study_id: int
    study: str
    created: float  # the study's creation time: tells apart studies of one id in two stores
    trial: int
    config: str  # config_digest of the trial's configuration
    kind: str = "state"  # state (a trial's checkpoint), best (its kept epoch), latest, boundary

    def but(self, **changes: Any) -> Identity:
        return Identity(**{**asdict(self), **changes})


def config_digest(config: Mapping[str, Any]) -> str:
    """A short digest of a configuration (JSON, keys sorted)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checksum(arrays: Mapping[str, np.ndarray]) -> str:
    """A digest of arrays: their names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def state_epoch(arrays: Mapping[str, np.ndarray]) -> int | None:
    """The epoch a trainer's state is at (its ``meta`` record's), None if it has none."""
    try:
        return int(unpack_json(arrays["meta"])["epoch"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read and checked: its arrays, its record (None for a format-1 file) and
    the epoch its state is at."""

    path: Path
    arrays: dict[str, np.ndarray]
    identity: Identity | None
    epoch: int | None


def save(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], identity: Identity | None = None, *,
         files: Mapping[str, str] | None = None) -> None:
    """Write ``arrays`` to ``path`` so a killed process leaves either the old file or the new
    one (written aside, then renamed), with their checksum, epoch, ``identity`` and ``files``
    (a lone run's data files, path: digest; see :func:`recorded_files`). Not fsynced, like the
    store's commits."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(arrays)
    arrays.pop(FORMAT_KEY, None)
    arrays.pop(IDENTITY_KEY, None)
    record = {"checksum": checksum(arrays), "epoch": state_epoch(arrays),
              **(asdict(identity) if identity is not None else {}), **({"files": dict(files)} if files else {})}
    tmp = path.with_name(path.name + ".tmp")
    with interrupts_deferred(), _no_part_left(tmp):  # Ctrl-C inside savez would be a crash, not a stop
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays, **{FORMAT_KEY: np.array(FORMAT), IDENTITY_KEY: pack_json(record)})
        os.replace(tmp, path)


@contextmanager
def _no_part_left(tmp: Path) -> Iterator[None]:
    """A write into ``tmp`` that fails (a full disk) leaves no part of it behind, holding space."""
    try:
        yield
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Copy the checkpoint at ``source`` to ``path`` as :func:`save` writes: a killed process
    leaves the old file or the new one, never a piece of it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with interrupts_deferred(), _no_part_left(tmp):
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike, expect: Identity | None = None, *, epoch: int | None = None) -> Checkpoint:
    """The checkpoint at ``path``, checked: readable, its arrays those it was written with
    (checksum), and, with ``expect``, written for that study, trial, configuration and kind
    (and at ``epoch`` when given). Anything else is a CheckpointProblem naming the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointProblem(path, "does not exist")
    if path.is_dir():
        raise CheckpointProblem(path, "is a folder, not a file")
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointProblem(path, "is empty")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise CheckpointProblem(path, "does not exist") from None
    except PermissionError as err:
        raise CheckpointProblem(path, unreadable(err)) from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        text = str(err).splitlines()[0] if str(err) else ""
        if "pickle" in text:  # numpy takes a file that is neither .npz nor .npy for a pickle, and refuses it
            raise CheckpointProblem(path, "cannot be read: it is not an .npz archive of plain arrays (damaged, or "
                                          "another program's file; research never loads pickled objects)") from None
        raise CheckpointProblem(path, f"cannot be read, it is truncated or damaged ({type(err).__name__}"
                                      f"{': ' + text if text else ''})") from None
    written = arrays.pop(FORMAT_KEY, np.array(1))
    if written.shape != () or not np.issubdtype(written.dtype, np.integer) or int(written) != FORMAT:
        raise CheckpointProblem(path, f"is of format {written!s}, but this research reads format {FORMAT}; "
                                      "use the research that wrote it, or delete it to start that trial over")
    record = _record(path, arrays.pop(IDENTITY_KEY, None))
    if record is None:
        if expect is not None:
            raise CheckpointProblem(path, "carries no identity (an earlier research's, or not research's), "
                                          "so it is not proven to be this trial's")
        return Checkpoint(path, arrays, None, state_epoch(arrays))
    if record.get("checksum") != checksum(arrays):
        raise CheckpointProblem(path, "fails its checksum (its arrays changed after it was written)")
    names = {f.name for f in fields(Identity)}
    identity = Identity(**{k: record[k] for k in names}) if names <= set(record) else None
    found = record.get("epoch")
    if expect is not None:
        _check(path, identity, expect)
    if epoch is not None and found != epoch:
        raise CheckpointProblem(path, f"holds epoch {found}, not {epoch}")
    return Checkpoint(path, arrays, identity, found)


def recorded_files(path: str | os.PathLike) -> dict[str, str]:
    """The data files (path: digest) a lone run's checkpoint at ``path`` was trained on, read
    without loading its arrays; empty when it recorded none (written before the record held
    them, or by a study) or cannot be read (restoring it says why)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            record = unpack_json(data[IDENTITY_KEY]) if IDENTITY_KEY in data.files else {}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error):
        return {}
    files = record.get("files") if isinstance(record, dict) else None
    return dict(files) if isinstance(files, dict) else {}


def _record(path: Path, array: np.ndarray | None) -> dict[str, Any] | None:
    if array is None:
        return None
    try:
        record = unpack_json(array)
    except (ValueError, TypeError, IndexError):
        record = None
    if not isinstance(record, dict):
        raise CheckpointProblem(path, "has a damaged identity record")
    return record


def _when(created: float) -> str:
    """A study's creation time as people read it, to the millisecond (two stores' study 1 can
    differ by it alone)."""
    return datetime.datetime.fromtimestamp(created).isoformat(sep=" ", timespec="milliseconds")


def _check(path: Path, found: Identity | None, expect: Identity) -> None:
    """One line on the first way ``found`` is not ``expect``."""
    if found is None:
        raise CheckpointProblem(path, "carries no identity (it is not a study's checkpoint)")
    if (found.study_id, found.created) != (expect.study_id, expect.created):
        raise CheckpointProblem(path, f"belongs to another study ('{found.study}', id {found.study_id}, created "
                                      f"{_when(found.created)}), not '{expect.study}' (id {expect.study_id}, "
                                      f"created {_when(expect.created)})")
    if found.trial != expect.trial:
        raise CheckpointProblem(path, f"belongs to trial {found.trial}, not {expect.trial}")
    if found.config != expect.config:
        raise CheckpointProblem(path, f"was written for another configuration of trial {expect.trial}")
    if found.kind != expect.kind:
        raise CheckpointProblem(path, f"is a '{found.kind}' file, not a '{expect.kind}' one")


def restore(target: Any, path: str | os.PathLike, expect: Identity | None = None, *,
            epoch: int | None = None) -> Checkpoint:
    """``target.load_state`` from the checkpoint at ``path`` (read_checkpoint checks it);
    one that belongs to another configuration is a CheckpointError naming it."""
    found = read_checkpoint(path, expect, epoch=epoch)
    try:
        target.load_state(found.arrays)
    except (KeyError, ValueError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"checkpoint {shown(path)} does not fit this run ({text}); "
                              "use the options it was written with, or delete it") from None
    return found


def restore_run(target: Any, path: str | os.PathLike, config: Mapping[str, Any]) -> Checkpoint:
    """``restore`` for a run resumed from its own checkpoint (``--checkpoint``), whose
    ``config`` must be the one the checkpoint's ``meta`` recorded, but for the epoch count,
    which may grow: with other values the checkpoint's would silently win (an optimizer's lr,
    the shuffling of a seed) while the run reported the new ones. A CheckpointError names
    them, before the state is loaded (a wider model's arrays would not fit, and say less).
    A checkpoint past the epochs asked is refused too: the run would return its longer curve."""
    found = read_checkpoint(path)
    written = unpack_json(found.arrays["meta"]).get("config", config) if "meta" in found.arrays else config
    # Values both name first: another optimizer or model changes its own options as well, and the
    # choice, not the options it brings, is what the user changed.
    changed = sorted((k for k in {*written, *config} if k != "epochs" and written.get(k) != config.get(k)),
                     key=lambda k: (k not in written or k not in config, k))
    if changed:
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        values = ", ".join(f"{k}={written.get(k)!r}, not {config.get(k)!r}" for k in changed[:3]) + more
        raise CheckpointError(f"checkpoint {shown(path)} was written with {values}; use the options it was written "
                              "with (only epochs may change), or delete it to start over")
    trained, asked = state_epoch(found.arrays), config.get("epochs")
    if trained is not None and isinstance(asked, int) and trained > asked:
        raise CheckpointError(f"checkpoint {shown(path)} holds {trained} epochs, more than the {asked} asked; ask "
                              f"for {trained} epochs or more, or delete it to start over")
    return restore(target, path)


def load(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of a checkpoint into memory (checked as read_checkpoint checks it,
    with nothing expected of whom it belongs to)."""
    return read_checkpoint(path).arrays
