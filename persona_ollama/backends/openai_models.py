"""Which /v1 server this is, and what it says of its models.

The kind of server from /v1/models (vLLM, llama.cpp, LM Studio, LiteLLM, Ollama), the entry
serving a model, and what each kind adds to that listing: the same server's native /api/tags
and /api/show (Ollama's /v1 forwards cloud models without saying so), llama.cpp's /props and
LM Studio's /api/v0/models.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..errors import OllamaError
from .openai_rules import ServedIds, folded
from .openai_sse import as_mapping, positive_int
from .registry import declared

if TYPE_CHECKING:
    from ..transport.http import Transport
    from .rules import NameRules

log = logging.getLogger(__name__)
# Ollama's model names (the native backend's rules): its /v1 and its /api/tags take them.
OLLAMA_NAMES = declared("native").names

# Keys of a /v1/models entry that give the served context length: vLLM's max_model_len, a
# generic context_length; llama.cpp's entry has meta.n_ctx_train instead.
CONTEXT_KEYS = ("max_model_len", "context_length")
# What each server says in /v1/models' owned_by: vLLM (ModelCard's default), llama.cpp's
# llama-server, LM Studio, Ollama (the namespace of a library model); llama-cpp-python's
# server says "me" (with an empty "permissions" list), LiteLLM passes through "openai".
GENERIC = "OpenAI-compatible server"
# The statuses of a server without the native route asked for: nothing to learn there.
_NO_ROUTE = (404, 405, 501)
KINDS = {
    "vllm": "vLLM",
    "llamacpp": "llama.cpp",
    "organization_owner": "LM Studio",
    "library": "Ollama",
    "litellm": "LiteLLM",
}


def server_label(kind: str) -> str:
    """How messages name a server of ``kind``: "the llama.cpp server", "the vLLM server"."""
    return kind if kind == GENERIC else f"{kind} server"


def server_kind(entry: Mapping[str, Any]) -> str:
    """Which server a /v1/models entry comes from: "vLLM", "llama.cpp", "LM Studio",
    "LiteLLM", "Ollama", or "OpenAI-compatible server" when it does not say."""
    owner = entry.get("owned_by")
    if isinstance(owner, str) and owner.lower() in KINDS:
        return KINDS[owner.lower()]
    if isinstance(owner, str) and owner and _owned_as_ollama_says(entry["id"], owner):
        return "Ollama"
    if isinstance(entry.get("meta"), Mapping):  # llama-server's GGUF metadata
        return "llama.cpp"
    if owner == "me" and entry.get("permissions") == []:  # llama-cpp-python's server
        return "llama.cpp"
    return GENERIC


def _owned_as_ollama_says(model_id: str, owner: str) -> bool:
    """True when ``owner`` is the namespace of the tagged name ``model_id``: Ollama's
    /v1/models says each model's namespace as its owner (openai/openai.go ToListCompletion,
    ``model.ParseName(m.Name).Namespace``), so "library" for a library model but "myuser"
    for "myuser/notes:latest" and "bartowski" for "hf.co/bartowski/x-GGUF:Q4_K_M"; its
    listing always names the tag."""
    tagged = model_id.rfind(":") > model_id.rfind("/")
    # Go's ParseName reads from the right: the model after the last "/", the namespace before.
    before_model = model_id.rpartition("/")[0]
    return tagged and bool(before_model) and before_model.rpartition("/")[2] == owner


def context_length_of(entry: Mapping[str, Any]) -> int | None:
    """The context length a /v1/models entry states (vLLM, llama.cpp), or None."""
    for key in CONTEXT_KEYS:
        length = positive_int(entry.get(key))
        if length:
            return length
    return positive_int(as_mapping(entry.get("meta")).get("n_ctx_train"))


def entries_of(transport: Transport, document: Any) -> list[dict[str, Any]]:
    """The one reading of a /v1/models document: its entries that have an id (``data`` is
    null on an empty Ollama); the first says which kind of server this is."""
    listing = transport.expect_dict(document, "/v1/models")
    data = transport.expect_list(listing, "data", "/v1/models")
    return [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str)]


def names_of(kind: str, entries: Iterable[Mapping[str, Any]] = ()) -> NameRules:
    """The model-name rules of a ``kind`` of /v1 server listing ``entries``: Ollama's on
    Ollama (its /v1 takes its own names, so "llama3.2" is "llama3.2:latest"), else the ids as
    listed, a spelling that differs only in case naming the one id it folds to (ServedIds:
    vLLM's "Org/Model" or a path is not lower-cased or tagged). A proxy listing Ollama's
    models beside others keeps each entry's own rules (see :func:`same_name`), whichever
    entry comes first."""
    listed = list(entries)
    ollama = [entry["id"] for entry in listed if server_kind(entry) == "Ollama"]
    if kind == "Ollama" and len(ollama) == len(listed):
        return OLLAMA_NAMES
    return ServedIds((entry["id"] for entry in listed), dict.fromkeys(ollama, OLLAMA_NAMES))


def native_key(name: str) -> str:
    """The key of ``name`` in :func:`remote_fields`: a native /api/tags lists Ollama names."""
    return OLLAMA_NAMES.canonical(name)


def entries_serving(entries: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """The entries that ``model`` names: the one with the exact id, else every one whose id is
    the same name by the rules of the kind of server that lists it (:func:`same_name`). Two or
    more: ids that differ only in case ("Qwen" and "qwen"), which ``model`` cannot tell apart."""
    exact = [e for e in entries if e["id"] == model]
    if exact:
        return exact[:1]
    # Each entry by its own kind's rules: a proxy may list Ollama's models beside others.
    return [e for e in entries if same_name(model, e["id"], server_kind(e))]


def same_name(model: str, served: str, kind: str) -> bool:
    """True when ``model`` names the id ``served`` by a ``kind`` of server: Ollama's rules on
    Ollama, else the same id but for case (openai_rules.folded)."""
    if kind == "Ollama":
        return OLLAMA_NAMES.canonical(model) == OLLAMA_NAMES.canonical(served)
    return folded(model) == folded(served)


def remote_fields(
    transport: Transport, url: str, kind: str, *, deadline: float | None = None
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """canonical name -> remote fields, from the same server's native GET /api/tags, and
    why they could not be read (None when they could, or when there is no such API).

    Ollama's /v1/models does not say which models it forwards elsewhere (openai/openai.go
    ``Model`` has id, object, created and owned_by only), but its /api/tags does (v0.12+):
    without it a model created FROM a cloud model could be chosen as the default, and
    local-only mode would let it through. Other servers answer 404: nothing to add. On
    Ollama (or a server that does not say what it is) a listing that fails or is malformed
    leaves every model's placement unknown, which local-only mode refuses.
    """
    might_forward = kind in ("Ollama", GENERIC)
    try:
        response = transport.send(
            "GET", "/api/tags", stream=True, retries=0, timeout=transport.quick, deadline=deadline
        )
        body = transport.json(response, deadline=deadline)
    except OllamaError as error:
        log.debug("no native /api/tags at %s: %s", url, error.message)
        # Ollama always has /api/tags: a 404 there is a proxy hiding where models run.
        if not might_forward or (error.status_code in _NO_ROUTE and kind != "Ollama"):
            return {}, None
        return {}, f"its native model list failed: {error.message}"
    models = body.get("models") if isinstance(body, dict) else None
    if not isinstance(models, list):
        return {}, ("its native model list is malformed" if might_forward else None)
    found: dict[str, dict[str, Any]] = {}
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            continue
        # The size only on Ollama itself: other /v1 servers may answer an Ollama-style
        # /api/tags too (a tiny test GGUF would look like a stub).
        keys = ("remote_host", "remote_model", "size") if kind == "Ollama" else ()
        fields = {k: model[k] for k in keys or ("remote_host", "remote_model") if model.get(k)}
        if fields:
            found[native_key(model["name"])] = fields
    return found, None


def shown_remote_fields(
    transport: Transport, url: str, model: str, *, deadline: float | None = None
) -> tuple[dict[str, Any], str | None]:
    """The remote fields Ollama's POST /api/show gives ``model``, and why they could not
    be read (None when they could)."""
    try:
        show = transport.expect_dict(
            transport.post_json(
                "/api/show", {"model": model}, timeout=transport.quick, deadline=deadline
            ),
            "/api/show",
        )
    except OllamaError as error:
        log.debug("no /api/show for %s at %s: %s", model, url, error.message)
        return {}, f"its description of the model failed: {error.message}"
    return {k: show[k] for k in ("remote_host", "remote_model") if show.get(k)}, None


def slot_context(transport: Transport, url: str, *, deadline: float | None = None) -> int | None:
    """llama.cpp's context per slot (GET /props), which may be less than it was trained for."""
    try:
        props = transport.expect_dict(transport.get_json("/props", deadline=deadline), "/props")
    except OllamaError as error:
        log.debug("no /props from %s: %s", url, error.message)
        return None
    settings = as_mapping(props.get("default_generation_settings"))
    return positive_int(settings.get("n_ctx")) or positive_int(props.get("n_ctx"))


def lm_studio_context(
    transport: Transport, url: str, model: str, *, deadline: float | None = None
) -> int | None:
    """LM Studio's context for ``model`` from its own REST API (GET /api/v0/models/<id>):
    the length it is loaded with, else the longest it can be loaded with."""
    try:
        path = "/api/v0/models/" + quote(model, safe="")
        entry = transport.expect_dict(transport.get_json(path, deadline=deadline), path)
    except OllamaError as error:
        log.debug("no LM Studio model entry from %s: %s", url, error.message)
        return None
    return positive_int(entry.get("loaded_context_length")) or positive_int(
        entry.get("max_context_length")
    )
