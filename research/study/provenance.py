"""What a study ran on, recorded when each run starts: the software, the machine, the files it
reads and what the trainer says of itself (a program's hash), so a result can be traced and
repeated, and a study whose data file changed does not go on.
``research show`` prints the last run's."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from research.defaults import DEFAULTS
from research.errors import UsageError, unreadable
from research.plugins import Plugins


def provenance(plugins: Plugins, base: Mapping[str, Any]) -> dict[str, Any]:
    """This process's versions, machine, kernel library and the instruction set its kernels run
    (every set gives the same results; the record says which one's speed a run had), BLAS, the
    digest of each file the run reads (``files``: a study whose file changed stops, see
    ``data_changed``) and the trainer's own ``provenance(config)`` when its factory has one."""
    import numpy
    from threadpoolctl import threadpool_info

    from research import __version__
    from research.kernels import isa
    from research.study.trainer import options_given, trainer_name

    info: dict[str, Any] = {
        "research": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
        "machine": f"{platform.system()} {platform.machine()}", "kernels": _kernels_digest(), "kernels_isa": isa(),
        "blas": [f"{pool['internal_api']} {pool['version']} ({pool.get('architecture') or 'generic'})"
                 for pool in threadpool_info() if pool["user_api"] == "blas"],
    }
    files = file_digests(base, plugins)
    if files:
        info["files"] = files
    code = _loop_digest(trainer_name(base))
    if code:
        info["code"] = code
    own = getattr(plugins.get("trainers", trainer_name(base)), "provenance", None)
    if own is not None:  # its options as the trainer gets them: one set by name (--opt workdir=...) too
        info["trainer"] = own({**base, "trainer_options": options_given(base, plugins)})
    return info


def file_digests(base: Mapping[str, Any], plugins: Plugins) -> dict[str, str]:
    """The digest of each file a run reads through a declared path option (``Option(path=True)``
    of its dataset or trainer: the csv and npz ``path``, any third-party dataset's), by its path
    as the configuration gives it (a study's is anchored). Folders and missing files have none."""
    return {str(value): file_digest(value) for _, _, value in _declared_paths(base, plugins)
            if isinstance(value, (str, Path)) and Path(value).is_file()}


class WatchedFiles:
    """The files a run reads (``file_digests``), as they were when it started. Each trial's
    worker reads them again as it builds the trial's trainer, so ``changed()`` is asked before
    each task: a file edited while the study runs stops it rather than train its later trials
    on other data. A file's size and time are compared, and only when either moved its digest."""

    def __init__(self, digests: Mapping[str, str]):
        self.digests = dict(digests)
        self.stats = {path: _stat(path) for path in self.digests}

    def changed(self) -> str | None:
        """Why a file differs from the run's start (its digest changed, or it is gone), or None."""
        for path, digest in self.digests.items():
            stat = _stat(path)
            if stat == self.stats[path]:
                continue
            now = file_digest(path) if stat is not None else None
            if now == digest:  # touched, or rewritten the same
                self.stats[path] = stat
                continue
            return f"the data file {path} " + (f"has changed since this run started (sha256 {digest}, now {now})"
                                               if now else "is gone since this run started")
        return None


def _stat(path: str) -> tuple[int, int] | None:
    """A file's size and modification time (ns), or None when it is not there."""
    try:
        info = Path(path).stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


_LEGACY_DIGEST = ("data", "sha256 of data")
"""Where runs recorded before ``files`` kept their one data file: the research trainer's own
record gave its dataset's ``path`` and that file's digest under these keys."""


def data_changed(before: Mapping[str, Any] | None, now: Mapping[str, Any], since: str = "the study's last run"
                 ) -> str | None:
    """Why a file the study's last run read (``before``: its record) differs from the one it
    would read now (``now``: this run's ``provenance``), or None: the digest of a path both
    recorded has changed. A file that is gone is left to its plugin, which says so. ``since``
    names what ``before`` records, for the message."""
    old = dict((before or {}).get("files") or {})
    legacy = (before or {}).get("trainer") or {}
    path_key, digest_key = _LEGACY_DIGEST
    if digest_key in legacy:
        old.setdefault(str(legacy.get(path_key)), legacy[digest_key])
    for path, new in (now.get("files") or {}).items():
        if old.get(path, new) != new:
            return f"the data file {path} has changed since {since} (sha256 {old[path]}, now {new})"
    return None


ANCHORED = (("datasets", "dataset", "dataset_options", False), ("trainers", "trainer", "trainer_options", True))
"""The plugins whose declared path options a study anchors and digests: (kind, the key naming the plugin, the key of
its options, whether an option may also be set by name in the configuration, as a trainer's)."""


def anchored(base: Mapping[str, Any], plugins: Plugins) -> dict[str, Any]:
    """``base`` with every relative path that names a file or folder here made absolute, so that
    the study resumes from any directory. The paths are the options the dataset and the trainer
    declare with ``Option(path=True)``: given, or their default (a trainer's ``workdir="."``
    records the directory the study was started in). Anything else (a missing file, a URL, a
    plugin that cannot be loaded: its own checks say why) is kept as given."""
    anchored_base = dict(base)
    for key, option, value in _declared_paths(base, plugins):
        if not isinstance(value, (str, Path)) or not Path(value).exists():
            continue
        absolute = _absolute(value)
        if key is None:  # a trainer's option set by name stays where it was given
            anchored_base[option] = absolute
        elif (base.get(key) or {}).get(option) != absolute:
            anchored_base[key] = {**(anchored_base.get(key) or {}), option: absolute}
    return anchored_base


def _absolute(path: str | Path) -> str:
    """The absolute path of an existing ``path``, without ``..`` (``tmp/../d.csv`` was kept as
    such, and its study could not resume once ``tmp`` was gone): removed as text, or through the
    links when a link makes the text name another file."""
    plain = os.path.abspath(path)
    return plain if os.path.samefile(plain, path) else str(Path(path).resolve())


def _declared_paths(base: Mapping[str, Any], plugins: Plugins) -> Iterator[tuple[str | None, str, Any]]:
    """(the key of the options holding it, or None when set by name in ``base``; the option; its
    value, given or the default) of each option that ``base``'s dataset and trainer declare with
    ``Option(path=True)``. A plugin that cannot be loaded declares nothing here."""
    for kind, selector, key, by_name in ANCHORED:
        options = base.get(key) or {}
        name = base.get(selector, DEFAULTS[selector])
        if not isinstance(options, Mapping) or not isinstance(name, str):
            continue
        try:
            specs = plugins.options_of(kind, name) or {}
        except UsageError:
            continue
        for option, spec in specs.items():
            if not spec.option.path:
                continue
            if by_name and option in base and option not in options:
                yield None, option, base[option]
            else:
                yield key, option, options.get(option, spec.default)


def _loop_digest(trainer: str) -> dict[str, str]:
    """The digest of the module file of a trainer named by its import path (``my_loop:Trainer``):
    the user's own training loop, whose edits between runs a study points out."""
    module = trainer.partition(":")[0] if ":" in trainer else None
    try:
        spec = importlib.util.find_spec(module) if module else None
    except (ImportError, ValueError):
        return {}
    origin = spec.origin if spec is not None else None
    return {Path(origin).name: file_digest(origin)} if origin and Path(origin).is_file() else {}


def code_changed(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> list[str]:
    """The files of the study's own code (a ``--trainer`` loop's module, a ``--command``
    program's files) whose digest differs from what the study's last run (``before``) recorded:
    the trials trained from here on run another version of them. Not refused (fixing a bug and
    going on is what resume is for), but said."""
    def digests(info: Mapping[str, Any] | None) -> dict[str, str]:
        info = info or {}
        program = {key[len("sha256 of "):]: value for key, value in (info.get("trainer") or {}).items()
                   if isinstance(key, str) and key.startswith("sha256 of ")}
        return {**program, **(info.get("code") or {})}

    old, new = digests(before), digests(now)
    return sorted(name for name, digest in new.items() if old.get(name, digest) != digest)


def file_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's SHA-256; a file the system will not let this user
    read is a UsageError naming it (not a bare "[Errno 13]")."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except PermissionError as err:
        raise UsageError(f"{path}: {unreadable(err)}") from None


def describe(info: Mapping[str, Any]) -> str:
    """One line: ``research 0.1.0, python 3.11.7, numpy 2.4.6, Linux x86_64, kernels 1a2b... (avx2), BLAS ...``."""
    kernels = f"kernels {info.get('kernels')}"
    if info.get("kernels_isa"):  # records from before the instruction sets have none
        kernels += f" ({info['kernels_isa']})"
    parts = [f"research {info.get('research')}", f"python {info.get('python')}", f"numpy {info.get('numpy')}",
             str(info.get("machine")), kernels]
    parts += [f"BLAS {blas}" for blas in info.get("blas") or []]
    parts += [f"{path} sha256 {digest}" for path, digest in
              {**(info.get("files") or {}), **(info.get("code") or {})}.items()]
    trainer = info.get("trainer")
    if trainer:
        parts.append(", ".join(f"{key} {value}" for key, value in trainer.items()))
    return ", ".join(parts)


def _kernels_digest() -> str:
    """The compiled kernel library's digest: which build of the C core ran."""
    spec = importlib.util.find_spec("research._kernels")
    return file_digest(spec.origin) if spec is not None and spec.origin else "not built"
