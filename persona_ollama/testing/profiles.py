"""Release profiles: a double emulates one release of its server, with that release's wire rules.

Where a server's wire behaviour changed between releases, the change is one :class:`Rule`: the
first release that has the newer behaviour, and where that was read (the server's source file,
function and tag). A server's :class:`Profile` subclass lists its rules and the texts its errors
carry; the double's core and faces ask ``profile.has(RULE)`` and read the texts from the profile,
so that they name no server. A rule a profile does not list is in effect on every release (the
engine behaves as the newest servers do), and the base class's texts are plain words.

The rule names below are the behaviours the core's engine (generation.py) can switch; a face may
define more of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .go import version_tuple

__all__ = [
    "DONE_CARRIES_CONTENT",
    "LLAMA_SERVER",
    "NEWEST",
    "PROMPT_EVAL_SKIPS_CACHE",
    "REFUSES_OVERFLOW",
    "RELOAD_BY_EFFECTIVE_WINDOW",
    "SHIFT_OFF_REFUSES",
    "Profile",
    "Rule",
]


@dataclass(frozen=True)
class Rule:
    """One change of wire behaviour: in effect from ``since`` on."""

    name: str
    since: tuple[int, ...]
    source: str  # file and function in the server's source, and the tag read
    newer: str  # the behaviour from ``since`` on
    older: str  # the behaviour before


# The engine's switches (generation.py, scheduler.py): how a prompt over the window is treated,
# what the done line carries, what the prompt count includes, when a loaded model is reused.
REFUSES_OVERFLOW = "refuses_overflow"  # a prompt over the window with truncation off: refused
LLAMA_SERVER = "llama_server"  # a llama.cpp server runs the model: one position kept free
DONE_CARRIES_CONTENT = "done_carries_content"  # the done line may carry the answer's last piece
PROMPT_EVAL_SKIPS_CACHE = "prompt_eval_skips_cache"  # the prompt count leaves out a cached prefix
SHIFT_OFF_REFUSES = "shift_off_refuses"  # truncation with context shift off: refused
# The scheduler's (scheduler.py): a loaded model is reused by the window it runs with (capped at
# the trained context), its context shift and runner options; older: by the window asked for.
RELOAD_BY_EFFECTIVE_WINDOW = "reload_by_effective_window"


# The version of a double told no release: the newest, every rule in effect (no server's number,
# which would put a profile's own rules on either side of it by chance).
NEWEST = ""


@dataclass(frozen=True)
class Profile:
    """The wire rules in effect for one emulated ``version`` of a server, and its error texts."""

    version: str
    rules: ClassVar[tuple[Rule, ...]] = ()

    def has(self, rule: str) -> bool:
        """Whether the emulated release has the newer behaviour of ``rule`` (a rule this
        profile does not list, or the version :data:`NEWEST`: yes)."""
        since = next((known.since for known in self.rules if known.name == rule), None)
        return since is None or self.version == NEWEST or version_tuple(self.version) >= since

    def overflow_text(self, prompt_tokens: int, num_ctx: int) -> str:
        """The error text for a prompt over the window that the server refuses."""
        return f"the prompt ({prompt_tokens} tokens) is longer than the context ({num_ctx} tokens)"

    @property
    def busy_text(self) -> str:
        """The error text of a server that turns a request away (``fail_next``'s default)."""
        return "the server is busy, try again later"

    @property
    def out_of_memory_text(self) -> str:
        """The error text of a model that does not fit in memory."""
        return "not enough memory to load the model"

    @property
    def runner_stopped_text(self) -> str:
        """The error text of a model runner that died before answering."""
        return "the model stopped unexpectedly"

    def runner_failed_text(self, reason: str = "unexpected EOF") -> str:
        """The error text of a model runner that fails mid-answer."""
        return f"the model failed while answering: {reason}"
