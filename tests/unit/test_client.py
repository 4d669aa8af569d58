"""OllamaClient over a mocked HTTP layer: requests sent, retries, and every failure mapped."""

from __future__ import annotations

import json
import socket

import certifi
import pytest
import requests
import responses
from responses import matchers

from persona_ollama.transport.http import OllamaClient
from persona_ollama.endpoint import resolve_endpoint
from persona_ollama.errors import (
    ConfigurationError,
    ContextOverflowError,
    InsufficientMemoryError,
    ModelNotPulledError,
    ModelRunnerError,
    OllamaAuthenticationError,
    OllamaNotRunningError,
    OllamaResponseError,
    OllamaTimeoutError,
    ServerBusyError,
)

BASE = "http://127.0.0.1:11434"
BUSY = "server busy, please try again.  maximum pending requests exceeded"


def ndjson(*objects: object) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


def chunk(text: str) -> dict[str, object]:
    return {"model": "m", "message": {"role": "assistant", "content": text}, "done": False}


DONE = {
    "model": "m",
    "message": {"role": "assistant", "content": ""},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 5,
    "eval_count": 2,
}


@pytest.fixture
def client() -> OllamaClient:
    with OllamaClient(resolve_endpoint(BASE, {}), backoff=0) as c:
        yield c


@pytest.fixture
def mocked() -> responses.RequestsMock:
    with responses.RequestsMock() as rsps:
        yield rsps


def test_chat_yields_every_chunk_up_to_done(client, mocked):
    mocked.post(f"{BASE}/api/chat", body=ndjson(chunk("Hel"), chunk("lo"), DONE))
    chunks = list(client.chat({"model": "m", "messages": []}))
    assert [c["message"]["content"] for c in chunks] == ["Hel", "lo", ""]
    assert chunks[-1]["done"] is True


def test_chat_always_asks_for_a_stream(client, mocked):
    mocked.post(
        f"{BASE}/api/chat",
        body=ndjson(DONE),
        match=[matchers.json_params_matcher({"model": "m", "messages": [], "stream": True})],
    )
    list(client.chat({"model": "m", "messages": [], "stream": False}))


@pytest.mark.parametrize(
    "error_text",
    ["model 'llama3' not found", 'model "llama3" not found, try pulling it first'],
    ids=["v0.12+", "v0.11"],
)
def test_chat_raises_model_not_pulled_on_404_in_old_and_new_wording(client, mocked, error_text):
    mocked.post(f"{BASE}/api/chat", status=404, json={"error": error_text})
    with pytest.raises(ModelNotPulledError) as caught:
        list(client.chat({"model": "llama3", "messages": []}))
    assert caught.value.status_code == 404
    assert caught.value.server_text == error_text
    assert "persona-ollama pull llama3" in str(caught.value)


def test_503_is_retried_with_backoff_until_it_succeeds(client, mocked):
    busy = mocked.post(f"{BASE}/api/chat", status=503, json={"error": BUSY})
    mocked.post(f"{BASE}/api/chat", body=ndjson(DONE))
    chunks = list(client.chat({"model": "m", "messages": []}))
    assert chunks[-1]["done"] is True
    assert busy.call_count == 1


def test_503_after_every_retry_raises_server_busy(client, mocked):
    busy = mocked.post(f"{BASE}/api/chat", status=503, json={"error": BUSY})
    with pytest.raises(ServerBusyError) as caught:
        list(client.chat({"model": "m", "messages": []}))
    assert busy.call_count == 1 + client.retries
    assert caught.value.server_text == BUSY


@pytest.mark.parametrize("status", [400, 404, 500])
def test_client_errors_and_server_errors_are_not_retried(client, mocked, status):
    route = mocked.post(f"{BASE}/api/chat", status=status, json={"error": "invalid model name"})
    with pytest.raises(OllamaResponseError):
        list(client.chat({"model": "a b", "messages": []}))
    assert route.call_count == 1


