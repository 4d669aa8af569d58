"""Text from a server, made safe to print: the CLI imports this without the HTTP stack."""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069]")


def printable(text: str) -> str:
    """``text`` with control sequences shown escaped (``\\x1b``), so that a server cannot move
    the cursor, retitle the window or hide text in the terminal."""
    if not _UNPRINTABLE.search(text):
        return text
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
