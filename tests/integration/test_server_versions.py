"""The provider against the double emulating each Ollama release where the wire changed.

Every test runs on every profile (``server_version``, tests/integration/conftest.py) and states
what the client does on each side of the change; the rules and their sources are in
persona_ollama/testing/wire.py and docs/reference/ollama-protocol.md.
"""

from __future__ import annotations

import logging

import pytest
import requests

import persona_ollama.request as request_module
from persona_ollama import OllamaProvider
from persona_ollama.errors import (
    ContextOverflowError,
    InsufficientMemoryError,
    ModelNotPulledError,
    ModelRunnerError,
    OllamaResponseError,
)
from persona_ollama.testing import (
    RUNNER_FAILED,
    FakeModel,
    FakeOllama,
    Profile,
    count_prompt_tokens,
)
from persona_ollama.testing.wire import (
    LLAMA_SERVER,
    PROMPT_EVAL_SKIPS_CACHE,
    REFUSES_OVERFLOW,
    STREAM_ERROR_STATUS,
    TAGS_CONTEXT_LENGTH,
)

MODELS = [
    FakeModel("llama3.2:3b", context_length=131072),
    FakeModel("llama3:8b", context_length=8192),
    FakeModel("qwen2.5:7b", family="qwen2", context_length=32768),
    FakeModel("big-ctx:1b", context_length=2_000_000, parameters={"num_ctx": 1_048_576}),
]


@pytest.fixture
def fake(server_version):
    with FakeOllama(MODELS, version=server_version) as server:
        yield server


@pytest.fixture
def profile(server_version) -> Profile:
    return Profile(server_version)


@pytest.fixture
def provider(fake):
    p = OllamaProvider(base_url=fake.url, model="llama3.2:3b", environ={})
    p.backend.transport.backoff = 0
    yield p
    p.close()


def test_tags_context_length_saves_the_show_round_trip(provider, fake, profile):
    provider.installed_models()  # what default-model selection or `models` fetched already
    assert provider.generate("hi", max_tokens=20).content
    # v0.30+ lists details.context_length and capabilities: /api/show is not needed.
    assert fake.request_count("/api/show") == (0 if profile.has(TAGS_CONTEXT_LENGTH) else 1)
    assert provider.model_info("llama3.2:3b").context_length == 131072


def test_a_server_that_cuts_prompts_is_named_once(provider, fake, profile, caplog):
    with caplog.at_level(logging.WARNING, "persona_ollama"):
        provider.generate("hi", max_tokens=20)
        provider.generate("hi again", max_tokens=20)
    found = [r for r in caplog.records if "before 0.12.6" in r.getMessage()]
    assert len(found) == (0 if profile.has(REFUSES_OVERFLOW) else 1)
    assert fake.request_count("/api/version") == 1


def test_modelfile_num_ctx_of_a_million_is_read_from_go_float_text(provider, fake):
    # /api/show prints Modelfile numbers with Go's %#v: "num_ctx 1.048576e+06".
    shown = requests.post(f"{fake.url}/api/show", json={"model": "big-ctx:1b"}, timeout=5).json()
    assert "1.048576e+06" in shown["parameters"]
    provider.generate("hi", model="big-ctx:1b", max_tokens=20)
    assert fake.last_request("/api/chat").json["options"]["num_ctx"] == 1_048_576


