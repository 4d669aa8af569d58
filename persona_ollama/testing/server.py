"""The double's core: an HTTP server that dispatches to faces, scripted and recorded.

A **face** is the part of a double that knows one API: its URL paths, how it reads a request and
how it frames an answer. The core knows none of that. It owns the sockets (HTTP/1.1 keep-alive,
chunked streams), the state every face answers against (state.py: models, loads, recorded
requests, settings), the fault script (``fail_next``, ``drop_connection_mid_stream_next``,
``malformed_json_next``, ``latency`` ...) and the public API tests use (``requests``,
``last_request``, ``reset`` ...). ``FakeServer`` serves the faces it is given and imports
none: the double of this plugin's default server, the core with that server's faces, is a
module of its own (``stand_in()`` builds it).

The face interface (:class:`Face`, defined in face.py): ``routes``, a list of :class:`Route`
(method, path, handler, whether it runs a model); ``not_implemented``, paths answered 501;
``error(status, message)``, the face's error body; ``runner_error(state, status, message)``,
how it sends an error that comes from the model runner (by default like any error). A handler
takes a :class:`Call` (the state, the recorded request, the latency already waited) and returns
a :class:`~persona_ollama.testing.wire.Reply` or :class:`~persona_ollama.testing.wire.Stream`,
or raises :class:`~persona_ollama.testing.wire.ApiError`; the core applies the scripted faults
to whatever it returns.

A double of another kind of server (LM Studio, a hosted OpenAI-compatible API) is one new face
module on the same core, with the same faults, records and pytest fixture::

    from persona_ollama.testing.server import Call, Face, FakeServer, Route
    from persona_ollama.testing.wire import ApiError, Reply, json_reply

    def health(call: Call) -> Reply:
        return json_reply({"status": "ok"})

    def chat(call: Call) -> Reply:
        body = call.record.json or {}
        model = call.state.find(body.get("model", ""))
        if model is None:
            raise ApiError(404, "no such model")
        return json_reply({"text": f"Hi from {model.name}"})

    class AcmeFace(Face):
        routes = (Route("GET", "/health", health), Route("POST", "/chat", chat, generation=True))

    with FakeServer([AcmeFace()], ["llama3.2:3b"]) as fake:
        fake.fail_next(path="/chat")  # the next /chat gets a 503
        ...  # point the client at fake.url; assert on fake.requests

tests/testing's core tests build such a double.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .face import Call, Face, Route
from .model_names import PLAIN, Naming
from .models import Answer, FakeModel
from .responses import ApiError, Reply, Response, RunnerError, Stream, text_reply
from .script import (
    DROP,
    EMPTY,
    ERROR_MID_STREAM,
    INTERRUPTED,
    MALFORMED,
    NO_DONE,
    RUNNER,
    STATUS,
    STREAM_KINDS,
    Fault,
    Latency,
    ReplyRule,
)
from .state import RecordedRequest, ServerState, Settings

__all__ = [
    "Call",
    "Face",
    "FakeServer",
    "Route",
]

DOUBLE_NAME = "persona_ollama.testing"
_STOP_TIMEOUT_S = 5.0
# A TLS client gets this long to finish its handshake (a test's client does it in milliseconds).
_HANDSHAKE_TIMEOUT_S = 5.0


# Routing -----------------------------------------------------------------------------------------
Methods = dict[str, Route]


class Routing:
    """The faces' routes by path; the first face that declares a path answers it."""

    def __init__(self, faces: Sequence[Face]) -> None:
        self.exact: dict[str, tuple[Face, Methods]] = {}
        self.prefixes: list[tuple[str, Face, Methods]] = []
        self.not_implemented: dict[str, Face] = {}
        for face in faces:
            for route in face.routes:
                prefix = route.prefix
                if prefix is None:
                    owner, methods = self.exact.setdefault(route.path, (face, {}))
                else:
                    entry = next((p for p in self.prefixes if p[0] == prefix), None)
                    if entry is None:
                        entry = (prefix, face, {})
                        self.prefixes.append(entry)
                    _, owner, methods = entry
                if owner is face:
                    methods.setdefault(route.method, route)
            for path in face.not_implemented:
                self.not_implemented.setdefault(path, face)
        self.generation_paths = frozenset(
            route.path for face in faces for route in face.routes if route.generation
        )

    def find(self, path: str) -> tuple[Face, Methods] | None:
        """The face and its routes by method for ``path``; None when no face has it."""
        found = self.exact.get(path)
        if found is not None:
            return found
        for prefix, face, methods in self.prefixes:
            if path.startswith(prefix) and len(path) > len(prefix):
                return face, methods
        return None


