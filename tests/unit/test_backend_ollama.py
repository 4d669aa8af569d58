"""The native backend over a mocked HTTP layer: the /api/* requests it sends, the answers it
reads into neutral types (Chunk, PullProgress, ModelInfo), the version rule, and every
failure in Ollama's own words.

The transport's part (retries, timeouts, the pool, redirects, TLS, auth, bounded reading) is
in test_transport.py.
"""

from __future__ import annotations

import json
import logging
import re
import socket

import pytest
import requests
from responses import matchers
from shared_helpers import chat_done, chat_piece, free_port, ndjson

from persona_ollama.backends.base import ChatRequest, Chunk, PullProgress
from persona_ollama.backends.ollama import (
    OllamaBackend,
    chat_chunk,
    described_model,
    listed_model,
    modelfile_num_ctx,
    trained_context_length,
)
from persona_ollama.backends.ollama_rules import CLOUD_HOST
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
from persona_ollama.server_state import ServerState

BASE = "http://127.0.0.1:11434"
BUSY = "server busy, please try again.  maximum pending requests exceeded"


DONE = chat_done(
    prompt_eval_count=5,
    eval_count=2,
    prompt_eval_duration=500_000_000,
    eval_duration=250_000_000,
    load_duration=1_000_000_000,
)


def request(model: str = "m", **fields: object) -> ChatRequest:
    return ChatRequest(model=model, messages=(), max_tokens=fields.pop("max_tokens", 64), **fields)


def open_backend(url: str = BASE, **settings: object) -> OllamaBackend:
    return OllamaBackend(resolve_endpoint(url, {}), **settings)


@pytest.fixture
def backend():
    opened = open_backend(backoff=0)
    yield opened
    opened.close()


# -- /api/chat ----------------------------------------------------------------------------


def test_chat_yields_every_chunk_up_to_done_with_the_servers_totals(backend, mocked):
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("Hel"), chat_piece("lo"), DONE))
    chunks = list(backend.chat(request()))
    assert [c.content for c in chunks] == ["Hel", "lo", ""]
    done = chunks[-1]
    assert done.done is True
    assert (done.input_tokens, done.output_tokens) == (5, 2)
    assert done.reason == "stop"
    assert done.model == "m"
    assert (done.prompt_seconds, done.answer_seconds, done.load_seconds) == (0.5, 0.25, 1.0)
    assert done.raw["prompt_eval_count"] == 5  # the server's own fields, for raw_response
    assert "message" not in done.raw
    assert backend.connections_in_use() == 0


def test_chat_sends_a_stream_that_refuses_to_cut_the_prompt(backend, mocked):
    mocked.post(
        f"{BASE}/api/chat",
        body=ndjson(DONE),
        match=[
            matchers.json_params_matcher(
                {
                    "model": "m",
                    "messages": [{"role": "user", "content": "hi"}],
                    "options": {"temperature": 0.2, "num_ctx": 8192, "num_predict": 64},
                    "truncate": False,
                    "stream": True,
                    "keep_alive": "5m",  # top level: Ollama ignores it inside options
                    "think": False,
                    "format": "json",
                }
            )
        ],
    )
    chat = ChatRequest(
        model="m",
        messages=({"role": "user", "content": "hi"},),
        max_tokens=64,
        window=8192,
        options={"temperature": 0.2},
        format="json",
        think=False,
        keep_alive="5m",
    )
    list(backend.chat(chat))


def test_chat_without_a_window_leaves_num_ctx_to_the_server(backend, mocked):
    mocked.post(
        f"{BASE}/api/chat",
        body=ndjson(DONE),
        match=[
            matchers.json_params_matcher(
                {
                    "model": "m",
                    "messages": [],
                    "options": {"num_predict": 64},
                    "truncate": False,
                    "stream": True,
                }
            )
        ],
    )
    list(backend.chat(request()))


def test_chat_sends_at_once_and_closing_it_unread_gives_the_connection_back(backend, mocked):
    # chat() sends at once (errors such as a 404 surface at the call), and reads lazily.
    route = mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("a"), DONE))
    chunks = backend.chat(request())
    assert route.call_count == 1
    assert backend.connections_in_use() == 1
    chunks.close()
    assert backend.connections_in_use() == 0


