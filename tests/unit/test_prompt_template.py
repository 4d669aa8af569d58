"""backends.base.PromptTemplate: how a backend of a prompt-string server writes a chat."""

from __future__ import annotations

from persona_ollama.backends.base import PromptTemplate

CHATML = PromptTemplate(
    turn="<|im_start|>{role}\n{content}<|im_end|>\n",
    reply="<|im_start|>assistant\n",
    stop=("<|im_end|>",),
)


def test_every_message_is_written_in_order_then_the_reply_is_opened():
    prompt = CHATML.render(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )

    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_braces_in_a_message_are_text_not_placeholders():
    prompt = CHATML.render([{"role": "user", "content": 'Return {"name": "{role}"} as JSON'}])

    assert 'Return {"name": "{role}"} as JSON' in prompt
    assert prompt.startswith("<|im_start|>user\n")


def test_no_messages_is_only_the_opened_reply():
    assert CHATML.render([]) == "<|im_start|>assistant\n"
