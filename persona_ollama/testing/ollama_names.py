"""Model names as the Ollama server parses them (docs/reference/ollama-protocol.md, "Model names").

:data:`OLLAMA_NAMES` is the double's :class:`~persona_ollama.testing.model_names.Naming` for
Ollama: the ``host/namespace/model:tag`` grammar with the registry's defaults filled in, looked up
case-insensitively, and the cloud suffix (``:cloud``, ``-cloud``) that makes a model run on the
cloud host. The double implements the grammar on its own rather than reusing
``persona_ollama.names``: a test double that shares the client's parser would agree with the
client's bugs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model_names import Naming
from .models import FakeModel
from .responses import ApiError

__all__ = [
    "CLOUD_HOST",
    "DEFAULT_HOST",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TAG",
    "OLLAMA_NAMES",
    "ModelName",
    "OllamaNaming",
    "cloud_base",
    "cloud_stub",
    "is_cloud_name",
    "parse_model_name",
    "parse_name",
]


# Model names -----------------------------------------------------------------------------------
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
_MISSING = "!MISSING!"  # a part that is present but empty, e.g. "/m"; never valid
# A cloud model's remote_host (server/create.go remoteURL turns "ollama.com" into this).
CLOUD_HOST = "https://ollama.com:443"
# A cloud stub's size in /api/tags: a config blob and a few small layers, no weights.
STUB_SIZE = 384


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


def parse_model_name(raw: Any, *, empty_status: int, empty_message: str) -> ModelName:
    """A valid model name, or the 400/404 the endpoint gives for an empty or malformed one."""
    text = raw if isinstance(raw, str) else ""
    if not text:
        raise ApiError(empty_status, empty_message)
    name = parse_name(text)
    if not name.is_valid:
        raise ApiError(400, "invalid model name")
    return name


def is_cloud_name(name: str) -> bool:
    """A ``:cloud`` tag or one ending in ``-cloud`` (internal/modelref parseSourceSuffix)."""
    tag = parse_name(name.strip()).tag.lower()
    return tag == "cloud" or tag.endswith("-cloud")


def cloud_base(name: str) -> str:
    """The model a cloud name asks the cloud host for: the name without its cloud suffix."""
    parsed = parse_name(name.strip())
    base = parsed.display.rsplit(":", 1)[0]
    tag = parsed.tag.lower()
    return base if tag == "cloud" else f"{base}:{parsed.tag[: -len('-cloud')]}"


class OllamaNaming(Naming):
    """Ollama's names: the grammar above, case-insensitive lookups, cloud names remote."""

    digest_seed = "fake-ollama"  # the double's digests since it had them
    invalid_hint = "(expected e.g. 'llama3.2:3b' or 'namespace/model:tag')"

    def is_valid(self, raw: str) -> bool:
        return parse_name(raw.strip()).is_valid

    def display(self, raw: str) -> str:
        return parse_name(raw.strip()).display

    def full(self, raw: str) -> str:
        return parse_name(raw.strip()).full

    def key(self, raw: str) -> str:
        return parse_name(raw.strip()).key

    def adopt(self, model: FakeModel) -> FakeModel:
        """Whatever else it says, a ``:cloud``/``-cloud`` model runs on the cloud host."""
        adopted = super().adopt(model)
        if is_cloud_name(adopted.name) and not adopted.remote_host:
            adopted.remote_host, adopted.remote_model = CLOUD_HOST, cloud_base(adopted.name)
        return adopted

    def model(self, name: str) -> FakeModel:
        """A bare cloud name stands for the stub pulling it leaves (:func:`cloud_stub`)."""
        return cloud_stub(name) if is_cloud_name(name) else FakeModel(name)


def cloud_stub(name: str, **facts: Any) -> FakeModel:
    """What pulling ``NAME-cloud`` installs: a few hundred bytes whose requests the server
    forwards to the cloud host (``remote_host``), asking there for ``remote_model``."""
    defaults: dict[str, Any] = {
        "family": "gptoss",
        "parameter_size": "116.8B",
        "quantization_level": "MXFP4",
        "size": STUB_SIZE,
        "capabilities": ["completion", "tools", "thinking"],
        "remote_host": CLOUD_HOST,
        "remote_model": cloud_base(name),
    }
    return FakeModel(name, **{**defaults, **facts})


OLLAMA_NAMES = OllamaNaming()
