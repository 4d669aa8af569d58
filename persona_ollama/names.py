"""Model names: the checks every server's names pass, and the backend's own grammar.

Above the backend a model name must be non-empty text of at most
:data:`~persona_ollama.backends.rules.MAX_NAME_LENGTH` characters without control characters;
the backend's :class:`~persona_ollama.backends.rules.NameRules` then decide which names its
server takes and which spellings name one model. Without rules, the default API's backend's.
"""

from __future__ import annotations

import re

from .backends.registry import declared
from .backends.rules import MAX_NAME_LENGTH, NameRules
from .errors import ConfigurationError
from .settings import DEFAULT_API

DEFAULT_RULES: NameRules = declared(DEFAULT_API).names
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: never part of a name


def canonical(name: str, rules: NameRules = DEFAULT_RULES) -> str:
    """The key two spellings of one model share, in ``rules``: compare names by it."""
    return rules.canonical(name)


def is_cloud(name: str, rules: NameRules = DEFAULT_RULES) -> bool:
    """True when the server forwards requests for ``name`` to a hosted service."""
    return rules.is_remote(name)


def check_name(name: object, rules: NameRules = DEFAULT_RULES) -> str:
    """Return ``name`` stripped, or raise ConfigurationError if the server would reject it."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError(
            f"A model name must be a non-empty string, got {name!r}.",
            hint=f"e.g. model={rules.example!r}; `persona-ollama models` lists installed models."
            if rules.example
            else "`persona-ollama models` lists the server's models by name.",
        )
    stripped = name.strip()
    found = _CONTROL.search(stripped)
    if found is not None:
        bad = found.group()
        raise ConfigurationError(
            f"The model name {stripped[:80]!r} contains a control character "
            f"({bad.encode('unicode_escape').decode()}); it was not sent.",
            hint="`persona-ollama models` lists the server's models by name.",
        )
    if len(stripped) > MAX_NAME_LENGTH:
        raise ConfigurationError(
            f"The model name {stripped[:80]!r}... is {len(stripped)} characters long, more than "
            f"any server takes ({MAX_NAME_LENGTH}); it was not sent.",
            hint="`persona-ollama models` lists the server's models by name.",
        )
    rules.check(stripped)
    return stripped
