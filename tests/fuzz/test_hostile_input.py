"""Hostile and broken input: every parser and mapper either answers or raises our own error.

The number of examples per property comes from PERSONA_OLLAMA_FUZZ_EXAMPLES (tox's `fuzz`
environment runs 2,000 each, over 14,000 in all); the session summary prints how many cases ran.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_helpers import feed_all

from persona_ollama.backends.base import Chunk
from persona_ollama.backends.ollama import chat_chunk
from persona_ollama.backends.ollama_errors import error_from_status, error_from_stream_line
from persona_ollama.backends.openai import (
    OpenAIBackend,
    _Empty,
    _Interrupted,
    _StreamError,
    final_chunk,
    sse_chunks,
)
from persona_ollama.endpoint import parse_host, resolve_endpoint
from persona_ollama.errors import ConfigurationError, OllamaError, OllamaResponseError
from persona_ollama.names import canonical, check_name
from persona_ollama.options import validate_options
from persona_ollama.transport.ndjson import iter_ndjson
from persona_ollama.transport.sse import iter_sse_data

EXAMPLES = int(os.environ.get("PERSONA_OLLAMA_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

url_pieces = st.sampled_from(
    [
        "http://",
        "https://",
        "ftp://",
        "user:pw@",
        "@",
        "[",
        "]",
        "::",
        ":",
        "/",
        "?",
        "#",
        "%",
        "0.0.0.0",
        "[::]",
        "localhost",
        "127.0.0.1",
        "example.com",
        ":11434",
        ":99999",
        " ",
        "'",
        '"',
        "\\",
        "\n",
        "ollama.com",
    ]
)
urlish = st.one_of(st.text(max_size=40), st.lists(url_pieces, max_size=8).map("".join))


@FUZZ
@given(value=urlish)
def test_url_parser_answers_or_raises_configuration_error(tally, value):
    tally()
    try:
        endpoint = parse_host(value, source="OLLAMA_HOST")
    except ConfigurationError:
        return
    assert endpoint.base_url.startswith(("http://", "https://"))
    assert parse_host(endpoint.base_url).base_url == endpoint.base_url


@FUZZ
@given(host=urlish, base=urlish)
def test_resolution_from_the_environment_never_crashes(tally, host, base):
    tally()
    with contextlib.suppress(ConfigurationError):
        resolve_endpoint(None, {"OLLAMA_HOST": host, "OLLAMA_BASE_URL": base})


chunk_lists = st.lists(st.binary(max_size=64), max_size=10)
json_lines = st.lists(
    st.dictionaries(st.text(max_size=5), st.one_of(st.integers(), st.text(max_size=8))),
    max_size=5,
).map(lambda items: [(json.dumps(i) + "\n").encode() for i in items])


@FUZZ
@given(chunks=st.one_of(chunk_lists, json_lines))
def test_stream_reader_yields_objects_or_raises_response_error(tally, chunks):
    tally()
    try:
        for item in iter_ndjson(chunks):
            assert isinstance(item, dict)
    except OllamaResponseError:
        pass


@FUZZ
@given(chunks=chunk_lists)
def test_sse_reader_never_crashes(tally, chunks):
    tally()
    try:
        for data in iter_sse_data(chunks):
            assert isinstance(data, bytes)
    except OllamaResponseError:
        pass


# Any JSON value, and events shaped like a /v1 chunk whose every field may be of the wrong type.
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
v1_events = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "model": json_values,
            "choices": st.one_of(
                json_values,
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "index": st.one_of(st.just(0), json_values),
                            "delta": st.one_of(
                                json_values,
                                st.fixed_dictionaries(
                                    {"content": json_values, "reasoning": json_values}
                                ),
                            ),
                            "finish_reason": st.one_of(st.just("stop"), json_values),
                        }
                    ),
                    max_size=2,
                ),
            ),
            "usage": st.one_of(
                json_values,
                st.fixed_dictionaries(
                    {"prompt_tokens": json_values, "completion_tokens": json_values}
                ),
            ),
            "timings": st.one_of(
                json_values,
                st.fixed_dictionaries({"prompt_ms": json_values, "predicted_ms": json_values}),
            ),
            "error": st.one_of(st.none(), json_values),
        }
    ),
    st.just("[DONE]"),
)


def assert_sound(chunk: Chunk) -> None:
    """Text is text; a count is unknown (None) or a whole number >= 0; a duration is unknown
    or a finite number of seconds >= 0: never a wrong type passed on to the host."""
    assert isinstance(chunk, Chunk)
    assert type(chunk.content) is str
    assert type(chunk.thinking) is str
    for count in (chunk.input_tokens, chunk.output_tokens):
        assert count is None or (type(count) is int and count >= 0)
    for seconds in (chunk.prompt_seconds, chunk.answer_seconds, chunk.load_seconds):
        assert seconds is None or (isinstance(seconds, float) and math.isfinite(seconds))
        assert seconds is None or seconds >= 0


native_lines = st.one_of(
    st.dictionaries(st.text(max_size=6), json_values, max_size=4),
    st.fixed_dictionaries(
        {
            "message": st.one_of(
                json_values,
                st.fixed_dictionaries({"content": json_values, "thinking": json_values}),
            ),
            "done": st.one_of(st.booleans(), json_values),
            "done_reason": json_values,
            "model": json_values,
            "prompt_eval_count": json_values,
            "eval_count": json_values,
            "eval_duration": json_values,
            "load_duration": json_values,
            "remote_host": json_values,
        }
    ),
)


@FUZZ
@given(line=native_lines)
def test_native_chat_lines_become_sound_chunks_or_raise_our_error(tally, line):
    tally()
    try:
        item = chat_chunk(line, "http://127.0.0.1:11434")
    except OllamaResponseError:
        return
    assert_sound(item)
    assert item.done is (line.get("done") is True)
    assert item.reason is None or isinstance(item.reason, str)


@FUZZ
@given(events=st.lists(v1_events, max_size=5))
def test_v1_stream_translation_yields_chunks_or_raises_our_error(tally, events):
    tally()
    data = "".join(f"data: {e if e == '[DONE]' else json.dumps(e)}\n\n" for e in events).encode()
    try:
        for item in sse_chunks([data], model="m"):
            assert_sound(item)
    # The last three: OpenAIBackend._checked turns them into OllamaResponseError.
    except (OllamaError, _Interrupted, _Empty, _StreamError):
        pass


@FUZZ
@given(
    finish=st.one_of(st.none(), st.text(max_size=8)),
    usage=st.one_of(
        st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        st.fixed_dictionaries({"prompt_tokens": json_values, "completion_tokens": json_values}),
    ),
    timings=st.one_of(
        st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        st.fixed_dictionaries({"prompt_ms": json_values, "predicted_ms": json_values}),
    ),
)
def test_v1_final_chunk_keeps_only_sound_counts_and_durations(tally, finish, usage, timings):
    tally()
    final = final_chunk("m", finish, usage, timings)
    assert_sound(final)
    assert final.done is True
    assert isinstance(final.reason, str) and final.reason


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# A "model not found" 404 makes the /v1 backend ask /v1/models for names to suggest: a port
# nothing listens on refuses at once, and that listing is then "unknown".
V1_BACKEND = OpenAIBackend(
    resolve_endpoint(f"http://127.0.0.1:{_closed_port()}/v1", {}), retries=0, backoff=0
)


@FUZZ
@given(
    status=st.integers(min_value=100, max_value=599),
    body=st.one_of(
        st.text(max_size=200),
        st.dictionaries(
            st.sampled_from(["error", "message", "object"]),
            st.one_of(
                st.text(max_size=40),
                st.none(),
                st.integers(),
                st.dictionaries(st.just("message"), st.text(max_size=20)),
            ),
        ).map(json.dumps),
    ),
    model=st.one_of(st.none(), st.text(max_size=20)),
)
def test_error_mapping_always_gives_one_of_our_errors(tally, status, body, model):
    tally()
    error = error_from_status(status, body, url="http://127.0.0.1:11434", model=model)
    assert isinstance(error, OllamaError)
    assert error.message
    line = error_from_stream_line(body, url="http://127.0.0.1:11434", model=model)
    assert isinstance(line, OllamaError)
    v1 = V1_BACKEND.status_error(status, body, model=model)
    assert isinstance(v1, OllamaError)
    assert v1.message


@FUZZ
@given(
    options=st.dictionaries(
        st.one_of(
            st.sampled_from(["num_ctx", "temperature", "stop", "seed", "use_mmap"]),
            st.text(max_size=10),
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=5),
            st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3),
        ),
        max_size=4,
    )
)
def test_option_checks_accept_or_refuse_with_configuration_error(tally, options):
    tally()
    try:
        checked = validate_options(options)
    except ConfigurationError:
        return
    assert set(checked) == set(options)


@FUZZ
@given(name=st.one_of(st.text(max_size=30), st.none(), st.integers()))
def test_model_names_are_checked_without_crashing(tally, name):
    tally()
    try:
        checked = check_name(name)
    except ConfigurationError:
        return
    assert canonical(checked) == canonical(canonical(checked))


@FUZZ
@given(pieces=st.lists(st.text(alphabet="<>/thinkab \n", max_size=12), max_size=10))
def test_think_splitter_loses_no_answer_text(tally, pieces):
    tally()
    answer, thought = feed_all(pieces)
    whole = "".join(pieces)
    if not whole.lstrip().startswith("<think>"):
        assert answer == whole
        assert thought == ""
