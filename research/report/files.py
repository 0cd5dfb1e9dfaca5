"""Where reports are written: the checks a user can fix, made before anything is drawn, and
the write itself, whose refusals (a missing folder, no permission, a full disk) become one
line naming the file and the fix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from research.errors import UsageError

PICTURE_FORMATS = ("png", "svg")
HTML_SUFFIXES = (".html", ".htm")
SQLITE_HEADER = b"SQLite format 3\x00"  # the first bytes of every SQLite database, a store among them


def picture_format(path: str | Path) -> str:
    """The format a picture path asks for by its extension: png or svg (else a UsageError)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PICTURE_FORMATS:
        shown = f"'.{suffix}'" if suffix else "no extension"
        raise UsageError(f"cannot write a picture to {Path(path).name} ({shown}); "
                         f"name a {' or '.join('.' + f for f in PICTURE_FORMATS)} file")
    return suffix


def check_html_path(path: str | Path) -> Path:
    """``path`` if it names an .html file; a UsageError with the fix otherwise."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"cannot write the report to {path}: it is a folder; name an .html file in it, e.g. -o "
                         f"{path / 'report.html'}")
    if path.suffix.lower() not in HTML_SUFFIXES:
        raise UsageError(f"cannot write the report to {path.name}; name an .html file, e.g. -o report.html")
    return path


def check_folder(path: str | Path, flag: str = "-o") -> Path:
    """``path`` if it is no folder and its folder exists; a UsageError with the fix (another
    ``flag``) otherwise."""
    path = Path(path)
    if str(path) == "-":  # a file named "-" would be made, where standard output was meant
        raise UsageError(f"{flag} - names standard output, which this command does not write its file to; name a file")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder; name a file in it, or choose another {flag}")
    if path.parent.exists() and not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: {path.parent} is a file, not a folder; choose another {flag}")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist; create it or choose another "
                         f"{flag}")
    return path


def check_writable(path: str | Path, flag: str = "-o") -> Path:
    """``path`` if a file can be written there, tried with a temporary file in its folder that
    is removed at once: before the work whose result it holds, not after (a folder such as
    /proc that takes no new files, one without permission). A UsageError naming the file and the
    fix (another ``flag``) otherwise, as for a missing folder (``check_folder``)."""
    path = check_folder(path, flag)
    try:
        with tempfile.NamedTemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise UsageError(f"cannot write {path}: folder {path.parent} takes no new file ({err.strerror or err}); "
                         f"choose another {flag}") from None
    return path


def check_output(path: str | Path, store: str | Path, flag: str = "-o") -> Path:
    """``path`` if a file can be written there (``check_writable``) that is neither the store
    (with its journal files, under any name: a link), nor another SQLite database (another
    store), nor in its checkpoints folder: an export written over those would lose what the
    store keeps. A UsageError naming the fix otherwise."""
    path = check_writable(path, flag)
    target, store = path.resolve(), Path(store).resolve()
    if target in {store.with_name(store.name + end) for end in ("", "-wal", "-shm", "-journal")} or (
            target.exists() and store.exists() and os.path.samefile(target, store)):
        raise UsageError(f"cannot write {path}: it is the store {store.name}, whose studies it would replace; choose "
                         f"another {flag}")
    if _is_database(target):
        raise UsageError(f"cannot write {path}: it is an SQLite database (a research store?), which the output would "
                         f"replace; choose another {flag}, or remove that file first if it is yours to lose")
    kept = {store.with_name(store.stem + "-checkpoints"), store.with_name(store.name + "-checkpoints")}
    if kept & set(target.parents):
        raise UsageError(f"cannot write {path}: it is in the store's checkpoints folder, whose files research keeps; "
                         f"choose another {flag}")
    return path


def _is_database(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:  # no such file, a folder: nothing to lose
        return False


def check_picture_path(path: str | Path, flag: str = "-o") -> Path:
    """``path`` if it names a .png or .svg file in a folder that exists; a UsageError with the
    fix otherwise (checked before the work that draws it)."""
    path = check_folder(path, flag)  # first: a folder named "curves" is no picture without an extension
    picture_format(path)
    return path


def write_file(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path``; an operating system refusal is a UsageError."""
    path = check_folder(path)
    try:
        path.write_bytes(data)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}; choose another -o") from err
    return path
