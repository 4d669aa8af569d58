"""Incremental reader for newline-delimited JSON, a streaming format of many servers.

Such servers flush one JSON object per line, and usually one line per HTTP chunk, so the fast
path parses a chunk that holds exactly one whole line without copying it. Chunk boundaries
may fall anywhere, though (proxies re-chunk), so partial lines are buffered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import ServerResponseError

_NEWLINE = 0x0A  # b"\n"
# The hints of a line that is not what a model server sends: the URL may name something else.
_CHECK_URL = "Check that the URL points at the model server."
_CHECK_URL_NOT_PROXY = (
    "Check that the URL points at the model server and not at a proxy's error page."
)
# No line of a chat stream is near this: a line carries a token or two, the last one only
# counts (< 1 KiB). A larger one comes from a broken or hostile server and would otherwise grow
# in memory without end. Checked as the pieces of a line arrive (at most 64 KiB each, see
# transport/body.py), so a longer line costs no more than this much memory.
MAX_LINE_BYTES = 1024 * 1024
# json.loads on bytes sniffs the encoding and matches whitespace with two regexes: a third of
# the cost of a short line. Servers' lines are UTF-8 objects without leading blanks, so they
# are decoded directly; any other line goes to json.loads, which judges it as before.
_scan = json.JSONDecoder().raw_decode


def _loads(line: bytes) -> Any:
    """``json.loads(line)``, with a shortcut for the common case; the text must be UTF-8
    (json.loads would accept encoded surrogates, and UTF-16) and hold no lone surrogate."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(line, error) from None
    try:
        value, end = _scan(text)
    except ValueError:  # leading blanks, a BOM, or not JSON
        value = json.loads(text)
    else:
        if end < len(text) and not text[end:].isspace():
            return json.loads(text)  # extra data after the value: json.loads raises
    if b"\\u" in line and _SURROGATE_ESCAPE.search(line):
        _check_surrogates(value)
    return value


def loads_strict(data: bytes) -> Any:
    """A whole JSON document: as :func:`_loads`, with ServerResponseError for bad text."""
    return _loads(data)


# A JSON escape of a surrogate: valid only as a high/low pair, which json decodes into one
# character; a lone one gives a str that cannot be encoded (printed, sent or saved) later.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _check_surrogates(value: Any) -> None:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ServerResponseError(
            "The server sent text with a lone surrogate escape (not valid Unicode).",
            hint=_CHECK_URL,
        ) from None


def _not_utf8(line: bytes, error: UnicodeDecodeError) -> ServerResponseError:
    return ServerResponseError(
        f"The server sent a line that is not valid UTF-8 (byte {error.start}: "
        f"{line[error.start : error.start + 4]!r}).",
        hint=_CHECK_URL_NOT_PROXY,
    )


def _parse(line: bytes) -> dict[str, Any]:
    try:
        value = _loads(line)
    except ServerResponseError:
        raise
    except ValueError:
        text = line[:200].decode("utf-8", "replace")
        raise ServerResponseError(
            f"The server sent a line that is not JSON: {text!r}",
            hint=_CHECK_URL_NOT_PROXY,
        ) from None
    if not isinstance(value, dict):
        raise ServerResponseError(
            f"The server sent a JSON {type(value).__name__} where an object was expected.",
            hint=_CHECK_URL,
        )
    return value


def iter_ndjson(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Yield one dict per JSON line of ``chunks``, whatever the chunk boundaries.

    Blank lines are skipped. A final line without a newline is still parsed. Malformed
    JSON, or a line longer than MAX_LINE_BYTES, raises :class:`ServerResponseError`.
    """
    for line in iter_lines(chunks):
        if line and not line.isspace():
            yield _parse(line)


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield each ``\n``-terminated line of ``chunks`` (without the ``\n``), whatever the
    chunking; a final line without one is yielded too.

    A partial line is kept as a list of pieces, so a long line costs linear time, and a
    line that outgrows MAX_LINE_BYTES (a broken or hostile server) raises instead of
    filling memory.
    """
    pieces: list[bytes] = []
    size = 0
    for chunk in chunks:
        if not chunk:
            continue
        if not pieces and chunk[-1] == _NEWLINE and chunk.count(b"\n") == 1:
            yield chunk[:-1]  # the common case: one whole line per chunk, no copying
            continue
        if b"\n" not in chunk:
            pieces.append(chunk)
            size += len(chunk)
            if size > MAX_LINE_BYTES:
                raise _too_long()
            continue
        data = b"".join((*pieces, chunk)) if pieces else chunk
        lines = data.split(b"\n")
        last = lines.pop()
        yield from lines
        pieces = [last] if last else []
        size = len(last)
        if size > MAX_LINE_BYTES:
            raise _too_long()
    if pieces:
        yield b"".join(pieces)


def _too_long() -> ServerResponseError:
    return ServerResponseError(
        f"The server sent a line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB; "
        "stopped reading it.",
        hint=_CHECK_URL,
    )
