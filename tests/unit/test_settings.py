"""The environment variables are named in settings.py and documented in docs/configuration.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from persona_ollama import settings
from persona_ollama.errors import ConfigurationError

CONFIGURATION = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _documented_variables() -> list[str]:
    """The first column of the table under ``## Environment variables``."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, flags=re.MULTILINE)


def _named_variables() -> set[str]:
    """The values of settings.py's ``*_VAR`` constants."""
    return {value for name, value in vars(settings).items() if name.endswith("_VAR")}


def test_configuration_doc_lists_exactly_the_variables_settings_names() -> None:
    documented = _documented_variables()

    assert len(documented) == len(set(documented)), "a variable is documented twice"
    assert set(documented) == _named_variables()


def test_the_doc_check_reads_the_table_of_variables() -> None:
    # Guards the parser: an empty or misread table would make the check above vacuous.
    assert {"OLLAMA_HOST", "PERSONA_OLLAMA_MODEL", "PERSONA_OLLAMA_CATALOGUE"} <= set(
        _documented_variables()
    )


def test_a_bad_number_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as raised:
        settings.Settings.from_env({settings.TIMEOUT_VAR: "soon"})

    assert str(raised.value).startswith("PERSONA_OLLAMA_TIMEOUT='soon' is not a positive number")
    assert raised.value.hint == "e.g. PERSONA_OLLAMA_TIMEOUT=600"


def test_settings_are_read_from_their_named_variables() -> None:
    environ = {
        "PERSONA_OLLAMA_MODEL": " qwen2.5:7b ",
        "PERSONA_OLLAMA_TIMEOUT": "42",
        "PERSONA_OLLAMA_API_KEY": "k",
        "PERSONA_OLLAMA_LOCAL_ONLY": "yes",
        "PERSONA_OLLAMA_CA_BUNDLE": "/etc/ssl/ca.pem",
        "PERSONA_OLLAMA_API": "OpenAI",
    }

    assert settings.Settings.from_env(environ) == settings.Settings(
        model="qwen2.5:7b",
        timeout=42.0,
        api_key="k",
        local_only=True,
        ca_bundle="/etc/ssl/ca.pem",
        api="openai",
    )
