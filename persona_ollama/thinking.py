"""Keep a reasoning model's thinking out of the answer.

New servers send reasoning in ``message.thinking``; older servers and some models write it
into the content inside ``<think>...</think>``. This splitter moves a leading think block out
of the content even when the tags are split across streamed chunks.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


class ThinkSplitter:
    """Feed content pieces; get back (content, thinking) pieces with any leading block moved."""

    def __init__(self) -> None:
        self._state = "start"  # start -> thinking -> after -> answer, or start -> answer
        self._held = ""

    def feed(self, piece: str) -> tuple[str, str]:
        """The ``(answer, thinking)`` text ``piece`` adds; either may be empty, and a possible
        partial tag is held back until the next piece (or ``finish``)."""
        if self._state == "answer":
            return piece, ""
        if self._state == "after":
            # The blank line a model writes after </think> is not part of the answer.
            piece = piece.lstrip()
            if piece:
                self._state = "answer"
            return piece, ""
        text = self._held + piece
        self._held = ""
        if self._state == "start":
            stripped = text.lstrip()
            if not stripped:
                self._held = text
                return "", ""
            if stripped.startswith(OPEN):
                self._state = "thinking"
                text = stripped[len(OPEN) :]
            elif OPEN.startswith(stripped):
                self._held = text  # maybe the start of "<think>": wait for more
                return "", ""
            else:
                self._state = "answer"
                return text, ""
        # thinking: look for the closing tag, holding back a possible partial one
        end = text.find(CLOSE)
        if end >= 0:
            self._state = "after"
            return self.feed(text[end + len(CLOSE) :])[0], text[:end]
        keep = _partial_suffix(text, CLOSE)
        self._held = text[len(text) - keep :] if keep else ""
        return "", text[: len(text) - keep]

    def finish(self) -> tuple[str, str]:
        """Flush what was held back at the end of the stream."""
        held, self._held = self._held, ""
        if self._state == "thinking":
            return "", held  # an unclosed block: it was all thinking
        if self._state == "after":
            return "", ""
        return held, ""


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
