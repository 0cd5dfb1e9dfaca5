"""What a strategy lets a user do to one of its studies from outside the running process: a
study's controls, as data, for any front end to offer (the dashboard's buttons and forms).

A strategy plugin answers the ``study_controls`` hook with a list of :class:`Control`. Each
one names the values it takes and how to apply them; applying one writes to the store exactly
what the plugin's own command writes (babysit's ``set``, ``rollback`` and ``stop`` queue the
same command events), so every front end and the command line are one mechanism.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from research.plugins import Plugins
    from research.study.store import Store, Study


@dataclass(frozen=True)
class ControlField:
    """One value a control takes, typed by the user as text."""

    name: str  # the key of the value handed to ``apply``
    label: str  # what the form shows beside the box
    placeholder: str = ""  # an example shown in the empty box: "lr=0.003"


@dataclass(frozen=True)
class Control:
    """One thing a user may do to a study: a button, with a form when it takes ``fields``.

    ``apply(store, study, values, plugins)`` does it on a store opened for writing, with
    ``values`` the fields' texts by name, and returns one line saying what was done; a value
    it refuses is a ``research.errors.ResearchError`` whose message says why and what to do.
    """

    name: str  # a short identifier: "set", "rollback", "stop"
    label: str  # the button's text
    help: str  # one line: what it does and when it takes effect
    apply: Callable[[Store, Study, Mapping[str, str], Plugins], str]
    fields: tuple[ControlField, ...] = ()
    confirm: str = ""  # a question to answer before it is applied ("" for none)