# HTTP --------------------------------------------------------------------------------------------
class HTTPServer(ThreadingHTTPServer):
    """A threading server that can close its open keep-alive connections when it stops."""

    daemon_threads = True
    request_queue_size = 128  # 32+ clients connecting at once must not be refused

    def __init__(
        self,
        address: tuple[str, int],
        state: ServerState,
        routing: Routing,
        *,
        label: str,
        header: str,
        host_check: Callable[[str], bool] | None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.tls = tls
        self.state = state
        self.routing = routing
        self.label = label  # names the double in its own error texts
        self.header = header  # names the double in every response
        self.host_check = host_check
        self._lock = threading.Lock()
        self._open_connections: set[socket.socket] = set()
        self._handler_threads: set[threading.Thread] = set()
        super().__init__(address, RequestHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open_connections.add(request)
            self._handler_threads.add(threading.current_thread())
        try:
            if self.tls is not None:
                # The handshake runs here, in the connection's own thread: done in accept(), a
                # client that never finishes it would stop the server from taking others.
                raw = request
                try:
                    raw.settimeout(_HANDSHAKE_TIMEOUT_S)
                    request = self.tls.wrap_socket(raw, server_side=True)
                    request.settimeout(None)
                except OSError:  # ssl.SSLError too: a client that refused the certificate
                    self.shutdown_request(raw)
                    return
                with self._lock:  # the wrapped socket now owns the connection
                    self._open_connections.discard(raw)
                    self._open_connections.add(request)
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
    server: HTTPServer

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
        self.send_header(self.server.header, DOUBLE_NAME)

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
        routing = self.server.routing
        found = routing.find(record.path)
        if found is None:
            owner = routing.not_implemented.get(record.path)
            if owner is not None:
                message = f"{self.server.label} does not implement {record.method} {record.path}"
                self._send_reply(record, owner.error(501, message))
            else:
                self._send_reply(record, text_reply(404, "404 page not found"))
            return
        face, methods = found
        route = methods.get(record.method)
        if route is None:
            self._send_reply(record, text_reply(405, "405 method not allowed"))
            return
        latency = state.script.take_latency(record.path)
        slot = state.slot() if route.generation else contextlib.nullcontext()
        with slot, contextlib.ExitStack() as request:
            # Whatever happens, the runners this request holds are released at its end.
            request.callback(state.finish_request)
            if not state.sleep(latency.first_byte):
                self._hang_up()
                return
            fault = state.script.take_fault(record.path, (STATUS, RUNNER))
            if fault is not None and fault.kind == RUNNER:
                response: Response = face.runner_error(state, fault.status, fault.error)
            elif fault is not None:
                response = face.error(fault.status, fault.error)
            else:
                try:
                    response = route.handle(Call(state, record, latency.first_byte))
                except RunnerError as exc:
                    response = face.runner_error(state, exc.status, exc.message)
                except ApiError as exc:
                    response = face.error(exc.status, exc.message)
            if isinstance(response, Stream):
                self._send_stream(record, response, latency)
            else:
                self._send_reply(record, response)

    def _host_allowed(self) -> bool:
        """The server's Host check (``host_check``; the default server's is in host_check.py): a
        server listening on loopback answers 403, empty, to a Host header the check refuses."""
        check = self.server.host_check
        address = ipaddress.ip_address(str(self.server.server_address[0]))
        if check is None or not address.is_loopback:
            return True
        return check(self.headers.get("Host") or "")

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


# The public API --------------------------------------------------------------------------------
_Server = TypeVar("_Server", bound="FakeServer")


# The argument of FakeServer that settles each thing faces may disagree on.
_SETTLED_BY = {"naming": "naming=...", "profile_type": "settings=Settings(profile_type=...)"}


def _declared(faces: Sequence[Face], attribute: str) -> Any:
    """What the ``faces`` say of their server's ``attribute`` (``naming``, ``profile_type``):
    None when none says; a ValueError naming the argument that settles it when two say
    different things."""
    said = [getattr(face, attribute) for face in faces if getattr(face, attribute) is not None]
    if any(other is not said[0] for other in said[1:]):
        names = ", ".join(type(face).__name__ for face in faces)
        raise ValueError(
            f"the faces ({names}) name different {attribute} rules for one server; "
            f"pass {_SETTLED_BY[attribute]} to the double to say which it follows"
        )
    return said[0] if said else None


class FakeServer:
    """A started-on-demand double on ``host``:``port`` (0 picks a free port) serving ``faces``.

    Use it as a context manager (``with FakeServer(faces) as fake:``) or call start()/stop().
    ``models`` are installed at the start; ``settings`` and ``load_time`` are the engine's (see
    the default server's double, ``stand_in()``). ``host_check`` is the server's check of the
    Host header when it listens on loopback (None: every Host is accepted). ``tls``, a
    server-side :class:`ssl.SSLContext` holding a certificate, makes it serve https (``url``
    says so), as a server does behind a TLS reverse proxy. ``naming`` is how the server spells,
    checks and compares model names (model_names.py; by default the faces' ``naming``, else
    names are taken as they are), and ``library`` the models it knows by name: a bare name
    installs that model's facts, and it can be pulled. ``settings.profile_type`` is its release
    rules and error texts (profiles.py; by default the faces' ``profile_type``, else the base
    profile's).

    The scripting methods (``reply_with``, ``fail_next`` ...) take a ``path``: None means the
    routes the faces mark ``generation=True``, ``"*"`` any path.
    """

    double_header = "X-Fake-Server"
    """A response header the real server never sends, on every response (its value: this
    package's name), so that a client can tell the double from a real server."""

    def __init__(
        self,
        faces: Sequence[Face],
        models: Iterable[FakeModel | str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: Settings | None = None,
        load_time: float = 0.0,
        host_check: Callable[[str], bool] | None = None,
        tls: ssl.SSLContext | None = None,
        naming: Naming | None = None,
        library: Iterable[FakeModel] = (),
    ) -> None:
        if load_time < 0:
            raise ValueError(f"load_time must be 0 or more seconds, got {load_time}")
        self._tls = tls
        self._routing = Routing(faces)
        settings = settings or Settings()
        if settings.profile_type is None:
            settings = replace(settings, profile_type=_declared(faces, "profile_type"))
        self._state = ServerState(
            settings,
            self._routing.generation_paths,
            naming=naming or _declared(faces, "naming") or PLAIN,
            library=library,
        )
        self._state.label = type(self).__name__
        self._state.scheduler.load_time_s = load_time
        for model in models:
            self._state.install(model)
        self._address = (host, port)
        self._host_check = host_check
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle --------------------------------------------------------------------------------
    def start(self: _Server) -> _Server:
        """Bind and serve in a daemon thread; returns self. The socket is listening on return."""
        name = type(self).__name__
        if self._server is not None:
            raise RuntimeError(f"{name} is already running; stop() it first")
        self._state.stopping.clear()
        self._server = HTTPServer(
            self._address,
            self._state,
            self._routing,
            label=name,
            header=self.double_header,
            host_check=self._host_check,
            tls=self._tls,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to one interval
            name=f"{name}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every connection; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._state.stopping.set()  # cuts simulated latency short
        server.shutdown()
        server.server_close()
        server.close_connections(_STOP_TIMEOUT_S)
        thread.join(_STOP_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self: _Server) -> _Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start() or use `with`")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` when serving TLS): the server's address for a
        client."""
        host = self._address[0]
        scheme = "http" if self._tls is None else "https"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def version(self) -> str:
        """The emulated release (``settings.version``; ``""`` when none was given: the newest)."""
        return self._state.settings.version

    # models -----------------------------------------------------------------------------------
    @property
    def models(self) -> list[FakeModel]:
        """Installed models, newest first (as /api/tags lists them)."""
        return self._state.installed()

    def add_model(self, model: FakeModel | str) -> FakeModel:
        """Install ``model``; a known name (e.g. ``"qwen3:8b"``) takes that model's facts."""
        return self._state.install(model)

    def remove_model(self, name: str) -> FakeModel:
        """Uninstall (and unload) a model; KeyError when no such model is installed."""
        return self._state.uninstall(name)

    @property
    def loaded_models(self) -> dict[str, int]:
        """Models in memory (as /api/ps shows them) -> the num_ctx each was loaded with."""
        return {loaded.model.name: loaded.num_ctx for loaded in self._state.loaded()}

    @property
    def loads(self) -> int:
        """Model loads so far (each reload counts), since the start or the last reset()."""
        return self._state.scheduler.loads

    def load_count(self, model: str) -> int:
        """Loads of one model so far."""
        return self._state.scheduler.loads_of(self._state.key(model))

    @property
    def load_time(self) -> float:
        """Seconds a model load takes (settable)."""
        return self._state.scheduler.load_time_s

    @load_time.setter
    def load_time(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"load_time must be 0 or more seconds, got {seconds}")
        self._state.scheduler.load_time_s = seconds

    def on_request(self, listener: Callable[[RecordedRequest], None]) -> None:
        """Call ``listener`` with each request once it has been answered (``--log`` of
        ``python -m persona_ollama.testing``); it runs on the server's thread."""
        self._state.listen(listener)

    # scripting --------------------------------------------------------------------------------
    def reply_with(
        self,
        answer: Answer,
        *,
        model: str | None = None,
        thinking: str | None = None,
        done_reason: str | None = None,
        times: int | None = None,
        last_in_done: bool = False,
    ) -> None:
        """Answer generation requests (for ``model``, or any) with ``answer``.

        ``answer`` is the text, or a function of the request JSON returning it (the /api/chat
        or /api/generate body; for /v1/chat/completions, the /api/chat body the server
        translates it into, so ``request["messages"]`` works for both chat APIs). With ``times``
        the rule serves that many requests, in the order such rules were added; without it,
        it serves every request until reset() or a newer open-ended rule. ``thinking`` is the
        reasoning a thinking model emits first; ``done_reason`` overrides "stop"/"length".
        ``last_in_done``: the last piece of the answer comes on the done line, as an output
        parser's held-back text can since 0.13.3, and llama-server's final chunk since 0.30
        (wire.DONE_CARRIES_CONTENT; ignored before).
        """
        key = self._state.key(model) if model is not None else None
        self._state.script.add_reply(
            ReplyRule(answer, key, thinking, done_reason, _count(times, "times"), last_in_done)
        )

    def fail_next(
        self, n: int = 1, status: int = 503, error: str | None = None, *, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests get ``status`` with the face's error body; the
        default text is the emulated release's for a server turning requests away."""
        text = self._state.settings.profile.busy_text if error is None else error
        self._fault(Fault(STATUS, _positive(n), path, status=status, error=text))

    def runner_stopped_next(
        self, n: int = 1, error: str | None = None, *, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests find the model runner dead before any output; the
        face decides how that is sent (``Face.runner_error``), and the default text is the
        emulated release's."""
        text = self._state.settings.profile.runner_stopped_text if error is None else error
        self._fault(Fault(RUNNER, _positive(n), path, status=500, error=text))

    def error_mid_stream_next(
        self, error: str | None = None, after_chunks: int = 2, *, path: str | None = None
    ) -> None:
        """The next stream sends ``after_chunks`` chunks, then ``{"error": ...}``, and no done.

        The default text is the emulated release's for a runner that fails mid-answer."""
        text = self._state.settings.profile.runner_failed_text() if error is None else error
        self._fault(Fault(ERROR_MID_STREAM, 1, path, error=text, after_chunks=_index(after_chunks)))

    def drop_connection_mid_stream_next(
        self, after_chunks: int = 2, *, path: str | None = None
    ) -> None:
        """The next stream sends ``after_chunks`` chunks, then the socket closes mid-response."""
        self._fault(Fault(DROP, 1, path, after_chunks=_index(after_chunks)))

    def end_stream_without_done_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` streams end cleanly but without their done line (or [DONE])."""
        self._fault(Fault(NO_DONE, _positive(n), path))

    def malformed_json_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` 200 responses are cut in half: the body, or a stream's first line."""
        self._fault(Fault(MALFORMED, _positive(n), path))

    def latency(
        self,
        first_byte: float = 0.0,
        between_chunks: float = 0.0,
        *,
        times: int | None = None,
        path: str | None = None,
    ) -> None:
        """Wait ``first_byte`` seconds before answering (a cold load) and ``between_chunks``
        between streamed chunks (slow tokens). With ``times``, only for that many requests."""
        if first_byte < 0 or between_chunks < 0:
            raise ValueError("latency must be >= 0 seconds")
        self._state.script.add_latency(
            Latency(first_byte, between_chunks, path, _count(times, "times"))
        )

    def _fault(self, fault: Fault) -> None:
        self._state.script.add_fault(fault)

    # records ----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return self._state.records()

    @property
    def generations(self) -> list[RecordedRequest]:
        """The requests to the routes that run a model (``generation=True``), oldest first:
        what a test that does not know the face's paths (tests/contract) asserts on."""
        paths = self._routing.generation_paths
        return [record for record in self._state.records() if record.path in paths]

    def request_count(self, path: str | None = None) -> int:
        """How many requests were received, for ``path`` or in total."""
        return sum(1 for r in self._state.records() if path is None or r.path == path)

    def last_request(self, path: str | None = None) -> RecordedRequest:
        """The most recent request (to ``path``); LookupError when there is none."""
        for record in reversed(self._state.records()):
            if path is None or record.path == path:
                return record
        raise LookupError(f"no request to {path or 'any path'} was received")

    @property
    def forwarded_requests(self) -> list[RecordedRequest]:
        """Requests the real server would have sent on to a remote model's host (a hosted
        service or another server), oldest first: a privacy test asserts this stays empty."""
        return self._state.forwarded()

    def reset(self) -> None:
        """Forget recorded requests, scripted behaviour and loaded models; keep installed ones."""
        self._state.reset()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        name = type(self).__name__
        return f"<{name} {where} version={self.version} models={len(self.models)}>"


# compatibility aliases: begin (FakeOllama and DOUBLE_HEADER moved to ollama_server.py)
def __getattr__(name: str) -> object:
    """``persona_ollama.testing.server.FakeOllama`` (and ``DOUBLE_HEADER``) still work, imported
    when asked for, so that the core imports none of that server's faces (scripts/new_provider.py
    follows imports)."""
    if name in ("FakeOllama", "DOUBLE_HEADER"):
        import importlib

        return getattr(importlib.import_module(f"{__package__}.ollama_server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# compatibility aliases: end


def _positive(n: int) -> int:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return n


def _index(after_chunks: int) -> int:
    if after_chunks < 0:
        raise ValueError(f"after_chunks must be >= 0, got {after_chunks}")
    return after_chunks


def _count(times: int | None, name: str) -> int | None:
    if times is not None and times < 1:
        raise ValueError(f"{name} must be at least 1 (or None for every request), got {times}")
    return times
