"""Check request options before they are sent.

Ollama answers an error for a known option given a value of the wrong type, so types are
checked here with a message that shows a good value. A name we do not know may be one a newer
server accepts (``draft_num_predict`` arrived in v0.30; api/types.go Options and Runner): it
is passed through with one warning, since an older server silently ignores it
(docs/reference/ollama-protocol.md, "Options").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError
from .privacy import warn_once

_INT = ("an integer", (int,))
_NUMBER = ("a number", (int, float))
_BOOL = ("true or false", (bool,))

OPTION_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "num_ctx": _INT,
    "num_predict": _INT,
    "num_keep": _INT,
    "seed": _INT,
    "top_k": _INT,
    "repeat_last_n": _INT,
    "num_batch": _INT,
    "num_gpu": _INT,
    "main_gpu": _INT,
    "num_thread": _INT,
    "draft_num_predict": _INT,
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "min_p": _NUMBER,
    "typical_p": _NUMBER,
    "repeat_penalty": _NUMBER,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "use_mmap": _BOOL,
    "stop": ("a list of strings", (list, tuple)),
}
THINK_LEVELS = ("low", "medium", "high", "max")
_DURATION = re.compile(
    r"^-?(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$"
)


def validate_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``options`` after checking the value type of every known name.

    An unknown name is passed through with a once-per-process warning.
    """
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"Option names must be text, got {name!r}.")
        expected = OPTION_TYPES.get(name)
        if expected is None:
            import difflib

            close = difflib.get_close_matches(name, OPTION_TYPES, 1, 0.8)
            guess = f" Did you mean {close[0]!r}?" if close else ""
            warn_once(
                f"option:{name}",
                f"Option {name!r} is not one persona-ollama knows; it is sent as given, and an "
                f"Ollama server that does not know it ignores it silently.{guess}",
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
                hint=f"e.g. options={{{name!r}: {_example(name)}}}",
            )
        checked[name] = value
    return checked


def _example(name: str) -> str:
    examples = {"stop": '["\\n\\n"]', "use_mmap": "True", "temperature": "0.7"}
    return examples.get(name, "1" if OPTION_TYPES[name] is not _INT else "8192")


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
    """``value`` as Ollama's ``think``: a bool or a level (lowercased); else ConfigurationError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in THINK_LEVELS:
        return value.lower()
    raise ConfigurationError(
        f"think must be True, False or one of {', '.join(THINK_LEVELS)}; got {value!r}.",
        hint="e.g. think=False to skip a thinking model's reasoning.",
    )


def validate_format(value: Any) -> str | dict[str, Any]:
    """``value`` as Ollama's ``format``: ``"json"`` or a JSON schema dict; else
    ConfigurationError."""
    if value == "json" or isinstance(value, dict):
        return value  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"format must be 'json' or a JSON schema (a dict), got {value!r}.",
        hint='e.g. format="json" or format={"type": "object", "properties": {...}}.',
    )
