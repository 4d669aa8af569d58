"""The double's pure helpers: Go wire details, names, tokens, models and the script queue."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_ollama.testing import LIBRARY, FakeModel, count_tokens
from persona_ollama.testing.wire import (
    DecodeError,
    decode_json,
    go_json,
    parse_duration,
    rfc3339,
    syntax_message,
    version_tuple,
)
from persona_ollama.testing.wire import parse_name
from persona_ollama.testing.engine import Latency, ReplyRule, Script
from persona_ollama.testing.engine import split_chunks, truncate_to_tokens

# --- Go wire details ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("-0", 0.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("300ms", 0.3),
        ("-1m", -60.0),
        ("2us", 2e-6),
        ("1ns", 1e-9),
    ],
)
def test_parse_duration_accepts_go_durations(text: str, seconds: float) -> None:
    assert math.isclose(parse_duration(text), seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", 'time: missing unit in duration "10"'),
        ("1h5", 'time: missing unit in duration "1h5"'),
        ("5d", 'time: unknown unit "d" in duration "5d"'),
        ("m", 'time: invalid duration "m"'),
        (".s", 'time: invalid duration ".s"'),
        ("+", 'time: invalid duration "+"'),
    ],
)
def test_parse_duration_rejects_like_go(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse_duration(text)


def test_rfc3339_always_has_nine_digits() -> None:
    assert rfc3339(1_000_000_000_000_000_000) == "2001-09-09T01:46:40.000000001Z"
    assert rfc3339(1_500_000_000_123_456_789) == "2017-07-14T02:40:00.123456789Z"
    assert rfc3339(0, 5 * 3600 + 30 * 60) == "1970-01-01T05:30:00.000000001+05:30"
    assert rfc3339(0, -7 * 3600) == "1969-12-31T17:00:00.000000001-07:00"


def test_go_json_is_compact_and_html_escaped() -> None:
    assert (
        go_json({"a": "<&>\u2028", "b": [1, 2.5]})
        == b'{"a":"\\u003c\\u0026\\u003e\\u2028","b":[1,2.5]}'
    )


@settings(max_examples=50)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_go_json_round_trips_through_python_json(value: object) -> None:
    assert json.loads(go_json(value)) == value


@given(st.binary(max_size=40))
def test_decode_json_either_decodes_or_raises_a_go_style_message(body: bytes) -> None:
    try:
        decode_json(body)
    except DecodeError as exc:
        message = str(exc)
        assert message in ("missing request body", "unexpected EOF") or message.startswith(
            "invalid character '"
        )


@pytest.mark.parametrize(
    ("msg", "doc", "pos", "expected"),
    [
        (
            "Illegal trailing comma before end of array",
            "[1,]",
            2,
            "invalid character ']' looking for beginning of value",
        ),
        (
            "Illegal trailing comma before end of object",
            '{"a":1, }',
            6,
            "invalid character '}' looking for beginning of object key string",
        ),
        ("Illegal trailing comma before end of array", "[1,  ", 2, "unexpected EOF"),
        ("Something new", "[x]", 1, "invalid character 'x' looking for beginning of value"),
    ],
)
def test_syntax_messages_cover_newer_python_errors(
    msg: str, doc: str, pos: int, expected: str
) -> None:
    assert syntax_message(msg, doc, pos) == expected


def test_decode_json_reports_infinity_like_go() -> None:
    with pytest.raises(DecodeError, match="invalid character 'I'"):
        decode_json(b"[-Infinity]")


def test_version_tuple_ignores_prerelease_suffixes() -> None:
    assert version_tuple("0.12.0-rc1") == (0, 12, 0)
    assert version_tuple("v0.9") == (0, 9)
    assert version_tuple("dev") == (0,)


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "display", "full"),
    [
        ("llama3", "llama3:latest", "registry.ollama.ai/library/llama3:latest"),
        ("me/m:q4", "me/m:q4", "registry.ollama.ai/me/m:q4"),
        ("hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M", "hf.co/org/repo:Q4_K_M"),
        ("myreg:5000/ns/m", "myreg:5000/ns/m:latest", "myreg:5000/ns/m:latest"),
        ("Registry.Ollama.AI/Library/X", "X:latest", "Registry.Ollama.AI/Library/X:latest"),
    ],
)
def test_names_parse_to_the_display_and_full_forms(raw: str, display: str, full: str) -> None:
    name = parse_name(raw)

    assert (name.display, name.full, name.is_valid) == (display, full, True)


def test_fake_model_normalises_and_validates_its_name() -> None:
    assert FakeModel("Llama3").name == "Llama3:latest"
    with pytest.raises(ValueError, match="not a valid Ollama model name"):
        FakeModel("bad name")
    with pytest.raises(ValueError, match="unknown capabilities"):
        FakeModel("m", capabilities=["completion", "telepathy"])


def test_fake_model_digest_is_deterministic_bare_hex() -> None:
    assert FakeModel("m:1b").digest == FakeModel("m:1b").digest
    assert len(FakeModel("m:1b").digest) == 64
    assert FakeModel("m:1b", digest="ab" * 32).digest == "ab" * 32


def test_parameter_size_becomes_a_parameter_count() -> None:
    assert (
        FakeModel("a", parameter_size="751.63M").model_info()["general.parameter_count"]
        == 751_630_000
    )
    assert FakeModel("a", parameter_size="big").model_info()["general.parameter_count"] == 0


def test_library_models_are_internally_consistent() -> None:
    for key, model in LIBRARY.items():
        assert model.key == key
        assert model.capabilities


# --- tokens ------------------------------------------------------------------------------------


@given(st.text())
def test_count_tokens_is_the_utf8_length_over_four_rounded_up(text: str) -> None:
    assert count_tokens(text) == math.ceil(len(text.encode("utf-8")) / 4)


@given(st.text(), st.integers(min_value=-1, max_value=50))
def test_truncate_to_tokens_keeps_a_prefix_within_the_budget(text: str, limit: int) -> None:
    kept = truncate_to_tokens(text, limit)

    assert text.startswith(kept)
    assert count_tokens(kept) <= max(limit, 0)


@given(st.text(), st.one_of(st.none(), st.integers(min_value=1, max_value=7)))
def test_split_chunks_loses_nothing(text: str, size: int | None) -> None:
    assert "".join(split_chunks(text, size)) == text


def test_split_chunks_by_word_keeps_leading_spaces() -> None:
    assert split_chunks("Hello big  world ") == ["Hello", " big", "  world "]
    assert split_chunks("   ") == ["   "]


# --- the script queue --------------------------------------------------------------------------


def test_script_prefers_counted_rules_and_expires_them() -> None:
    script = Script()
    script.add_latency(Latency(first_byte=1.0, path="*"))
    script.add_latency(Latency(first_byte=2.0, path="*", remaining=1))

    assert [script.take_latency("/api/tags").first_byte for _ in range(2)] == [2.0, 1.0]
    assert script.take_reply("x") is None
    script.add_reply(ReplyRule("a", model_key="other"))
    assert script.take_reply("x") is None


def test_script_is_safe_under_concurrent_takes() -> None:
    script = Script()
    script.add_reply(ReplyRule("once", remaining=500))
    taken: list[str] = []

    def worker() -> None:
        for _ in range(100):
            rule = script.take_reply("m")
            if rule is not None:
                taken.append(str(rule.answer))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(taken) == 500


# --- import cost -------------------------------------------------------------------------------


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_the_package_imports_the_standard_library_only() -> None:
    modules = imported_after("import persona_ollama.testing")

    assert not {"requests", "psutil", "click", "pluggy"} & modules


def test_the_pytest_plugin_defers_the_server_until_a_fixture_runs() -> None:
    modules = imported_after("import persona_ollama.testing.pytest_plugin")

    assert "persona_ollama.testing.fake_server" not in modules
    assert "http.server" not in modules