@pytest.mark.parametrize(
    "error_text",
    ["model 'llama3' not found", 'model "llama3" not found, try pulling it first'],
    ids=["v0.12+", "v0.11"],
)
def test_chat_raises_model_not_pulled_on_404_in_old_and_new_wording(backend, mocked, error_text):
    mocked.post(f"{BASE}/api/chat", status=404, json={"error": error_text})
    with pytest.raises(ModelNotPulledError) as caught:
        list(backend.chat(request("llama3")))
    assert caught.value.status_code == 404
    assert caught.value.server_text == error_text
    assert "persona-ollama pull llama3" in str(caught.value)


def test_503_after_every_retry_raises_server_busy(backend, mocked):
    busy = mocked.post(f"{BASE}/api/chat", status=503, json={"error": BUSY})
    with pytest.raises(ServerBusyError) as caught:
        list(backend.chat(request()))
    assert busy.call_count == 1 + backend.transport.retries
    assert caught.value.server_text == BUSY


def test_error_line_mid_stream_raises_and_discards_the_partial_answer(backend, mocked):
    mocked.post(
        f"{BASE}/api/chat",
        body=ndjson(
            chat_piece("Hal"), {"error": "an error was encountered while running the model"}
        ),
    )
    seen = []
    with pytest.raises(OllamaResponseError, match="middle of the answer") as caught:
        for piece in backend.chat(request()):
            seen.append(piece)
    assert len(seen) == 1
    assert caught.value.server_text == "an error was encountered while running the model"
    assert backend.connections_in_use() == 0


def test_out_of_memory_line_mid_stream_raises_insufficient_memory(backend, mocked):
    oom = {"error": "CUDA error: out of memory"}
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("x"), oom))
    with pytest.raises(InsufficientMemoryError):
        list(backend.chat(request()))


def test_stream_that_ends_without_done_raises(backend, mocked):
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("Hel"), chat_piece("lo")))
    with pytest.raises(OllamaResponseError, match="ended before the server said it was done") as e:
        list(backend.chat(request()))
    # Ollama's repetition abort (llm/server.go "token repeat limit") ends a stream this way.
    assert "keeps repeating the same token" in (e.value.hint or "")
    assert "crash" not in (e.value.hint or "")


def test_malformed_line_in_stream_raises_with_the_bad_text(backend, mocked):
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("a")) + "<html>oops\n")
    with pytest.raises(OllamaResponseError, match="not JSON: '<html>oops'"):
        list(backend.chat(request()))


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"message": "hi", "done": False}, "message"),
        ({"message": {"content": 7}, "done": False}, "message.content"),
        ({"message": {"thinking": ["x"]}, "done": False}, "message.thinking"),
        ({"message": {}, "done": True, "eval_count": -1}, "eval_count"),
        ({"message": {}, "done": True, "prompt_eval_count": "5"}, "prompt_eval_count"),
        ({"message": {}, "done": True, "eval_duration": float("inf")}, "eval_duration"),
        ({"message": {}, "done": True, "done_reason": 3}, "done_reason"),
    ],
)
def test_a_chat_line_field_of_the_wrong_type_is_an_error_naming_it(line, field):
    with pytest.raises(OllamaResponseError, match=f"{field} = "):
        chat_chunk(line, BASE)


def test_a_forwarded_answer_names_its_remote_host_on_every_chunk():
    line = {**chat_piece("x"), "remote_host": CLOUD_HOST, "remote_model": "gpt-oss:120b"}
    piece = chat_chunk(line, BASE)
    assert (piece.content, piece.remote_host, piece.remote_model) == (
        "x",
        CLOUD_HOST,
        "gpt-oss:120b",
    )
    final = chat_chunk({**DONE, "remote_host": CLOUD_HOST}, BASE)
    assert final.done and final.remote_host == CLOUD_HOST


def test_unstated_totals_are_unknown_not_zero():
    final = chat_chunk({"message": {"content": ""}, "done": True}, BASE)
    assert final == Chunk(done=True, raw={"done": True})


