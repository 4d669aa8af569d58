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

from collections.abc import Callable, Iterable, Mapping

from .registry import declared
from .rules import AnyName, Declaration, NameRules


def folded(name: str) -> str:
    """The spelling two ids share when they differ only in case (and surrounding spaces)."""
    return name.strip().lower()


class ServedIds(AnyName):
    """Any id passes; a spelling that differs only in case names the one served id it folds
    to (:func:`folded`), so "qwen/qwen3-8b" finds vLLM's "Qwen/Qwen3-8B". ``ids`` are what the
    server lists: where two of them fold together ("Qwen" and "qwen") each is a model of its
    own, named only exactly, and a spelling they share ("QWEN") names neither. Without a
    listing every id is compared exactly. ``rules`` maps a listed id to the name rules of
    the server it comes from, where a proxy lists another server's models beside its own
    (Ollama's "llama3.2:latest" is also "llama3.2"): that id is matched by those rules, the
    others by case only, so no one entry's rules decide for all of them."""

    def __init__(
        self, ids: Iterable[str] = (), rules: Mapping[str, NameRules] | None = None
    ) -> None:
        self.ids = frozenset(ids)
        given = rules or {}
        self.rules = {served: given[served] for served in self.ids if served in given}
        # (how a spelling is folded, folded spelling -> the ids it names), one per set of rules
        groups: dict[int, tuple[Callable[[str], str], dict[str, set[str]]]] = {}
        for served in self.ids:
            own = self.rules.get(served)
            fold = folded if own is None else own.canonical
            by_spelling = groups.setdefault(id(own), (fold, {}))[1]
            by_spelling.setdefault(fold(served), set()).add(served)
        self._groups = list(groups.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServedIds) and (other.ids, other.rules) == (self.ids, self.rules)

    def __hash__(self) -> int:
        return hash(self.ids)

    def canonical(self, name: str) -> str:
        """The served id ``name`` names where it is listed or only one id folds to it, else
        ``name`` as written (without surrounding spaces)."""
        name = name.strip()
        if name in self.ids:
            return name
        found = {served for fold, by in self._groups for served in by.get(fold(name), ())}
        return found.pop() if len(found) == 1 else name

    def is_remote(self, name: str) -> bool:
        """What the rules of the server listing the id ``name`` names say (Ollama's cloud
        models behind a proxy); False for the ids matched by case only."""
        own = self.rules.get(self.canonical(name))
        return own is not None and own.is_remote(name)


DECLARATION = Declaration(
    # The native backend's: the same server, reached by the same variables.
    address=declared("native").address,
    speaks="the OpenAI-compatible /v1/chat/completions of vLLM, llama.cpp, LM Studio, LiteLLM "
    "or Ollama (see docs/scaling.md)",
    names=ServedIds(),
)
