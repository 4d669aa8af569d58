"""Reasoning written inline as <think>...</think> is kept out of the answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from shared_helpers import feed_all


def split_think(whole: str) -> tuple[str, str]:
    """A whole answer fed in one piece."""
    return feed_all([whole])


def test_leading_think_block_is_moved_out_of_the_answer():
    assert split_think('<think>plan it</think>\n{"personas": []}') == (
        '{"personas": []}',
        "plan it",
    )


def test_answer_without_think_block_is_untouched():
    assert split_think("  hello <think>x</think>") == ("  hello <think>x</think>", "")


def test_unclosed_think_block_is_all_thinking():
    assert split_think("<think>ran out of tokens") == ("", "ran out of tokens")


def test_prefix_of_the_tag_that_turns_out_not_to_be_one_is_returned():
    assert split_think("<thin") == ("<thin", "")
    assert feed_all(["<th", "is is text"]) == ("<this is text", "")


def test_whitespace_only_answer_is_kept():
    assert feed_all([" ", "\n"]) == (" \n", "")


@settings(max_examples=300)
@given(
    st.text(alphabet="ab<>/thinkx{}\n ", max_size=30),
    st.text(alphabet='ab{}[]" ', max_size=30),
    st.lists(st.integers(min_value=1, max_value=60), max_size=8),
)
def test_any_chunking_gives_the_same_split_as_the_whole(thought, answer, cuts):
    thought = thought.replace("</think>", "")
    whole = f"<think>{thought}</think>{answer}"
    pieces, start = [], 0
    for point in sorted(set(cuts)):
        pieces.append(whole[start:point])
        start = max(start, point)
    pieces.append(whole[start:])
    assert feed_all(pieces) == split_think(whole) == (answer.lstrip(), thought)
