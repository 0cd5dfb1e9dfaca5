"""Search spaces: float, int and choice parameters, each on its own scale.

Every parameter maps its values to a unit coordinate u in [0, 1] in which sampling is
uniform, and back:

- ``linear``: u is linear in the value;
- ``log``: u is linear in log10(value) (log-uniform: lr = 10**r, r uniform);
- ``log1m``: u is linear in log10(1 - value) (betas near 1: beta = 1 - 10**s, s uniform).

Samplers work in unit coordinates (uniform there means uniform on the right scale) and map
back with ``from_unit``.

A parameter may exist only for some values of another (a conditional space): ``beta2`` only
with ``optimizer=adam``, a second layer's units only when ``layers>=2``. Its ``when`` is a
``Condition`` on a parent parameter of the same space, written after the definition::

    beta2=log1m:0.99..0.9999 if optimizer=adam,adamw
    units2=int:16..256 if layers>=2

Samplers draw every parameter as usual; ``restrict`` then drops those whose condition does
not hold (or whose parent was dropped), so a trial's configuration holds only its active
parameters and every sampler understands conditions without knowing of them. In a study's
history an inactive parameter's value is None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Union

from research.errors import UsageError

SCALES = ("linear", "log", "log1m")
OPERATORS = (">=", "<=", ">", "<", "=")  # the longer first: ">=" is not ">" then "=1"


class SpaceError(UsageError):
    """A search-space definition that cannot be used; the message says why and how to fix it."""


@dataclass(frozen=True)
class Condition:
    """When a parameter exists: its ``parent`` equals one of ``values`` (``op`` "="), or
    compares with the one number in ``values`` (">=", ">", "<=", "<")."""

    parent: str
    op: str
    values: tuple

    def holds(self, value: Any) -> bool:
        """Whether the parent's ``value`` satisfies the condition (an absent parent: no)."""
        if value is None:
            return False
        if self.op == "=":
            return any(_same(value, v) for v in self.values)
        if not _is_number(value):
            return False
        limit = self.values[0]
        return {">=": value >= limit, ">": value > limit, "<=": value <= limit, "<": value < limit}[self.op]

    def describe(self) -> str:
        return f"{self.parent}{self.op}{_say_choices(self.values)}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(value: Any, named: Any) -> bool:
    """A drawn value against one a condition names: equal as numbers, or as text."""
    return value == named if _is_number(value) and _is_number(named) else str(value) == str(named)


def parse_condition(name: str, text: str) -> Condition:
    """``optimizer=adam,adamw`` or ``layers>=2`` (also >, <=, <), as written after ``if``."""
    text = text.strip()
    for op in OPERATORS:
        parent, found, rest = text.partition(op)
        if found and parent.strip() and rest.strip():
            break
    else:
        raise SpaceError(f"{name}: cannot read the condition '{text}'; write e.g. 'if optimizer=adam,adamw' or "
                         "'if layers>=2'")
    parent = parent.strip()
    if parent.endswith("!"):  # read as the parameter 'optimizer!'
        raise SpaceError(f"{name}: 'if {text}': != is not a condition research reads; name the values it may take "
                         f"(if {parent[:-1].strip()}=sgd,momentum)")
    if parent == name:
        raise SpaceError(f"{name}: a parameter cannot depend on itself ('if {text}')")
    if op == "=":
        values = _choices(name, rest, f"'if {text}'")
        if not values:
            raise SpaceError(f"{name}: 'if {text}' names no value")
        return Condition(parent, op, values)
    limit = _scalar(rest.strip())
    if not _is_number(limit):
        raise SpaceError(f"{name}: 'if {text}' compares with '{rest.strip()}', which is not a number")
    return Condition(parent, op, (limit,))


def _forward(scale: str, x: float) -> float:
    if scale == "log":
        return math.log10(x)
    if scale == "log1m":
        return math.log10(1.0 - x)
    return x


