"""The NDJSON stream reader: any chunking of the same bytes gives the same objects."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_ollama.errors import OllamaResponseError
from persona_ollama.transport.ndjson import iter_ndjson

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


@settings(max_examples=400)
@given(
    st.lists(objects, max_size=6),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    st.booleans(),
)
def test_any_chunk_boundaries_yield_the_same_objects(items, cuts, trailing_newline):
    data = "\n".join(json.dumps(o, ensure_ascii=False) for o in items).encode()
    if items and trailing_newline:
        data += b"\n"
    assert list(iter_ndjson(split_at(data, cuts))) == items


@settings(max_examples=200)
@given(st.lists(objects, min_size=1, max_size=4))
def test_one_object_per_chunk_fast_path_matches(items):
    chunks = [(json.dumps(o) + "\n").encode() for o in items]
    assert list(iter_ndjson(chunks)) == items


def test_blank_lines_and_empty_chunks_are_skipped():
    assert list(iter_ndjson([b"", b"\n", b'{"a":1}\n', b"  \n", b'{"b":2}'])) == [
        {"a": 1},
        {"b": 2},
    ]


def test_bad_line_raises_with_its_start():
    with pytest.raises(OllamaResponseError, match="not JSON: 'nope'"):
        list(iter_ndjson([b'{"a":1}\nnope\n']))


def test_a_line_that_is_not_an_object_raises():
    with pytest.raises(OllamaResponseError, match="JSON list"):
        list(iter_ndjson([b"[1,2]\n"]))


def test_a_multibyte_character_split_across_chunks_survives():
    data = json.dumps({"c": "größe 東京"}, ensure_ascii=False).encode() + b"\n"
    middle = data.index("東".encode()) + 1
    assert list(iter_ndjson([data[:middle], data[middle:]])) == [{"c": "größe 東京"}]


def test_a_line_without_end_is_refused_instead_of_filling_memory(monkeypatch):
    monkeypatch.setattr("persona_ollama.transport.ndjson.MAX_LINE_BYTES", 1000)
    endless = (b"x" * 100 for _ in range(10_000))
    with pytest.raises(OllamaResponseError, match="longer than"):
        list(iter_ndjson(endless))


def test_a_long_tail_after_a_newline_is_refused_too(monkeypatch):
    monkeypatch.setattr("persona_ollama.transport.ndjson.MAX_LINE_BYTES", 10)
    with pytest.raises(OllamaResponseError, match="longer than"):
        list(iter_ndjson([b'{"a":1}\n' + b"y" * 50]))
