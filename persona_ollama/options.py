"""Check request options before they are sent.

A server may answer an error for a known option given a value of the wrong type, so types are
checked here with a message that shows a good value: the common sampling options, and the
options the backend declares (backends/rules.py ``Declaration.options``). A name we do not know
may be one a newer server accepts: it is passed through with one warning, since a server that
does not know it may ignore it silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .backends.registry import declared
from .backends.rules import BOOL, INT, NUMBER, STRINGS, OptionType
from .errors import ConfigurationError
from .privacy import warn_once
from .settings import DEFAULT_API

# The sampling options llama.cpp-based servers share, under these names.
COMMON_OPTIONS: dict[str, OptionType] = {
    "seed": INT,
    "top_k": INT,
    "repeat_last_n": INT,
    "temperature": NUMBER,
    "top_p": NUMBER,
    "min_p": NUMBER,
    "typical_p": NUMBER,
    "repeat_penalty": NUMBER,
    "presence_penalty": NUMBER,
    "frequency_penalty": NUMBER,
    "stop": STRINGS,
}
# The options known for the default API's backend: the common ones and its own.
OPTION_TYPES: dict[str, OptionType] = {**COMMON_OPTIONS, **declared(DEFAULT_API).options}
# What the default API's server does with an option it does not know, in a warning's words.
UNKNOWN_OPTION = declared(DEFAULT_API).unknown_option
THINK_LEVELS = ("low", "medium", "high", "max")
_DURATION = re.compile(
    r"^-?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$"
)


def validate_options(
    options: Mapping[str, Any],
    known: Mapping[str, OptionType] = OPTION_TYPES,
    unknown: str = UNKNOWN_OPTION,
) -> dict[str, Any]:
    """Return a copy of ``options`` after checking the value type of every ``known`` name.

    An unknown name is passed through with a once-per-process warning that ends with
    ``unknown`` (what the server does with it: ``Declaration.unknown_option``).
    """
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"Option names must be text, got {name!r}.")
        expected = known.get(name)
        if expected is None:
            import difflib

            close = difflib.get_close_matches(name, known, 1, 0.8)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            warn_once(
                f"option:{name}",
                f"Option {name!r} is not one persona-ollama knows; it is sent as given, and "
                f"{unknown}.{guess}",
            )
            checked[name] = value
            continue
        label, types = expected
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and name == "stop":
            ok = all(isinstance(item, str) for item in value)
            value = list(value)
        if not ok:
            raise ConfigurationError(
                f"Option {name!r} must be {label}, got {value!r} ({type(value).__name__}).",
                hint=f"e.g. options={{{name!r}: {_example(expected)}}}",
            )
        checked[name] = value
    return checked


def _example(expected: OptionType) -> str:
    examples = {STRINGS: '["\\n\\n"]', BOOL: "True", NUMBER: "0.7", INT: "8192"}
    return examples.get(expected, "1")


def validate_keep_alive(value: Any) -> float | int | str:
    """A number of seconds or a Go duration ("5m", "1h30m", "-1m"); "10" alone is refused."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DURATION.match(value.strip()):
        return value.strip()
    raise ConfigurationError(
        f"keep_alive must be seconds as a number or a duration such as '5m', got {value!r}.",
        hint="e.g. keep_alive='10m', keep_alive=600, keep_alive=-1 (keep loaded), 0 (unload).",
    )


def validate_think(value: Any) -> bool | str:
    """``value`` as the ``think`` setting: a bool or a level (lowercased); else
    ConfigurationError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in THINK_LEVELS:
        return value.lower()
    raise ConfigurationError(
        f"think must be True, False or one of {', '.join(THINK_LEVELS)}; got {value!r}.",
        hint="e.g. think=False to skip a thinking model's reasoning.",
    )


def validate_format(value: Any) -> str | dict[str, Any]:
    """``value`` as the ``format`` setting: ``"json"`` or a JSON schema dict; else
    ConfigurationError."""
    if value == "json" or isinstance(value, dict):
        return value  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"format must be 'json' or a JSON schema (a dict), got {value!r}.",
        hint='e.g. format="json" or format={"type": "object", "properties": {...}}.',
    )