def test_retry_after_header_sets_the_wait(client, mocked, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("persona_ollama.transport.http.time.sleep", waits.append)
    mocked.post(f"{BASE}/api/chat", status=503, json={"error": BUSY}, headers={"Retry-After": "7"})
    mocked.post(f"{BASE}/api/chat", body=ndjson(DONE))
    list(client.chat({"model": "m", "messages": []}))
    assert waits == [7.0]


def test_backoff_doubles_between_retries(mocked, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr("persona_ollama.transport.http.time.sleep", waits.append)
    mocked.get(f"{BASE}/api/tags", status=503, json={"error": BUSY})
    with (
        OllamaClient(resolve_endpoint(BASE, {}), backoff=0.5, retries=3) as client,
        pytest.raises(ServerBusyError),
    ):
        client.tags()
    assert waits == [0.5, 1.0, 2.0]


def test_connection_reset_is_retried(client, mocked):
    mocked.get(f"{BASE}/api/tags", body=requests.exceptions.ConnectionError("Connection aborted."))
    mocked.get(f"{BASE}/api/tags", json={"models": []})
    assert client.tags() == []


def test_connection_reset_on_every_try_raises_response_error(client, mocked):
    mocked.get(f"{BASE}/api/tags", body=requests.exceptions.ConnectionError("Connection aborted."))
    with pytest.raises(OllamaResponseError, match="broke before an answer"):
        client.tags()


def test_error_line_mid_stream_raises_and_discards_the_partial_answer(client, mocked):
    mocked.post(
        f"{BASE}/api/chat",
        body=ndjson(chunk("Hal"), {"error": "an error was encountered while running the model"}),
    )
    seen = []
    with pytest.raises(OllamaResponseError, match="middle of the answer") as caught:
        for piece in client.chat({"model": "m", "messages": []}):
            seen.append(piece)
    assert len(seen) == 1
    assert caught.value.server_text == "an error was encountered while running the model"


def test_out_of_memory_line_mid_stream_raises_insufficient_memory(client, mocked):
    mocked.post(f"{BASE}/api/chat", body=ndjson(chunk("x"), {"error": "CUDA error: out of memory"}))
    with pytest.raises(InsufficientMemoryError):
        list(client.chat({"model": "m", "messages": []}))


def test_stream_that_ends_without_done_raises(client, mocked):
    mocked.post(f"{BASE}/api/chat", body=ndjson(chunk("Hel"), chunk("lo")))
    with pytest.raises(OllamaResponseError, match="ended before the server said it was done") as e:
        list(client.chat({"model": "m", "messages": []}))
    # Ollama's repetition abort (llm/server.go "token repeat limit") ends a stream this way.
    assert "keeps repeating the same token" in (e.value.hint or "")
    assert "crash" not in (e.value.hint or "")


def test_malformed_line_in_stream_raises_with_the_bad_text(client, mocked):
    mocked.post(f"{BASE}/api/chat", body=ndjson(chunk("a")) + "<html>oops\n")
    with pytest.raises(OllamaResponseError, match="not JSON: '<html>oops'"):
        list(client.chat({"model": "m", "messages": []}))


def test_non_json_body_raises_response_error(client, mocked):
    mocked.get(f"{BASE}/api/tags", body="<html>proxy login</html>")
    with pytest.raises(OllamaResponseError, match="not JSON"):
        client.tags()


def test_json_that_is_not_an_object_raises(client, mocked):
    mocked.get(f"{BASE}/api/tags", json=[1, 2])
    with pytest.raises(OllamaResponseError, match="not a JSON object"):
        client.tags()


@pytest.mark.parametrize("models", [True, "llama3", {"name": "llama3"}, 7])
def test_a_model_list_that_is_not_a_list_raises_naming_the_field(client, mocked, models):
    # Found by the end-to-end fuzzing: {"models": true} was a TypeError.
    mocked.get(f"{BASE}/api/tags", json={"models": models})
    with pytest.raises(OllamaResponseError, match=r"/api/tags models = .* where a list was"):
        client.tags()


def test_a_loaded_model_list_that_is_not_a_list_raises_naming_the_field(client, mocked):
    mocked.get(f"{BASE}/api/ps", json={"models": True})
    with pytest.raises(OllamaResponseError, match="/api/ps models = True"):
        client.ps()


def test_a_missing_or_null_model_list_is_empty(client, mocked):
    mocked.get(f"{BASE}/api/tags", json={"models": None})
    mocked.get(f"{BASE}/api/tags", json={})
    assert client.tags() == []
    assert client.tags() == []


RUNNER_STOPPED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)


@pytest.mark.parametrize(
    "text",
    [
        # llm/llama_server.go (v0.30+) startup
        "llama-server reported out-of-memory during startup: cudaMalloc failed",
        # llm/server.go (v0.11-v0.24) scheduler
        "model requires more system memory (48.0 GiB) than is available (15.2 GiB)",
        # v0.30+ appends the runner's last error line to the crash text
        RUNNER_STOPPED + ": ggml_backend_cuda_buffer_type_alloc_buffer: out of memory",
    ],
)
def test_load_failures_raise_insufficient_memory(client, mocked, text):
    mocked.post(f"{BASE}/api/chat", status=500, json={"error": text})
    with pytest.raises(InsufficientMemoryError) as caught:
        list(client.chat({"model": "big", "messages": []}))
    assert "smaller model" in caught.value.hint
    assert caught.value.status_code == 500


@pytest.mark.parametrize(
    "text",
    [
        RUNNER_STOPPED,
        RUNNER_STOPPED + ": signal: segmentation fault",
        # died while loading: llm/server.go WaitUntilRunning (v0.11-v0.24) and its status
        # poll, llm/llama_server.go (v0.30+); routes.go handleScheduleError answers 500
        "llama runner process has terminated: exit status 2",
        "llama runner process no longer running: 2 error loading model",
        "llama-server process has terminated: exit status 1: error loading model",
    ],
)
def test_runner_crash_is_not_called_a_memory_problem(client, mocked, text):
    mocked.post(f"{BASE}/api/chat", status=500, json={"error": text})
    with pytest.raises(ModelRunnerError, match="stopped before answering") as caught:
        list(client.chat({"model": "big", "messages": []}))
    assert not isinstance(caught.value, InsufficientMemoryError)
    assert "server log" in caught.value.hint
    assert caught.value.server_text == text


def test_runner_error_mid_stream_is_named_a_runner_failure(client, mocked):
    text = "an error was encountered while running the model: GGML_ASSERT(n_tokens > 0) failed"
    mocked.post(f"{BASE}/api/chat", body=ndjson(chunk("Hal"), {"error": text}))
    with pytest.raises(ModelRunnerError, match="middle of the answer") as caught:
        list(client.chat({"model": "m", "messages": []}))
    assert caught.value.status_code == 200
    assert caught.value.server_text == text


# Overflow with truncate=false, as each version words it (docs/reference/ollama-protocol.md).
LLAMA_SERVER_BODY = json.dumps(
    {
        "error": {
            "code": 400,
            "message": "request (5000 tokens) exceeds the available context size "
            "(4096 tokens), try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 5000,
            "n_ctx": 4096,
        }
    }
)


@pytest.mark.parametrize(
    ("error", "sizes", "readable"),
    [
        # v0.12.6 - v0.24: runner/*/runner.go errorInputTooLong
        (
            "the input length exceeds the context length",
            (None, None),
            "the input length exceeds the context length",
        ),
        # v0.30+: llama-server's JSON body inside Ollama's error string
        (
            LLAMA_SERVER_BODY,
            (5000, 4096),
            "request (5000 tokens) exceeds the available context size (4096 tokens), "
            "try increasing it",
        ),
        # older llama.cpp builds: no numbers in the message, only in the fields
        (
            json.dumps(
                {
                    "error": {
                        "code": 400,
                        "message": "the request exceeds the available context size, try "
                        "increasing it",
                        "type": "exceed_context_size_error",
                        "n_prompt_tokens": 19293,
                        "n_ctx": 4608,
                    }
                }
            ),
            (19293, 4608),
            "the request exceeds the available context size, try increasing it",
        ),
    ],
)
def test_overflow_refusal_of_each_version_is_read_with_its_sizes(
    client, mocked, error, sizes, readable
):
    mocked.post(f"{BASE}/api/chat", status=400, json={"error": error})
    with pytest.raises(ContextOverflowError) as caught:
        list(client.chat({"model": "m", "messages": []}))
    assert (caught.value.prompt_tokens, caught.value.context_length) == sizes
    assert caught.value.server_text == readable
    if sizes[0] is not None:
        assert f"{sizes[0]} prompt tokens, context of {sizes[1]}" in caught.value.message


def test_prompt_refused_for_length_raises_context_overflow(client, mocked):
    text = (
        "the prompt is longer than the context length currently available to the model; "
        "shorten the prompt, adjust the context length in settings, or use a model with a "
        "longer context length"
    )
    mocked.post(f"{BASE}/api/chat", status=400, json={"error": text})
    with pytest.raises(ContextOverflowError):
        list(client.chat({"model": "m", "messages": []}))


@pytest.mark.parametrize("status", [401, 403])
def test_proxy_refusal_raises_authentication_error(client, mocked, status):
    mocked.get(f"{BASE}/api/tags", status=status, body="")
    with pytest.raises(OllamaAuthenticationError) as caught:
        client.tags()
    assert "PERSONA_OLLAMA_API_KEY" in caught.value.hint


def test_plain_404_page_says_it_is_not_an_ollama_server(client, mocked):
    mocked.get(f"{BASE}/api/tags", status=404, body="404 page not found", content_type="text/plain")
    with pytest.raises(OllamaResponseError, match="does not look like an Ollama server"):
        client.tags()


def test_redirect_is_not_followed(client, mocked):
    mocked.post(f"{BASE}/api/chat", status=307, headers={"Location": "http://elsewhere/api/chat"})
    with pytest.raises(OllamaResponseError, match="redirected to http://elsewhere"):
        list(client.chat({"model": "m", "messages": [{"role": "user", "content": "secret"}]}))
    assert len(mocked.calls) == 1


def test_read_timeout_raises_timeout_error_with_cold_load_hint(client, mocked):
    mocked.post(f"{BASE}/api/chat", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(OllamaTimeoutError) as caught:
        list(client.chat({"model": "m", "messages": []}))
    assert "PERSONA_OLLAMA_TIMEOUT" in caught.value.hint


def test_connect_timeout_raises_not_running(client, mocked):
    mocked.get(f"{BASE}/api/version", body=requests.exceptions.ConnectTimeout("timed out"))
    with pytest.raises(OllamaNotRunningError, match="timed out"):
        client.version()


def test_tls_wrong_version_says_use_http(mocked):
    mocked.get(
        "https://127.0.0.1:11434/api/tags",
        body=requests.exceptions.SSLError("[SSL: WRONG_VERSION_NUMBER] wrong version number"),
    )
    with (
        OllamaClient(resolve_endpoint("https://127.0.0.1:11434", {})) as client,
        pytest.raises(ConfigurationError) as caught,
    ):
        client.tags()
    assert "http://" in caught.value.hint


def test_pull_streams_progress_until_success(client, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling manifest"},
            {"status": "pulling abc", "digest": "sha256:abc", "total": 10, "completed": 5},
            {"status": "success"},
        ),
        match=[matchers.json_params_matcher({"model": "llama3.2:3b", "stream": True})],
    )
    statuses = [line["status"] for line in client.pull("llama3.2:3b")]
    assert statuses == ["pulling manifest", "pulling abc", "success"]


def test_pull_of_unknown_model_raises_with_servers_reason(client, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}
        ),
    )
    with pytest.raises(OllamaResponseError) as caught:
        list(client.pull("nope"))
    assert caught.value.server_text == "pull model manifest: file does not exist"


