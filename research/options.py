"""Plugin options: declared once, in the factory's signature, checked the same way everywhere.

A plugin's options are the keyword arguments of its factory (a class's ``__init__`` or a
function). The annotation gives the type; ``Annotated[type, Option(...)]`` adds the range,
the help text and, where it has one, the ``research train`` flag that sets it::

    class Caviar(Configurable):
        kind, name = "strategy", "caviar"

        def __init__(self, *, retries: Annotated[int, Option("Retries of a lost worker", min=0)] = 2):
            self.retries = retries

Values arrive as Python values or as strings from the command line (``--strategy-opt
retries=3``) and are converted here: ``float``, ``int``, ``bool`` (true/false, yes/no, on/off,
1/0), ``str``, and ``X | None`` (``none`` or nothing gives None). Every problem is an
``OptionError`` of one line in one format::

    strategy 'caviar': retries must be an integer >= 0, got 'x'
    strategy 'caviar': unknown option 'foo'; valid names: checkpoint_seconds, retries, segment_epochs

``Configurable`` classes and functions decorated with ``checked`` check their options
themselves, from Python or from the command line; the plugin manager checks any other factory
before it calls it.
"""

from __future__ import annotations

import inspect
import math
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from numbers import Integral, Real
from types import NoneType, UnionType
from typing import Annotated, Any, ClassVar, TypeVar

from research.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")
FLAG = re.compile(r"--[a-z0-9][a-z0-9-]*")  # what Option(flag=...) may be: a `research train` long flag


class OptionError(UsageError):
    """An option value that cannot be used; the message names the plugin, the option and
    what it must be."""


class UnknownOptionError(OptionError, TypeError):
    """An option name the plugin does not have; the message lists the valid ones. Also a
    TypeError, like Python's own error for an unexpected keyword argument."""


@dataclass(frozen=True)
class Option:
    """What ``Annotated[type, Option(...)]`` adds to a keyword argument: its help text, its
    range (``min``/``max`` inclusive, ``above``/``below`` exclusive), its choices, the
    ``research train`` flag that sets it (``flag="--segments"``), if any, whether an integer
    must be odd (``odd=True``), and whether it is a file or folder (``path=True``) of a dataset
    or trainer: a study stores such a path as the absolute path it names where the study is
    opened, so that it resumes from any directory (research.study.provenance.anchored)."""

    help: str = ""
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[Any, ...] | None = None
    flag: str | None = None
    path: bool = False
    odd: bool = False  # integers only: an odd one (a kernel's side, centred on its pixel)

    def __post_init__(self) -> None:
        """A range no value is in is the declaration's mistake, said where it is made (the
        plugin's import), not later as the user's bad value."""
        low = self.min if self.min is not None else self.above
        high = self.max if self.max is not None else self.below
        open_end = self.above is not None or self.below is not None
        if low is not None and high is not None and (low > high or (low == high and open_end)):
            ends = ", ".join(f"{name}={getattr(self, name)!r}" for name in ("min", "max", "above", "below")
                             if getattr(self, name) is not None)
            raise ValueError(f"Option({ends}) admits no value; its lower end must be below its upper end")
        if self.flag is not None and not (isinstance(self.flag, str) and FLAG.fullmatch(self.flag)):
            bare = str(self.flag).strip().lstrip("-").replace("_", "-").lower()
            raise ValueError(f"Option(flag={self.flag!r}) is not a long flag; write it as '--{bare or 'name'}' "
                             "(two dashes, then lowercase letters, digits and dashes)")


