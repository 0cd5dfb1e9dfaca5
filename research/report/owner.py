"""Which study a picture or report file was drawn from: each file carries its study's mark
(the store's id, the study's id and when it was made), so that a default file name (STUDY.png,
STUDY-curves.png, STUDY.html), which two studies of one name share (in two stores, or a study
deleted and made again), never replaces the other study's file: the next free name is taken."""

from __future__ import annotations

import re
from pathlib import Path

from research.study.store import Store, Study

PNG_KEY = "research-study"  # the PNG text chunk; SVG keeps the mark as its Dublin Core identifier
HTML_META = re.compile(rb'<meta name="research-study" content="([^"]*)">')
SVG_ID = re.compile(rb"<dc:identifier>([^<]*)</dc:identifier>")


def mark(store: Store, study: Study) -> str:
    """The mark of ``study`` in ``store``: the same for every file drawn from it, another for a
    study of the same name in another store, or made anew after a delete."""
    return f"{store.identity()}/{study.id}/{study.created!r}"


def marked(path: Path) -> str | None:
    """The mark the file at ``path`` carries; None for a file without one (or none there)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data.startswith(b"\x89PNG"):
        return _png_text(data).get(PNG_KEY)
    found = HTML_META.search(data) or SVG_ID.search(data)
    return found.group(1).decode("utf-8", "replace") if found else None


def _png_text(data: bytes) -> dict[str, str]:
    """The tEXt chunks of a PNG file: keyword -> text."""
    texts, at = {}, 8
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        if kind == b"tEXt":
            key, _, text = data[at + 8:at + 8 + size].partition(b"\0")
            texts[key.decode("latin-1")] = text.decode("latin-1")
        if kind == b"IEND":
            break
        at += 12 + size
    return texts


def own_path(path: Path, study_mark: str) -> Path:
    """``path`` unless it holds a file marked as another study's: then the first of
    ``NAME-2.EXT``, ``NAME-3.EXT``... that is free or this study's own."""
    candidate, number = path, 1
    while (found := marked(candidate)) is not None and found != study_mark:
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def renamed(path: Path, default: Path) -> str:
    """What the line naming a written file adds when it is not the ``default`` name: why."""
    return "" if path == default else f" ({default} is another study's of that name)"
