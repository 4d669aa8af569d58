"""The environment variables the plugin reads: named here (the ``*_VAR`` constants), in one
place, and checked.

Constructor arguments beat these; every variable named here is documented in
docs/configuration.md (tests/unit/test_settings.py holds the two lists equal). A bad value raises
:class:`ConfigurationError` naming the variable and a good example.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .backends.registry import declared
from .errors import ConfigurationError

PREFIX = "PERSONA_OLLAMA_"
MODEL_VAR = PREFIX + "MODEL"
TIMEOUT_VAR = PREFIX + "TIMEOUT"
API_KEY_VAR = PREFIX + "API_KEY"
LOCAL_ONLY_VAR = PREFIX + "LOCAL_ONLY"
CA_BUNDLE_VAR = PREFIX + "CA_BUNDLE"
API_VAR = PREFIX + "API"
RESTARTS_VAR = PREFIX + "RESTARTS"
MEMORY_GB_VAR = PREFIX + "MEMORY_GB"  # read by hardware.memory_budget
CATALOGUE_VAR = PREFIX + "CATALOGUE"  # read by catalogue.load_catalogue
JOB_MINUTES_VAR = PREFIX + "JOB_MINUTES"  # read by selection.job_budget_seconds
RECORD_TIMINGS_VAR = PREFIX + "RECORD_TIMINGS"  # read by timings.recording_enabled
# Not ours, but read by us: the colour conventions of https://no-color.org and
# https://force-color.org (the CLI).
NO_COLOR_VAR = "NO_COLOR"
FORCE_COLOR_VAR = "FORCE_COLOR"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
# The server APIs the provider speaks, each a backend listed in backends/registry.py: the
# server's native API, and the OpenAI-compatible /v1/chat/completions.
APIS = ("native", "openai")
# The API spoken when neither api= nor PERSONA_OLLAMA_API says: one place, so that a provider
# built from this template (docs/writing-a-provider.md) changes its default here alone.
DEFAULT_API = "native"
# Also not ours: the variables that name the server are the backend's (AddressRules.variables,
# read in endpoint.py). These two names stay importable, bound to the default backend's first
# (the host's name for the server) and last (the server's own).
_ADDRESS_VARIABLES = declared(DEFAULT_API).address.variables
BASE_URL_VAR = _ADDRESS_VARIABLES[0]
HOST_VAR = _ADDRESS_VARIABLES[-1]


def _get(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def env_float(environ: Mapping[str, str], name: str, example: str) -> float | None:
    """The variable ``name`` as a positive finite number, or None when unset or blank.

    Anything else raises ConfigurationError whose hint shows ``name={example}``.
    """
    value = _get(environ, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise ConfigurationError(
            f"{name}={value!r} is not a positive number.",
            hint=f"e.g. {name}={example}",
        )
    return number


def env_count(environ: Mapping[str, str], name: str, example: str) -> int | None:
    """The variable ``name`` as a whole number >= 0, or None when unset or blank.

    Anything else raises ConfigurationError whose hint shows ``name={example}``.
    """
    value = _get(environ, name)
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 6:
        raise ConfigurationError(
            f"{name}={value!r} is not a whole number of 0 or more.",
            hint=f"e.g. {name}={example}",
        )
    return int(value)


def env_bool(environ: Mapping[str, str], name: str) -> bool | None:
    """The variable ``name`` as a yes/no value (empty counts as no), or None when unset.

    Anything else raises ConfigurationError saying how to switch it on or off.
    """
    value = environ.get(name)
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(
        f"{name}={value!r} is not a yes/no value.",
        hint=f"Use {name}=1 to switch it on or {name}=0 to switch it off.",
    )


def check_api(value: object, name: str) -> str:
    """``value`` as one of APIS (any case); ``name`` is the argument or variable it came from."""
    lowered = value.strip().lower() if isinstance(value, str) else value
    if lowered not in APIS:
        raise ConfigurationError(
            f"{name}={value!r} is not a known API; expected one of: {', '.join(APIS)}.",
            hint="; ".join(
                f"{api}{' (the default)' if api == DEFAULT_API else ''} talks to "
                f"{declared(api).speaks}"
                for api in APIS
            )
            + ".",
        )
    return str(lowered)


@dataclass(frozen=True)
class Settings:
    """The plugin's own environment variables (the server's address is read in endpoint.py)."""

    model: str | None = None
    timeout: float | None = None
    api_key: str | None = None
    local_only: bool | None = None
    ca_bundle: str | None = None
    api: str | None = None
    restarts: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings in ``environ`` (default ``os.environ``); a bad value raises
        ConfigurationError naming its variable."""
        env = os.environ if environ is None else environ
        return cls(
            model=_get(env, MODEL_VAR),
            timeout=env_float(env, TIMEOUT_VAR, "600"),
            api_key=_get(env, API_KEY_VAR),
            local_only=env_bool(env, LOCAL_ONLY_VAR),
            ca_bundle=_get(env, CA_BUNDLE_VAR),
            api=check_api(api, API_VAR) if (api := _get(env, API_VAR)) else None,
            restarts=env_count(env, RESTARTS_VAR, "2"),
        )


def check_secret(value: object, name: str) -> str:
    """``value`` as a header-safe secret; else ConfigurationError, which never shows it.

    A key read from a file often keeps its trailing newline, and requests would then put the
    whole key in the text of its exception; a key outside latin-1 cannot go in a header.
    """
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be text (str), got {type(value).__name__}.")
    bad = next((c for c in value if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F), None)
    if bad is not None:
        where = "ends with" if value.endswith(bad) else "contains"
        raise ConfigurationError(
            f"{name} {where} a control character ({bad.encode('unicode_escape').decode()}); "
            "it was not sent.",
            hint="A key read from a file keeps its newline: strip it, e.g. "
            "open(path).read().strip().",
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as error:
        raise ConfigurationError(
            f"{name} contains a character that an HTTP header cannot carry "
            f"(position {error.start}, outside latin-1); it was not sent.",
            hint="Copy the key again from where it was issued: keys are plain ASCII.",
        ) from None
    return value


def check_ca_bundle(path: str) -> str:
    """``path`` as a CA bundle (a PEM file, or a directory of them) that TLS can load."""
    import ssl

    if os.path.isdir(path):
        return path
    if not os.path.isfile(path):
        raise ConfigurationError(
            f"The CA bundle {path!r} does not exist.",
            hint=f"Point {CA_BUNDLE_VAR} (or verify=) at a PEM file of CA certificates.",
        )
    try:
        ssl.create_default_context(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as error:
        raise ConfigurationError(
            f"The CA bundle {path!r} cannot be loaded ({type(error).__name__}): it is not a "
            "readable PEM file of certificates.",
            hint=f"Point {CA_BUNDLE_VAR} (or verify=) at a PEM file of CA certificates.",
        ) from None
    return path
