"""Context sizing: the window from a ladder, clamped to the trained length, overflow refused."""

from __future__ import annotations

import pytest

from persona_ollama.context import (
    LADDER,
    estimate_messages,
    estimate_tokens,
    ladder_size,
    plan,
    truncation_warning,
)
from persona_ollama.errors import ConfigurationError, ContextOverflowError


@pytest.mark.parametrize(
    ("text", "at_least"),
    [("", 0), ("hello world", 4), ("a" * 3000, 1000), ("東京" * 10, 20), ("name,age\n" * 100, 300)],
)
def test_estimate_is_never_below_a_tokenizers_count(text, at_least):
    assert estimate_tokens(text) >= at_least


def test_estimate_counts_each_message_and_its_template_overhead():
    one = estimate_messages([{"role": "user", "content": "x" * 300}])
    two = estimate_messages(
        [{"role": "system", "content": "x" * 300}, {"role": "user", "content": "x" * 300}]
    )
    assert two - one == one - estimate_messages([])


@pytest.mark.parametrize(
    ("tokens", "rung"), [(1, 4096), (4096, 4096), (4097, 8192), (20000, 32768), (10**9, LADDER[-1])]
)
def test_ladder_picks_the_smallest_rung_that_holds(tokens, rung):
    assert ladder_size(tokens) == rung


def test_same_size_prompts_get_the_same_window_so_the_model_is_not_reloaded():
    sizes = {plan(p, 4096, context_length=131072).window for p in range(3000, 4000, 97)}
    assert sizes == {8192}


def test_long_prompt_on_32k_model_gets_a_window_that_holds_it_and_the_answer():
    p = plan(15000, 4096, context_length=32768)
    assert p.window == 32768
    assert p.max_tokens == 4096
    assert not p.warnings


def test_long_prompt_on_8k_model_is_refused_before_sending():
    with pytest.raises(ContextOverflowError) as caught:
        plan(15000, 4096, context_length=8192, model="llama3:8b", alternatives=["qwen2.5:7b"])
    error = caught.value
    assert error.prompt_tokens == 15000
    assert error.context_length == 8192
    assert "15000" in str(error) and "8192" in str(error)
    assert "qwen2.5:7b" in error.hint


def test_prompt_that_fits_but_not_with_max_tokens_gets_a_capped_answer_and_a_warning():
    p = plan(7000, 4096, context_length=8192)
    assert p.window == 8192
    assert p.max_tokens == 1192
    assert "1192" in p.warnings[0]


def test_explicit_num_ctx_wins_and_is_checked():
    assert plan(100, 100, context_length=131072, window=2048).window == 2048
    with pytest.raises(ContextOverflowError, match="set by the caller"):
        plan(3000, 100, context_length=131072, window=2048)


def test_modelfile_num_ctx_is_kept_when_larger_than_the_rung():
    assert plan(100, 100, context_length=131072, preferred=32768).window == 32768
    assert plan(30000, 4096, context_length=131072, preferred=8192).window == 65536


def test_unknown_trained_length_leaves_the_ladder_unclamped():
    assert plan(60000, 4096, context_length=None).window == 65536


@pytest.mark.parametrize(("max_tokens", "window"), [(0, None), (10, 0)])
def test_nonsense_sizes_are_configuration_errors(max_tokens, window):
    with pytest.raises(ConfigurationError):
        plan(10, max_tokens, context_length=None, window=window)


def test_truncation_is_detected_from_prompt_eval_count():
    # Ollama keeps about half the window when it truncates (issue #17427: 2050 of 4096).
    assert truncation_warning(estimated=15000, prompt_eval_count=2050, window=4096)
    assert truncation_warning(estimated=15000, prompt_eval_count=11000, window=32768) is None
    assert truncation_warning(estimated=1000, prompt_eval_count=10, window=4096) is None
    assert truncation_warning(estimated=15000, prompt_eval_count=0, window=4096) is None


def test_a_prompt_that_filled_the_whole_window_is_reported_as_cut():
    # Runners before v0.12.6 keep exactly num_ctx tokens of a longer prompt.
    warning = truncation_warning(estimated=3900, prompt_eval_count=4096, window=4096)
    assert warning is not None
    assert "older than 0.12.6" in warning
    assert truncation_warning(estimated=3900, prompt_eval_count=4095, window=4096)
    # A prompt that fitted leaves room for the answer: no warning.
    assert truncation_warning(estimated=3900, prompt_eval_count=3700, window=4096) is None


def test_overflow_hint_without_alternatives_does_not_begin_with_or():
    from persona_ollama.context import overflow

    alone = overflow("m", prompt_tokens=9000, window=4096, limit_reason="its context").hint
    assert alone is not None and alone.startswith("Shorten the input")
    both = overflow(
        "m", prompt_tokens=9000, window=4096, limit_reason="x", alternatives=["big:8b"]
    ).hint
    assert both is not None and both.startswith("Use an installed model with a longer context")
    assert "Otherwise, shorten the input" in both


def test_messages_name_the_window_as_the_backend_declares_it():
    from persona_ollama.backends.rules import ContextWords

    neutral = ContextWords()
    with pytest.raises(ContextOverflowError, match=r"context_window=2048 \(set by the caller\)"):
        plan(3000, 100, context_length=131072, window=2048, words=neutral)
    # The default API's backend (Ollama's) spells it as its option: what its users pass.
    with pytest.raises(ContextOverflowError, match=r"num_ctx=2048 \(set by the caller\)"):
        plan(3000, 100, context_length=131072, window=2048)
    with pytest.raises(ConfigurationError, match="context_window must be a positive"):
        plan(10, 10, context_length=None, window=0, words=neutral)
    warning = truncation_warning(15000, 2050, 4096, words=neutral)
    assert warning is not None and "(context_window=4096)" in warning
