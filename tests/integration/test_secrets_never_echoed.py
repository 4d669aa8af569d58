"""No configured secret comes back out when a server or a proxy echoes the request's headers in
its error body: not in an exception's text or ``server_text``, a log record, or the CLI's output
(text, ``--json``, ``--debug`` tracebacks). Real sockets: a server that echoes, and a forwarding
proxy that echoes, both on loopback."""

from __future__ import annotations

import base64
import logging
import string
import traceback
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transport_doubles import REMOTE_NAME, EchoingServer, LoopbackProxy

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import OllamaError

MODEL = "llama3.2:3b"
# Letters, digits and the punctuation a token or password may hold, "%", "@", ":" and "/"
# included (they are percent-encoded in the URL).
_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/%#?[] "
# Each starts with "Zx": hypothesis also tries string constants of the code under test, and
# one of those (say "no GPU f", a piece of doctor's "no GPU found") is in the output anyway.
secret_text = (
    st.text(_CHARS, min_size=6, max_size=30)
    .map(lambda s: "Zx" + s)
    .filter(lambda s: s.strip() == s and sum(c.isalpha() for c in s) >= 3 and not s.isalnum())
)


def forms(*secrets: str) -> list[str]:
    """The spellings a leak could take: plain, percent-encoded."""
    found = []
    for secret in secrets:
        found += [secret, quote(secret, safe=""), quote(secret)]
    return [form for form in found if len(form) >= 8]


def assert_clean(text: str, secrets: list[str]) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"leaked {leaked!r} in {text!r}"


@pytest.fixture(scope="module")
def echoing():
    with EchoingServer(401) as server, LoopbackProxy(("127.0.0.1", 9), echo_status=502) as proxy:
        yield server, proxy


def _env(url: str, token: str) -> dict[str, str]:
    return {"OLLAMA_HOST": url, "PERSONA_OLLAMA_API_KEY": token}


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=secret_text, user=secret_text, password=secret_text)
def test_no_configured_secret_comes_back_out_of_an_echoing_server_or_proxy(
    echoing, token, user, password, monkeypatch, cli_runner, caplog
):
    server, proxy = echoing
    basic = base64.b64encode(f"{user}:{password}".encode("latin-1")).decode()
    secrets = forms(token, password, basic)
    with_password = f"http://{quote(user, safe='')}:{quote(password, safe='')}@"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    # The server itself echoes; then the proxy on the way to a remote name echoes.
    targets = [server.url, f"http://{REMOTE_NAME}:11434"]
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for url in targets:
        for credentials in ("token", "password"):
            address = url if credentials == "token" else url.replace("http://", with_password)
            key = token if credentials == "token" else None
            for api in ("native", "openai"):
                provider = OllamaProvider(
                    base_url=address, model=MODEL, api_key=key, api=api, retries=0, environ={}
                )
                with pytest.raises(OllamaError) as raised:
                    provider.generate("Describe a nurse.", max_tokens=8)
                error = raised.value
                texts += [str(error), repr(error), error.server_text or "", error.hint or ""]
                texts.append("".join(traceback.format_exception(type(error), error, None)))
                texts.append(str(provider.health()))
                provider.close()
            env = _env(address, token) if credentials == "token" else {"OLLAMA_HOST": address}
            for args in (["run", "hi", "-m", MODEL], ["models"], ["doctor"], ["doctor", "--json"]):
                result = cli_runner.invoke(main, args, env=env)
                texts += [result.output, result.stderr]
            debug = cli_runner.invoke(main, ["--debug", "run", "hi", "-m", MODEL], env=env)
            texts += [debug.output, debug.stderr]
            if debug.exc_info is not None:
                texts.append("".join(traceback.format_exception(*debug.exc_info)))
    texts += [record.getMessage() for record in caplog.records]
    caplog.clear()

    assert any("[redacted]" in text for text in texts)  # the echo did reach the texts
    for text in texts:
        assert_clean(text, secrets)
