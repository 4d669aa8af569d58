"""The Transport over a mocked HTTP layer: retries, timeouts, deadlines, the pool, redirects,
TLS, auth, bounded reading and JSON, in the words of whatever backend it serves.

A small test wording stands in for the backend, so that these tests say what is the
transport's (how often, how long, what is read, what is given back) and what is the wording's
(the error a status or a refused connection becomes): test_backend_ollama.py has Ollama's.
"""

from __future__ import annotations

import socket
import time

import certifi
import pytest
import requests
from shared_helpers import free_port, ndjson

from persona_ollama.deadline import call_deadline, ends_at
from persona_ollama.endpoint import resolve_endpoint
from persona_ollama.errors import (
    ConfigurationError,
    OllamaError,
    OllamaNotRunningError,
    OllamaResponseError,
    OllamaTimeoutError,
)
from persona_ollama.transport.http import MAX_ERROR_BODY, Transport
from persona_ollama.transport.ndjson import iter_ndjson

BASE = "http://127.0.0.1:11434"


class Words:
    """A backend's words, recording what the transport asked it to word."""

    label = "test server"

    def __init__(self) -> None:
        self.statuses: list[tuple[int, str, str | None]] = []
        self.deadlines: list[float | None] = []
        self.reasons: list[str] = []
        self.silences: list[float] = []

    def status_error(
        self, status: int, body: str, *, model: str | None, deadline: float | None = None
    ) -> OllamaError:
        self.statuses.append((status, body, model))
        self.deadlines.append(deadline)
        return OllamaResponseError(f"HTTP {status}", server_text=body, status_code=status)

    def not_running(self, reason: str) -> OllamaError:
        self.reasons.append(reason)
        return OllamaNotRunningError(f"Nothing at the test server: {reason}.")

    def silent(self, seconds: float) -> OllamaTimeoutError:
        self.silences.append(seconds)
        return OllamaTimeoutError(f"Silent for {seconds:g} s.", hint="test: raise the timeout")


def open_transport(url: str = BASE, **settings) -> Transport:
    return Transport(resolve_endpoint(url, {}), Words(), **settings)


@pytest.fixture
def transport():
    opened = open_transport(backoff=0)
    yield opened
    opened.close()


# -- retries ------------------------------------------------------------------------------


def test_503_is_retried_with_backoff_until_it_succeeds(transport, mocked):
    busy = mocked.get(f"{BASE}/x", status=503, json={"error": "busy"})
    mocked.get(f"{BASE}/x", json={"ok": True})
    assert transport.get_json("/x") == {"ok": True}
    assert busy.call_count == 1
    assert transport.wording.statuses == []
    assert transport.connections_in_use() == 0


def test_503_after_every_retry_is_worded_by_the_backend_with_the_servers_text(transport, mocked):
    busy = mocked.get(f"{BASE}/x", status=503, json={"error": "busy"})
    with pytest.raises(OllamaResponseError) as caught:
        transport.get_json("/x")
    assert busy.call_count == 1 + transport.retries
    assert transport.wording.statuses == [(503, '{"error": "busy"}', None)]
    assert caught.value.status_code == 503
    assert transport.connections_in_use() == 0


def test_429_is_retried_like_503(transport, mocked):
    limited = mocked.get(f"{BASE}/x", status=429, body="slow down")
    mocked.get(f"{BASE}/x", json={})
    assert transport.get_json("/x") == {}
    assert limited.call_count == 1


@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_client_errors_and_server_errors_are_not_retried(transport, mocked, status):
    route = mocked.post(f"{BASE}/x", status=status, json={"error": "invalid model name"})
    with pytest.raises(OllamaResponseError):
        transport.post_json("/x", {"model": "a b"}, model="a b")
    assert route.call_count == 1
    assert transport.wording.statuses == [(status, '{"error": "invalid model name"}', "a b")]


