"""What the /v1 backend declares to the layers above it: the address it reads, and that it
takes any model id its server serves.

The address is read as the native backend reads it (the same variables, port and messages), so
``api="openai"`` pointed at an Ollama server needs no other setting; the provider then adds
``/v1`` (endpoint.v1_endpoint). Model ids are the server's own: vLLM serves ``org/model`` ids
and local paths, llama.cpp the file name it loaded, so only the neutral checks apply. Such ids
may differ only in case ("Org/Model" beside "org/model"): the name rules then follow what the
server lists (:class:`ServedIds`).
"""

from __future__ import annotations

from collections.abc import Iterable

from .registry import declared
from .rules import AnyName, Declaration


def folded(name: str) -> str:
    """The spelling two ids share when they differ only in case (and surrounding spaces)."""
    return name.strip().lower()


class ServedIds(AnyName):
    """Any id passes; a spelling that differs only in case names the one served id it folds
    to (:func:`folded`), so "qwen/qwen3-8b" finds vLLM's "Qwen/Qwen3-8B". ``ids`` are what the
    server lists: where two of them fold together ("Qwen" and "qwen") each is a model of its
    own, named only exactly, and a spelling they share ("QWEN") names neither. Without a
    listing every id is compared exactly."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self.ids = frozenset(ids)
        by_spelling: dict[str, set[str]] = {}
        for served in self.ids:
            by_spelling.setdefault(folded(served), set()).add(served)
        self._only = {key: min(same) for key, same in by_spelling.items() if len(same) == 1}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServedIds) and other.ids == self.ids

    def __hash__(self) -> int:
        return hash(self.ids)

    def canonical(self, name: str) -> str:
        """The served id ``name`` names where only one folds to it, else ``name`` as written
        (without surrounding spaces)."""
        return self._only.get(folded(name), name.strip())


DECLARATION = Declaration(
    # The native backend's: the same server, reached by the same variables.
    address=declared("native").address,
    speaks="the OpenAI-compatible /v1/chat/completions of vLLM, llama.cpp, LM Studio, LiteLLM "
    "or Ollama (see docs/scaling.md)",
    names=ServedIds(),
)