@dataclass(frozen=True)
class Spec:
    """One declared option: its name, type, default and ``Option``."""

    name: str
    type: type = object  # float, int, bool, str, or object (taken as given)
    default: Any = inspect.Parameter.empty
    optional: bool = False  # None is a valid value
    option: Option = field(default_factory=Option)

    def __post_init__(self) -> None:
        """A choice the option's type cannot take is the declaration's mistake (no value could
        ever be accepted), said where it is made, as Option says of bounds that admit none."""
        convert = _CONVERTERS.get(self.type)
        for choice in self.option.choices or ():
            if convert is not None and convert(choice) is _BAD:
                raise ValueError(f"option '{self.name}' ({self.type.__name__}) declares the choice {choice!r}, "
                                 f"which is no {self.type.__name__}; give choices of its type")

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def describe(self) -> str:
        """What a valid value is, as the error messages say it: ``an integer >= 1``."""
        o = self.option
        if o.choices is not None:
            text = "one of: " + ", ".join(str(c) for c in o.choices)
        elif self.type is bool:
            text = "true or false"
        elif self.type in (int, float):
            text = ("an odd integer" if o.odd else "an integer" if self.type is int else "a number") + _range_text(o)
        elif self.type is str:
            text = "a string"
        else:
            text = "a value"
        return text + (" or none" if self.optional else "")

    def convert(self, owner: str, value: Any) -> Any:
        """``value`` as this option's type, checked; an OptionError naming ``owner`` otherwise."""
        if self.optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("", "none"))):
            return None
        converted = _CONVERTERS.get(self.type, _as_is)(value)
        if converted is _BAD or not _in_range(converted, self.option):
            wanted = self.describe()
            if self.type in (int, float) and _non_finite(value):  # "a number > 0, got inf": inf is > 0
                wanted = wanted.replace("an integer", "a finite integer", 1).replace("a number", "a finite number", 1)
            raise OptionError(f"{owner}: {self.name} must be {wanted}, got {value!r}")
        return converted


_BAD = object()


def _non_finite(value: Any) -> bool:
    """Whether ``value`` reads as an infinity or a NaN ("inf", float("nan"))."""
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def _as_is(value: Any) -> Any:
    return value


