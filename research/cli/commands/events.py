"""`research log`: a study's events in order, numbered from 1 in the study, each in words its
strategy chose (the ``describe_event`` hook), or as its kind and data."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from research.cli.console import Terminal, echo_json
from research.study.store import Store
from research.words import study_command


def show_log(term: Terminal, name: str, store_path: Path, as_json: bool) -> None:
    """The study's events, numbered from 1 in the study (``--json``: ``number`` beside the
    store-wide ``id`` that other events refer to)."""
    with Store(store_path, create=False) as store:
        study = store.study(name)
        events = store.events(study)
    if as_json:
        numbered = [{"number": number, **event} for number, event in enumerate(events, start=1)]
        echo_json({"study": name, "events": numbered})
        return
    if not events:  # a table with no rows would say nothing
        show = study_command("show", name, store_path)
        term.out.print(f"study '{name}' ({study.strategy}) has recorded no events; its trials are in `{show}`",
                       highlight=False, markup=False)
        return
    table = Table(title=f"events of {name}")
    for column in ("#", "time", "kind", "what"):
        table.add_column(column)
    for number, event in enumerate(events, start=1):
        table.add_row(str(number), time.strftime("%H:%M:%S", time.localtime(event["time"])), event["kind"],
                      term.plugins.describe(study, event))
    term.out.print(table)
