"""The server-sent events reader: any chunking of the same bytes gives the same event data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from persona_ollama.transport.sse import iter_lines, iter_sse_data

# Data values as servers send them: no line breaks inside one data line.
data_lines = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20
)
events = st.lists(data_lines, min_size=1, max_size=3)  # one event: one or more data lines


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[start:end] for start, end in zip([0, *points], [*points, len(data)])]


def encode(stream: list[list[str]], newline: str, comments: bool) -> bytes:
    text = ""
    for lines in stream:
        if comments:
            text += f": keep-alive{newline}"
        text += "".join(f"data: {line}{newline}" for line in lines) + newline
    return text.encode()


@settings(max_examples=400)
@given(
    st.lists(events, max_size=6),
    st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_any_chunk_boundaries_yield_the_same_event_data(stream, cuts, newline, comments):
    data = encode(stream, newline, comments)
    expected = ["\n".join(lines).encode() for lines in stream]
    assert list(iter_sse_data(split_at(data, cuts))) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'data: {"a":1}\n\n', [b'{"a":1}']),
        (b'data:{"a":1}\n\n', [b'{"a":1}']),  # the space after the colon is optional
        (b"data:  two spaces\n\n", [b" two spaces"]),  # only one space is removed
        (b"data: [DONE]\n\n", [b"[DONE]"]),
        (b"data: a\ndata: b\n\n", [b"a\nb"]),  # one event, two data lines
        (b": ping\n\ndata: x\n\n", [b"x"]),  # a comment alone is no event
        (b"event: message\nid: 7\nretry: 10\ndata: x\n\n", [b"x"]),  # other fields ignored
        (b"id: 7\n\n", []),  # an event without data is skipped
        (b"data\n\n", [b""]),  # a field name alone has an empty value
        (b"data: x\r\n\r\ndata: y\r\n\r\n", [b"x", b"y"]),
        (b"\n\n\ndata: x\n\n\n\n", [b"x"]),  # extra blank lines
        (b"data: x", [b"x"]),  # cut before the blank line: still read
        (b"data: x\n", [b"x"]),
        (b"", []),
    ],
)
def test_event_data_of(raw, expected):
    assert list(iter_sse_data([raw])) == expected


def test_crlf_split_between_cr_and_lf_is_one_line_end():
    assert list(iter_lines([b"data: x\r", b"\n\r", b"\n"])) == [b"data: x", b""]


def test_empty_chunks_are_skipped():
    assert list(iter_sse_data([b"", b"data: x\n", b"", b"\n"])) == [b"x"]


def test_a_multibyte_character_split_across_chunks_survives():
    data = "data: größe 東京\n\n".encode()
    middle = data.index("東".encode()) + 1
    assert list(iter_sse_data([data[:middle], data[middle:]])) == ["größe 東京".encode()]
