"""Properties of the window policy (windows.py) as the provider composes it with plan().

The invariant that matters most: the window sent always holds the prompt and the answer
budget the request was planned with (else the server cuts or refuses the prompt), whatever
/api/ps says (stale, another model's, garbage) and whatever this process sent before.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from persona_ollama.backends.ollama import loaded_windows_of
from persona_ollama.context import LADDER, plan
from persona_ollama.windows import Windows

MODEL = "qwen3:8b"

sizes = st.integers(min_value=1, max_value=300_000)
# What /api/ps may hold: this model or others, sane or garbage lengths, missing fields.
lengths = st.one_of(st.sampled_from(LADDER), st.integers(1, 2_000_000))
garbage = st.one_of(st.none(), st.booleans(), st.integers(-5, 0), st.text(max_size=3))
ps_entry = st.one_of(
    st.fixed_dictionaries({"name": st.just(MODEL), "context_length": lengths}),
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from([MODEL, "qwen3", "llama3.2:latest", 7, None]),
            "model": st.sampled_from([MODEL, "other:1b"]),
            "context_length": st.one_of(lengths, garbage),
        },
    ),
)
ps_answer = st.one_of(st.lists(ps_entry, max_size=4), st.just("boom"))
request = st.tuples(
    st.integers(min_value=1, max_value=200_000),  # estimated prompt tokens
    st.integers(min_value=1, max_value=40_000),  # answer (+ thinking) budget
    ps_answer,
)


def _fetch(answer: Any) -> Any:
    def fetch() -> dict[str, int]:
        if answer == "boom":
            raise OSError("connection refused")
        return loaded_windows_of(list(answer))

    return fetch


@settings(max_examples=300, deadline=None)
@given(
    requests=st.lists(request, min_size=1, max_size=12),
    limit=st.one_of(st.none(), st.sampled_from([2048, 4096, 8192, 32768, 131072]), sizes),
    cap=st.one_of(st.none(), st.sampled_from((0, *LADDER))),
    preferred=st.one_of(st.none(), st.sampled_from([2048, 8192, 40960])),
)
def test_the_sent_window_always_holds_what_was_planned(
    requests: list[tuple[int, int, Any]],
    limit: int | None,
    cap: int | None,
    preferred: int | None,
) -> None:
    w = Windows()
    for prompt_tokens, budget, answer in requests:
        try:
            context = plan(prompt_tokens, budget, context_length=limit, preferred=preferred)
        except Exception:  # noqa: BLE001 - an overflow is refused before any window is chosen
            continue
        w._ps = None  # every request sees this request's /api/ps answer
        window = w.choose(
            MODEL,
            needed=context.prompt_tokens + budget,
            rung=context.window,
            loaded=lambda a=answer: w.loaded(_fetch(a)).get(MODEL),
            limit=limit,
            cap=lambda: cap,
        )
        # No truncation: the prompt and the planned answer fit the window sent.
        assert context.prompt_tokens + context.max_tokens <= window
        assert window >= context.window or window >= prompt_tokens + budget
        # Never above the trained context (the server would clamp it below what we think).
        if limit is not None:
            assert window <= limit
        # Memory: a reused window larger than the prompt's own rung fits the budget.
        if cap is not None:
            assert window <= max(context.window, cap)


@settings(max_examples=200, deadline=None)
@given(
    needs=st.lists(st.integers(min_value=100, max_value=120_000), min_size=1, max_size=40),
    loaded=st.one_of(st.none(), st.sampled_from(LADDER[:5])),
)
def test_a_sequential_batch_loads_once_per_larger_window(
    needs: list[int], loaded: int | None
) -> None:
    """Without a memory cap, the window never shrinks: loads are at most one per distinct
    larger rung the batch reaches, whatever the order of prompt sizes."""
    w = Windows()
    sent: list[int] = []
    for needed in needs:
        context = plan(needed - 50, 50, context_length=131072)
        sent.append(
            w.choose(
                MODEL,
                needed=needed,
                rung=context.window,
                loaded=loaded,
                limit=131072,
                cap=lambda: None,
            )
        )
    assert sent == sorted(sent)  # never shrinks, so never reloads a smaller window
    rungs_reached = {plan(n - 50, 50, context_length=131072).window for n in needs}
    changes = sum(1 for a, b in zip(sent, sent[1:]) if a != b)
    assert changes <= len(rungs_reached)
