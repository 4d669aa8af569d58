"""Separate input and total budgets: a server that states a limit for the prompt alone
(``ModelInfo.input_limit``) beside the window the prompt and the answer share."""

from __future__ import annotations

import pytest

from persona_ollama.context import plan
from persona_ollama.errors import ContextOverflowError
from persona_ollama.model_info import ModelInfo


def test_a_prompt_over_the_input_limit_is_refused_before_sending_though_the_window_holds_it():
    with pytest.raises(ContextOverflowError) as caught:
        plan(5000, 1024, context_length=16384, input_limit=4096, model="acme-7b")

    error = caught.value
    assert error.prompt_tokens == 5000
    assert error.context_length == 4096
    assert "5000" in str(error) and "input limit" in str(error)
    assert "the window is 16384" in str(error)


def test_a_prompt_at_the_input_limit_is_planned_with_the_whole_answer():
    p = plan(4096, 1024, context_length=16384, input_limit=4096)

    assert p.max_tokens == 1024
    assert p.window >= 4096 + 1024


def test_the_answer_is_capped_to_the_total_minus_the_prompt_not_minus_the_input_limit():
    p = plan(4000, 8192, context_length=8192, input_limit=6000)

    assert p.window == 8192
    assert p.max_tokens == 8192 - 4000
    assert str(8192 - 4000) in p.warnings[0]


def test_no_input_limit_leaves_the_window_the_only_limit():
    assert plan(5000, 1024, context_length=16384).max_tokens == 1024


def test_model_info_states_no_input_limit_unless_the_server_does():
    assert ModelInfo(name="m").input_limit is None
    assert ModelInfo(name="m", context_length=16384, input_limit=4096).input_limit == 4096
