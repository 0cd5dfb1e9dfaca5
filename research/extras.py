"""How to add an optional extra (dask, dashboard, ...) to this installation of research.

The package index knows the project as research-hparams; a copy installed from a checkout
(``pip install .`` or ``-e .``) gets its extra from that checkout, since the index may not
have the version the checkout holds, or the project at all.
"""

from __future__ import annotations

import json
import shlex
from importlib import metadata
from urllib.parse import unquote, urlparse

from research import DISTRIBUTION


def install_command(extra: str) -> str:
    """The pip command that adds ``extra``: from the checkout research was installed from
    (editable again if it was), else from the package index."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
        origin = json.loads(text) if text else {}
    except (metadata.PackageNotFoundError, ValueError):
        origin = {}
    origin = origin if isinstance(origin, dict) else {}
    url = urlparse(str(origin.get("url", "")))
    if url.scheme == "file" and isinstance(origin.get("dir_info"), dict):
        editable = "-e " if origin["dir_info"].get("editable") else ""
        return f"pip install {editable}{shlex.quote(f'{unquote(url.path)}[{extra}]')}"
    return f"pip install {shlex.quote(f'{DISTRIBUTION}[{extra}]')}"
