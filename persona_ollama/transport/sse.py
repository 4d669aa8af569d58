"""Incremental reader for server-sent events (the OpenAI-compatible streaming format).

An event is a group of ``field: value`` lines ended by a blank line; only ``data`` matters
here (``event``, ``id`` and ``retry`` are ignored, and so are comment lines that start with
``:``). Chunk boundaries may fall anywhere, even between the ``\\r`` and ``\\n`` of a CRLF,
so partial lines are buffered. Lone ``\\r`` line endings, which the SSE grammar also allows,
are not used by any LLM server and are not recognised.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .ndjson import iter_lines as ndjson_lines

DONE = b"[DONE]"  # the payload that ends an OpenAI-compatible stream


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield each line of ``chunks`` without its ``\n`` or ``\r\n``, whatever the chunking.

    A final line without a line ending is still yielded. Lines are split, and too long a
    line refused, by the NDJSON reader's :func:`~persona_ollama.ndjson.iter_lines`.
    """
    for line in ndjson_lines(chunks):
        yield line[:-1] if line.endswith(b"\r") else line


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the ``data`` of each event in ``chunks`` (several data lines joined by ``\\n``).

    Events without a data line are skipped. An event cut off by the end of the stream is
    still yielded, so that a server which omits the last blank line is understood; a cut
    inside a JSON document then fails where the caller parses it.
    """
    data: list[bytes] | None = None
    for line in iter_lines(chunks):
        if not line:
            if data is not None:
                yield b"\n".join(data)
                data = None
            continue
        if line.startswith(b":"):
            continue
        name, colon, value = line.partition(b":")
        if name != b"data":
            continue
        if colon and value.startswith(b" "):
            value = value[1:]
        if data is None:
            data = [value]
        else:
            data.append(value)
    if data is not None:
        yield b"\n".join(data)