def test_read_timeout_raises_timeout_error_with_cold_load_hint(backend, mocked):
    mocked.post(f"{BASE}/api/chat", body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(OllamaTimeoutError) as caught:
        list(backend.chat(request()))
    assert "PERSONA_OLLAMA_TIMEOUT" in caught.value.hint
    assert "ollama run" in caught.value.hint


# -- error texts: how each Ollama version words a failure --------------------------------------


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
def test_load_failures_raise_insufficient_memory(backend, mocked, text):
    mocked.post(f"{BASE}/api/chat", status=500, json={"error": text})
    with pytest.raises(InsufficientMemoryError) as caught:
        list(backend.chat(request("big")))
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
def test_runner_crash_is_not_called_a_memory_problem(backend, mocked, text):
    mocked.post(f"{BASE}/api/chat", status=500, json={"error": text})
    with pytest.raises(ModelRunnerError, match="stopped before answering") as caught:
        list(backend.chat(request("big")))
    assert not isinstance(caught.value, InsufficientMemoryError)
    assert "server log" in caught.value.hint
    assert caught.value.server_text == text


def test_runner_error_mid_stream_is_named_a_runner_failure(backend, mocked):
    text = "an error was encountered while running the model: GGML_ASSERT(n_tokens > 0) failed"
    mocked.post(f"{BASE}/api/chat", body=ndjson(chat_piece("Hal"), {"error": text}))
    with pytest.raises(ModelRunnerError, match="middle of the answer") as caught:
        list(backend.chat(request()))
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
    backend, mocked, error, sizes, readable
):
    mocked.post(f"{BASE}/api/chat", status=400, json={"error": error})
    with pytest.raises(ContextOverflowError) as caught:
        list(backend.chat(request()))
    assert (caught.value.prompt_tokens, caught.value.context_length) == sizes
    assert caught.value.server_text == readable
    if sizes[0] is not None:
        assert f"{sizes[0]} prompt tokens, context of {sizes[1]}" in caught.value.message


def test_prompt_refused_for_length_raises_context_overflow(backend, mocked):
    text = (
        "the prompt is longer than the context length currently available to the model; "
        "shorten the prompt, adjust the context length in settings, or use a model with a "
        "longer context length"
    )
    mocked.post(f"{BASE}/api/chat", status=400, json={"error": text})
    with pytest.raises(ContextOverflowError):
        list(backend.chat(request()))


@pytest.mark.parametrize("status", [401, 403])
def test_proxy_refusal_raises_authentication_error(backend, mocked, status):
    mocked.get(f"{BASE}/api/tags", status=status, body="")
    with pytest.raises(OllamaAuthenticationError) as caught:
        backend.models()
    assert "PERSONA_OLLAMA_API_KEY" in caught.value.hint


def test_plain_404_page_says_it_is_not_an_ollama_server(backend, mocked):
    mocked.get(f"{BASE}/api/tags", status=404, body="404 page not found", content_type="text/plain")
    with pytest.raises(OllamaResponseError, match="does not look like an Ollama server"):
        backend.models()


def test_a_v1_address_on_the_native_api_says_drop_v1_or_use_openai_mode(mocked):
    mocked.get("http://127.0.0.1:11434/v1/api/tags", status=404, body="404 page not found")
    with pytest.raises(OllamaResponseError) as caught:
        open_backend("http://127.0.0.1:11434/v1").models()
    assert "drop /v1" in caught.value.hint
    assert "api='openai'" in caught.value.hint


# -- nothing answering ----------------------------------------------------------------------


def test_connect_timeout_raises_not_running(backend, mocked):
    mocked.get(f"{BASE}/api/version", body=requests.exceptions.ConnectTimeout("timed out"))
    with pytest.raises(OllamaNotRunningError, match="timed out"):
        backend.version()


def test_nothing_listening_raises_not_running_naming_url_and_ollama_serve():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(OllamaNotRunningError) as caught:
        open_backend(url, backoff=0).version()
    message = str(caught.value)
    assert url in message
    assert "ollama serve" in message
    assert "connection refused" in message


