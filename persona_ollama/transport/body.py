"""Reading a response body in bounded pieces: bounded memory and time against any server.

``requests``' ``iter_content(None)`` hands over whatever urllib3 read in one go: a whole
HTTP chunk however large, or the whole body when the server does not use chunked encoding
(so streaming silently becomes buffering), and a compressed body is inflated without a cap.
:class:`BodyReader` reads with ``read1`` instead (one system call, at most
:data:`PIECE_BYTES`): a body without chunked framing through urllib3's public
``HTTPResponse.read1``, a chunked one from the connection's buffered reader, its framing
parsed here (see :meth:`BodyReader._chunks` for why). It inflates gzip/deflate
incrementally with the same cap on every piece, counts the decoded bytes against a budget,
and, when the caller has a deadline, shortens the socket's timeout so that no wait
outlives it.

Errors: a body over its budget, an unknown or corrupt ``Content-Encoding`` raise
:class:`~persona_ollama.errors.ServerResponseError`; a timeout comes out as
``socket.timeout`` (also when the deadline passes between two pieces), and a broken
connection as ``OSError`` / ``http.client.HTTPException``: the client maps those.
"""

from __future__ import annotations

import http.client
import logging
import socket
import time
import zlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import urllib3

from ..errors import ServerResponseError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

# The most one read may return, and the most one inflation step may produce: a 64 KiB piece
# holds hundreds of streamed lines, so a fast stream costs one read per line as before.
PIECE_BYTES = 64 * 1024
# After a stream's last line, the end of the body (the chunked terminator) is waited for this
# long at most, so that the connection can be reused; a server that does not end the body in
# time loses the connection instead, and the answer is returned either way.
FINISH_WAIT = 0.05
FINISH_BYTES = 64 * 1024
ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")
_MAX_SIZE_LINE = 1024  # a chunk-size line (hex digits and extensions)
_MAX_TRAILERS = 100


class _Deflate:
    """zlib's "deflate" as servers send it: with the zlib header (RFC 9110), or raw."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj()
        self._started = False

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if not self._started:
            self._started = True
            try:
                return self._inner.decompress(data, max_length)
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inner.decompress(data, max_length)

    @property
    def unconsumed_tail(self) -> bytes:
        return self._inner.unconsumed_tail

    @property
    def eof(self) -> bool:
        return self._inner.eof


def _decoder(encoding: str | None, url: str) -> Any:
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _Deflate()
    shown = (encoding or "")[:40].encode("ascii", "backslashreplace").decode()
    raise ServerResponseError(
        f"The server at {url} sent a body with Content-Encoding {shown!r}, which this client "
        f"cannot decode (it asks for {', '.join(ENCODINGS[:-1])} or deflate only).",
        hint="A proxy in front of the server may be re-encoding answers; check its settings.",
        url=url,
    )


def _socket_of(raw: Any) -> socket.socket | None:
    """The socket under urllib3's response (its public ``connection``), while it has one."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _broken(error: urllib3.exceptions.HTTPError) -> Exception:
    """What urllib3 raised for a read, as the socket or http.client raised it (the errors the
    client maps): a timeout as ``socket.timeout``, a cut as the cause urllib3 wrapped."""
    if isinstance(error, urllib3.exceptions.ReadTimeoutError):
        return socket.timeout("read timed out")
    cause = error.__cause__
    if isinstance(cause, (OSError, http.client.HTTPException)):
        return cause
    return http.client.IncompleteRead(b"")


