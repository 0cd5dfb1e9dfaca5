"""What a study ran on, recorded when each run starts: the software, the machine and what the
trainer says of itself (a program's hash), so a result can be traced and repeated.
``research show`` prints the last run's."""

from __future__ import annotations

import hashlib
import importlib.util
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from research.defaults import DEFAULTS
from research.errors import UsageError
from research.plugins import Plugins


def provenance(plugins: Plugins, base: Mapping[str, Any]) -> dict[str, Any]:
    """This process's versions, machine, kernel library and the instruction set its kernels run
    (every set gives the same results; the record says which one's speed a run had), BLAS, and
    the trainer's own ``provenance(config)`` when its factory has one."""
    import numpy
    from threadpoolctl import threadpool_info

    from research import __version__
    from research.kernels import isa
    from research.study.trainer import trainer_name

    info: dict[str, Any] = {
        "research": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
        "machine": f"{platform.system()} {platform.machine()}", "kernels": _kernels_digest(), "kernels_isa": isa(),
        "blas": [f"{pool['internal_api']} {pool['version']} ({pool.get('architecture') or 'generic'})"
                 for pool in threadpool_info() if pool["user_api"] == "blas"],
    }
    own = getattr(plugins.get("trainers", trainer_name(base)), "provenance", None)
    if own is not None:
        info["trainer"] = own(base)
    return info


DATA_DIGEST = "sha256 of data"
"""The key under which a trainer's ``provenance`` gives the digest of the data file it reads."""


def data_changed(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str | None:
    """Why the data file a study's last run read (``before``: its record) is not the one it
    would read now (``now``), or None: its digest changed. A file that is gone is left to the
    dataset, which says so."""
    old = ((before or {}).get("trainer") or {}).get(DATA_DIGEST)
    new = (now.get("trainer") or {}).get(DATA_DIGEST)
    if old is None or new is None or old == new:
        return None
    return f"the data file {now['trainer'].get('data')} has changed since the study's last run (sha256 {old}, now {new})"


ANCHORED = (("datasets", "dataset", "dataset_options", False), ("trainers", "trainer", "trainer_options", True))
"""The plugins whose path options a study anchors: (kind, the key naming the plugin, the key of
its options, whether an option may also be set by name in the configuration, as a trainer's)."""


def anchored(base: Mapping[str, Any], plugins: Plugins) -> dict[str, Any]:
    """``base`` with every relative path that names a file or folder here made absolute, so that
    the study resumes from any directory. The paths are the options the dataset and the trainer
    declare with ``Option(path=True)``: given, or their default (a trainer's ``workdir="."``
    records the directory the study was started in). Anything else (a missing file, a URL, a
    plugin that cannot be loaded: its own checks say why) is kept as given."""
    anchored_base = dict(base)
    for kind, selector, key, by_name in ANCHORED:
        options = base.get(key) or {}
        name = base.get(selector, DEFAULTS[selector])
        if not isinstance(options, Mapping) or not isinstance(name, str):
            continue
        try:
            specs = plugins.options_of(kind, name) or {}
        except UsageError:
            continue
        anchored_options = dict(options)
        for option, spec in specs.items():
            named = by_name and option in base and option not in options
            value = base[option] if named else options.get(option, spec.default)
            if not spec.option.path or not isinstance(value, (str, Path)) or not Path(value).exists():
                continue
            (anchored_base if named else anchored_options)[option] = str(Path(value).absolute())
        if anchored_options != options:
            anchored_base[key] = anchored_options
    return anchored_base


def file_digest(path: str | Path) -> str:
    """The first 16 hex digits of a file's SHA-256."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def describe(info: Mapping[str, Any]) -> str:
    """One line: ``research 0.1.0, python 3.11.7, numpy 2.4.6, Linux x86_64, kernels 1a2b... (avx2), BLAS ...``."""
    kernels = f"kernels {info.get('kernels')}"
    if info.get("kernels_isa"):  # records from before the instruction sets have none
        kernels += f" ({info['kernels_isa']})"
    parts = [f"research {info.get('research')}", f"python {info.get('python')}", f"numpy {info.get('numpy')}",
             str(info.get("machine")), kernels]
    parts += [f"BLAS {blas}" for blas in info.get("blas") or []]
    trainer = info.get("trainer")
    if trainer:
        parts.append(", ".join(f"{key} {value}" for key, value in trainer.items()))
    return ", ".join(parts)


def _kernels_digest() -> str:
    """The compiled kernel library's digest: which build of the C core ran."""
    spec = importlib.util.find_spec("research._kernels")
    return file_digest(spec.origin) if spec is not None and spec.origin else "not built"
