"""What Ollama's backend declares to the layers above it: the server's address variables and
default port, its special spellings, and its model-name grammar.

Addresses follow Ollama's ``envconfig.Host``; names follow its ``types/model`` grammar
(docs/reference/ollama-protocol.md, "Server address" and "Model names"). The kernel reads them
through :func:`~persona_ollama.backends.registry.declared`; this module imports nothing heavy.
"""

from __future__ import annotations

import re

from ..errors import ConfigurationError
from .rules import BOOL, INT, AddressRules, ContextWords, Declaration

# Persona's name for the server comes first: it beats Ollama's own.
BASE_URL_VAR = "OLLAMA_BASE_URL"
HOST_VAR = "OLLAMA_HOST"

ADDRESS = AddressRules(
    label="Ollama",
    variables=(BASE_URL_VAR, HOST_VAR),
    default_port=11434,
    # Not "localhost", which can resolve to ::1 where Ollama does not listen.
    default_host="127.0.0.1",
    # Ollama's own special case: the hosted service.
    special={"ollama.com": "https://ollama.com:443"},
    # envconfig.Host (all tags from v0.11 to v0.33) picks port 80/443 only for a scheme
    # written exactly "http"/"https"; "HTTP://host" keeps 11434, and Ollama's client then
    # lowercases the scheme when it re-parses the URL.
    exact_scheme_port=True,
    remote_example="https://gpu-box.example/ollama",
)

DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"
_NAMESPACE = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"
_HOST = r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"
_NAME = re.compile(rf"^(?:(?:{_HOST})/)?(?:(?:{_NAMESPACE})/)?{_PART}(?::{_PART})?$")


def split(name: str) -> tuple[str, str, str, str]:
    """(registry, namespace, model, tag) with Ollama's defaults filled in."""
    tag = DEFAULT_TAG
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    parts = name.split("/")
    if len(parts) >= 3:
        return parts[0], "/".join(parts[1:-1]), parts[-1], tag
    if len(parts) == 2:
        return DEFAULT_REGISTRY, parts[0], parts[1], tag
    return DEFAULT_REGISTRY, DEFAULT_NAMESPACE, parts[0], tag


# Where Ollama forwards a cloud model's requests: the remote_host of every cloud stub since
# v0.12.0, and the default of OLLAMA_CLOUD_BASE_URL (server/cloud_proxy.go,
# defaultCloudProxyBaseURL) since v0.18.0, which forwards any ":cloud"/"-cloud" name even with
# no stub installed.
CLOUD_HOST = "https://ollama.com:443"


class OllamaNames:
    """Ollama's model names: ``llama3``, ``llama3:latest``, ``library/llama3`` and
    ``registry.ollama.ai/library/llama3:latest`` name one model, looked up case-insensitively."""

    example = "llama3.2:3b"
    remote_host: str | None = CLOUD_HOST
    remote_evidence = "Ollama forwards ':cloud' and '-cloud' models to ollama.com"

    def check(self, name: str) -> None:
        """Raise ConfigurationError when ``name`` breaks Ollama's grammar."""
        if not _NAME.match(name):
            raise ConfigurationError(
                f"{name!r} is not a valid Ollama model name.",
                hint="Names look like llama3.2:3b, namespace/model:tag or hf.co/org/repo:Q4_K_M "
                "(letters, digits, '_', '-', '.'; no spaces).",
            )

    def canonical(self, name: str) -> str:
        """The short display form, lower-cased, always tagged."""
        registry, namespace, model, tag = split(name.strip())
        prefix = ""
        if registry.lower() != DEFAULT_REGISTRY:
            prefix = f"{registry}/{namespace}/"
        elif namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{namespace}/"
        return f"{prefix}{model}:{tag}".lower()

    def is_remote(self, name: str) -> bool:
        """True for a cloud model: Ollama forwards its requests to its hosted service."""
        tag = split(name.strip())[3].lower()
        return tag == "cloud" or tag.endswith("-cloud") or tag.endswith(":cloud")


NAMES = OllamaNames()
# Ollama's own options beyond the common sampling ones (api/types.go Options and Runner;
# draft_num_predict since v0.30): a wrong type is an error from the server, so it is checked
# first; an unknown one is ignored silently (docs/reference/ollama-protocol.md, "Options").
OPTIONS = {
    "num_ctx": INT,
    "num_predict": INT,
    "num_keep": INT,
    "num_batch": INT,
    "num_gpu": INT,
    "main_gpu": INT,
    "num_thread": INT,
    "draft_num_predict": INT,
    "use_mmap": BOOL,
}
# Before v0.12.6 Ollama cuts an over-long prompt to num_ctx tokens and still answers 200: its
# runners ignore truncate=false and keep exactly num_ctx tokens, the first num_keep and the end
# (runner/ollamarunner/runner.go NewSequence); from v0.12.6 they refuse instead
# (docs/reference/ollama-protocol.md, "Context and truncation").
CONTEXT = ContextWords(
    would_cut="Ollama would have silently dropped part of the input",
    fills_window="an Ollama server older than 0.12.6 cuts a longer prompt to fit, so part of "
    "the input was probably dropped. Pass a larger num_ctx, use a model with a longer context, "
    "or update Ollama (0.12.6 and later refuse instead of cutting).",
    # Ollama's option names, which this provider's callers also use with the /v1 backend.
    window_name="num_ctx",
    answer_name="num_predict",
    smaller_window="a smaller num_ctx",
)
DECLARATION = Declaration(
    address=ADDRESS,
    speaks="Ollama's /api/chat",
    names=NAMES,
    options=OPTIONS,
    context=CONTEXT,
    unknown_option="an Ollama server that does not know it ignores it silently",
)
