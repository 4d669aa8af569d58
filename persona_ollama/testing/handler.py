"""HTTP plumbing: the routing table, reading requests, and writing replies and streams with the
scripted faults and latency applied."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

from . import native, openai_compat, pull
from .native import Call
from .profiles import STREAM_ERROR_STATUS
from .responses import (
    ApiError,
    Reply,
    Response,
    RunnerError,
    Stream,
    json_reply,
    runner_error_reply,
    text_reply,
)
from .script import (
    DROP,
    EMPTY,
    ERROR_MID_STREAM,
    GENERATION_PATHS,
    INTERRUPTED,
    MALFORMED,
    NO_DONE,
    RUNNER,
    STATUS,
    STREAM_KINDS,
    Fault,
    Latency,
)
from .state import RecordedRequest, ServerState

__all__ = ["FakeOllamaServer", "RequestHandler"]

Endpoint = Callable[[Call], Response]


@dataclass(frozen=True)
class Route:
    methods: Mapping[str, Endpoint]
    openai: bool = False  # errors in the OpenAI shape

    def error(self, status: int, message: str) -> Reply:
        if self.openai:
            return openai_compat.error_reply(status, message)
        return json_reply({"error": message}, status)


ROUTES: dict[str, Route] = {
    "/": Route({"GET": native.root, "HEAD": native.root}),
    "/api/version": Route({"GET": native.version, "HEAD": native.version}),
    "/api/tags": Route({"GET": native.tags, "HEAD": native.tags}),
    "/api/ps": Route({"GET": native.ps}),
    "/api/show": Route({"POST": native.show}),
    "/api/chat": Route({"POST": native.chat}),
    "/api/generate": Route({"POST": native.generate}),
    "/api/pull": Route({"POST": pull.pull}),
    "/v1/chat/completions": Route({"POST": openai_compat.chat_completions}, openai=True),
    "/v1/models": Route({"GET": openai_compat.models}, openai=True),
}
_MODEL_ROUTE = Route({"GET": openai_compat.retrieve_model}, openai=True)  # /v1/models/{model}
# Routes the real server has and the double does not: a clear 501 beats a misleading 404.
NOT_IMPLEMENTED = frozenset(
    {
        "/api/embed",
        "/api/embeddings",
        "/api/create",
        "/api/copy",
        "/api/delete",
        "/api/push",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/messages",
    }
)


DOUBLE_HEADER = "X-Fake-Ollama"
"""A response header the real server never sends: the live tests skip when they see it."""
DOUBLE_NAME = "persona_ollama.testing"


def find_route(path: str) -> Route | None:
    if path.startswith("/v1/models/") and len(path) > len("/v1/models/"):
        return _MODEL_ROUTE
    return ROUTES.get(path)


class FakeOllamaServer(ThreadingHTTPServer):
    """A threading server that can close its open keep-alive connections when it stops."""

    daemon_threads = True
    request_queue_size = 128  # 32+ clients connecting at once must not be refused

    def __init__(self, address: tuple[str, int], state: ServerState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self._lock = threading.Lock()
        self._open_connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, RequestHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open_connections.add(request)
            self._handler_threads.add(threading.current_thread())
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open_connections.discard(request)
                self._handler_threads.discard(threading.current_thread())

    def close_connections(self, timeout: float) -> None:
        """Shut every open connection (idle keep-alive ones block in a read) and join threads."""
        with self._lock:
            connections, threads = list(self._open_connections), list(self._handler_threads)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up (a read timeout, a cancelled stream) is routine for a test server.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)  # pragma: no cover - a bug in the double


class RequestHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests (HTTP/1.1 keep-alive) from the server's state."""

    protocol_version = "HTTP/1.1"
    server: FakeOllamaServer

    def setup(self) -> None:
        super().setup()
        # Streamed chunks are small writes: without NODELAY, Nagle plus delayed ACKs would add
        # ~40 ms between them.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test double should not write to stderr for every request."""

    def send_response(self, code: int, message: str | None = None) -> None:
        # Like the Go server: a Date header but no "Server: BaseHTTP/..." one. The double
        # names itself in a header of its own, so that a client (the live tests, a curious
        # user) can tell it from a real server.
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())
        self.send_header(DOUBLE_HEADER, DOUBLE_NAME)

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        state = self.server.state
        body = self._read_body()
        path = urlsplit(self.path).path
        record = RecordedRequest(self.command, path, self.headers, body, _json_or_none(body))
        state.record(record)
        try:
            self._answer(state, record)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            state.notify(record)

    def _answer(self, state: ServerState, record: RecordedRequest) -> None:
        if not self._host_allowed():
            self._send_reply(record, Reply(403, b"", "text/plain", is_json=False))
            return
        route = find_route(record.path)
        if route is None:
            if record.path in NOT_IMPLEMENTED:
                message = f"FakeOllama does not implement {record.method} {record.path}"
                self._send_reply(record, json_reply({"error": message}, 501))
            else:
                self._send_reply(record, text_reply(404, "404 page not found"))
            return
        endpoint = route.methods.get(record.method)
        if endpoint is None:
            self._send_reply(record, text_reply(405, "405 method not allowed"))
            return
        latency = state.script.take_latency(record.path)
        slot = state.slot() if record.path in GENERATION_PATHS else contextlib.nullcontext()
        with slot, contextlib.ExitStack() as request:
            # Whatever happens, the runners this request holds are released at its end.
            request.callback(state.finish_request)
            if not state.sleep(latency.first_byte):
                self._hang_up()
                return
            fault = state.script.take_fault(record.path, (STATUS, RUNNER))
            if fault is not None and fault.kind == RUNNER:
                response: Response = self._runner_error(route, fault.status, fault.error)
            elif fault is not None:
                response = route.error(fault.status, fault.error)
            else:
                try:
                    response = endpoint(Call(state, record, latency.first_byte))
                except RunnerError as exc:
                    response = self._runner_error(route, exc.status, exc.message)
                except ApiError as exc:
                    response = route.error(exc.status, exc.message)
            if isinstance(response, Stream):
                self._send_stream(record, response, latency)
            else:
                self._send_reply(record, response)

    def _host_allowed(self) -> bool:
        """server/routes.go allowedHostsMiddleware (the same from v0.11 to v0.33): a server
        listening on loopback answers 403, empty, to a Host header that is not a local name."""
        if not ipaddress.ip_address(str(self.server.server_address[0])).is_loopback:
            return True
        return host_is_local(self.headers.get("Host") or "")

    def _runner_error(self, route: Route, status: int, message: str) -> Response:
        if route.openai:  # the /v1 layer turns every error into its own shape
            return route.error(status, message)
        profile = self.server.state.settings.profile
        return runner_error_reply(status, message, keeps_status=profile.has(STREAM_ERROR_STATUS))

    def _send_reply(self, record: RecordedRequest, reply: Reply) -> None:
        body = reply.body
        self.server.state.finish_request()  # the generation is over before its reply is sent
        script = self.server.state.script
        if reply.status == 200 and reply.is_json and script.take_fault(record.path, (MALFORMED,)):
            body = body[: len(body) // 2]  # a body cut off half-way: not JSON any more
        self._start(record, reply.status, reply.content_type, ("Content-Length", str(len(body))))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_stream(self, record: RecordedRequest, stream: Stream, latency: Latency) -> None:
        state = self.server.state
        fault = state.script.take_fault(record.path, STREAM_KINDS)
        payloads, complete, hang_up = _apply_stream_fault(stream, fault)
        self._start(record, 200, stream.content_type, ("Transfer-Encoding", "chunked"))
        body_count = len(stream.payloads) - stream.terminal
        for index, payload in enumerate(payloads):
            if index and not state.sleep(latency.between_chunks):
                hang_up = True
                break
            if index == body_count:
                state.finish_request()  # the runner is free before the final chunk goes out
            if complete and index == body_count and stream.on_complete is not None:
                stream.on_complete()
            framed = stream.frame(payload)
            # One write per chunk (size line, data, CRLF), flushed: the client sees it at once.
            self.wfile.write(b"%x\r\n%s\r\n" % (len(framed), framed))
        if hang_up:
            self._hang_up()
        else:
            self.wfile.write(b"0\r\n\r\n")

    def _start(self, record: RecordedRequest, status: int, content_type: str, *header: Any) -> None:
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in header:
            self.send_header(name, value)
        self.end_headers()

    def _hang_up(self) -> None:
        """Close the connection without ending the response, as a crashed server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked_body()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()


# Go's netip Addr.IsPrivate: RFC 1918 and RFC 4193 only (Python's is_private has many more).
_GO_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _go_host(header: str) -> str:
    """net.SplitHostPort's host, or the whole value when it fails (a missing port included)."""
    if header.startswith("["):
        end = header.find("]")
        if end > 0 and header[end + 1 : end + 2] == ":":
            return header[1:end]
        return header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


def host_is_local(header: str) -> bool:
    """allowedHost and the IP checks of allowedHostsMiddleware, for a Host header value.

    isLocalIP (an address of one of the machine's interfaces) is not emulated."""
    host = _go_host(header).lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        mapped = getattr(address, "ipv4_mapped", None)  # netip unmaps before these checks
        plain = mapped or address
        private = any(plain.version == net.version and plain in net for net in _GO_PRIVATE)
        return plain.is_loopback or private or address.is_unspecified
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return host.endswith((".localhost", ".local", ".internal"))


def _apply_stream_fault(stream: Stream, fault: Fault | None) -> tuple[list[bytes], bool, bool]:
    """(payloads to write, whether the stream ends normally, whether to hang up at the end)."""
    payloads = list(stream.payloads)
    if fault is None:
        return payloads, True, False
    body = payloads[: len(payloads) - stream.terminal]
    if fault.kind == MALFORMED:
        payloads[0] = payloads[0][: len(payloads[0]) // 2]
        return payloads, True, False
    if fault.kind == NO_DONE:
        return body, False, False
    if fault.kind == EMPTY:
        return [], False, False
    if fault.kind == INTERRUPTED:  # the SSE frame is added by the stream
        return [*body[: fault.after_chunks], b"[DONE]"], False, False
    cut = body[: fault.after_chunks]
    if fault.kind == ERROR_MID_STREAM:
        return [*cut, stream.error_payload(fault.error)], False, False
    assert fault.kind == DROP
    return cut, False, True


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
