"""Every spelling of this machine is local, over real sockets: loopback by address in any
spelling (127.1, 127.0.0.1.), loopback names (localhost., localhost.localdomain) and the
machine's own host name never go through a proxy; ``localhost.`` reaches Ollama without the
dot its Host check refuses; a URL password outside Latin-1 is a ConfigurationError; and the
calls that load no model give up after a short read timeout."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from transport_doubles import REMOTE_NAME, LoopbackProxy

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import ConfigurationError, OllamaError, OllamaTimeoutError
from persona_ollama.transport import http

MODEL = "llama3.2:3b"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def proxied(fake_ollama, monkeypatch):
    """A recording proxy in HTTP(S)_PROXY that would forward everything to the double."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    with LoopbackProxy(("127.0.0.1", fake_ollama.port)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        yield proxy


def _resolves_to_loopback(name: str) -> bool:
    try:
        infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(info[4][0].startswith("127.") or info[4][0] == "::1" for info in infos)


@pytest.mark.parametrize(
    "spelling",
    ["127.1", "127.0.0.1.", "0x7f.1", "localhost.", "localhost.localdomain", "own-host-name"],
)
def test_every_spelling_of_this_machine_bypasses_the_proxy(fake_ollama, proxied, spelling):
    host = socket.gethostname() if spelling == "own-host-name" else spelling
    provider = OllamaProvider(base_url=f"http://{host}:{fake_ollama.port}", model=MODEL, environ={})
    provider.backend.transport.backoff = 0

    try:
        answer = provider.generate("Describe a nurse.", max_tokens=8)
    except OllamaError:
        # A name this machine's resolver does not know (localhost.localdomain on some
        # systems): it fails here, directly, and still never reached the proxy.
        assert not _resolves_to_loopback(host.rstrip("."))
    else:
        assert answer.content
    assert proxied.seen == []


def test_a_remote_name_still_goes_through_the_proxy_with_the_dot_left_out_of_host(
    fake_ollama, proxied
):
    fake_ollama._server.host_check = None  # a server bound to a public address accepts it
    provider = OllamaProvider(base_url=f"http://{REMOTE_NAME}.:80", model=MODEL, environ={})

    assert provider.generate("Describe a nurse.", max_tokens=8).content
    assert proxied.seen  # went through the proxy
    assert fake_ollama.last_request("/api/chat").headers["Host"] == f"{REMOTE_NAME}:80"


@pytest.mark.parametrize("local_only", [False, True])
def test_localhost_with_a_trailing_dot_reaches_ollama_past_its_host_check(fake_ollama, local_only):
    if not _resolves_to_loopback("localhost"):
        pytest.skip("localhost does not resolve to loopback on this machine")
    provider = OllamaProvider(
        base_url=f"http://localhost.:{fake_ollama.port}",
        model=MODEL,
        local_only=local_only,
        environ={},
    )

    assert provider.generate("Describe a nurse.", max_tokens=8).content
    assert fake_ollama.last_request("/api/chat").headers["Host"] == f"localhost:{fake_ollama.port}"


@pytest.mark.parametrize("password", ["p€ss-word", "p%E2%82%ACss-word", "密码密码"])
def test_a_password_outside_latin1_is_a_configuration_error_that_does_not_show_it(
    fake_ollama, password, cli_runner
):
    url = f"http://alice:{password}@127.0.0.1:{fake_ollama.port}"
    with pytest.raises(ConfigurationError, match="Latin-1") as raised:
        OllamaProvider(base_url=url, model=MODEL, environ={})
    assert password not in str(raised.value)

    result = cli_runner.invoke(main, ["models"], env={"OLLAMA_HOST": url})
    assert result.exit_code == 1
    assert "Latin-1" in result.stderr
    assert password not in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert fake_ollama.requests == []


@pytest.fixture
def silent_server():
    """Accepts connections and reads requests, and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_calls_that_load_no_model_give_up_after_the_short_read_timeout(silent_server, monkeypatch):
    monkeypatch.setattr(http, "QUICK_READ_TIMEOUT", 0.3)
    provider = OllamaProvider(base_url=silent_server, timeout=300, environ={})

    started = time.monotonic()
    with pytest.raises(OllamaTimeoutError):
        provider.generate("Describe a nurse.", max_tokens=8)  # no model: the list is asked

    assert time.monotonic() - started < 10  # not the 300 s read timeout
    with pytest.raises(OllamaTimeoutError):
        OllamaProvider(
            base_url=silent_server, api="openai", timeout=300, environ={}
        ).list_available_models()


@pytest.mark.parametrize("api", ["native", "openai"])
def test_health_of_a_server_that_never_answers_is_quick_and_says_so(silent_server, api):
    """The liveness probe asks for the version, which loads no model: a server silent to it
    is stuck or is not Ollama. The hint was the one for a generation, "loading a large model
    can take minutes: raise the timeout", which `doctor` printed as its next step."""
    provider = OllamaProvider(base_url=silent_server, api=api, environ={})

    started = time.monotonic()
    report = provider.health()

    assert time.monotonic() - started < 5  # the 1 s probe, not a read timeout
    assert provider.is_configured() is True  # the address is usable; no request is made
    assert report["reachable"] is False
    assert "sent nothing" in report["error"]
    assert "loading a large model" not in report["hint"].lower()
    assert "raise the timeout" not in report["hint"]
    assert "does not answer" in report["hint"] and "port" in report["hint"]