def test_show_posts_the_model_and_returns_the_facts(client, mocked):
    mocked.post(
        f"{BASE}/api/show",
        json={"model_info": {"general.architecture": "llama"}},
        match=[matchers.json_params_matcher({"model": "llama3"})],
    )
    assert client.show("llama3")["model_info"]["general.architecture"] == "llama"


def test_ps_and_version(client, mocked):
    mocked.get(f"{BASE}/api/ps", json={"models": [{"name": "m:latest", "context_length": 8192}]})
    mocked.get(f"{BASE}/api/version", json={"version": "0.33.0"})
    assert client.ps()[0]["context_length"] == 8192
    assert client.version() == "0.33.0"


def test_bearer_token_wins_over_basic_auth_from_the_url(mocked):
    route = mocked.get("http://127.0.0.1:11434/api/tags", json={"models": []})
    endpoint = resolve_endpoint("http://alice:s3cret@127.0.0.1:11434", {})
    with OllamaClient(endpoint, headers={"Authorization": "Bearer tok"}) as client:
        client.tags()
    assert route.calls[0].request.headers["Authorization"] == "Bearer tok"


def test_loopback_endpoint_ignores_proxy_environment():
    with OllamaClient(resolve_endpoint(BASE, {})) as client:
        assert client._session.trust_env is False
    with OllamaClient(resolve_endpoint("http://gpu-box:11434", {})) as client:
        assert client._session.trust_env is True


