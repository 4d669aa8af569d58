"""Every transport path over real sockets: https (a CA bundle, verification off, the default
trust store), a forwarding HTTP proxy on loopback (plain and tunnelled), and IPv6 loopback.

A representative subset of the integration suite runs on each path (a round trip in both APIs,
a stream, a busy server retried, a connection dropped mid-answer, the model listing, the CLI);
the rest of the suite runs over plain http on 127.0.0.1, where the paths share all their code.
"""

from __future__ import annotations

import json

import pytest
from transport_doubles import REMOTE_NAME, Authority, LoopbackProxy, ipv6_loopback
from urllib3.exceptions import InsecureRequestWarning

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import ConfigurationError, OllamaResponseError, ServerBusyError
from persona_ollama.testing import FakeOllama

MODEL = "llama3.2:3b"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
PATHS = ["https-bundle", "https-no-verify", "proxy-http", "proxy-https", "ipv6"]


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority()


class Path:
    """One way of reaching the double: the URL and provider arguments a user would give."""

    def __init__(self, fake: FakeOllama, url: str, verify: bool | str, proxy=None) -> None:
        self.fake, self.url, self.verify, self.proxy = fake, url, verify, proxy

    def provider(self, api: str = "native", **kwargs) -> OllamaProvider:
        url = self.url + "/v1" if api == "openai" else self.url
        provider = OllamaProvider(
            base_url=url, model=MODEL, api=api, verify=self.verify, environ={}, **kwargs
        )
        provider.backend.transport.backoff = 0  # retries without waiting
        return provider


@pytest.fixture(params=PATHS)
def path(request, authority, monkeypatch):
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    kind = request.param
    if kind == "ipv6" and not ipv6_loopback():
        pytest.skip("this machine cannot listen on IPv6 loopback (::1)")
    tls = authority.server_context() if kind.startswith("https") or kind == "proxy-https" else None
    host = "::1" if kind == "ipv6" else "127.0.0.1"
    with FakeOllama(host=host, tls=tls) as fake, authority.bundle() as bundle:
        verify: bool | str = False if kind == "https-no-verify" else bundle
        if not kind.startswith("proxy"):
            yield Path(fake, fake.url, verify)
            return
        # Behind a proxy the server sees the public name in Host, as Ollama bound to a
        # non-loopback address accepts it; the double on 127.0.0.1 would answer 403.
        fake._server.host_check = None
        scheme, port = ("https", 443) if tls else ("http", 80)
        with LoopbackProxy(("127.0.0.1", fake.port)) as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            yield Path(fake, f"{scheme}://{REMOTE_NAME}:{port}", verify, proxy)


def _quiet_insecure(path: Path):
    """verify=False: urllib3 warns at every request, as the user asked for no verification."""
    if path.verify is False:
        return pytest.warns(InsecureRequestWarning)
    return _Nothing()


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("api", ["native", "openai"])
def test_a_generation_round_trips_on_every_path(path, api):
    with _quiet_insecure(path):
        provider = path.provider(api, deadline=60)  # the deadline's watchdog sees each pool
        answer = provider.generate("Describe a nurse.", max_tokens=32)

    assert answer.content.startswith(f"Fake answer from {MODEL}")
    chat = "/api/chat" if api == "native" else "/v1/chat/completions"
    assert path.fake.last_request(chat).json["model"] == MODEL
    if path.proxy is not None:  # it did go through the proxy, by the name the user gave
        assert any(REMOTE_NAME in seen for seen in path.proxy.seen)


def test_a_stream_and_the_listing_work_on_every_path(path):
    with _quiet_insecure(path):
        provider = path.provider()
        pieces = list(provider.stream("Describe a nurse.", max_tokens=32))
        listed = provider.list_available_models()

    assert "".join(pieces).startswith(f"Fake answer from {MODEL}")
    assert MODEL in listed


def test_busy_is_retried_and_a_drop_mid_answer_sent_again_on_every_path(path, monkeypatch):
    from persona_ollama import restart

    monkeypatch.setattr(restart, "RESTART_PAUSE", 0.0)
    with _quiet_insecure(path):
        provider = path.provider()
        path.fake.fail_next(2, status=503)
        assert provider.generate("Describe a nurse.", max_tokens=32).content
        path.fake.fail_next(5, status=503)
        with pytest.raises(ServerBusyError):
            provider.generate("Describe a nurse.", max_tokens=32)
        # One drop mid-answer is sent again (restarts=1) on a fresh connection; two raise.
        path.fake.drop_connection_mid_stream_next()
        response = provider.generate("Describe a nurse.", max_tokens=64)
        assert response.content and response.raw_response["restarts"] == 1
        path.fake.drop_connection_mid_stream_next()
        path.fake.drop_connection_mid_stream_next()
        with pytest.raises(OllamaResponseError, match="partial"):
            provider.generate("Describe a nurse.", max_tokens=64)


def test_doctor_reaches_the_server_on_every_path(path, cli_runner):
    env = {"OLLAMA_HOST": path.url}
    if isinstance(path.verify, str):
        env["PERSONA_OLLAMA_CA_BUNDLE"] = path.verify
    if path.verify is False:
        pytest.skip("the CLI has no switch to turn verification off")
    result = cli_runner.invoke(main, ["doctor", "--json"], env=env)

    report = json.loads(result.output)
    assert report["server"]["reachable"] is True, result.output


def test_https_with_the_default_trust_store_refuses_an_unknown_certificate(authority):
    with FakeOllama(tls=authority.server_context()) as fake:
        provider = OllamaProvider(base_url=fake.url, model=MODEL, environ={})
        with pytest.raises(ConfigurationError, match="TLS connection") as raised:
            provider.generate("Describe a nurse.", max_tokens=8)

    assert "CA bundle" in (raised.value.hint or "")
    assert fake.generations == []  # nothing was sent over an unverified connection


def test_https_with_the_ca_bundle_from_the_environment_works(authority):
    with FakeOllama(tls=authority.server_context()) as fake, authority.bundle() as bundle:
        provider = OllamaProvider(
            base_url=fake.url, model=MODEL, environ={"PERSONA_OLLAMA_CA_BUNDLE": bundle}
        )
        answer = provider.generate("Describe a nurse.", max_tokens=8)

    assert answer.content


def test_plain_http_to_an_https_server_and_back_say_which_scheme_to_use(authority):
    with FakeOllama(tls=authority.server_context()) as fake:
        plain = OllamaProvider(base_url=fake.url.replace("https", "http"), environ={})
        with pytest.raises(OllamaResponseError):
            plain.list_available_models()
    with FakeOllama() as fake:
        tls = OllamaProvider(base_url=fake.url.replace("http", "https"), environ={})
        with pytest.raises(ConfigurationError) as raised:
            tls.list_available_models()
    assert "plain HTTP" in (raised.value.hint or "")
