"""Reading bodies by their framing, over real sockets: urllib3's public ``read1`` for a body
without chunked framing (and the connection's reader where urllib3 has none), the chunk
parser for chunked streams. Each must deliver bytes as they come, refuse a cut body, and
give the connection back for reuse."""

from __future__ import annotations

import http.client
import socket
import time
from typing import Any

import pytest
import urllib3

from persona_ollama import OllamaProvider
from persona_ollama.errors import ConnectionBrokenError, OllamaResponseError, OllamaTimeoutError
from persona_ollama.testing.hostile import (
    HostileServer,
    chat_line,
    done_line,
    http_head,
    json_route,
    respond,
)
from persona_ollama.transport import body

SHOW = {"model_info": {"llama.context_length": 8192}, "capabilities": ["completion"]}


def provider_for(server: HostileServer) -> OllamaProvider:
    return OllamaProvider(base_url=server.url, model="m", environ={}, retries=0, restarts=0)


@pytest.fixture(params=["read1", "no read1 (urllib3 before 2.3)"])
def urllib3_reader(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with urllib3's read1, and as on a urllib3 that lacks it."""
    if request.param != "read1":
        monkeypatch.delattr(urllib3.HTTPResponse, "read1")
        monkeypatch.delattr(urllib3.BaseHTTPResponse, "read1")
    return str(request.param)


def test_json_documents_with_a_content_length_share_one_connection(urllib3_reader: str) -> None:
    lines = [chat_line("Hi"), done_line()]
    routes = {
        "/api/show": json_route(SHOW),
        "/api/chat": lambda r, c: respond(c, lines, framing="length"),
    }
    with HostileServer(routes) as server:
        provider = provider_for(server)
        for _ in range(3):
            assert provider.generate("hi").content == "Hi"
        assert provider.backend.connections_in_use() == 0
    assert server.connections == 1  # /api/show and three answers, one connection


def test_a_body_shorter_than_its_content_length_is_a_broken_connection(
    urllib3_reader: str,
) -> None:
    whole = chat_line("Hello") + done_line()

    def cut(request: Any, conn: Any) -> bool:
        head = {"Content-Type": "application/x-ndjson", "Content-Length": str(len(whole))}
        conn.send(http_head(200, head) + whole[: len(whole) - 10])
        return False  # the connection closes: ten bytes never come

    with HostileServer({"/api/show": json_route(SHOW), "/api/chat": cut}) as server:
        provider = provider_for(server)
        with pytest.raises(ConnectionBrokenError, match="partial result was discarded"):
            provider.generate("hi")
        assert provider.backend.connections_in_use() == 0


def test_a_json_document_cut_short_is_refused(urllib3_reader: str) -> None:
    def cut(request: Any, conn: Any) -> bool:
        head = {"Content-Type": "application/json", "Content-Length": "500"}
        conn.send(http_head(200, head) + b'{"model_info": {')
        return False

    with HostileServer({"/api/show": cut}) as server:
        provider = provider_for(server)
        with pytest.raises(OllamaResponseError, match="cut off"):
            provider.model_info("m")
        assert provider.backend.connections_in_use() == 0


def test_a_line_without_chunked_framing_arrives_before_the_next_is_sent(
    urllib3_reader: str,
) -> None:
    lines = [chat_line(f"t{i} ") for i in range(3)] + [done_line()]
    sent: dict[str, Any] = {}

    def slow(request: Any, conn: Any) -> bool:
        sent["conn"] = conn
        return respond(conn, lines, framing="length", pause=0.3)

    with HostileServer({"/api/show": json_route(SHOW), "/api/chat": slow}) as server:
        seen: list[float] = []
        provider_for(server).generate("hi", on_token=lambda piece: seen.append(time.monotonic()))
    assert len(seen) == 3
    assert seen[0] < sent["conn"].sent[-1] - 0.5  # not held back for a fuller read


def test_a_document_that_stalls_mid_body_times_out_within_the_read_timeout(
    urllib3_reader: str,
) -> None:
    def stall(request: Any, conn: Any) -> bool:
        head = {"Content-Type": "application/json", "Content-Length": "500"}
        conn.send(http_head(200, head) + b'{"model_info": {')
        return conn.hold(5.0)  # type: ignore[no-any-return]

    with HostileServer({"/api/show": stall}) as server:
        provider = OllamaProvider(base_url=server.url, environ={}, retries=0, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(OllamaTimeoutError):
            provider.model_info("m")
        assert time.monotonic() - started < 3.0
        assert provider.backend.connections_in_use() == 0


def test_urllib3s_read_errors_come_out_as_the_socket_or_http_client_raised_them() -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out.")  # type: ignore[arg-type]
    assert isinstance(body._broken(timeout), socket.timeout)  # TimeoutError from 3.10
    reset = ConnectionResetError("reset by peer")
    wrapped = urllib3.exceptions.ProtocolError("Connection broken", reset)
    wrapped.__cause__ = reset  # as urllib3 raises it: ``from`` the socket's error
    assert body._broken(wrapped) is reset
    # Without a cause to give back, still an error the client maps to a broken connection.
    assert isinstance(
        body._broken(urllib3.exceptions.ProtocolError("?")), http.client.HTTPException
    )
