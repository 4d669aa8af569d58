"""Real-socket parts around the double, for the transport tests: a certificate authority made at
test time, a forwarding HTTP proxy on loopback, and a server that echoes request headers.

Certificates come from ``trustme`` (a test dependency): a throwaway CA and a server certificate
are made in memory for each test session, so no key is kept in the repository and none expires.
The proxy speaks both forms a client uses: ``CONNECT host:port`` (a tunnel, for https) and an
absolute-form request (``GET http://host:port/path``, for http). Every target it is asked for
goes to one loopback address (the double's), whatever name the client gave: the tests can use a
name that is not loopback, so that the client takes the proxy, without a byte leaving the
machine.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import trustme

# The name the proxy tests give the server: not loopback by spelling, so requests takes the
# proxy for it; only the proxy ever sees it, and it sends everything to the double.
REMOTE_NAME = "ollama.test"


class Authority:
    """A CA made now, with one server certificate for loopback and ``REMOTE_NAME``."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self._cert = self.ca.issue_cert("127.0.0.1", "::1", "localhost", REMOTE_NAME)

    def server_context(self) -> ssl.SSLContext:
        """A server-side context holding the certificate (for ``FakeOllama(tls=...)``)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context

    @contextlib.contextmanager
    def bundle(self) -> Iterator[str]:
        """The path of a PEM file holding the CA: what a user passes as verify= / a CA bundle."""
        with self.ca.cert_pem.tempfile() as path:
            yield path


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        readable, _, broken = select.select(sockets, [], sockets, 10)
        if broken or not readable:
            return
        for source in readable:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            (b if source is a else a).sendall(data)


_Server = TypeVar("_Server", bound="_LoopbackServer")


class _LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 that serves from ``with`` until its end."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01})
        self._thread.daemon = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self: _Server) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class LoopbackProxy(_LoopbackServer):
    """A forwarding HTTP proxy on 127.0.0.1 that sends every request to ``target``.

    ``seen`` records the targets clients asked for (``"ollama.test:443"`` for a tunnel,
    ``"http://ollama.test:80/api/tags"`` for a forwarded request). With ``echo_status`` set,
    it answers every request itself with that status and a body that repeats the request's
    headers, as some misconfigured proxies do.
    """

    def __init__(self, target: tuple[str, int], *, echo_status: int | None = None) -> None:
        self.target = target
        self.echo_status = echo_status
        self.seen: list[str] = []
        super().__init__(_ProxyHandler)


class _ProxyHandler(BaseHTTPRequestHandler):
    server: LoopbackProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_CONNECT(self) -> None:
        self.server.seen.append(self.path)
        if self.server.echo_status is not None:
            echo_headers(self, self.server.echo_status)
            return
        upstream = socket.create_connection(self.server.target, timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream:
            _pipe(self.connection, upstream)

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.server.echo_status is not None:
            echo_headers(self, self.server.echo_status)
            return
        path = "/" + self.path.split("://", 1)[-1].partition("/")[2]
        lines = [f"{self.command} {path} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in self.headers.items() if k.lower() != "proxy-connection"]
        upstream = socket.create_connection(self.server.target, timeout=10)
        upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.close_connection = True
        with upstream:
            _pipe(self.connection, upstream)

    do_POST = do_GET


def echo_headers(handler: BaseHTTPRequestHandler, status: int) -> None:
    """Answer ``status`` with a body that repeats every request header (and the request line)."""
    echoed = {"error": f"{handler.requestline} " + json.dumps(dict(handler.headers.items()))}
    data = json.dumps(echoed).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class EchoingServer(_LoopbackServer):
    """A server on loopback that answers every request with ``status`` and the request's
    headers in its error text (``{"error": "..."}``), as a debugging reverse proxy might."""

    def __init__(self, status: int = 401) -> None:
        self.status = status
        super().__init__(_EchoHandler)


class _EchoHandler(BaseHTTPRequestHandler):
    server: EchoingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        echo_headers(self, self.server.status)

    do_POST = do_GET


def ipv6_loopback() -> bool:
    """Whether this machine can listen on and connect to ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True
