"""Credentials the plugin never sees configured, but that requests adds from the environment
for a remote server (a ~/.netrc entry, user:password@ in HTTP_PROXY), do not come back out
either when a proxy on the way echoes the request's headers. Real sockets: the remote name
only ever reaches a forwarding proxy on loopback, which echoes."""

from __future__ import annotations

import base64

import pytest
from transport_doubles import REMOTE_NAME, LoopbackProxy

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import OllamaError

USER, PASSWORD = "alice", "Netrc-Q7vXw2LmZ9"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "no_proxy")


@pytest.fixture
def echoing_proxy(monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    with LoopbackProxy(("127.0.0.1", 9), echo_status=502) as proxy:
        yield proxy


def _leaks(text: str) -> list[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return [form for form in (PASSWORD, basic, basic.rstrip("=")) if form in text]


@pytest.mark.parametrize("source", ["netrc", "proxy-url"])
def test_credentials_requests_takes_from_the_environment_are_scrubbed(
    source, echoing_proxy, monkeypatch, tmp_path, cli_runner
):
    if source == "netrc":
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine {REMOTE_NAME} login {USER} password {PASSWORD}\n")
        netrc.chmod(0o600)
        monkeypatch.setenv("NETRC", str(netrc))
        monkeypatch.setenv("HTTP_PROXY", echoing_proxy.url)
    else:
        monkeypatch.setenv("NETRC", str(tmp_path / "none"))
        monkeypatch.setenv("HTTP_PROXY", echoing_proxy.url.replace("://", f"://{USER}:{PASSWORD}@"))
    url = f"http://{REMOTE_NAME}:11434"
    provider = OllamaProvider(base_url=url, model="m", retries=0, environ={})
    with pytest.raises(OllamaError) as raised:
        provider.generate("hi", max_tokens=4)
    provider.close()
    result = cli_runner.invoke(main, ["doctor", "--json"], env={"OLLAMA_HOST": url})

    assert "[redacted]" in str(raised.value)  # the echo reached the message
    for text in (str(raised.value), raised.value.server_text or "", result.output):
        assert not _leaks(text), text
