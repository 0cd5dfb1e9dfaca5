"""Plugin options: keyword options that arrive as strings (``--sampler-opt round_size=8``),
checked by name before a plugin is built and converted with one-line errors.

Plugin classes derive from ``OptionChecked`` and declare their options as explicit
keyword-only arguments of ``__init__``; an unknown name is an error that lists the valid
ones (Python's own error for an unexpected keyword does not).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, ClassVar


class UnknownOptionError(TypeError, ValueError):
    """An option name the plugin does not have; the message lists the valid ones.

    Both a TypeError (like Python's own error for an unexpected keyword) and a ValueError
    (like every other bad option).
    """


class OptionChecked:
    """Checks option names before ``__init__`` binds them. Subclasses set ``kind``
    ("sampler", "schedule", ...) and ``name``."""

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = "plugin"

    def __new__(cls, *args: Any, **options: Any) -> Any:
        valid = cls.option_names()
        unknown = [name for name in options if name not in valid]
        if unknown:
            quoted = ", ".join(f"'{n}'" for n in unknown)
            plural = "s" if len(unknown) > 1 else ""
            choices = f"valid names: {', '.join(valid)}" if valid else "it takes no options"
            raise UnknownOptionError(f"{cls.kind} '{cls.name}': unknown option{plural} {quoted}; {choices}")
        return super().__new__(cls)

    @classmethod
    def option_names(cls) -> list[str]:
        """The keyword options of ``__init__``, in order."""
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        return [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    @property
    def owner(self) -> str:
        """How errors name this plugin: ``sampler 'grid'``."""
        return f"{self.kind} '{self.name}'"


def number(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite float (strings converted); bools are not numbers."""
    try:
        if isinstance(value, bool):
            raise ValueError
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    return x


def in_range(owner: str, name: str, value: Any, valid: Callable[[float], bool], text: str) -> float:
    """``value`` as a float for which ``valid`` holds; ``text`` says the range in the error."""
    x = number(owner, name, value)
    if not valid(x):
        raise ValueError(f"{owner}: {name} must be {text}, got {value!r}")
    return x


def integer(owner: str, name: str, value: Any, minimum: int) -> int:
    """``value`` as an integer >= ``minimum`` (strings and integral floats converted)."""
    try:
        x = number(owner, name, value)
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or x != int(x) or x < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(x)