def test_unresolvable_host_raises_not_running(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(OllamaNotRunningError, match="does not resolve") as caught:
        open_backend("http://no-such-host.invalid:11434").models()
    assert caught.value.hint.startswith("Check the address")


def test_no_route_to_host_is_unreachable_not_refused(monkeypatch):
    """urllib3 wraps every failed connect in NewConnectionError: the errno tells them apart."""
    import errno

    import urllib3.util.connection

    def no_route(*args, **kwargs):
        raise OSError(errno.EHOSTUNREACH, "No route to host")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", no_route)
    with pytest.raises(OllamaNotRunningError) as caught:
        open_backend("http://127.0.0.1:9", backoff=0).models()
    assert caught.value.message.endswith("the network or host is unreachable.")
    # Starting Ollama here would not help: the hint leads with the address.
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("Check the address")


@pytest.mark.parametrize(
    ("kwargs"), [{"timeout": 0}, {"connect_timeout": -1}, {"retries": -1}, {"pool_size": 0}]
)
def test_bad_backend_settings_raise_configuration_error(kwargs):
    with pytest.raises(ConfigurationError):
        open_backend(**kwargs)


# -- /api/tags, /api/show, /api/ps, /api/version --------------------------------------------


def test_json_that_is_not_an_object_raises(backend, mocked):
    mocked.get(f"{BASE}/api/tags", json=[1, 2])
    with pytest.raises(OllamaResponseError, match="not a JSON object"):
        backend.models()


@pytest.mark.parametrize("models", [True, "llama3", {"name": "llama3"}, 7])
def test_a_model_list_that_is_not_a_list_raises_naming_the_field(backend, mocked, models):
    # Found by the end-to-end fuzzing: {"models": true} was a TypeError.
    mocked.get(f"{BASE}/api/tags", json={"models": models})
    with pytest.raises(OllamaResponseError, match=r"/api/tags models = .* where a list was"):
        backend.models()


def test_a_loaded_model_list_that_is_not_a_list_raises_naming_the_field(backend, mocked):
    mocked.get(f"{BASE}/api/ps", json={"models": True})
    with pytest.raises(OllamaResponseError, match="/api/ps models = True"):
        backend.loaded_windows()


def test_a_missing_or_null_model_list_is_empty(backend, mocked):
    mocked.get(f"{BASE}/api/tags", json={"models": None})
    mocked.get(f"{BASE}/api/tags", json={})
    assert backend.models() == []
    assert backend.models() == []


def test_models_reads_each_listing_entry_and_skips_what_is_not_one(backend, mocked):
    entry = {
        "name": "qwen3:8b",
        "size": 5_200_000_000,
        "digest": "abc",
        "details": {"family": "qwen3", "parameter_size": "8.2B", "quantization_level": "Q4_K_M"},
    }
    mocked.get(f"{BASE}/api/tags", json={"models": [entry, "junk", 7]})
    [info] = backend.models()
    assert info.name == "qwen3:8b"
    assert (info.family, info.parameter_size, info.quantization_level) == (
        "qwen3",
        "8.2B",
        "Q4_K_M",
    )
    assert info.size_bytes == 5_200_000_000
    assert info.digest == "abc"
    assert info.parameters_b == pytest.approx(8.2)
    assert not info.placement.remote


def test_a_listing_entry_with_context_and_capabilities_is_complete():
    # v0.30+ lists details.context_length and capabilities (api/types.go ListModelResponse).
    entry = {
        "model": "qwen3:8b",
        "size": 5_200_000_000,
        "details": {"context_length": 40960},
        "capabilities": ["completion", "thinking", 3],
    }
    info = listed_model(entry)
    assert info.name == "qwen3:8b"  # "model" when "name" is absent
    assert info.context_length == 40960
    assert info.capabilities == ("completion", "thinking")
    assert info.thinks and info.can_chat
    assert info.complete is True


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "old:7b", "size": 4_000_000_000, "details": {}},  # before v0.30
        {"name": "x:7b", "details": {"context_length": 8192}},  # no capabilities
        {"name": "x:7b", "details": {"context_length": 0}, "capabilities": []},
        {"name": "x:7b", "details": {"context_length": True}, "capabilities": []},
        # a remote model: /api/show says more about where it runs
        {
            "name": "gpt-oss:120b-cloud",
            "size": 384,
            "details": {"context_length": 131072},
            "capabilities": ["completion"],
        },
    ],
)
def test_a_listing_entry_that_lacks_what_planning_needs_is_not_complete(entry):
    info = listed_model(entry)
    assert info.complete is False
    assert info.context_length is None or info.context_length > 0


def test_a_listed_cloud_stub_is_remote_and_an_unreadable_entry_has_no_facts():
    stub = listed_model({"name": "gpt-oss:120b-cloud", "size": 384})
    assert stub.placement.remote and stub.placement.host == CLOUD_HOST
    forwarded = listed_model({"name": "mine:1b", "remote_host": "https://gpu.example:443"})
    assert forwarded.placement.remote and forwarded.placement.host == "https://gpu.example:443"
    odd = listed_model({"name": "m", "size": -1, "details": "x", "capabilities": "thinking"})
    assert (odd.size_bytes, odd.family, odd.capabilities) == (None, None, ())


