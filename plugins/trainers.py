"""Built-in trainers: ``research``, research's own loop on model plugins (research.nn.training)."""

from typing import Any

from research import hookimpl
from research.nn.training import Trainer


@hookimpl
def register_trainers(register: Any) -> None:
    register("research", Trainer)