@pytest.mark.parametrize(
    ("kwargs"), [{"timeout": 0}, {"connect_timeout": -1}, {"retries": -1}, {"pool_size": 0}]
)
def test_bad_client_settings_raise_configuration_error(kwargs):
    with pytest.raises(ConfigurationError):
        OllamaClient(resolve_endpoint(BASE, {}), **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_listening_raises_not_running_naming_url_and_ollama_serve():
    url = f"http://127.0.0.1:{free_port()}"
    with (
        OllamaClient(resolve_endpoint(url, {}), backoff=0) as client,
        pytest.raises(OllamaNotRunningError) as caught,
    ):
        client.version()
    message = str(caught.value)
    assert url in message
    assert "ollama serve" in message
    assert "connection refused" in message


def test_unresolvable_host_raises_not_running(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with (
        OllamaClient(resolve_endpoint("http://no-such-host.invalid:11434", {})) as client,
        pytest.raises(OllamaNotRunningError, match="does not resolve"),
    ):
        client.tags()


def test_pull_of_a_name_the_registry_lacks_says_so(client, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}
        ),
    )
    with pytest.raises(OllamaResponseError) as caught:
        list(client.pull("llama9:1b"))
    assert caught.value.message == (
        "Pulling 'llama9:1b' failed: pull model manifest: file does not exist"
    )
    assert "no model named 'llama9:1b'" in caught.value.hint