def test_a_prompt_the_estimate_undercounts_is_refused_or_flagged_on_every_release(
    provider, fake, profile, monkeypatch, caplog
):
    # Our estimate is deliberately pessimistic; a tokenizer that still needs more tokens (code,
    # emoji, rare scripts) is simulated by halving the estimate.
    real_estimate = request_module.estimate_messages
    monkeypatch.setattr(request_module, "estimate_messages", lambda m: real_estimate(m) // 3)
    prompt = "x" * 4 * 6000  # 6,000 of the double's tokens; the plan picks num_ctx=4096
    sent = [{"role": "user", "content": prompt}]

    if not profile.has(REFUSES_OVERFLOW):
        # Before 0.12.6: truncate=false is ignored, the runner keeps num_ctx tokens, 200.
        with caplog.at_level(logging.WARNING, "persona_ollama"):
            response = provider.generate(prompt, max_tokens=100)
        assert response.input_tokens == 4096
        assert any("older than 0.12.6" in w for w in response.raw_response["warnings"])
        return
    with pytest.raises(ContextOverflowError) as caught:
        provider.generate(prompt, max_tokens=100)
    error = caught.value
    assert error.status_code == 400
    assert error.context_length == 4096
    if profile.has(LLAMA_SERVER):
        # llama-server's error carries the server's own count; server_text is its message.
        assert error.prompt_tokens == count_prompt_tokens(sent)
        assert error.server_text.startswith("request (")
        assert f"({error.prompt_tokens} prompt tokens, context of 4096)" in error.message
    else:
        # 0.12.6-0.24 say no numbers: our estimate and the num_ctx we sent fill them in.
        assert error.server_text == "the input length exceeds the context length"
        assert error.prompt_tokens is not None and error.prompt_tokens < 4096
        assert "by our estimate, num_ctx=4096" in error.message


def test_overflow_hint_names_longer_context_models_on_every_release(provider, fake):
    with pytest.raises(ContextOverflowError) as caught:
        provider.generate("participant,quote\n" * 4000, model="llama3:8b", max_tokens=100)
    # Before v0.30 the lengths come from /api/show, after from /api/tags.
    assert "big-ctx:1b" in (caught.value.hint or "")
    assert fake.request_count("/api/chat") == 0


def test_runner_that_died_before_answering_is_a_runner_error(provider, fake, profile):
    fake.runner_stopped_next()
    with pytest.raises(ModelRunnerError, match="stopped before answering") as caught:
        provider.generate("hi")
    assert not isinstance(caught.value, InsufficientMemoryError)
    # 500 from 0.12.6 on; before, a 200 stream whose only line is the error.
    assert caught.value.status_code == (500 if profile.has(STREAM_ERROR_STATUS) else 200)


def test_runner_that_died_while_loading_is_a_runner_error(provider, fake, profile):
    # The scheduler's load error reaches the client as 500 {"error": "... process has
    # terminated: ..."} on every release (server/routes.go handleScheduleError).
    fake.fail_next(status=500, error=profile.runner_terminated_text)
    with pytest.raises(ModelRunnerError, match="stopped before answering") as caught:
        provider.generate("hi")
    assert not isinstance(caught.value, InsufficientMemoryError)
    assert caught.value.server_text == profile.runner_terminated_text


def test_runner_failing_mid_answer_is_a_runner_error_and_nothing_partial_returns(provider, fake):
    fake.reply_with("one two three four five six")
    fake.error_mid_stream_next(after_chunks=2)
    seen: list[str] = []
    with pytest.raises(ModelRunnerError, match="middle of the answer") as caught:
        provider.generate("hi", on_token=seen.append)
    assert caught.value.server_text == RUNNER_FAILED
    assert "".join(seen) == "one two"


def test_out_of_memory_is_named_on_both_sides_of_the_runner_change(provider, fake, profile):
    fake.out_of_memory_next()
    with pytest.raises(InsufficientMemoryError) as caught:
        provider.generate("hi")
    expected = "llama-server reported" if profile.has(LLAMA_SERVER) else "requires more system"
    assert expected in (caught.value.server_text or "")


def test_repetition_abort_is_not_called_a_crash(provider, fake):
    fake.reply_with("again again again again")
    fake.repetition_abort_next()
    with pytest.raises(OllamaResponseError) as caught:
        provider.generate("hi")
    assert "keeps repeating the same token" in (caught.value.hint or "")


def test_content_on_the_done_line_is_kept(provider, fake):
    # v0.13.3+ can put the last piece on the done line; before, the double ignores the request.
    fake.reply_with("one two three", last_in_done=True)
    assert provider.generate("hi").content == "one two three"


def test_missing_model_is_model_not_pulled_whatever_the_404_text(provider, fake):
    with pytest.raises(ModelNotPulledError) as caught:
        provider.generate("hi", model="llama3")
    assert "llama3:8b" in caught.value.suggestions


def test_unknown_option_reaches_the_server_with_one_warning(provider, fake, caplog):
    with caplog.at_level(logging.WARNING, "persona_ollama"):
        provider.generate("hi", max_tokens=20, options={"mirostat_eta": 0.1})
        provider.generate("hi", max_tokens=20, options={"mirostat_eta": 0.1})
    assert fake.last_request("/api/chat").json["options"]["mirostat_eta"] == 0.1
    assert sum("'mirostat_eta'" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(("version", "warned"), [("0.12.5", True), ("0.12.6", False)])
def test_doctor_names_a_release_that_still_cuts_prompts(cli_runner, version, warned):
    from persona_ollama.cli import main

    with FakeOllama(version=version) as fake:
        result = cli_runner.invoke(main, ["doctor", "--host", fake.url])
    assert (f"Ollama {version} is old" in result.stdout) is warned


def test_a_prompt_prefix_reused_from_the_cache_is_not_taken_for_a_cut(provider, profile, caplog):
    # Persona sends the same long research data with each request. From 0.30 llama-server
    # reuses the cached prefix and prompt_eval_count counts only the rest (timings.prompt_n),
    # far below our estimate: that is not a cut, and on 0.12.6+ a cut cannot happen at all
    # (truncate=false is refused). Before 0.12.6 the count is every token kept.
    data = "participant,quote\n" * 700
    with caplog.at_level(logging.WARNING, "persona_ollama"):
        first = provider.generate("Persona 1 of 2.", system=data, max_tokens=200)
        second = provider.generate("Persona 2 of 2.", system=data, max_tokens=200)
    assert first.input_tokens > 2000
    if profile.has(PROMPT_EVAL_SKIPS_CACHE):
        assert second.input_tokens < first.input_tokens // 10
    else:
        assert second.input_tokens == first.input_tokens
    for response in (first, second):
        assert not [w for w in response.raw_response["warnings"] if "dropped" in w]
    assert not [r for r in caplog.records if "dropped" in r.getMessage()]
