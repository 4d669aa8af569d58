"""Local-only mode, privacy warnings, credentials kept out of every output, runaway servers."""

from __future__ import annotations

import json
import logging
import re

import pytest
import responses
from shared_helpers import chat_done, chat_piece, ndjson

from persona_ollama import OllamaProvider
from persona_ollama import stream as generation
from persona_ollama.endpoint import parse_host
from persona_ollama.errors import (
    LocalOnlyViolationError,
    OllamaError,
    OllamaResponseError,
    OllamaTimeoutError,
)
from persona_ollama.privacy import check_server

BASE = "http://127.0.0.1:11434"
SHOW = {
    "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
    "capabilities": ["completion"],
    "details": {},
}


DONE = chat_done(prompt_eval_count=3, eval_count=1)


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        # Nothing loaded: without an answer to /api/ps the window check would wait through
        # the transport's retry backoff (3.5 s) in every test that generates.
        rsps.get(re.compile(r"https?://[^/]+/api/ps"), json={"models": []})
        yield rsps


@pytest.mark.parametrize(
    "url", ["http://192.168.1.20:11434", "https://gpu.example.com/ollama", "http://10.0.0.5"]
)
def test_local_only_refuses_a_remote_server_before_sending_a_byte(mocked, url):
    with pytest.raises(LocalOnlyViolationError) as caught:
        OllamaProvider(base_url=url, local_only=True, environ={})
    assert "PERSONA_OLLAMA_LOCAL_ONLY" in caught.value.hint
    assert len(mocked.calls) == 0


def test_local_only_from_the_environment(mocked):
    with pytest.raises(LocalOnlyViolationError):
        OllamaProvider(environ={"OLLAMA_HOST": "gpu-box:11434", "PERSONA_OLLAMA_LOCAL_ONLY": "1"})


@pytest.mark.parametrize("model", ["gpt-oss:120b-cloud", "deepseek-v3.1:671b-cloud", "qwen3:cloud"])
def test_local_only_refuses_cloud_models_without_sending_a_byte(mocked, model):
    provider = OllamaProvider(base_url=BASE, local_only=True, environ={})
    with pytest.raises(LocalOnlyViolationError, match=r"runs on https://ollama\.com:443"):
        provider.generate("interview notes", model=model)
    assert len(mocked.calls) == 0


def test_local_only_allows_loopback_and_local_models(mocked):
    mocked.get(f"{BASE}/api/tags", json={"models": [{"name": "llama3.2:3b", "size": 2 << 30}]})
    mocked.post(f"{BASE}/api/show", json=SHOW)
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("ok"), DONE))
    provider = OllamaProvider(base_url=BASE, local_only=True, environ={})
    assert provider.generate("hi", model="llama3.2:3b").content == "ok"


def test_plain_http_to_a_remote_host_is_warned_about_once_per_process(mocked, caplog):
    remote = "http://gpu-box:11434"
    mocked.post(f"{remote}/api/show", json=SHOW)
    mocked.post(f"{remote}/api/chat", body=ndjson(chat_piece("ok"), DONE))
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        for _ in range(2):
            OllamaProvider(base_url=remote, environ={}).generate("hi", model="m")
    warnings = [r.message for r in caplog.records if "plain http" in r.message]
    assert len(warnings) == 1


def test_cloud_model_is_warned_about_once(mocked, caplog):
    mocked.post(f"{BASE}/api/show", json=SHOW)
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("ok"), DONE))
    provider = OllamaProvider(base_url=BASE, environ={})
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        provider.generate("hi", model="gpt-oss:120b-cloud")
        provider.generate("hi", model="gpt-oss:120b-cloud")
    assert sum("runs on https://ollama.com:443" in r.message for r in caplog.records) == 1


def test_loopback_generates_without_privacy_warnings(mocked, caplog):
    mocked.post(f"{BASE}/api/show", json=SHOW)
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("ok"), DONE))
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        OllamaProvider(base_url=BASE, environ={}).generate("hi", model="m")
    assert caplog.records == []


