"""The Acme backend against the double of the Acme server, over real sockets: one model per
server, a prompt string written with the model's template, errors as events inside a 200
stream, and a budget for the prompt alone beside the window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from persona_acme import AcmeProvider
from persona_acme.errors import (
    ConfigurationError,
    ContextOverflowError,
    ModelNotAvailableError,
    ServerBusyError,
    ServerResponseError,
)
from persona_acme.testing import AcmeFace, FakeModel, FakeServer

CONTEXT = 4096  # the double's /info: max_total_tokens 4096, max_input_tokens 2048


@pytest.fixture
def acme() -> Iterator[FakeServer]:
    with FakeServer([AcmeFace()], [FakeModel(name="acme-7b", context_length=CONTEXT)]) as fake:
        yield fake


def provider(server: FakeServer) -> AcmeProvider:
    return AcmeProvider(base_url=server.url, environ={})


def served(server: FakeServer) -> str:
    (model,) = server.models
    return model.name


def test_lists_the_one_model_with_its_input_and_total_budgets(acme: FakeServer):
    (info,) = provider(acme).installed_models()

    assert info.name == served(acme)
    assert info.context_length == CONTEXT
    assert info.input_limit == CONTEXT // 2


def test_the_default_model_is_the_one_served(acme: FakeServer):
    assert provider(acme).default_model == served(acme)


def test_sends_the_chat_as_one_prompt_in_the_models_template_and_no_model_name(acme: FakeServer):
    acme.reply_with("Hello there")

    response = provider(acme).generate("Hi", model=served(acme), system="Be brief.", max_tokens=64)

    assert response.content == "Hello there"
    assert response.finish_reason == "stop"
    assert response.input_tokens > 0 and response.output_tokens > 0
    (chat,) = acme.generations
    assert "model" not in chat.json
    assert chat.json["inputs"] == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert chat.json["parameters"]["max_new_tokens"] == 64
    assert "<|im_end|>" in chat.json["parameters"]["stop"]


def test_asking_for_another_model_names_the_one_served_and_sends_nothing(acme: FakeServer):
    with pytest.raises(ModelNotAvailableError) as caught:
        provider(acme).generate("Hi", model="other-13b")

    assert "other-13b" in str(caught.value) and served(acme) in str(caught.value)
    assert not acme.generations


def test_a_server_that_names_no_prompt_format_is_refused_before_sending():
    model = FakeModel(name="acme-7b", context_length=CONTEXT)
    with FakeServer([AcmeFace(prompt_format=None)], [model]) as fake:
        with pytest.raises(ConfigurationError) as caught:
            provider(fake).generate("Hi", model=fake.models[0].name)

        assert "names no prompt format" in str(caught.value)
        assert "--prompt-format" in (caught.value.hint or "")
        assert not fake.generations


def test_a_prompt_over_the_input_limit_is_refused_before_sending(acme: FakeServer):
    prompt = "x" * (3 * CONTEXT)  # about 3,000 tokens: inside the window, over the input limit

    with pytest.raises(ContextOverflowError) as caught:
        provider(acme).generate(prompt, model=served(acme), max_tokens=64)

    assert "input limit" in str(caught.value)
    assert not acme.generations


def test_the_answer_is_capped_to_what_the_window_leaves_after_the_prompt(acme: FakeServer):
    acme.reply_with("ok")

    provider(acme).generate("x" * 3000, model=served(acme), max_tokens=CONTEXT)

    (chat,) = acme.generations
    sent = chat.json["parameters"]["max_new_tokens"]
    assert 0 < sent < CONTEXT
    assert len(chat.json["inputs"]) // 4 + sent <= CONTEXT  # what the double counts fits


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Model is overloaded", ServerBusyError),
        ("Input validation error: `inputs` must have less than 2048 tokens", ContextOverflowError),
        ("Request failed during generation: CUDA error", ServerResponseError),
    ],
)
def test_an_error_event_inside_the_200_stream_raises_its_class_and_no_answer(
    acme: FakeServer, text: str, error: type[Exception]
):
    acme.reply_with("a partial answer that must not come back")
    acme.error_mid_stream_next(text, after_chunks=1)

    with pytest.raises(error) as caught:
        provider(acme).generate("Hi", model=served(acme))

    assert text in str(caught.value)


def test_a_stream_cut_before_its_final_event_is_not_passed_off_as_complete(acme: FakeServer):
    acme.reply_with("a long answer cut off half-way through")
    acme.end_stream_without_done_next()

    with pytest.raises(ServerResponseError):
        provider(acme).generate("Hi", model=served(acme))
