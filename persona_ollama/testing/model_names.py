"""Model names as the Ollama server parses them (docs/reference/ollama-protocol.md, "Model names").

The double implements the grammar on its own rather than reusing ``persona_ollama.names``: a test
double that shares the client's parser would agree with the client's bugs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TAG",
    "ModelName",
    "parse_name",
]


# Model names -----------------------------------------------------------------------------------
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
_MISSING = "!MISSING!"  # a part that is present but empty, e.g. "/m"; never valid


@dataclass(frozen=True)
class ModelName:
    """``host/namespace/model:tag`` with the defaults filled in."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """The shortest form (Go ``DisplayShortest``): default host and namespace dropped."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        """``host/namespace/model:tag``, every default filled in: the form capability errors
        quote."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """What lookups compare: the full name, case-folded (lookup is case-insensitive)."""
        return self.full.lower()

    @property
    def is_valid(self) -> bool:
        return (
            _valid_part(self.host, 350, extra=".:-_")
            and _valid_part(self.namespace, 80, extra="-_")
            and _valid_part(self.model, 80, extra=".-_")
            and _valid_part(self.tag, 80, extra=".-_")
        )


def parse_name(raw: str) -> ModelName:
    """Split ``raw`` like Go's ``model.ParseName``; check ``.is_valid`` before trusting it."""
    rest, tag = raw, ""
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = _cut_last(rest, ":")
    if "/" not in rest:
        return ModelName(DEFAULT_HOST, DEFAULT_NAMESPACE, rest, tag or DEFAULT_TAG)
    rest, model = _cut_last(rest, "/")
    if "/" not in rest:
        return ModelName(DEFAULT_HOST, rest or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG)
    host, namespace = _cut_last(rest, "/")
    host = host.split("://", 1)[-1]  # a scheme ("https://") is allowed and dropped
    return ModelName(host, namespace, model, tag or DEFAULT_TAG)


def _cut_last(text: str, sep: str) -> tuple[str, str]:
    before, _, after = text.rpartition(sep)
    return before or _MISSING, after or _MISSING


def _valid_part(part: str, max_len: int, *, extra: str) -> bool:
    if not 1 <= len(part) <= max_len:
        return False
    if not (part[0].isascii() and (part[0].isalnum() or part[0] == "_")):
        return False
    return all(char.isascii() and (char.isalnum() or char in extra) for char in part[1:])