def _inverse(scale: str, t: float) -> float:
    if scale == "log":
        try:
            return 10.0**t
        except OverflowError:  # t rounded just above log10(max float): clipped to high by the caller
            return math.inf
    if scale == "log1m":
        return 1.0 - 10.0**t
    return t


def _check_bounds(name: str, low: float, high: float, scale: str) -> None:
    if scale not in SCALES:
        raise SpaceError(f"{name}: unknown scale '{scale}'; choose one of: {', '.join(SCALES)}")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SpaceError(f"{name}: bounds must be finite numbers, got {low}..{high}")
    if not low < high:
        raise SpaceError(f"{name}: low must be below high, got {low}..{high}")
    if scale == "log" and low <= 0:
        raise SpaceError(f"{name}: the log scale needs low > 0, got low={low}")
    if scale == "log1m" and high >= 1:
        raise SpaceError(f"{name}: the log1m scale needs high < 1, got high={high}")
    t0, t1 = _forward(scale, low), _forward(scale, high)
    if not math.isfinite(t1 - t0):
        raise SpaceError(f"{name}: {low}..{high} is too wide for a float on the {scale} scale (high - low overflows); "
                         "narrow it")
    if t1 == t0:
        raise SpaceError(f"{name}: {low}..{high} is too narrow to tell its ends apart on the {scale} scale; widen it")


INT_LIMIT = 10**12
"""The largest integer bound. A draw is float arithmetic of 53 bits: within ±1e12 each integer
gets its share to 0.02 % on the linear scale and 0.5 % at the top of a log one; at 1e13 those
are 0.25 % and 7 %, and past 2**53 floats skip integers (``int:0..1e18`` drew almost no odd one)."""


def _check_integers(name: str, low: int, high: int, scale: str) -> None:
    """Refuse an integer bound beyond ``INT_LIMIT``, on the log scale too (``1e30`` was
    rewritten as 1000000000000000019884624838656 and drawn through floats)."""
    if all(abs(b) < math.inf for b in (low, high)) and max(abs(low), abs(high)) > INT_LIMIT:  # else: not finite
        shown = "..".join(f"{Decimal(b):.3g}" if abs(b) >= 10**17 else str(b) for b in (low, high))  # not 31 digits
        raise SpaceError(f"{name}: int{':log' if scale == 'log' else ''}:{shown} is too wide: integer bounds must be "
                         "within ±1e12, beyond which a draw's float arithmetic favours some integers over others; "
                         "narrow the range, or drop 'int:' to search floats")


@dataclass(frozen=True)
class Float:
    """A real-valued parameter in [low, high] on ``scale``."""

    low: float
    high: float
    scale: str = "linear"
    name: str = "parameter"
    when: Condition | None = None  # exists only when this holds (a conditional space)

    def __post_init__(self) -> None:
        _check_bounds(self.name, self.low, self.high, self.scale)

    def to_unit(self, value: float) -> float:
        """The unit coordinate of ``value`` (0 at low, 1 at high, linear on the scale)."""
        t0, t1 = _forward(self.scale, self.low), _forward(self.scale, self.high)
        return (_forward(self.scale, float(value)) - t0) / (t1 - t0)

    def from_unit(self, u: float) -> float:
        """The value at unit coordinate ``u``, clipped into [low, high]."""
        t0, t1 = _forward(self.scale, self.low), _forward(self.scale, self.high)
        value = _inverse(self.scale, t0 + min(max(u, 0.0), 1.0) * (t1 - t0))
        return min(max(value, self.low), self.high)

    def contains(self, value: Any) -> bool:
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def describe(self) -> str:
        return f"{self.scale}:{self.low!r}..{self.high!r}" + _if(self.when)