def test_pull_failing_midway_says_retry(client, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling abc", "total": 10, "completed": 3}, {"error": "unexpected EOF"}
        ),
    )
    with pytest.raises(OllamaResponseError, match="Pulling 'm' failed") as caught:
        list(client.pull("m"))
    assert "resumes" in caught.value.hint


def test_explicit_verify_wins_over_ca_bundle_variables(mocked, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    bundle = certifi.where()  # a real bundle: the path is checked at construction
    route = mocked.get("https://gpu-box:443/api/tags", json={"models": []})
    with OllamaClient(resolve_endpoint("https://gpu-box", {}), verify=bundle) as c:
        c.tags()
    assert route.calls[0].request.req_kwargs["verify"] == bundle


def test_a_v1_address_on_the_native_api_says_drop_v1_or_use_openai_mode(mocked):
    mocked.get("http://127.0.0.1:11434/v1/api/tags", status=404, body="404 page not found")
    with (
        OllamaClient(resolve_endpoint("http://127.0.0.1:11434/v1", {})) as client,
        pytest.raises(OllamaResponseError) as caught,
    ):
        client.tags()
    assert "drop /v1" in caught.value.hint
    assert "api='openai'" in caught.value.hint


def test_no_route_to_host_is_unreachable_not_refused(monkeypatch):
    """urllib3 wraps every failed connect in NewConnectionError: the errno tells them apart."""
    import errno

    import urllib3.util.connection

    def no_route(*args, **kwargs):
        raise OSError(errno.EHOSTUNREACH, "No route to host")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_route)
    with (
        OllamaClient(resolve_endpoint("http://127.0.0.1:9", {}), backoff=0) as client,
        pytest.raises(OllamaNotRunningError) as caught,
    ):
        client.tags()
    assert caught.value.message.endswith("the network or host is unreachable.")
    # Starting Ollama here would not help: the hint leads with the address.
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("Check the address")