def test_describe_posts_the_model_and_reads_the_show_answer(backend, mocked):
    mocked.post(
        f"{BASE}/api/show",
        json={
            "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
            "parameters": "num_ctx 16384",
            "details": {"family": "llama", "parameter_size": "8.0B"},
            "capabilities": ["completion", "tools"],
        },
        match=[matchers.json_params_matcher({"model": "llama3"})],
    )
    listed = listed_model({"name": "llama3", "size": 4_900_000_000, "digest": "d1"})
    info = backend.describe("llama3", listed)
    assert info.name == "llama3"
    assert info.context_length == 131072
    assert info.modelfile_num_ctx == 16384
    assert info.family == "llama"
    assert info.capabilities == ("completion", "tools")
    assert (info.size_bytes, info.digest) == (4_900_000_000, "d1")  # /api/show has neither
    assert info.complete is True


def test_describe_of_a_model_the_server_lacks_raises_model_not_pulled(backend, mocked):
    mocked.post(f"{BASE}/api/show", status=404, json={"error": "model 'nope' not found"})
    with pytest.raises(ModelNotPulledError, match="nope"):
        backend.describe("nope")


def test_a_description_keeps_the_remote_placement_the_listing_gave():
    listed = listed_model({"name": "mine:1b", "remote_host": "https://gpu.example:443"})
    info = described_model("mine:1b", {"details": {}}, listed)
    assert info.placement.remote and info.placement.host == "https://gpu.example:443"
    shown = described_model("x:1b", {"remote_host": "https://other:443", "remote_model": "y"})
    assert (shown.placement.host, shown.placement.remote_model) == ("https://other:443", "y")
    bare = described_model("m", {"details": None, "capabilities": None})
    assert (bare.context_length, bare.capabilities, bare.size_bytes) == (None, (), None)


def test_loaded_windows_by_canonical_name(backend, mocked):
    mocked.get(
        f"{BASE}/api/ps",
        json={
            "models": [
                {"name": "m:latest", "context_length": 8192},
                {"model": "qwen3", "context_length": 40960},  # "model" when "name" is absent
                {"name": "old:7b"},  # before 0.10: no context_length
                {"name": "odd:1b", "context_length": True},
                {"name": "zero:1b", "context_length": 0},
                "junk",
            ]
        },
    )
    assert backend.loaded_windows() == {"m:latest": 8192, "qwen3:latest": 40960}


def test_version(backend, mocked):
    mocked.get(f"{BASE}/api/version", json={"version": "0.33.0"})
    mocked.get(f"{BASE}/api/version", json={})
    assert backend.version() == "0.33.0"
    assert backend.version() == "unknown"


# -- the version rule: which servers refuse an over-long prompt ------------------------------


@pytest.mark.parametrize(
    ("version", "refuses"),
    [("0.12.6", True), ("0.33.0-rc2", True), ("v0.13.0", True), ("0.12.5", False)],
)
def test_refuses_overflow_from_0_12_6(backend, mocked, caplog, version, refuses):
    route = mocked.get(f"{BASE}/api/version", json={"version": version})
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        assert backend.refuses_overflow() is refuses
        assert backend.refuses_overflow() is refuses
    assert route.call_count == 1  # asked once per server and process
    cuts = [r for r in caplog.records if "silently cuts a prompt" in r.getMessage()]
    assert len(cuts) == (0 if refuses else 1)
    if not refuses:
        assert "Update Ollama to 0.12.6" in cuts[0].getMessage()


@pytest.mark.parametrize("answer", [{"version": "dev"}, {}, {"version": "0.x"}])
def test_an_unreadable_version_is_unknown(backend, mocked, answer):
    mocked.get(f"{BASE}/api/version", json=answer)
    assert backend.refuses_overflow() is None


def test_backends_given_one_server_state_ask_its_version_once_and_warn_once(mocked, caplog):
    route = mocked.get(f"{BASE}/api/version", json={"version": "0.12.5"})
    state = ServerState(BASE)
    first, second = open_backend(state=state), open_backend(state=state)
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        assert first.refuses_overflow() is False
        assert second.refuses_overflow() is False
    assert route.call_count == 1
    assert state.release == (0, 12, 5)
    assert len([r for r in caplog.records if "silently cuts a prompt" in r.getMessage()]) == 1


def test_a_backend_built_on_its_own_has_a_state_of_its_own(mocked):
    route = mocked.get(f"{BASE}/api/version", json={"version": "0.13.0"})
    assert open_backend().refuses_overflow() is True
    assert open_backend().refuses_overflow() is True
    assert route.call_count == 2


