"""The double's tokeniser: deterministic, documented, and simple enough to compute in a test.

A token is four bytes of UTF-8 (``count_tokens(text) == ceil(len(text.encode()) / 4)``); a chat
prompt costs ``count_tokens(content) + MESSAGE_OVERHEAD_TOKENS`` per message, plus the tools JSON
when tools are sent. ``prompt_eval_count`` and ``eval_count`` use these rules, so a test can state
the exact numbers it expects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "BYTES_PER_TOKEN",
    "MESSAGE_OVERHEAD_TOKENS",
    "count_prompt_tokens",
    "count_tokens",
    "split_chunks",
    "truncate_to_tokens",
]


# Tokens ----------------------------------------------------------------------------------------
BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # the role markers a chat template wraps around each message


def count_tokens(text: str) -> int:
    """Tokens in ``text``: its UTF-8 length divided by four, rounded up."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN)


def count_prompt_tokens(
    messages: Iterable[Mapping[str, Any]], tools: Sequence[Any] | None = None
) -> int:
    """Tokens in a chat prompt: each message's content plus its overhead, plus the tools JSON."""
    total = sum(
        count_tokens(_text(message.get("content"))) + MESSAGE_OVERHEAD_TOKENS
        for message in messages
    )
    if tools:
        total += count_tokens(json.dumps(tools, separators=(",", ":")))
    return total


def _text(content: Any) -> str:
    return content if isinstance(content, str) else ""


def truncate_to_tokens(text: str, limit: int) -> str:
    """The longest prefix of ``text`` (whole characters) that is at most ``limit`` tokens."""
    budget = max(limit, 0) * BYTES_PER_TOKEN
    encoded = text.encode("utf-8")
    if len(encoded) <= budget:
        return text
    return encoded[:budget].decode("utf-8", errors="ignore")


_WORD = re.compile(r"\s*\S+\s*$|\s*\S+|\s+")


def split_chunks(text: str, size: int | None = None) -> list[str]:
    """Pieces to stream: ``size`` characters each, or one word with its leading space if None."""
    if not text:
        return []
    if size is not None:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return _WORD.findall(text)