def _to_float(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
    elif isinstance(value, bool) or not isinstance(value, Real):
        return _BAD
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return _BAD
    return number if math.isfinite(number) else _BAD


def _to_int(value: Any) -> Any:
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    number = _to_float(value)  # "1e3" and 8.0 are integers too; 8.5 is not
    return int(number) if number is not _BAD and number == int(number) else _BAD


def _to_bool(value: Any) -> Any:
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy.bool_ without numpy
        return bool(value)
    text = str(value).strip().lower()
    return True if text in TRUE else False if text in FALSE else _BAD


def _to_str(value: Any) -> Any:
    if value is None:
        return _BAD
    return value.strip() if isinstance(value, str) else str(value)


_CONVERTERS: dict[type, Callable[[Any], Any]] = {float: _to_float, int: _to_int, bool: _to_bool, str: _to_str}


def _bound(value: float) -> str:
    """A range's end as written: integers exactly (a seed's 2**63 - 1), other numbers short."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _range_text(o: Option) -> str:
    low = (f"[{_bound(o.min)}", o.min) if o.min is not None else \
        (f"({_bound(o.above)}", o.above) if o.above is not None else None
    high = (f"{_bound(o.max)}]", o.max) if o.max is not None else \
        (f"{_bound(o.below)})", o.below) if o.below is not None else None
    if low and high:
        return f" in {low[0]}, {high[0]}"
    if low:
        return f" >= {_bound(o.min)}" if o.min is not None else f" > {_bound(o.above)}"
    if high:
        return f" <= {_bound(o.max)}" if o.max is not None else f" < {_bound(o.below)}"
    return ""


def _in_range(value: Any, o: Option) -> bool:
    if o.choices is not None:
        return value in o.choices
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    return ((o.min is None or value >= o.min) and (o.max is None or value <= o.max)
            and (o.above is None or value > o.above) and (o.below is None or value < o.below)
            and (not o.odd or value % 2 == 1))


def _split(annotation: Any, default: Any) -> tuple[type, bool, Option]:
    """(type, None allowed, Option) of one annotation (a type, ``X | None``, ``Annotated``)."""
    option = Option()
    if typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        option = next((e for e in extras if isinstance(e, Option)), option)
    optional = default is None
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        members = [a for a in typing.get_args(annotation) if a is not NoneType]
        optional = optional or len(members) < len(typing.get_args(annotation))
        # ``float | str`` (a number that may arrive as text) is a float.
        annotation = next((m for m in members if m in (bool, int, float)), members[0] if members else object)
    if annotation in _CONVERTERS:
        return annotation, optional, option
    if annotation in (inspect.Parameter.empty, Any) and type(default) in _CONVERTERS:
        return type(default), optional, option
    return object, optional, option


def _hints(target: Callable[..., Any]) -> dict[str, Any]:
    """The evaluated annotations of ``target``; one that does not evaluate is left out (its
    option then takes the type of its default), the others keep their ranges."""
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # one bad annotation: evaluate them one by one
        pass
    namespace = getattr(target, "__globals__", {})
    hints = {}
    for name, annotation in getattr(target, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
        except Exception:  # a name the module does not define (a typing-only import, say)
            continue
    return hints


def _is_option(parameter: inspect.Parameter, hint: Any) -> bool:
    """Keyword-only arguments are options; one that may come by position too is when it has a
    default or an ``Option`` annotation (the csv dataset's ``path``): the rest are the contract's."""
    if parameter.kind is parameter.KEYWORD_ONLY:
        return True
    annotated = typing.get_origin(hint) is Annotated and any(isinstance(e, Option) for e in typing.get_args(hint)[1:])
    return parameter.kind is parameter.POSITIONAL_OR_KEYWORD and (parameter.default is not parameter.empty or annotated)


@lru_cache(maxsize=None)
def declared(factory: Callable[..., Any]) -> dict[str, Spec] | None:
    """The options ``factory`` declares, by name, in signature order: its keyword-only
    arguments and those with defaults or an ``Option``. None when it takes ``**kwargs`` (anything goes)."""
    target = inspect.unwrap(factory.__init__ if isinstance(factory, type) else factory)
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    hints = _hints(target)
    specs: dict[str, Spec] = {}
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            return None
        hint = hints.get(parameter.name, inspect.Parameter.empty)
        if not _is_option(parameter, hint):
            continue
        kind, optional, option = _split(hint, parameter.default)
        specs[parameter.name] = Spec(parameter.name, kind, parameter.default, optional, option)
    return specs


def check(owner: str, specs: Mapping[str, Spec] | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` converted and checked against ``specs`` (defaults are not filled in). An
    unknown name raises UnknownOptionError listing the valid ones; ``specs`` None accepts all."""
    if specs is None:
        return dict(given)
    unknown = [name for name in given if name not in specs]
    if unknown:
        raise unknown_options(owner, unknown, list(specs))
    return {name: specs[name].convert(owner, value) for name, value in given.items()}


def check_required(owner: str, specs: Mapping[str, Spec] | None, given: Iterable[str],
                   table: str | None = None, flag: str | None = None, *, own_flags: bool = True) -> None:
    """An OptionError naming the first option without a default that ``given`` lacks, and how
    to give it: with its own flag (unless ``own_flags`` is False: a plugin named by its import
    path has none) or the kind's NAME=VALUE ``flag`` (``--dataset-opt``), or from Python in
    ``table``, the dict of the plugin's options such as ``trainer_options`` (by name without
    one): before a study is stored, not when each trial builds the plugin."""
    given = set(given)
    missing = [spec for name, spec in (specs or {}).items() if spec.required and name not in given]
    if missing:
        spec = missing[0]
        python = f"{table}={{{spec.name!r}: ...}}" if table else f"{spec.name}=..."
        command_line = (spec.option.flag if own_flags else None) or (f"{flag} {spec.name}=..." if flag else None)
        how = f"; give it with {command_line} (from Python: {python})" if command_line else ""
        raise OptionError(f"{owner} needs its option '{spec.name}' ({spec.describe()}), which has no default{how}")


def bad_default(specs: Mapping[str, Spec] | None, given: Iterable[str]) -> tuple[Spec, str] | None:
    """The first option not in ``given`` whose declared default is not a valid value of its
    own declaration (``k: Annotated[int, Option(min=1)] = 0``), and what it must be: the
    plugin's mistake, which would otherwise reach its code unchecked."""
    given = set(given)
    for name, spec in (specs or {}).items():
        if spec.required or name in given:
            continue
        try:
            spec.convert("", spec.default)
        except OptionError:
            return spec, spec.describe()
    return None


def unknown_options(owner: str, names: list[str], valid: list[str]) -> UnknownOptionError:
    """The one error for unknown option names, wherever they are given."""
    quoted = ", ".join(f"'{n}'" for n in names)
    plural = "s" if len(names) > 1 else ""
    choices = f"valid names: {', '.join(valid)}" if valid else "it takes no options"
    return UnknownOptionError(f"{owner}: unknown option{plural} {quoted}; {choices}")


def defaults(specs: Mapping[str, Spec]) -> dict[str, Any]:
    """The declared defaults, for the options that have one."""
    return {name: spec.default for name, spec in specs.items() if not spec.required}


@lru_cache(maxsize=None)
def _signature(function: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(function)


def call_checked(owner: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` with its option arguments (given by keyword or by position) converted
    and checked; its other arguments are left to Python."""
    specs = declared(function)
    if specs is None:
        return function(*args, **kwargs)
    signature = _signature(function)
    unknown = [name for name in kwargs if name not in signature.parameters]
    if unknown:
        raise unknown_options(owner, unknown, list(specs))
    bound = signature.bind(*args, **kwargs)
    for name, value in bound.arguments.items():
        if name in specs:
            bound.arguments[name] = specs[name].convert(owner, value)
    return function(*bound.args, **bound.kwargs)


def checked(kind: str, name: str) -> Callable[[F], F]:
    """Decorator for a function factory: its options are checked and converted as a
    ``Configurable``'s are, naming it ``kind 'name'`` in errors::

        @checked("dataset", "moons")
        def make_moons(*, noise: Annotated[float, Option("Noise", min=0)] = 0.1) -> Dataset: ...
    """

    def decorate(function: F) -> F:
        owner = f"{kind} '{name}'"

        @wraps(function)
        def factory(*args: Any, **options: Any) -> Any:
            return call_checked(owner, function, *args, **options)

        return factory  # type: ignore[return-value]

    return decorate


def _checking(init: Callable[..., None]) -> Callable[..., None]:
    """``init`` with its options checked and converted first (against its own signature,
    naming the plugin of the instance being built)."""

    @wraps(init)
    def checked_init(self: Configurable, *args: Any, **options: Any) -> None:
        call_checked(self.owner, init, self, *args, **options)

    return checked_init


class Configurable:
    """Base of plugin classes whose keyword options are declared in ``__init__``'s
    signature: building one checks and converts them first (see the module docstring), from
    Python or from the command line. Each option is kept as the attribute of its name.
    Subclasses set ``kind`` ("sampler", "strategy", ...) and ``name``."""

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = "plugin"

    def __init__(self) -> None:
        """No options."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checking(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @classmethod
    def owner_name(cls) -> str:
        """How errors name this plugin: ``sampler 'grid'``."""
        return f"{cls.kind} '{cls.name}'"

    @property
    def owner(self) -> str:
        return self.owner_name()

    @property
    def options(self) -> dict[str, Any]:
        """The current value of every declared option (read from the attribute of that name)."""
        return {name: getattr(self, name) for name in declared(type(self)) or {}}

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.options.items())
        return f"{type(self).__name__}({shown})"


Configurable.__init__ = _checking(Configurable.__init__)  # type: ignore[method-assign]
