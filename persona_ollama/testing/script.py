"""The script: canned replies, injected failures and latency, matched per request.

Every rule has a path filter: ``None`` means the endpoints that run a model (the routes a face
marks ``generation=True``), because that is where a real server is slow or fails, and a client
typically asks for the model's details first; ``"*"`` means every path; any other string is one
exact path such as ``"/api/pull"``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from .models import Answer

__all__ = [
    "ANY_PATH",
    "DROP",
    "EMPTY",
    "ERROR_MID_STREAM",
    "INTERRUPTED",
    "MALFORMED",
    "NO_DONE",
    "NO_LATENCY",
    "NO_USAGE",
    "RUNNER",
    "STATUS",
    "STREAM_KINDS",
    "UNSTREAMED_STATUS",
    "Fault",
    "Latency",
    "ReplyRule",
    "Script",
]


# The script ------------------------------------------------------------------------------------
ANY_PATH = "*"

# Fault kinds: "status" answers before any output; "runner" too, but as the release's stream
# writer sends a runner's error (wire.STREAM_ERROR_STATUS); the rest change a 200 response.
STATUS = "status"
RUNNER = "runner"
ERROR_MID_STREAM = "error_mid_stream"
DROP = "drop"
NO_DONE = "no_done"
MALFORMED = "malformed"
# What llama-cpp-python's server does, for the /v1 stream: [DONE] without a finish reason when
# another request interrupts it; an empty 200 stream for an over-long prompt (the error only
# comes unstreamed); no usage event, whatever stream_options asks.
INTERRUPTED = "interrupted"
EMPTY = "empty"
UNSTREAMED_STATUS = "unstreamed_status"
NO_USAGE = "no_usage"
STREAM_KINDS = (ERROR_MID_STREAM, DROP, NO_DONE, MALFORMED, INTERRUPTED, EMPTY)


@dataclass
class Fault:
    """A failure for the next ``remaining`` matching responses."""

    kind: str
    remaining: int
    path: str | None = None
    status: int = 500
    error: str = ""
    after_chunks: int = 0


@dataclass
class ReplyRule:
    """A canned answer; ``remaining`` None means every matching request until reset."""

    answer: Answer
    model_key: str | None = None
    thinking: str | None = None
    done_reason: str | None = None
    remaining: int | None = None
    last_in_done: bool = False  # the last piece rides on the done line (v0.30+ can do that)


@dataclass
class Latency:
    """Seconds before the first byte and between streamed chunks."""

    first_byte: float = 0.0
    between_chunks: float = 0.0
    path: str | None = None
    remaining: int | None = None


NO_LATENCY = Latency()


class Script:
    """The thread-safe queue of scripted behaviour that the request handlers consult."""

    def __init__(self, generation_paths: Iterable[str] = ()) -> None:
        self.generation_paths = frozenset(generation_paths)  # what a ``None`` path means
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._replies: list[ReplyRule] = []
        self._latencies: list[Latency] = []

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._replies.clear()
            self._latencies.clear()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def add_reply(self, rule: ReplyRule) -> None:
        with self._lock:
            self._replies.append(rule)

    def add_latency(self, latency: Latency) -> None:
        with self._lock:
            self._latencies.append(latency)

    def matches(self, rule_path: str | None, path: str) -> bool:
        """Whether a rule for ``rule_path`` (None: the generation paths; ``"*"``: any) applies."""
        if rule_path is None:
            return path in self.generation_paths
        return rule_path in (ANY_PATH, path)

    def take_fault(self, path: str, kinds: tuple[str, ...]) -> Fault | None:
        """Consume the oldest fault of one of ``kinds`` that matches ``path``."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and self.matches(fault.path, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def take_reply(self, model_key: str) -> ReplyRule | None:
        """Counted rules in the order they were scripted, then the newest open-ended one."""
        with self._lock:
            return _take(self._replies, lambda rule: rule.model_key in (None, model_key))

    def take_latency(self, path: str) -> Latency:
        """Like take_reply: counted settings first, then the newest open-ended one."""
        with self._lock:
            latency = _take(self._latencies, lambda rule: self.matches(rule.path, path))
            return latency or NO_LATENCY


_Rule = TypeVar("_Rule", ReplyRule, Latency)


def _take(rules: list[_Rule], matches: Callable[[_Rule], bool]) -> _Rule | None:
    matching = [rule for rule in rules if matches(rule)]
    for rule in matching:
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
            return rule
    return matching[-1] if matching else None