def test_a_version_that_cannot_be_asked_is_unknown_and_not_retried():
    backend = open_backend(f"http://127.0.0.1:{free_port()}", backoff=0)
    assert backend.refuses_overflow() is None
    assert backend.refuses_overflow() is None


# -- /api/pull ------------------------------------------------------------------------------


def test_pull_streams_progress_until_success(backend, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling manifest"},
            {"status": "pulling abc", "digest": "sha256:abc", "total": 10, "completed": 5},
            {"status": "success"},
        ),
        match=[matchers.json_params_matcher({"model": "llama3.2:3b", "stream": True})],
    )
    assert list(backend.pull("llama3.2:3b")) == [
        PullProgress("pulling manifest"),
        PullProgress("pulling abc", total=10, completed=5),
        PullProgress("success", done=True),
    ]
    assert backend.connections_in_use() == 0


def test_pull_progress_of_the_wrong_type_is_unknown(backend, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling abc", "total": "10", "completed": -5}, {"status": "success"}
        ),
    )
    first = next(iter(backend.pull("m")))
    assert (first.total, first.completed) == (None, None)


def test_pull_that_ends_before_success_is_not_done(backend, mocked):
    mocked.post(f"{BASE}/api/pull", body=ndjson({"status": "pulling manifest"}))
    with pytest.raises(OllamaResponseError, match=r"download .* ended before"):
        list(backend.pull("m"))


def test_pull_of_a_name_the_registry_lacks_says_so_with_the_servers_reason(backend, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}
        ),
    )
    with pytest.raises(OllamaResponseError) as caught:
        list(backend.pull("llama9:1b"))
    assert caught.value.server_text == "pull model manifest: file does not exist"
    assert caught.value.message == (
        "Pulling 'llama9:1b' failed: pull model manifest: file does not exist"
    )
    assert "no model named 'llama9:1b'" in caught.value.hint


def test_pull_failing_midway_says_retry(backend, mocked):
    mocked.post(
        f"{BASE}/api/pull",
        body=ndjson(
            {"status": "pulling abc", "total": 10, "completed": 3}, {"error": "unexpected EOF"}
        ),
    )
    with pytest.raises(OllamaResponseError, match="Pulling 'm' failed") as caught:
        list(backend.pull("m"))
    assert "resumes" in caught.value.hint


@pytest.mark.parametrize(
    ("asked", "installed", "named", "pull"),
    [
        # A misspelling of an installed model: that model, and no pull of the misspelt name.
        ("llama3.2:3", ["llama3.2:3b", "qwen3:8b"], "Did you mean llama3.2:3b?", None),
        # A catalogue model close to an installed one: either may be meant.
        ("qwen2.5:14b", ["qwen2.5:7b"], "Did you mean qwen2.5:7b?", "qwen2.5:14b"),
        # Nothing close installed, a misspelling of catalogue names: those, and pull the first.
        ("lama3.2", ["phi4:14b"], "Did you mean llama3.2:3b, llama3.2:1b", "llama3.2:3b"),
        # Nothing close anywhere: the name may be a library model the catalogue lacks.
        ("zephyr-x:2b", ["phi4:14b"], "Run `persona-ollama pull zephyr-x:2b`", "zephyr-x:2b"),
    ],
    ids=["installed", "catalogue-and-installed", "catalogue", "unknown"],
)
def test_not_found_names_the_closest_models_and_pulls_only_a_name_that_can_be_meant(
    backend, asked, installed, named, pull
):
    error = backend.not_found(asked, installed)

    assert isinstance(error, ModelNotPulledError)
    assert named in error.hint
    pulls = re.findall(r"persona-ollama pull (\S+?)`", error.hint)
    assert pulls == ([pull] if pull else [])


# -- the /api/show parsers (were in context.py) ----------------------------------------------


