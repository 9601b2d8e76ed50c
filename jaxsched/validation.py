"""Argument checks that name the parameter and the allowed range.

Configs call these from `__post_init__`, so a bad value stops when the config is made, before
any data is read or any step trained; the experiments' CLI turns a `ConfigError` into a
one-line usage error naming the flag (exit 2).

Examples:
  >>> from jaxsched import validation
  >>> validation.integer("epochs", 5, minimum=1)
  5
  >>> validation.integer("epochs", 0, minimum=1)
  Traceback (most recent call last):
  ...
  jaxsched.validation.ConfigError: epochs must be an integer >= 1, got 0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class ConfigError(ValueError):
    """A bad value. `fields`: the parameters concerned (config field names); `requirement`:
    what they must satisfy, phrased to follow the names ("must be an integer >= 1")."""

    def __init__(self, fields: str | Sequence[str], requirement: str, got: str | None = None):
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)
        self.requirement = requirement
        self.got = got
        super().__init__(self.describe())

    def describe(self, name: Callable[[str], str] = str) -> str:
        """The message with each field shown as `name(field)` (e.g. its CLI flag)."""
        names = " and ".join(name(f) for f in self.fields)
        text = self.requirement + ("" if self.got is None else f", got {self.got}")
        for field in self.fields:  # the text may mention the fields by name: {lr_min}
            text = text.replace("{" + field + "}", name(field))
        return f"{names} {text}"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def integer(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> Any:
    """`value` if it is an int (not a bool) in [minimum, maximum] (None when `optional`)."""
    if value is None and optional:
        return value
    bounds = _bounds(minimum, maximum, False, False)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(name, f"must be an integer{bounds}", _show(value))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(name, f"must be an integer{bounds}", _show(value))
    return value


def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    optional: bool = False,
) -> Any:
    """`value` if it is a finite real number in the range (None when `optional`)."""
    if value is None and optional:
        return value
    bounds = _bounds(minimum, maximum, exclusive_minimum, exclusive_maximum)
    requirement = f"must be a finite number{bounds}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(name, requirement, _show(value))
    if not math.isfinite(value):
        raise ConfigError(name, requirement, _show(value))
    below = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    above = maximum is not None and (value >= maximum if exclusive_maximum else value > maximum)
    if below or above:
        raise ConfigError(name, requirement, _show(value))
    return value


def choice(name: str, value: Any, choices: Iterable[Any], *, optional: bool = False) -> Any:
    """`value` if it is one of `choices` (None when `optional`)."""
    choices = tuple(choices)
    if (value is None and optional) or value in choices:
        return value
    raise ConfigError(name, f"must be one of {', '.join(map(_show, choices))}", _show(value))


def sequence(
    name: str,
    values: Any,
    check: Callable[[str, Any], Any],
    *,
    unique: bool = False,
    optional: bool = False,
    min_length: int = 1,
) -> Any:
    """`values` if it is a sequence of at least `min_length` items each passing
    `check(name, item)` (an error names the item's value), distinct when `unique`."""
    if values is None and optional:
        return values
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(name, "must be a list of values", _show(values))
    if len(values) < min_length:
        raise ConfigError(name, f"must hold at least {min_length} value(s)", "none")
    for item in values:
        try:
            check(name, item)
        except ConfigError as error:
            raise ConfigError(
                name, "must each " + error.requirement.removeprefix("must "), error.got
            ) from None
    if unique and len(set(values)) != len(values):
        raise ConfigError(name, "must not repeat a value", " ".join(map(_show, values)))
    return values


def ordered(low_name: str, low: Any, high_name: str, high: Any, *, strict: bool = True) -> None:
    """Checks low < high (or <= when not `strict`); does nothing when either is None."""
    if low is None or high is None:
        return
    if (low >= high) if strict else (low > high):
        raise ConfigError(
            (low_name, high_name),
            f"must satisfy {{{low_name}}} {'<' if strict else '<='} {{{high_name}}}",
            f"{_show(low)} and {_show(high)}",
        )


def together(names: Sequence[str], values: Sequence[Any]) -> None:
    """Checks that the fields are all given (not None) or all left out."""
    given = [v is not None for v in values]
    if any(given) and not all(given):
        missing = [n for n, g in zip(names, given, strict=True) if not g]
        raise ConfigError(
            tuple(names),
            "must be given together",
            f"no {', '.join('{' + m + '}' for m in missing)}",
        )


def _bounds(minimum: Any, maximum: Any, open_min: bool, open_max: bool) -> str:
    if minimum is not None and maximum is not None:
        left, right = "(" if open_min else "[", ")" if open_max else "]"
        return f" in {left}{minimum}, {maximum}{right}"
    if minimum is not None:
        return f" {'>' if open_min else '>='} {minimum}"
    if maximum is not None:
        return f" {'<' if open_max else '<='} {maximum}"
    return ""
