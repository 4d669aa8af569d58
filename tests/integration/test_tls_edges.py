"""https edges over real sockets: a server that accepts the connection but never finishes the
TLS handshake (bounded by the connect timeout, and said so), a certificate for another name
(said so), and connections reused over TLS (handshakes counted by a relay in front of the
double)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time

import pytest
import trustme
from transport_doubles import Authority, _pipe
from urllib3.exceptions import InsecureRequestWarning

from persona_ollama import OllamaProvider
from persona_ollama.errors import ConfigurationError, OllamaTimeoutError
from persona_ollama.testing import FakeOllama

MODEL = "llama3.2:3b"


class Listener:
    """A loopback TCP listener that accepts every connection; ``relay`` set, it pipes each to
    that address (the TLS stays end to end), else it holds it open and says nothing."""

    def __init__(self, relay: tuple[str, int] | None = None) -> None:
        self.relay = relay
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.relay is None:
                self.held.append(conn)
                continue
            upstream = socket.create_connection(self.relay)
            threading.Thread(target=_pipe, args=(conn, upstream), daemon=True).start()

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def stalling():
    listener = Listener()
    yield listener
    listener.close()


@pytest.mark.parametrize("call", ["models", "generate"])
def test_a_handshake_that_never_finishes_is_bounded_by_the_connect_timeout(stalling, call):
    provider = OllamaProvider(
        base_url=stalling.url, model=MODEL, connect_timeout=1, retries=0, environ={}
    )
    started = time.monotonic()
    with pytest.raises(OllamaTimeoutError) as raised:
        if call == "models":
            provider.installed_models()
        else:
            provider.generate("hi", max_tokens=4)
    took = time.monotonic() - started
    provider.close()

    assert took < 5
    assert "TLS handshake did not finish within 1 s" in str(raised.value)
    assert "sent nothing for" not in str(raised.value)  # not the read timeout's 20 or 300 s


def test_a_certificate_for_another_name_is_said_to_be_one():
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("ollama.internal").configure_cert(context)
    with FakeOllama([MODEL], tls=context) as fake, ca.cert_pem.tempfile() as bundle:
        provider = OllamaProvider(base_url=fake.url, model=MODEL, verify=bundle, environ={})
        with pytest.raises(ConfigurationError) as raised:
            provider.installed_models()
        provider.close()

    assert "not valid for '127.0.0.1'" in str(raised.value)
    assert "certificate" in (raised.value.hint or "")


@pytest.mark.parametrize("verify", ["bundle", "off"])
def test_connections_are_reused_over_tls(verify):
    authority = Authority()
    with FakeOllama([MODEL], tls=authority.server_context()) as fake, authority.bundle() as pem:
        relay = Listener(("127.0.0.1", fake.port))
        provider = OllamaProvider(
            base_url=relay.url, model=MODEL, verify=pem if verify == "bundle" else False, environ={}
        )
        off = pytest.warns(InsecureRequestWarning)
        with off if verify == "off" else contextlib.nullcontext():
            for _ in range(4):
                provider.generate("Describe a nurse.", max_tokens=64)
            provider.installed_models()
        provider.close()
        relay.close()

    assert fake.request_count("/api/chat") == 4
    assert relay.accepted == 1  # one handshake for every request, one after the other


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_requests_ca_bundle_variables_work_for_a_server_on_this_machine(variable, monkeypatch):
    """The TLS error's hint says REQUESTS_CA_BUNDLE works too; requests reads it only when it
    reads the environment, which the plugin turns off for a server on this machine (proxies)."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    authority = Authority()
    with FakeOllama([MODEL], tls=authority.server_context()) as fake, authority.bundle() as pem:
        monkeypatch.setenv(variable, pem)
        provider = OllamaProvider(base_url=fake.url, model=MODEL, environ={})
        answer = provider.generate("Describe a nurse.", max_tokens=64)
        provider.close()

    assert answer.content
