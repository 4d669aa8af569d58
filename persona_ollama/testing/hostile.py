"""HostileServer: a loopback server written from raw sockets, to test the client against
servers that break the rules (``FakeOllama`` follows them, this does not have to).

Each request is read (request line, headers, a Content-Length body) and handed to the route
for its path, a function ``(request, conn) -> bool`` that writes whatever bytes it likes to
the raw socket and returns whether the connection may serve another request. Routes can
stall, drip bytes, send gigabytes from one small buffer (so that a test measuring the
client's memory does not count the server's), break framing, or never answer.
Standard library only::

    with HostileServer({"/api/chat": silent}) as server:
        OllamaProvider(base_url=server.url, model="m").generate("hi")  # times out
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Callable

__all__ = [
    "HostileServer",
    "Request",
    "chat_line",
    "chunk",
    "done_line",
    "gzip_bomb",
    "http_head",
    "json_route",
    "respond",
    "send_repeated",
    "silent",
]

CRLF = b"\r\n"


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


Route = Callable[[Request, "Conn"], bool]


@dataclass
class Conn:
    """The server's side of one connection: the raw socket and the server's stop flag."""

    sock: socket.socket
    stopping: threading.Event
    sent: list[float] = field(default_factory=list)  # time.monotonic() of each send()

    def send(self, data: bytes) -> bool:
        """Send ``data``; False when the client has gone (the route should then return)."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent.append(time.monotonic())
        return True

    def hold(self, seconds: float = 3600.0) -> bool:
        """Keep the connection open without sending, until the server stops."""
        self.stopping.wait(seconds)
        return False


def http_head(
    status: int = 200,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    *,
    reason: str = "OK",
) -> bytes:
    """A status line and headers, ending with the blank line."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    lines = [f"HTTP/1.1 {status} {reason}".encode()]
    lines += [f"{name}: {value}".encode("utf-8", "surrogatepass") for name, value in items]
    return CRLF.join(lines) + CRLF + CRLF


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n" % len(data) + data + CRLF


def respond(
    conn: Conn,
    body: bytes | Iterable[bytes],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    framing: str = "chunked",
    pause: float = 0.0,
) -> bool:
    """Send a whole response. ``framing``: "chunked" (one chunk per piece), "length"
    (Content-Length) or "close" (neither: the body ends when the connection closes).
    ``pause`` seconds are waited between pieces."""
    pieces = [body] if isinstance(body, bytes) else list(body)
    head = dict(headers or {})
    head.setdefault("Content-Type", "application/x-ndjson")
    if framing == "chunked":
        head["Transfer-Encoding"] = "chunked"
    elif framing == "length":
        head["Content-Length"] = str(sum(len(p) for p in pieces))
    else:
        head["Connection"] = "close"
    if not conn.send(http_head(status, head)):
        return False
    for index, piece in enumerate(pieces):
        if index and pause:
            time.sleep(pause)
        if not conn.send(chunk(piece) if framing == "chunked" else piece):
            return False
    if framing == "chunked" and not conn.send(b"0\r\n\r\n"):
        return False
    return framing != "close"


def json_route(value: Any, *, status: int = 200) -> Route:
    """A route answering every request with ``value`` as a JSON body."""
    body = json.dumps(value).encode()

    def route(request: Request, conn: Conn) -> bool:
        headers = {"Content-Type": "application/json"}
        return respond(conn, body, status=status, headers=headers, framing="length")

    return route


def silent(request: Request, conn: Conn) -> bool:
    """Accept the request and never answer."""
    return conn.hold()


def send_repeated(conn: Conn, piece: bytes, total: int) -> bool:
    """Send ``piece`` again and again until ``total`` bytes went out (no new buffers)."""
    view = memoryview(piece)
    sent = 0
    while sent < total:
        part = view[: min(len(piece), total - sent)]
        try:
            conn.sock.sendall(part)
        except OSError:
            return False
        sent += len(part)
    return True


def gzip_bomb(size: int, fill: bytes = b"\n") -> bytes:
    """A gzip stream that inflates to ``size`` bytes of ``fill`` (about size / 1000 bytes)."""
    encoder = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = fill * (1024 * 1024 // len(fill))
    out = []
    left = size
    while left > 0:
        piece = block if left >= len(block) else block[:left]
        out.append(encoder.compress(piece))
        left -= len(piece)
    out.append(encoder.flush())
    return b"".join(out)


def chat_line(content: Any = "Hi", *, model: str = "m", **fields: Any) -> bytes:
    """One /api/chat stream line (``message.content`` = ``content``), with a newline."""
    line = {"model": model, "message": {"role": "assistant", "content": content}, "done": False}
    line.update(fields)
    return json.dumps(line).encode() + b"\n"


def done_line(*, model: str = "m", **fields: Any) -> bytes:
    """The last /api/chat line, with counts."""
    line: dict[str, Any] = {
        "model": model,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 5,
        "eval_count": 2,
        "eval_duration": 1_000_000,
    }
    line.update(fields)
    return json.dumps(line).encode() + b"\n"


SHOW = {
    "modelfile": "",
    "parameters": "",
    "template": "{{ .Prompt }}",
    "details": {"family": "llama", "parameter_size": "1B", "quantization_level": "Q4_K_M"},
    "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
    "capabilities": ["completion"],
}
TAGS = {"models": [{"name": "m:latest", "model": "m:latest", "size": 1, "digest": "d"}]}


class HostileServer:
    """A loopback server that hands each request to ``routes[path]`` (the raw socket).

    /api/show, /api/tags and /api/version answer correctly unless routed otherwise, so that a
    provider gets to the request under test. ``connections`` counts accepted connections,
    ``requests`` records what was read. Use as a context manager.
    """

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = {
            "/api/show": json_route(SHOW),
            "/api/tags": json_route(TAGS),
            "/api/version": json_route({"version": "0.12.6"}),
        }
        self.routes.update(routes or {})
        self.requests: list[Request] = []
        self.connections = 0
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="hostile")

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        conn = Conn(sock, self._stopping)
        reader = sock.makefile("rb")
        try:
            while not self._stopping.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                route = self.routes.get(request.path.split("?")[0])
                if route is None:
                    respond(conn, b"404 page not found", status=404, framing="length")
                    continue
                if not route(request, conn):
                    return
        except (OSError, ValueError):
            return
        finally:
            reader.close()
            with contextlib.suppress(OSError):
                sock.close()
            with self._lock:
                if sock in self._socks:
                    self._socks.remove(sock)


def _read_request(reader: Any) -> Request | None:
    line = reader.readline(65536)
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        header = reader.readline(65536)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0") or 0))
    return Request(method, path, headers, body)