class BodyReader:
    """The decoded body of ``response`` in pieces of at most :data:`PIECE_BYTES`.

    ``limit`` caps the decoded bytes of the whole body (None: no cap); ``deadline`` is a
    ``time.monotonic()`` instant no read may wait past; ``read_timeout`` is the socket's
    current timeout (the client's read timeout). Iterate :meth:`pieces` once.
    """

    def __init__(
        self,
        response: requests.Response,
        *,
        limit: int | None,
        deadline: float | None,
        read_timeout: float,
        url: str,
        what: str = "answer",
    ) -> None:
        self._response = response
        raw = response.raw
        self._decoder = _decoder(response.headers.get("Content-Encoding"), url)
        self._limit = limit
        self._deadline = deadline
        self._timeout = read_timeout
        self._sock = _socket_of(raw) if deadline is not None else None
        self._url = url
        self._what = what
        self.ended = False

    def _wait_bound(self) -> None:
        """Shorten the socket's timeout to what is left before the deadline."""
        remaining = self._deadline - time.monotonic()  # type: ignore[operator]
        if remaining <= 0:
            raise socket.timeout("deadline")
        if remaining < self._timeout:
            if self._sock is None:
                self._sock = _socket_of(self._response.raw)
            if self._sock is not None:
                self._sock.settimeout(remaining)
            self._timeout = remaining

    def settle(self, read_timeout: float) -> None:
        """From now on each read waits ``read_timeout`` (after a longer first wait)."""
        sock = self._sock or _socket_of(self._response.raw)
        if sock is not None:
            sock.settimeout(read_timeout)
        self._timeout = read_timeout

    def pieces(self) -> Generator[bytes, None, None]:
        """Yield the decoded body as it arrives; at its end, release the connection."""
        active = self._wire(self._limit) if self._decoder is None else self._inflate()
        self._active: Generator[bytes, None, None] | None = active
        return active

    def _wire(self, limit: int | None) -> Generator[bytes, None, None]:
        """The body's bytes, its framing removed, in pieces of at most PIECE_BYTES."""
        raw = self._response.raw
        if not isinstance(raw, urllib3.HTTPResponse):
            return self._other(limit)
        if raw.chunked:
            return self._chunks(raw, limit)
        if hasattr(raw, "read1"):
            return self._unframed(raw, limit)
        return self._chunks(raw, limit)  # urllib3 before 2.3 has no read1

    def _unframed(
        self, raw: urllib3.HTTPResponse, limit: int | None
    ) -> Generator[bytes, None, None]:
        """A body without chunked framing (a Content-Length, or up to the end of the
        connection) through urllib3's own ``read1``: at most one system call per piece, a
        body shorter than its Content-Length raises, and at its end urllib3 gives the
        connection back to the pool."""
        cap = limit if limit is not None else 1 << 62
        bounded = self._deadline is not None
        total = 0
        try:
            while True:
                if bounded:
                    self._wait_bound()
                data = raw.read1(PIECE_BYTES, decode_content=False)
                if not data:
                    break
                total += len(data)
                if total > cap:
                    raise self._too_large()
                yield data
        except urllib3.exceptions.HTTPError as error:
            raise _broken(error) from None
        self.ended = True
        self._release()

    def _chunks(self, raw: urllib3.HTTPResponse, limit: int | None) -> Generator[bytes, None, None]:
        """A chunked body, parsed here from the connection's buffered reader.

        urllib3's public ``read1`` would do it (through http.client's own chunk parser) and
        keep every guarantee below, but it costs 3.3 µs a chunk against 0.8 µs here (one
        NDJSON line per chunk, 20,000 chunks, measured on the machine of docs/benchmarks.md):
        on a stream of tokens that is the per-token cost. So this reads the connection's
        buffered reader, which urllib3 does not expose (``_fp.fp``: the one private name
        left), with one ``read1`` (at most one system call) per piece. A chunk is yielded as
        its bytes arrive, of any declared size it costs no more memory than one piece, a
        size line that is not hex (or longer than 1 KiB) and a chunk cut short raise
        IncompleteRead, and the end of the body closes the response (http.client's public
        ``close``), so that urllib3 can reuse the connection. Also the reader of a body
        without framing where urllib3 has no ``read1`` (before 2.3). Locals, not attributes,
        in the loops: they run once per line.
        """
        head = getattr(raw, "_fp", None)
        fp = getattr(head, "fp", None)
        if not isinstance(head, http.client.HTTPResponse) or fp is None:
            yield from self._other(limit)
            return
        cap = limit if limit is not None else 1 << 62
        bounded = self._deadline is not None
        read1 = fp.read1
        total = 0
        if raw.chunked:
            readline = fp.readline
            while True:
                if bounded:
                    self._wait_bound()
                line = readline(_MAX_SIZE_LINE)
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise http.client.IncompleteRead(line[:40]) from None
                if size < 0 or not line.endswith(b"\n"):
                    raise http.client.IncompleteRead(line[:40])
                if size == 0:
                    for _ in range(_MAX_TRAILERS):  # trailers, up to the blank line
                        if readline(_MAX_SIZE_LINE) in (b"\r\n", b"\n", b""):
                            break
                    break
                while size:
                    if bounded:
                        self._wait_bound()
                    data = read1(size if size < PIECE_BYTES else PIECE_BYTES)
                    if not data:
                        raise http.client.IncompleteRead(b"", size)
                    size -= len(data)
                    total += len(data)
                    if total > cap:
                        raise self._too_large()
                    yield data
                fp.read(2)  # the CRLF after the chunk's data
        else:
            left = raw.length_remaining  # None: the body ends when the server closes it
            while left is None or left > 0:
                if bounded:
                    self._wait_bound()
                data = read1(PIECE_BYTES if left is None or left > PIECE_BYTES else left)
                if not data:
                    if left is not None:
                        raise http.client.IncompleteRead(b"", left)
                    break
                if left is not None:
                    left -= len(data)
                total += len(data)
                if total > cap:
                    raise self._too_large()
                yield data
        # What http.client does at the end of a body: the connection can then be reused.
        head.close()
        self.ended = True
        self._release()

    def _other(self, limit: int | None) -> Generator[bytes, None, None]:
        """The body of a response that is not urllib3 over http.client (a test double)."""
        raw = self._response.raw
        total = 0
        while True:
            data = raw.read(PIECE_BYTES, decode_content=False)
            if not data:
                break
            total += len(data)
            if limit is not None and total > limit:
                raise self._too_large()
            yield data
        self.ended = True
        self._release()

    def _inflate(self) -> Generator[bytes, None, None]:
        """The decoded body: each piece inflated in steps of at most PIECE_BYTES."""
        decoder = self._decoder
        cap = self._limit if self._limit is not None else 1 << 62
        total = 0
        for data in self._wire(self._limit):
            while data and not decoder.eof:
                try:
                    out = decoder.decompress(data, PIECE_BYTES)
                except zlib.error:
                    raise self._corrupt() from None
                data = decoder.unconsumed_tail
                if out:
                    total += len(out)
                    if total > cap:
                        raise self._too_large()
                    yield out
        if not decoder.eof:
            raise self._corrupt()

    def read_all(self) -> bytes:
        """The whole body (still within ``limit``)."""
        return b"".join(self.pieces())

    def read_upto(self, size: int) -> bytes:
        """At most ``size`` decoded bytes of the body; the rest is left unread."""
        kept: list[bytes] = []
        count = 0
        for piece in self.pieces():
            kept.append(piece[: size - count])
            count += len(kept[-1])
            if count >= size:
                break
        return b"".join(kept)

    def finish(self) -> None:
        """After the last line: read the end of the body if it comes at once, so that the
        connection goes back to the pool; otherwise leave it to be closed."""
        active = getattr(self, "_active", None)
        if self.ended or active is None:
            return
        sock = _socket_of(self._response.raw)
        if sock is not None:
            sock.settimeout(FINISH_WAIT)
        self._timeout = FINISH_WAIT
        if self._deadline is not None:
            self._deadline = time.monotonic() + FINISH_WAIT
        count = 0
        try:
            for piece in active:
                count += len(piece)
                if count > FINISH_BYTES:
                    return
        except Exception as error:  # noqa: BLE001
            # Whatever the server does after its last line, the answer is complete.
            log.debug("connection not reused after the last line: %s", type(error).__name__)

    def _release(self) -> None:
        release = getattr(self._response.raw, "release_conn", None)
        if release is not None:
            release()

    def _too_large(self) -> ServerResponseError:
        return ServerResponseError(
            f"The {self._what} from {self._url} is larger than {_size(self._limit or 0)}; "
            "stopped reading it and discarded it.",
            hint="A broken or hostile server sends more than any answer needs; check what "
            "answers at this address (`persona-ollama doctor`). For a very long answer, the "
            "budget grows with max_tokens.",
            url=self._url,
        )

    def _corrupt(self) -> ServerResponseError:
        return ServerResponseError(
            f"The compressed {self._what} from {self._url} is corrupt or cut off.",
            hint="A proxy in front of the server may be breaking compressed answers.",
            url=self._url,
        )


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MiB"
    return f"{count} bytes"


# Control characters (terminal escape sequences, carriage returns, bidirectional overrides)
# in text that came from a server; newlines and tabs are kept.