SECRETS = ("hunter2", "tok-SECRET-123")


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, ""),
        (403, "forbidden"),
        (404, '{"error":"model \'m\' not found"}'),
        (500, "boom"),
        (503, '{"error":"server busy"}'),
    ],
)
def test_credentials_never_appear_in_errors(mocked, status, body):
    url = "https://alice:hunter2@proxy.example.com/ollama"
    mocked.post("https://proxy.example.com:443/ollama/api/show", status=status, body=body)
    mocked.get("https://proxy.example.com:443/ollama/api/tags", json={"models": []})
    provider = OllamaProvider(base_url=url, api_key="tok-SECRET-123", retries=0, environ={})
    with pytest.raises(OllamaError) as caught:
        provider.generate("hi", model="m")
    error = caught.value
    for text in (
        str(error),
        repr(error),
        error.hint or "",
        error.url or "",
        repr(provider),
        str(provider.endpoint),
        repr(provider.endpoint),
    ):
        assert_no_secret(text)
    sent = mocked.calls[0].request.headers["Authorization"]
    assert sent == "Bearer tok-SECRET-123"


def test_credentials_never_appear_in_health_or_raw_response(mocked, caplog):
    url = "https://alice:hunter2@proxy.example.com"
    base = "https://proxy.example.com:443"
    mocked.get(f"{base}/api/version", json={"version": "0.33.0"})
    mocked.get(f"{base}/api/tags", json={"models": []})
    mocked.post(f"{base}/api/show", json=SHOW)
    mocked.post(f"{base}/api/chat", body=ndjson(chat_piece("ok"), DONE))
    provider = OllamaProvider(base_url=url, environ={"PERSONA_OLLAMA_API_KEY": "tok-SECRET-123"})
    with caplog.at_level(logging.DEBUG):
        assert_no_secret(json.dumps(provider.health()))
        response = provider.generate("hi", model="m")
    assert_no_secret(json.dumps(response.raw_response))
    assert_no_secret(caplog.text)
    assert mocked.calls[-1].request.headers["Authorization"] == "Bearer tok-SECRET-123"


def test_basic_auth_from_the_url_is_sent_when_no_token_is_set(mocked):
    base = "https://proxy.example.com:443"
    route = mocked.get(f"{base}/api/tags", json={"models": []})
    OllamaProvider(
        base_url="https://alice:hunter2@proxy.example.com", environ={}
    ).list_available_models()
    assert route.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_a_server_that_streams_past_num_predict_is_cut_off(mocked):
    mocked.post(f"{BASE}/api/show", json=SHOW)
    endless = ndjson(*[chat_piece("x")] * 400)  # never sends done
    mocked.post(f"{BASE}/api/chat", body=endless)
    provider = OllamaProvider(base_url=BASE, environ={})
    with pytest.raises(OllamaResponseError, match="kept streaming past num_predict=100"):
        provider.generate("hi", model="m", max_tokens=100)


def test_deadline_stops_a_generation_that_runs_too_long(mocked, monkeypatch):
    # A clock that moves 5 s at every look: the deadline covers model facts and every read.
    clock = iter(range(0, 10_000, 5))
    monkeypatch.setattr(generation.time, "monotonic", lambda: float(next(clock)))
    mocked.post(f"{BASE}/api/show", json=SHOW)
    mocked.post(f"{BASE}/api/chat", body=ndjson(*[chat_piece("x")] * 10, DONE))
    provider = OllamaProvider(base_url=BASE, deadline=12, environ={})
    with pytest.raises(OllamaTimeoutError, match="deadline"):
        provider.generate("hi", model="m")


def test_nonsense_deadline_is_refused():
    with pytest.raises(OllamaError, match="deadline"):
        OllamaProvider(deadline=0, environ={})


def test_a_localhost_name_that_resolves_elsewhere_is_warned_about_once(caplog):
    asked = []

    def resolve(name, port):
        asked.append(name)
        return ["127.0.0.1", "203.0.113.7"]

    endpoint = parse_host("http://api.localhost:11434")
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        for _ in range(2):
            assert check_server(endpoint, local_only=False, resolve=resolve) is endpoint

    warned = [r.message for r in caplog.records if "203.0.113.7" in r.message]
    assert len(warned) == 1 and "looks like this machine" in warned[0]
    assert asked == ["api.localhost"]  # resolved once per process, not per provider


def test_a_localhost_name_that_resolves_to_loopback_is_not_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        check_server(
            parse_host("http://api.localhost:11434"),
            local_only=False,
            resolve=lambda name, port: ["127.0.0.1", "::1"],
        )
    assert caplog.records == []