def test_trained_context_length_comes_from_the_architecture_key():
    show = {
        "model_info": {
            "general.architecture": "qwen2",
            "qwen2.context_length": 32768,
            "llama.context_length": 1,
        }
    }
    assert trained_context_length(show) == 32768
    assert trained_context_length({"model_info": {"x.context_length": 4096}}) == 4096
    assert trained_context_length({"model_info": {}}) is None
    assert trained_context_length({}) is None


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ("num_ctx 1.048576e+06", 1048576),  # Go's %#v of a float64 >= 1e6
        ("num_ctx 2e+06", 2000000),
        ("num_ctx 262144", 262144),
        ("num_ctx 8192.0", 8192),
        ('stop "<|eot|>"\nnum_ctx                        1.31072e+06', 1310720),
        ("num_ctx 1.5", None),
        ("num_ctx NaN", None),
        ("num_ctx +Inf", None),
    ],
)
def test_modelfile_num_ctx_reads_go_number_formats(parameters, expected):
    assert modelfile_num_ctx({"parameters": parameters}) == expected


def test_modelfile_num_ctx_is_read_from_the_parameters_text():
    show = {"parameters": "\n".join([f"{'stop':<30} " + '"<|eot_id|>"', f"{'num_ctx':<30} 16384"])}
    assert modelfile_num_ctx(show) == 16384
    assert modelfile_num_ctx({"parameters": "num_ctx big"}) is None
    assert modelfile_num_ctx({}) is None


@pytest.mark.parametrize("host", [None, "", False, 0, [], {}])
def test_an_empty_remote_host_is_not_a_forwarded_answer(host):
    # As before the split (the provider read `if host:`): only a stated host means the
    # answer was forwarded; local-only mode refuses a forwarded answer.
    for line in ({**chat_piece("x"), "remote_host": host}, {**DONE, "remote_host": host}):
        assert chat_chunk(line, BASE).remote_host is None


@pytest.mark.parametrize(("ns", "seconds"), [(300_000_000, 0.3), (700_000_000, 0.7), (1, 1e-9)])
def test_durations_in_seconds_are_the_servers_nanoseconds_divided_exactly(ns, seconds):
    # raw_response shows these: 0.3, as before the split, not 0.30000000000000004.
    line = {**DONE, "load_duration": ns, "prompt_eval_duration": ns, "eval_duration": ns}
    final = chat_chunk(line, BASE)
    assert final.load_seconds == final.prompt_seconds == final.answer_seconds == seconds


def test_not_found_names_the_nearest_of_many_installed_tags_first(backend):
    """Every tag of one model has the same base name; they were listed in the server's order,
    so with five qwen2.5 tags installed, `qwen2.5:7` never named qwen2.5:7b at all."""
    installed = ["qwen2.5:0.5b", "qwen2.5:1.5b", "qwen2.5:3b", "qwen2.5:14b", "qwen2.5:7b"]

    hint = backend.not_found("qwen2.5:7", installed).hint

    assert "installed models? qwen2.5:7b, " in hint, hint
    assert "persona-ollama pull qwen2.5:7`" not in hint


@pytest.mark.parametrize(
    "asked",
    # Library models the catalogue lacks, each like a catalogue name but more than one edit
    # away: https://ollama.com/library/qwen3 (0.6b), /qwen2.5 (0.5b), /qwen2.5-coder,
    # /llama3.2-vision, /deepseek-r1 (1.5b), /mistral-small3.2, /gemma2.
    [
        "qwen3:0.6b",
        "qwen2.5:0.5b",
        "qwen2.5-coder:7b",
        "llama3.2-vision:11b",
        "deepseek-r1:1.5b",
        "mistral-small3.2:24b",
        "gemma2:9b",
    ],
)
@pytest.mark.parametrize("installed", [["phi4:14b"], ["qwen2.5:7b", "llama3.2:3b"]])
def test_a_library_model_the_catalogue_lacks_can_still_be_pulled(backend, asked, installed):
    """The rule against pulling a misspelt name also took the pull command from real library
    names that merely resemble a catalogue name: `qwen3:0.6b` was offered qwen3:30b, 4b and 8b,
    and no way to get the model asked for."""
    hint = backend.not_found(asked, installed).hint

    assert f"`persona-ollama pull {asked}`" in hint, hint


@pytest.mark.parametrize(
    ("asked", "meant"),
    [("qwen2.5:7bb", "qwen2.5:7b"), ("gema3:4b", "gemma3:4b"), ("qwen3:8", "qwen3:8b")],
)
@pytest.mark.parametrize("installed", [["phi4:14b"], ["qwen2.5:7b", "gemma3:4b", "qwen3:8b"]])
def test_a_name_one_edit_from_a_known_one_is_a_misspelling(backend, asked, meant, installed):
    hint = backend.not_found(asked, installed).hint

    assert meant in hint
    assert f"pull {asked}`" not in hint, hint