def test_the_words_for_a_status_are_given_the_requests_deadline(transport, mocked):
    # A backend may ask more to say what went wrong (a /v1 server's models after a 404):
    # by the deadline of the request that failed, not by a timeout of its own.
    mocked.get(f"{BASE}/x", status=404, json={"error": "model 'm' not found"})
    deadline = time.monotonic() + 60
    with pytest.raises(OllamaResponseError):
        transport.get_json("/x", deadline=deadline)
    with pytest.raises(OllamaResponseError):
        transport.get_json("/x")
    assert transport.wording.deadlines == [deadline, None]


def test_retry_after_header_sets_the_wait(transport, mocked, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("persona_ollama.transport.http.time.sleep", waits.append)
    mocked.get(f"{BASE}/x", status=503, json={"error": "busy"}, headers={"Retry-After": "7"})
    mocked.get(f"{BASE}/x", json={})
    transport.get_json("/x")
    assert waits == [7.0]


@pytest.mark.parametrize("value", ["Wed, 21 Oct 2015 07:28:00 GMT", "²", "-1", "1e9"])
def test_a_retry_after_that_is_not_plain_seconds_keeps_the_backoff(mocked, monkeypatch, value):
    waits: list[float] = []
    monkeypatch.setattr("persona_ollama.transport.http.time.sleep", waits.append)
    mocked.get(f"{BASE}/x", status=503, body="", headers={"Retry-After": value})
    mocked.get(f"{BASE}/x", json={})
    transport = open_transport(backoff=0.25)
    transport.get_json("/x")
    assert waits == [0.25]


def test_retry_after_is_capped(transport, mocked, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("persona_ollama.transport.http.time.sleep", waits.append)
    mocked.get(f"{BASE}/x", status=503, body="", headers={"Retry-After": "86400"})
    mocked.get(f"{BASE}/x", json={})
    transport.get_json("/x")
    assert waits == [30.0]


def test_backoff_doubles_between_retries(mocked, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("persona_ollama.transport.http.time.sleep", waits.append)
    mocked.get(f"{BASE}/x", status=503, json={"error": "busy"})
    transport = open_transport(backoff=0.5, retries=3)
    with pytest.raises(OllamaResponseError):
        transport.get_json("/x")
    assert waits == [0.5, 1.0, 2.0]


def test_connection_reset_is_retried(transport, mocked):
    mocked.get(f"{BASE}/x", body=requests.exceptions.ConnectionError("Connection aborted."))
    mocked.get(f"{BASE}/x", json={"models": []})
    assert transport.get_json("/x") == {"models": []}


def test_connection_reset_on_every_try_raises_response_error(transport, mocked):
    route = mocked.get(f"{BASE}/x", body=requests.exceptions.ConnectionError("Connection aborted."))
    with pytest.raises(OllamaResponseError, match="broke before an answer"):
        transport.get_json("/x")
    assert route.call_count == 1 + transport.retries
    assert transport.connections_in_use() == 0


# -- what nothing answering, timeouts and TLS become ----------------------------------------


def test_read_timeout_is_worded_as_the_servers_silence(transport, mocked):
    mocked.post(f"{BASE}/x", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(OllamaTimeoutError, match="Silent for 300 s"):
        transport.post_json("/x", {})
    assert transport.wording.silences == [300.0]


def test_after_a_silent_answer_the_next_request_fails_at_once(transport, mocked):
    route = mocked.get(f"{BASE}/x", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(OllamaTimeoutError):
        transport.get_json("/x")
    with pytest.raises(OllamaTimeoutError, match="not waiting for it again"):
        transport.get_json("/x")
    assert route.call_count == 1  # the second request was never sent


def test_connect_timeout_is_worded_as_not_running(transport, mocked):
    mocked.get(f"{BASE}/x", body=requests.exceptions.ConnectTimeout("timed out"))
    with pytest.raises(OllamaNotRunningError, match="timed out"):
        transport.get_json("/x")
    assert transport.wording.reasons == ["the connection timed out"]


def test_nothing_listening_is_worded_as_refused():
    transport = open_transport(f"http://127.0.0.1:{free_port()}", backoff=0)
    with pytest.raises(OllamaNotRunningError, match="connection refused"):
        transport.get_json("/x")
    assert transport.wording.reasons == ["connection refused"]
    assert transport.connections_in_use() == 0


def test_unresolvable_host_says_the_name_does_not_resolve(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    transport = open_transport("http://no-such-host.invalid:11434")
    with pytest.raises(OllamaNotRunningError, match="does not resolve"):
        transport.get_json("/x")


def test_no_route_to_host_is_unreachable_not_refused(monkeypatch):
    """urllib3 wraps every failed connect in NewConnectionError: the errno tells them apart."""
    import errno

    import urllib3.util.connection

    def no_route(*args, **kwargs):
        raise OSError(errno.EHOSTUNREACH, "No route to host")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_route)
    transport = open_transport("http://127.0.0.1:9", backoff=0)
    with pytest.raises(OllamaNotRunningError):
        transport.get_json("/x")
    assert transport.wording.reasons == ["the network or host is unreachable"]


@pytest.mark.parametrize(
    ("failure", "advice"),
    [
        pytest.param("[SSL: WRONG_VERSION_NUMBER] wrong version number", "http://", id="use-http"),
        pytest.param(
            "certificate verify failed: self-signed certificate",
            "PERSONA_OLLAMA_CA_BUNDLE",
            id="other-failures-point-at-the-ca-bundle",
        ),
    ],
)
def test_tls_failures_say_what_to_change(mocked, failure, advice):
    mocked.get("https://127.0.0.1:11434/x", body=requests.exceptions.SSLError(failure))
    transport = open_transport("https://127.0.0.1:11434")
    with pytest.raises(ConfigurationError) as caught:
        transport.get_json("/x")
    assert advice in caught.value.hint


# -- redirects, auth, proxies, TLS settings ------------------------------------------------


def test_redirect_is_not_followed(transport, mocked):
    mocked.post(f"{BASE}/x", status=307, headers={"Location": "http://elsewhere/x"})
    with pytest.raises(OllamaResponseError, match="redirected to http://elsewhere") as caught:
        transport.post_json("/x", {"messages": [{"role": "user", "content": "secret"}]})
    assert len(mocked.calls) == 1
    assert caught.value.status_code == 307
    assert transport.wording.statuses == []  # not a server error to word
    assert transport.connections_in_use() == 0


@pytest.mark.parametrize(
    ("url", "environ", "hint"),
    [
        (BASE, {}, "Pass the final address as base_url if you trust it."),
        (None, {"OLLAMA_HOST": BASE}, "Set OLLAMA_HOST to the final address if you trust it."),
        (None, {}, "Pass the final address as base_url if you trust it."),
    ],
)
def test_a_redirect_hint_says_where_to_put_the_final_address(mocked, url, environ, hint):
    endpoint = resolve_endpoint(url, environ)
    mocked.get(endpoint.url("/x"), status=301, headers={"Location": "http://elsewhere/x"})
    transport = Transport(endpoint, Words(), backoff=0)
    with pytest.raises(OllamaResponseError) as caught:
        transport.get_json("/x")
    assert caught.value.hint == hint
    transport.close()


def test_bearer_token_wins_over_basic_auth_from_the_url(mocked):
    route = mocked.get("http://127.0.0.1:11434/x", json={})
    endpoint = resolve_endpoint("http://alice:s3cret@127.0.0.1:11434", {})
    transport = Transport(endpoint, Words(), headers={"Authorization": "Bearer tok"})
    transport.get_json("/x")
    assert route.calls[0].request.headers["Authorization"] == "Bearer tok"


def test_basic_auth_from_the_url_is_sent_without_a_token(mocked):
    route = mocked.get("http://127.0.0.1:11434/x", json={})
    transport = open_transport("http://alice:s3cret@127.0.0.1:11434")
    transport.get_json("/x")
    assert route.calls[0].request.headers["Authorization"].startswith("Basic ")


def test_a_header_value_that_cannot_be_sent_is_refused_without_showing_it():
    with pytest.raises(ConfigurationError) as caught:
        open_transport(headers={"Authorization": "Bearer tok\nX-Injected: 1"})
    assert "tok" not in str(caught.value)


def test_loopback_endpoint_ignores_proxy_environment():
    assert open_transport(BASE)._session.trust_env is False
    assert open_transport("http://gpu-box:11434")._session.trust_env is True


def test_explicit_verify_wins_over_ca_bundle_variables(mocked, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    bundle = certifi.where()  # a real bundle: the path is checked at construction
    route = mocked.get("https://gpu-box:443/x", json={})
    open_transport("https://gpu-box", verify=bundle).get_json("/x")
    assert route.calls[0].request.req_kwargs["verify"] == bundle


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"timeout": 0},
        {"connect_timeout": -1},
        {"pool_timeout": 0},
        {"retries": -1},
        {"pool_size": 0},
        {"verify": "/nonexistent/bundle.pem"},
    ],
)
def test_bad_transport_settings_raise_configuration_error(kwargs):
    with pytest.raises(ConfigurationError):
        open_transport(**kwargs)


def test_a_body_json_cannot_hold_is_refused_before_sending(transport, mocked):
    with pytest.raises(ConfigurationError, match="not valid Unicode"):
        transport.post_json("/x", {"content": "\udcff"})
    with pytest.raises(ConfigurationError, match="cannot be sent as JSON"):
        transport.post_json("/x", {"temperature": float("nan")})
    assert len(mocked.calls) == 0
    assert transport.connections_in_use() == 0


# -- JSON documents -----------------------------------------------------------------------


def test_non_json_body_raises_response_error_naming_the_server(transport, mocked):
    mocked.get(f"{BASE}/x", body="<html>proxy login</html>")
    with pytest.raises(OllamaResponseError, match="not JSON") as caught:
        transport.get_json("/x")
    assert "test server" in caught.value.hint
    assert transport.connections_in_use() == 0


def test_expect_dict_and_expect_list_name_what_is_wrong(transport):
    with pytest.raises(OllamaResponseError, match=r"/x from .* is not a JSON object"):
        transport.expect_dict([1, 2], "/x")
    with pytest.raises(OllamaResponseError, match=r"/x models = True .* where a list was"):
        transport.expect_list({"models": True}, "models", "/x")
    assert transport.expect_list({"models": None}, "models", "/x") == []
    assert transport.expect_list({}, "models", "/x") == []


def test_a_json_document_over_its_budget_is_refused(transport, mocked, monkeypatch):
    monkeypatch.setattr("persona_ollama.transport.http.MAX_JSON_BODY", 1024)
    mocked.get(f"{BASE}/x", json={"models": ["m" * 100] * 100})
    with pytest.raises(OllamaResponseError):
        transport.get_json("/x")
    assert transport.connections_in_use() == 0


def test_a_long_error_body_is_read_only_up_to_its_cap(transport, mocked):
    mocked.get(f"{BASE}/x", status=500, body="e" * (4 * MAX_ERROR_BODY))
    with pytest.raises(OllamaResponseError):
        transport.get_json("/x")
    [(status, body, _)] = transport.wording.statuses
    assert status == 500
    assert body == "e" * MAX_ERROR_BODY
    assert transport.connections_in_use() == 0


# -- streams ------------------------------------------------------------------------------


def lines(response, transport, **kwargs):
    return transport.stream(
        response,
        what="answer",
        decode=iter_ndjson,
        is_final=lambda line: line.get("done") is True,
        **kwargs,
    )


def test_a_stream_yields_up_to_its_final_item_and_gives_the_connection_back(transport, mocked):
    mocked.post(f"{BASE}/x", body=ndjson({"n": 1}, {"n": 2, "done": True}, {"n": 3}))
    response = transport.send("POST", "/x", {}, stream=True)
    assert transport.connections_in_use() == 1
    assert list(lines(response, transport)) == [{"n": 1}, {"n": 2, "done": True}]
    assert transport.connections_in_use() == 0


def test_a_stream_without_its_final_item_raises_with_the_backends_hint(transport, mocked):
    mocked.post(f"{BASE}/x", body=ndjson({"n": 1}))
    response = transport.send("POST", "/x", {}, stream=True)
    with pytest.raises(OllamaResponseError, match="ended before the server said") as caught:
        list(lines(response, transport, ended_quietly="test: it ended quietly"))
    assert caught.value.hint == "test: it ended quietly"
    assert transport.connections_in_use() == 0


@pytest.mark.parametrize("how", ["close", "drop"])
def test_a_stream_closed_or_dropped_unread_gives_the_connection_back(transport, mocked, how):
    mocked.post(f"{BASE}/x", body=ndjson({"n": 1}, {"done": True}))
    stream = lines(transport.send("POST", "/x", {}, stream=True), transport)
    assert transport.connections_in_use() == 1
    if how == "close":
        stream.close()
    else:
        del stream
    assert transport.connections_in_use() == 0


def test_a_stream_over_its_byte_budget_is_cut_off(transport, mocked):
    mocked.post(f"{BASE}/x", body=ndjson(*({"piece": "x" * 100} for _ in range(100))))
    response = transport.send("POST", "/x", {}, stream=True)
    with pytest.raises(OllamaResponseError):
        list(lines(response, transport, limit=2048))
    assert transport.connections_in_use() == 0


# -- deadlines and the pool ---------------------------------------------------------------


def test_a_deadline_already_passed_sends_nothing(mocked):
    transport = open_transport(backoff=0)
    with pytest.raises(OllamaTimeoutError, match="within the deadline"):
        transport.get_json("/x", deadline=ends_at(0.0))
    assert len(mocked.calls) == 0
    assert transport.connections_in_use() == 0


def test_the_deadline_is_the_value_each_request_is_given(mocked):
    """The transport keeps no deadline: one request's deadline does not reach the next."""
    mocked.get(f"{BASE}/x", json={"ok": True})
    transport = open_transport()
    with pytest.raises(OllamaTimeoutError, match="within the deadline"):
        transport.get_json("/x", deadline=time.monotonic() - 1.0)
    assert transport.get_json("/x") == {"ok": True}
    assert len(mocked.calls) == 1


def test_retries_wait_no_longer_than_the_deadline(mocked, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("persona_ollama.transport.http.time.sleep", waits.append)
    mocked.get(f"{BASE}/x", status=503, body="", headers={"Retry-After": "20"})
    mocked.get(f"{BASE}/x", json={})
    open_transport().get_json("/x", deadline=ends_at(5.0))
    assert len(waits) == 1
    assert 0 < waits[0] <= 5.0


@pytest.mark.parametrize(
    ("seconds", "within", "expected"),
    [
        (None, None, None),  # no deadline at all
        (None, 50.0, 50.0),  # none of its own: the outer call's
        (10.0, None, 110.0),  # its own, from now
        (10.0, 105.0, 105.0),  # the outer call ends first
        (10.0, 200.0, 110.0),  # its own ends first
    ],
)
def test_a_call_ends_at_the_earlier_of_its_own_deadline_and_the_outer_one(
    monkeypatch, seconds, within, expected
):
    monkeypatch.setattr("persona_ollama.deadline.time.monotonic", lambda: 100.0)
    assert ends_at(seconds, within=within) == expected
    with call_deadline(seconds, within=within) as end:  # the block that makes the call
        assert end == expected


def test_a_full_pool_waits_pool_timeout_then_raises_without_sending(mocked):
    mocked.get(f"{BASE}/x", json={})
    transport = open_transport(pool_size=1, pool_timeout=0.2)
    held = transport.send("GET", "/x", stream=True)
    with pytest.raises(OllamaTimeoutError, match=r"All 1 connections .* stayed in use"):
        transport.get_json("/x")
    assert len(mocked.calls) == 1
    transport.release(held)
    transport.release(held)  # releasing twice gives back one slot only
    assert transport.connections_in_use() == 0
    assert transport.get_json("/x") == {}