@dataclass(frozen=True)
class Int:
    """An integer parameter in [low, high] (both included) on ``scale`` (linear or log)."""

    low: int
    high: int
    scale: str = "linear"
    name: str = "parameter"
    when: Condition | None = None

    def __post_init__(self) -> None:
        if self.scale == "log1m":
            raise SpaceError(f"{self.name}: integers take the linear or log scale, not log1m")
        _check_integers(self.name, self.low, self.high, self.scale)
        _check_bounds(self.name, self.low, self.high, self.scale)

    def _edges(self) -> tuple[float, float]:
        # Integer k owns [k - 1/2, k + 1/2] on the scaled axis (equal slices on the linear scale;
        # on the log scale a share proportional to log((k + 1/2) / (k - 1/2))).
        if self.scale == "log":
            return math.log10(self.low - 0.5 if self.low > 0.5 else self.low), math.log10(self.high + 0.5)
        return self.low - 0.5, self.high + 0.5

    def to_unit(self, value: int) -> float:
        t0, t1 = self._edges()
        return (_forward(self.scale, float(value)) - t0) / (t1 - t0)

    def from_unit(self, u: float) -> int:
        t0, t1 = self._edges()
        value = round(_inverse(self.scale, t0 + min(max(u, 0.0), 1.0) * (t1 - t0)))
        return int(min(max(value, self.low), self.high))

    def contains(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.low <= value <= self.high

    def describe(self) -> str:
        prefix = "int" if self.scale == "linear" else "int:log"
        return f"{prefix}:{self.low}..{self.high}" + _if(self.when)


@dataclass(frozen=True)
class Choice:
    """One of a fixed list of values (numbers or strings), each equally likely."""

    values: tuple
    name: str = "parameter"
    when: Condition | None = None

    def __post_init__(self) -> None:
        if len(self.values) == 0:
            raise SpaceError(f"{self.name}: a choice needs at least one value")
        # 1 and 1.0 are one value to a plugin (and to ``values.index``): a repeat
        keys = {(type(v).__name__, v) if isinstance(v, (str, bool)) else ("number", v) for v in self.values}
        if len(keys) != len(self.values):
            raise SpaceError(f"{self.name}: choice values repeat: {list(self.values)}")

    def to_unit(self, value: Any) -> float:
        return (self.values.index(value) + 0.5) / len(self.values)

    def from_unit(self, u: float) -> Any:
        # clipped like Float and Int: a negative index would wrap around to the last value
        return self.values[min(max(int(u * len(self.values)), 0), len(self.values) - 1)]

    def contains(self, value: Any) -> bool:
        return value in self.values

    def describe(self) -> str:
        return _say_choices(self.values) + _if(self.when)


Param = Union[Float, Int, Choice]
Space = dict[str, Param]


def _if(when: Condition | None) -> str:
    return f" if {when.describe()}" if when is not None else ""


def can_hold(when: Condition, parent: Param) -> bool:
    """Whether some value ``parent`` draws satisfies ``when``: one of a choice's values, a
    range's end for a comparison; a float drawn equal to a named number never happens."""
    if isinstance(parent, Choice):
        return any(when.holds(value) for value in parent.values)
    if when.op == "=":
        return isinstance(parent, Int) and any(_is_number(v) and float(v).is_integer() and parent.contains(int(v))
                                               for v in when.values)
    return when.holds(parent.high if when.op in (">=", ">") else parent.low)


def check_conditions(space: Mapping[str, Param]) -> None:
    """Every condition names another parameter of ``space`` with values it can take (a choice's
    values, numbers for a comparison), and no parameter depends on itself through others."""
    for name in space:
        seen = [name]
        while (when := space[seen[-1]].when) is not None and when.parent in space:
            if when.parent in seen:
                raise SpaceError(f"conditions form a loop: {' -> '.join([*seen, when.parent])}; a parameter "
                                 "cannot depend on itself")
            seen.append(when.parent)
    for name, param in space.items():
        when = param.when
        if when is None:
            continue
        parent = space.get(when.parent)
        if parent is None:
            raise SpaceError(f"{name}: 'if {when.describe()}' names '{when.parent}', which the space does not "
                             f"search; add --space {when.parent}=... or drop the condition")
        if when.op == "=" and isinstance(parent, Choice):
            missing = [v for v in when.values if not any(_same(c, v) for c in parent.values)]
            if missing:
                raise SpaceError(f"{name}: 'if {when.describe()}': {when.parent} never takes "
                                 f"{', '.join(map(str, missing))} (its values: {parent.describe()})")
        elif when.op == "=" and not all(parent.contains(v) for v in when.values):
            raise SpaceError(f"{name}: 'if {when.describe()}': {when.parent} is drawn from {parent.describe()}, "
                             "which does not hold every value named")
        elif when.op != "=" and isinstance(parent, Choice) and not all(map(_is_number, parent.values)):
            raise SpaceError(f"{name}: 'if {when.describe()}' compares {when.parent} with a number, but its "
                             f"values are not all numbers ({parent.describe()})")
        elif when.op == "=" and isinstance(parent, Float):
            raise SpaceError(f"{name}: 'if {when.describe()}' never holds: {when.parent} is a float drawn from "
                             f"{parent.describe()}, never exactly a named value; compare instead "
                             f"(if {when.parent}>={when.values[0]}) or make {when.parent} a choice")
        if not can_hold(when, parent):
            raise SpaceError(f"{name}: 'if {when.describe()}' never holds: {when.parent} is drawn from "
                             f"{parent.describe()}; change the condition or the range")


def parse_space(texts: Mapping[str, str]) -> Space:
    """A whole space from its definitions (``{name: "log:1e-4..1"}``), conditions checked."""
    if not isinstance(texts, Mapping):  # a list of "name=definition" flags, say: its .items() would be the error
        raise SpaceError(f"a space is a mapping of names to definitions ({{'lr': 'log:1e-4..1'}}), got "
                         f"{type(texts).__name__} {texts!r:.80}; research.space.parse_assignment reads one "
                         "'name=definition'")
    space = {name: parse_param(name, text) for name, text in texts.items()}
    check_conditions(space)
    return space


def active(space: Mapping[str, Param], config: Mapping[str, Any], name: str) -> bool:
    """Whether ``name`` exists in ``config``: unconditional, or its condition holds and its
    parent is itself active."""
    when = space[name].when
    return when is None or (when.parent in space and active(space, config, when.parent)
                            and when.holds(config.get(when.parent)))


def restrict(space: Mapping[str, Param], config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without the parameters of ``space`` that are inactive in it."""
    return {key: value for key, value in config.items() if key not in space or active(space, config, key)}


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpaceError(f"{name}: '{text}' is not a number") from None


def _integer(name: str, text: str) -> int:
    try:
        return int(text)  # exact, however large
    except ValueError:
        pass
    value = _number(name, text)  # 1e3 is an integer too
    if not math.isfinite(value) or value != int(value):
        raise SpaceError(f"{name}: '{text}' is not an integer")
    return int(value)


def _scalar(text: str) -> Any:
    """A choice value as the number it spells, or the string itself."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


FORMS = "low..high with an optional scale (log:1e-4..1, log1m:0.9..0.999, 0..0.5, int:16..256, " \
        "int:log:16..256) or choices (relu,tanh)"
"""The definitions ``--space`` accepts, as error messages name them."""


def _choices(name: str, text: str, where: str) -> tuple[Any, ...]:
    """The comma-separated values of ``text`` (none when it is blank); an empty one among
    others (``a,,b``, ``a,``) is refused, not dropped: it is a typo or a value lost. A value in
    double or single quotes is the string between them, as it is (``"b c"``, ``'1,2'``, ``"3"``)."""
    items = [_quoted(name, item, where) for item in _QUOTED_OR_PLAIN.findall(text + ",")]
    if not any(value for value, _ in items):
        return ()
    if not all(value for value, _ in items):
        raise SpaceError(f"{name}: {where} has an empty value between its commas; write each value once, "
                         "separated by single commas (relu,tanh)")
    return _finite(name, f"{where} has the choice", tuple(value if quoted else _scalar(value)
                                                           for value, quoted in items))


def _say_choices(values: Sequence[Any]) -> str:
    """The values as ``_choices`` reads them back: a string quoted where it would read as
    something else (a number, two values, a scale, spaces dropped), plain otherwise."""
    return ",".join(_say(value) for value in values)


def _say(value: Any) -> str:
    """One choice value as ``--space`` text: plain when it reads back as itself, else quoted."""
    if not isinstance(value, str) or (value and value == value.strip() and not any(mark in value for mark in ",:")
                                      and value[0] not in "'\"" and _scalar(value) == value):
        return str(value)
    return f"'{value}'" if '"' in value else f'"{value}"'


# One item and the comma after it (the text gets one more): a quoted value, or anything up to a comma.
_QUOTED_OR_PLAIN = re.compile(r"""\s*("[^"]*"|'[^']*'|[^,]*?)\s*,""")


def _quoted(name: str, item: str, where: str) -> tuple[str, bool]:
    """(the value, whether it was quoted) of one item; a SpaceError for a quote left open or
    text beside a quoted value (``"b c"d``)."""
    if item[:1] in ("'", '"'):
        if len(item) >= 2 and item[-1] == item[0] and item.count(item[0]) == 2:
            return item[1:-1], True
        raise SpaceError(f"{name}: {where} has {item!r}, a quote not closed or text beside a quoted value; write a "
                         'value with spaces or commas as "b c", between commas (relu,"b c")')
    return item, False


def _finite(name: str, said: str, choices: Sequence[Any]) -> Sequence[Any]:
    """``choices`` when none is a NaN or an infinity: no option takes one (`research sample`
    drew it, and printed NaN as its JSON); a SpaceError naming it (after ``said``) otherwise."""
    odd = next((v for v in choices if isinstance(v, float) and not math.isfinite(v)), None)
    if odd is not None:
        raise SpaceError(f"{name}: {said} {odd}, not a finite number; choose finite values")
    return choices


def parse_param(name: str, text: str) -> Param:
    """Parse one command-line definition.

    ``log:1e-4..1``, ``log1m:0.9..0.999``, ``linear:0..0.5`` or ``0..0.5`` (floats),
    ``int:16..256``, ``int:log:16..256`` (integers), ``1,2,3`` or ``relu,tanh`` (choices),
    each optionally followed by a condition: ``log1m:0.99..0.9999 if optimizer=adam``.
    """
    if not isinstance(text, str):
        raise SpaceError(f"{name}: a definition is text, {FORMS}; got {text!r} (a fixed value goes in the base "
                         "settings)")
    text = text.strip()
    definition, found, condition = text.partition(" if ")
    if found:
        return replace(parse_param(name, definition), when=parse_condition(name, condition))
    if re.search(r"\sif$", text):  # stripped of the space after it: the condition is missing
        raise SpaceError(f"{name}: nothing follows 'if' in '{text}'; write the condition, e.g. 'if optimizer=adam'")
    if ".." not in text and text.split(":", 1)[0] in (*SCALES, "int"):
        raise SpaceError(f"{name}: expected low..high after '{text.split(':', 1)[0]}:', got '{text}'")
    if ".." not in text and any(mark in text for mark in "()[]{}"):  # log(1e-4, 1), uniform[0, 1]...
        raise SpaceError(f"{name}: cannot read '{text}'; write {FORMS}")
    if ".." not in text:
        return Choice(_choices(name, text, f"'{text}'"), name=name)
    head, _, bounds = text.rpartition(":")
    if ".." not in bounds:  # 0.9..0.999:log1m
        raise SpaceError(f"{name}: cannot read '{text}'; the scale goes before the range: write {FORMS}")
    low_text, sep, high_text = bounds.partition("..")
    if not sep or not low_text or not high_text or "..." in bounds:  # 1e-4...1 would read as 1e-4 .. .1
        raise SpaceError(f"{name}: expected low..high (two dots), got '{bounds}'")
    parts = [p for p in head.split(":") if p]
    if parts and parts[0] == "int":
        if len(parts) > 2:
            raise SpaceError(f"{name}: cannot read '{text}'; write e.g. int:16..256 or int:log:16..256")
        scale = parts[1] if len(parts) > 1 else "linear"
        return Int(_integer(name, low_text), _integer(name, high_text), scale, name=name)
    if len(parts) > 1:
        raise SpaceError(f"{name}: cannot read '{text}'; write e.g. log:1e-4..1 or int:16..256")
    scale = parts[0] if parts else "linear"
    return Float(_number(name, low_text), _number(name, high_text), scale, name=name)


WIDE_DECADES = 2.0
"""How many decades a range must span (high over low, or for values near 1, 1 - low over
1 - high) before the linear scale is advised against."""


def _wide(small: float, large: float) -> bool:
    return math.log10(large / small) >= WIDE_DECADES - 1e-9  # 0.1 / 0.001 is 99.99999999999999


def scale_advice(name: str, param: Param, scale_given: bool, table: bool = False) -> str | None:
    """What to write instead when a range left on the linear scale (no scale given) spans two
    decades or more, or None. There, uniform draws crowd into the top decade: ``lr=0.0001..1``
    puts 90% of them in 0.1..1 and ``beta2=0.9..0.9999`` 90% in 0.9..0.99, where the notes
    sample ``lr`` log-uniformly and ``1 - beta`` on a log scale. A scale written out, even
    ``linear``, is the user's choice and is not questioned. ``table``: the range is a study
    file's ``[space.NAME]``, whose fix is a ``scale`` key."""
    if scale_given or isinstance(param, Choice) or param.scale != "linear":
        return None
    low, high = param.low, param.high
    kind = "int:" if isinstance(param, Int) else ""
    if low > 0 and _wide(low, high):
        share, top, scale, alike = (high - high / 10) / (high - low), f"{high / 10:.3g}..{high!r}", "log", "decade"
    elif isinstance(param, Float) and 0 <= low and high < 1 and _wide(1 - high, 1 - low):
        edge = 1 - (1 - low) / 10  # the top decade of 1 - x: x in low..edge
        share, top, scale, alike = (edge - low) / (high - low), f"{low!r}..{edge:.3g}", "log1m", f"decade of 1 - {name}"
    else:
        return None
    bounds = f"{low!r}..{high!r}"
    if table:
        given, fix, keep = f"[space.{name}] {bounds}", f'scale = "{scale}" in it', 'scale = "linear"'
    else:
        given, fix, keep = f"{name}={kind}{bounds}", f"{name}={kind}{scale}:{bounds}", f"{name}={kind}linear:{bounds}"
    return (f"{given} is on the linear scale, so {share:.0%} of its draws land in {top}; {fix} draws every {alike} "
            f"alike ({keep} keeps the linear scale and is not questioned)")


def scale_written(assignment: str) -> bool:
    """Whether ``NAME=DEFINITION`` writes out a scale (``log:``, ``int:linear:``...)."""
    definition = assignment.partition("=")[2].partition(" if ")[0]
    return any(part.strip() in SCALES for part in definition.rpartition(":")[0].split(":"))


def parse_assignment(text: str) -> tuple[str, Param]:
    """Parse ``NAME=DEFINITION`` as given to ``--space``."""
    name, sep, definition = text.partition("=")
    name = name.strip()
    if not sep or not name or not definition.strip():
        raise SpaceError(f"cannot read --space '{text}'; write NAME=DEFINITION, e.g. lr=log:1e-4..1")
    return name, parse_param(name, definition)


def parse_flags(texts: Sequence[str]) -> dict[str, tuple[Param, str | None]]:
    """Every ``--space NAME=DEFINITION`` by name, with its advice on its scale (``scale_advice``);
    a name given twice is refused, not decided by order."""
    found: dict[str, tuple[Param, str | None]] = {}
    for text in texts:
        name, param = parse_assignment(text)
        if name in found:
            raise SpaceError(f"--space {name} is given twice ({name}={found[name][0].describe()} and "
                             f"{name}={param.describe()}); give each name once")
        found[name] = param, scale_advice(name, param, scale_written(text))
    return found


TABLE_KEYS = ("low", "high", "scale", "type", "values", "when")
"""The keys of a ``[space.NAME]`` table."""


def from_table(name: str, table: Mapping[str, Any]) -> Param:
    """Build a parameter from a TOML table: ``{low, high, scale, type}`` or ``{values}``.

    A misspelled key is refused rather than ignored, and so is a table the ``--space`` text
    could not say again: a study stores its space as that text (``describe``).
    """
    unknown = [key for key in table if key not in TABLE_KEYS]
    if unknown:
        raise SpaceError(f"{name}: unknown key{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(k) for k in unknown)} in [space.{name}]; valid keys: {', '.join(TABLE_KEYS)}")
    param = _from_table(name, table)
    if "when" in table:
        if not isinstance(table["when"], str):
            raise SpaceError(f"{name}: when must be a condition as text, e.g. when = \"optimizer=adam\", got "
                             f"{table['when']!r}")
        param = replace(param, when=parse_condition(name, table["when"]))
    try:
        again = parse_param(name, param.describe())
    except SpaceError:
        again = None
    if again != param:
        raise SpaceError(f"{name}: {table.get('values')!r} cannot be written as a --space definition; use numbers "
                         "or words without '..' or brackets")
    return param


def _from_table(name: str, table: Mapping[str, Any]) -> Param:
    if "values" in table:
        both = [key for key in ("low", "high", "scale", "type") if key in table]
        if both:
            keys = " and ".join(both)
            raise SpaceError(f"{name}: values make a choice, but {keys} {'is' if len(both) == 1 else 'are'} for a "
                             f"range (low, high, scale, type); give one of the two: drop {keys}, or values")
        values = table["values"]
        if not isinstance(values, Sequence) or isinstance(values, str):
            raise SpaceError(f"{name}: 'values' must be a list")
        nested = [v for v in values if not isinstance(v, (str, int, float))]
        if nested:
            raise SpaceError(f"{name}: 'values' must be numbers or words, got {nested[0]!r}")
        _finite(name, "'values' has", values)
        # true/false are written as the command line writes them (options read either)
        return Choice(tuple(str(v).lower() if isinstance(v, bool) else v for v in values), name=name)
    missing = [key for key in ("low", "high") if key not in table]
    if missing:
        raise SpaceError(f"{name}: missing {' and '.join(missing)}; give low and high, or values")
    for key in ("low", "high"):
        if isinstance(table[key], bool) or not isinstance(table[key], (int, float)):
            raise SpaceError(f"{name}: {key} must be a number, got {table[key]!r}")
    kind = table.get("type", "int" if all(isinstance(table[k], int) for k in ("low", "high")) else "float")
    scale = table.get("scale", "linear")
    if not isinstance(scale, str):
        raise SpaceError(f"{name}: scale must be one of: {', '.join(SCALES)}; got {scale!r}")
    if kind == "int":
        return Int(_integer(name, str(table["low"])), _integer(name, str(table["high"])), scale, name=name)
    if kind == "float":
        return Float(float(table["low"]), float(table["high"]), scale, name=name)
    raise SpaceError(f"{name}: unknown type {kind!r}; choose float or int")


def sample_uniform(space: Mapping[str, Param], rng) -> dict[str, Any]:
    """One configuration drawn uniformly in unit coordinates (random search on the right scale)."""
    return {name: param.from_unit(float(rng.random())) for name, param in space.items()}
