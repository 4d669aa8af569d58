"""Options, keep_alive, think and format are checked before they reach the server."""

from __future__ import annotations

import pytest

from persona_ollama.errors import ConfigurationError
from persona_ollama.options import (
    validate_format,
    validate_keep_alive,
    validate_options,
    validate_think,
)


def test_valid_options_pass_through():
    opts = {"num_ctx": 8192, "temperature": 0, "top_p": 0.9, "stop": ("a",), "use_mmap": False}
    assert validate_options(opts) == {**opts, "stop": ["a"]}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_ctx": "8k"}, "must be an integer"),
        ({"num_ctx": 8192.5}, "must be an integer"),
        ({"seed": True}, "must be an integer"),
        ({"temperature": "hot"}, "must be a number"),
        ({"stop": "x"}, "list of strings"),
        ({"stop": [1]}, "list of strings"),
        ({"use_mmap": 1}, "true or false"),
    ],
)
def test_wrong_names_and_types_are_refused_with_the_valid_form(options, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        validate_options(options)
    assert caught.value.hint


def test_unknown_option_is_sent_with_one_warning(caplog):
    from persona_ollama.privacy import reset_warnings

    reset_warnings()
    with caplog.at_level("WARNING", logger="persona_ollama"):
        assert validate_options({"mirostat_tau": 5.0}) == {"mirostat_tau": 5.0}
        assert validate_options({"mirostat_tau": 4.0}) == {"mirostat_tau": 4.0}
        assert validate_options({"num_ctxx": 1}) == {"num_ctxx": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("'mirostat_tau' is not one persona-ollama knows" in m for m in messages) == 1
    assert any("Did you mean 'num_ctx'?" in m for m in messages)


def test_the_unknown_option_warning_reads_as_before_for_an_ollama_user(caplog):
    # The provider checks its options with the default backend's words: Ollama's, the text
    # docs/troubleshooting.md quotes. Another backend's declaration brings its own.
    from persona_ollama import OllamaProvider
    from persona_ollama.backends.rules import Declaration
    from persona_ollama.privacy import reset_warnings

    reset_warnings()
    with caplog.at_level("WARNING", logger="persona_ollama"):
        OllamaProvider(base_url="http://127.0.0.1:9", options={"nm_ctx": 5}, environ={})
        validate_options({"mirostat_eta": 1.0}, unknown=Declaration.unknown_option)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Option 'nm_ctx' is not one persona-ollama knows; it is sent as given, and an Ollama "
        "server that does not know it ignores it silently. Did you mean 'num_ctx'?",
        "Option 'mirostat_eta' is not one persona-ollama knows; it is sent as given, and a "
        "server that does not know it may ignore it silently.",
    ]


def test_newer_server_option_is_known_and_type_checked():
    # draft_num_predict: api/types.go Runner since v0.30
    assert validate_options({"draft_num_predict": 4}) == {"draft_num_predict": 4}
    with pytest.raises(ConfigurationError, match="must be an integer"):
        validate_options({"draft_num_predict": "4"})


@pytest.mark.parametrize("good", [0, -1, 300, 1.5, "5m", "1h30m", "-1m", "250ms", ".5h"])
def test_keep_alive_accepts_seconds_and_durations(good):
    assert validate_keep_alive(good) == good


@pytest.mark.parametrize("bad", ["10", "5 minutes", True, None, "m"])
def test_keep_alive_refuses_what_the_server_would(bad):
    with pytest.raises(ConfigurationError, match="keep_alive"):
        validate_keep_alive(bad)


def test_think_accepts_bools_and_levels():
    assert validate_think(True) is True
    assert validate_think("HIGH") == "high"
    with pytest.raises(ConfigurationError):
        validate_think("extreme")


def test_format_accepts_json_or_a_schema():
    assert validate_format("json") == "json"
    assert validate_format({"type": "object"}) == {"type": "object"}
    with pytest.raises(ConfigurationError):
        validate_format("yaml")
