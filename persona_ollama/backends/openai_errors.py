"""The failures of a /v1 server, in the terms of the kind of server found.

An HTTP error status, an error event inside a 200 stream, an interrupted answer, a model not
served, no connection or a silence: each becomes the package's typed error, with advice in
the commands that work on that kind of server (openai_models.py says which kind it is).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from ..errors import (
    MAX_LISTED,
    ConnectionBrokenError,
    ContextOverflowError,
    InsufficientMemoryError,
    ModelNotAvailableError,
    ModelRunnerError,
    ServerAuthenticationError,
    ServerBusyError,
    ServerError,
    ServerNotRunningError,
    ServerResponseError,
    ServerTimeoutError,
    SignInRequiredError,
    closest_models,
    is_out_of_memory,
    misspells,
)
from ..settings import API_KEY_VAR, TIMEOUT_VAR
from .openai_models import GENERIC, OLLAMA_NAMES, server_label

# The sizes in a context_length_exceeded error: llama-cpp-python, older vLLM and OpenAI say
# "you requested N tokens (P in the messages, ...)", vLLM since about 0.10 "your request has
# P input tokens" (its serving layer's input validation).
_SIZES = re.compile(
    r"maximum context length is (\d+) tokens.*?"
    r"(?:requested (\d+) tokens(?: \((\d+) in the messages)?|request has (\d+) input tokens)",
    re.DOTALL,
)
# A Python traceback frame in a server's error text (llama-cpp-python puts one in its 500s).
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+.*$|^\s*(GET|POST) /\S*\s*$', re.MULTILINE)

# What to do about an interrupted answer, where the server kind is known to do it.
INTERRUPT_HINTS = {
    "llama.cpp": "llama-cpp-python's server interrupts a running answer when another request "
    "arrives: start it with --interrupt_requests False, or send one request at a time "
    "(pool_size=1).",
}

# Where a server of each kind writes its log, for the hints that say to read it.
LOG_PLACES = {"Ollama": "`ollama serve` output or ~/.ollama/logs/server.log"}
# Texts by which a server says the process running the model died or failed (Ollama's /v1
# passes its scheduler's: llm/server.go, llm/llama_server.go).
_RUNNER_DIED = (
    "model runner has unexpectedly stopped",
    "error was encountered while running the model",
    "process has terminated",
    "process no longer running",
)
# An error event by which a proxy says that ITS connection to the machine behind it broke
# mid-answer: the same as a broken connection to the client, so generate() asks again and the
# proxy picks a machine that is up. LiteLLM (1.108) sends "litellm.APIConnectionError: ...
# Response payload is not completed: <TransferEncodingError ...>" when an Ollama behind it dies
# (found by tests/scaleout/test_litellm_a2.py).
# Not the name "APIConnectionError" alone: LiteLLM gives it to most errors of an Ollama behind
# it, answers included ("... - {"error":"model 'x' not found, try pulling it first"}",
# BerriAI/litellm#1735, #32898), which asking again would only repeat; only the words of the
# aiohttp/OS error of a connection that broke or could not be made.
_UPSTREAM_BROKE_MARKERS = (
    "payload is not completed",  # aiohttp: the body was cut (the machine died mid-answer)
    "cannot connect to host",  # aiohttp: the machine is down
    "server disconnected",  # aiohttp: closed before the headers
    "connection reset by peer",
    "connection refused",
    "no connection could be made",  # Windows' "connection refused" (WinError 10061)
)
# Texts by which /v1 servers refuse a prompt longer than their context.
_OVERFLOW_MARKERS = (
    "maximum context length",  # vLLM, OpenAI, llama-cpp-python
    "longer than the maximum model length",  # vLLM
    "exceeds the available context",  # llama-server
    "exceed_context_size_error",
    "context_length_exceeded",
    # Ollama's /v1 (0.30.9+), context shift off: llm/llama_server.go completionPromptForRequest
    "prompt is longer than the context length",
)


def read_the_log(kind: str) -> str:
    """The advice to read the log of a server of ``kind``, saying where it is when known."""
    place = LOG_PLACES.get(kind)
    return f"check the {server_label(kind)}'s log" + (f" ({place})" if place else "")


def out_of_memory(
    text: str, *, label: str, url: str, status: int, model: str | None
) -> InsufficientMemoryError:
    """The server could not load ``model`` for lack of memory (``text`` is its own words)."""
    name = f"'{model}'" if model else "the model"
    return InsufficientMemoryError(
        f"The {label} at {url} could not load {name}: not enough memory ({text}).",
        hint="Pick a smaller model (`persona-ollama recommend` lists those that fit), close "
        "other programs that use memory, or start the server with a shorter context "
        "(llama.cpp: -c; vLLM: --max-model-len; Ollama: OLLAMA_CONTEXT_LENGTH).",
        server_text=text,
        status_code=status,
        url=url,
    )


def start_advice(kind: str, model: str) -> str:
    """How to make a server of ``kind`` serve ``model``, in the commands that work there (the
    name quoted for a shell where it needs it: a /v1 id may hold spaces)."""
    arg = shlex.quote(model)
    return {
        "vLLM": f"start it with that model: `vllm serve <repo> --served-model-name {arg}`",
        "llama.cpp": f"start it with that model: `llama-server -m <file.gguf> --alias {arg}` "
        f"(llama-cpp-python: `python -m llama_cpp.server --model <file.gguf> "
        f"--model_alias {arg}`)",
        "LM Studio": "load that model in LM Studio (or `lms load <model>`)",
        "LiteLLM": f"add '{model}' to the proxy's model_list",
        "Ollama": f"run `ollama pull {model}` on that machine",
    }.get(kind, "start the server with that model")


def without_paths(text: str) -> str:
    """``text`` without the traceback frames (file paths on the server) some servers add."""
    return re.sub(r"\n{3,}", "\n\n", _FRAME.sub("", text)).strip()


def status_error(status: int, text: str, *, model: str | None, url: str, kind: str) -> ServerError:
    """An HTTP error status of the ``kind`` server at ``url`` (``text``: its words, without
    traceback frames), except a model not served, which the backend names with the list."""
    label = server_label(kind)
    lowered = text.lower()
    common: dict[str, Any] = {"server_text": text, "status_code": status, "url": url}
    if any(marker in lowered for marker in _OVERFLOW_MARKERS):
        return overflow(text, status, url=url, kind=kind)
    if is_out_of_memory(text):
        return out_of_memory(text, label=label, url=url, status=status, model=model)
    if any(marker in lowered for marker in _RUNNER_DIED):
        return ModelRunnerError(
            f"The {label} at {url} could not run {f'{model!r}' if model else 'the model'}: {text}",
            hint="The process running the model crashed or was killed; nothing was "
            f"answered. Retry; if it repeats, {read_the_log(kind)}, "
            "or try another model.",
            **common,
        )
    if status >= 500 and any(marker in lowered for marker in _UPSTREAM_BROKE_MARKERS):
        # A proxy (LiteLLM) that could not reach the machine it chose: nothing was
        # generated, so generate() may send it again (restart.py).
        return ConnectionBrokenError(
            f"The {label} at {url} could not reach the machine behind it (HTTP {status}): {text}",
            hint="A machine behind the proxy may be down; check the proxy's and the "
            "machines' logs.",
            **common,
        )
    if status in (401, 403):
        refusal = cloud_refusal(status, text, model, url=url, kind=kind)
        if refusal is not None:
            return refusal
    if status in (429, 503):
        return ServerBusyError(
            f"The {label} at {url} is busy and kept refusing the request (HTTP {status}).",
            hint="Retry later, or send fewer requests at once (a smaller pool_size).",
            **common,
        )
    if status in (401, 403):
        return ServerAuthenticationError(
            f"The {label} at {url} refused the request (HTTP {status})"
            + (f": {text}" if text else "."),
            hint=f"Pass the server's API key (api_key=... or {API_KEY_VAR}).",
            **common,
        )
    hint = None
    if "does not support thinking" in lowered:  # Ollama's /v1, for a model that cannot
        hint = "This model cannot think: pass think=False (CLI: --no-think)."
    elif "does not support chat" in lowered:  # Ollama's /v1 (routes.go ChatHandler):
        # an embedder, which /v1/models cannot tell apart from a chat model
        hint = "This is an embedding model; pick a chat model (`persona-ollama models`)."
    elif status in (404, 405):
        hint = (
            "Check the address: it should be the server's root or its /v1 "
            "(`persona-ollama doctor --api openai`), not a proxy's error page."
        )
    return ServerResponseError(
        f"The {label} at {url} answered HTTP {status}: {text or '(empty body)'}",
        hint=hint,
        **common,
    )


def cloud_refusal(
    status: int, text: str, model: str | None, *, url: str, kind: str
) -> ServerAuthenticationError | None:
    """Ollama's refusal to forward to ollama.com, as its /v1 says it (the native body's
    signin_url is lost there: middleware/openai.go writeError keeps the message only):
    401 "unauthorized" when signed out, 403 "ollama cloud is disabled" with OLLAMA_NO_CLOUD
    (internal/cloud DisabledError). None for any other 401/403 (an API key, a proxy)."""
    common: dict[str, Any] = {"server_text": text, "status_code": status, "url": url}
    name = f"'{model}'" if model else "the model"
    if status == 403 and text.lower().startswith("ollama cloud is disabled"):
        return ServerAuthenticationError(
            f"The {server_label(kind)} at {url} refused {name}: {text}. It is a cloud "
            "model, and cloud models are turned off on that server.",
            hint="Pick a local model (`persona-ollama models`).",
            **common,
        )
    # Ollama by its /v1/models, or a server of unknown kind asked for a cloud name.
    ollama = kind == "Ollama" or (kind == GENERIC and bool(model and OLLAMA_NAMES.is_remote(model)))
    if status != 401 or text.strip().lower() != "unauthorized" or not ollama:
        return None
    return SignInRequiredError(
        f"Model {name} runs on ollama.com, and the Ollama server at {url} is not "
        "signed in to it (HTTP 401).",
        hint="Run `ollama signin` on the machine where Ollama runs, or pick a local model "
        f"(`persona-ollama models`). If a proxy guards the server, pass its API key "
        f"(api_key=... or {API_KEY_VAR}).",
        **common,
    )


def overflow(text: str, status: int, *, url: str, kind: str) -> ContextOverflowError:
    """The server's refusal of a long prompt, with the sizes its text gives."""
    label = server_label(kind)
    match = _SIZES.search(text)
    if match is None:
        return ContextOverflowError(
            f"The prompt is longer than the context the {label} at {url} gives "
            "the model; it refused the request, nothing was cut.",
            hint="Shorten the input, or restart the server with a longer context "
            "(llama.cpp: --n_ctx / -c; vLLM: --max-model-len; Ollama: "
            "OLLAMA_CONTEXT_LENGTH).",
            server_text=text,
            status_code=status,
            url=url,
        )
    window = int(match.group(1))
    prompt = int(match.group(3) or match.group(2) or match.group(4))
    return ContextOverflowError(
        f"The prompt needs {prompt} tokens, but the {label} at {url} gives "
        f"the model a context of {window}; it refused the request, nothing was cut.",
        prompt_tokens=prompt,
        context_length=window,
        hint="Shorten the input (fewer or shorter documents per run), or restart the "
        "server with a longer context (llama.cpp: --n_ctx / -c; vLLM: --max-model-len).",
        server_text=text,
        status_code=status,
        url=url,
    )


def error_event(text: str, *, url: str, kind: str, kind_seen: str, model: str) -> ServerError:
    """An error event in the middle of a 200 stream (``text``: its words, without traceback
    frames); the partial answer is discarded."""
    label = server_label(kind)
    if is_out_of_memory(text):
        return out_of_memory(text, label=label, url=url, status=200, model=model)
    if any(marker in text.lower() for marker in _OVERFLOW_MARKERS):
        # Named as /v1/models named the server, like a refusal by status.
        return overflow(text, 200, url=url, kind=kind_seen)
    if any(marker in text.lower() for marker in _UPSTREAM_BROKE_MARKERS):
        return ConnectionBrokenError(
            f"The {label} says its connection to the machine behind it broke in the "
            f"middle of the answer: {text}; the partial answer was discarded.",
            hint="A machine behind the proxy may have crashed or restarted; check "
            "the proxy's and the machines' logs.",
            server_text=text,
            status_code=200,
            url=url,
        )
    return ServerResponseError(
        f"The {label} stopped with an error in the middle of the answer: {text}",
        hint="The partial answer (if any) was discarded. Retry; if it repeats, "
        f"{read_the_log(kind)}.",
        server_text=text,
        status_code=200,
        url=url,
    )


def interrupted(*, url: str, kind: str) -> ServerResponseError:
    """[DONE] before any finish reason: the answer was interrupted."""
    return ServerResponseError(
        f"The {server_label(kind)} at {url} ended the answer with [DONE] before it was "
        "finished (no finish reason): it was interrupted, and the partial answer was "
        "discarded.",
        hint=INTERRUPT_HINTS.get(kind, "Check the server's log, and retry."),
        url=url,
    )


def not_served(
    model: str,
    listed: list[str] | None,
    *,
    url: str,
    kind: str,
    server_text: str | None = None,
    status_code: int | None = None,
) -> ModelNotAvailableError:
    """The error for a model the server does not serve (``listed``: the ids it serves, None
    when unknown): the names it serves, and how to start this kind of server with it."""
    suggestions = closest_models(model, listed or [])
    if listed is None:
        listing = "GET /v1/models lists the ones it serves"
    elif listed:
        ordered = [*suggestions, *(name for name in listed if name not in suggestions)]
        more = ", ..." if len(ordered) > MAX_LISTED else ""
        listing = "it serves " + ", ".join(ordered[:MAX_LISTED]) + more
    else:
        listing = "it lists no models"
    label = server_label(kind)
    # A close served name is the likely meaning. Serving the name as typed is advised too
    # unless it is a misspelling (one edit away) or the untagged name of a served model:
    # qwen3:0.6b beside qwen3:8b is a model of its own.
    remedy = f"Pass a name it serves, or {start_advice(kind, model)}"
    if suggestions:
        untagged = ":" not in model and any(
            model.lower() == name.lower().split(":", 1)[0] for name in listed or []
        )
        remedy = f"Did you mean {suggestions[0]}? It is served and has a similar name"
        if not untagged and not misspells(model, listed or []):
            remedy += f"; to use '{model}' itself, {start_advice(kind, model)}"
    return ModelNotAvailableError(
        f"Model '{model}' is not served by the {label} at {url}.",
        model=model,
        suggestions=suggestions,
        hint=f"The {label} does not serve '{model}' ({listing}). {remedy}.",
        server_text=server_text,
        status_code=status_code,
        url=url,
    )


def same_but_case(
    model: str, ids: list[str], *, url: str, kind: str, status_code: int | None = None
) -> ModelNotAvailableError:
    """The error for a spelling that two or more served ``ids`` share but for case ("QWEN"
    beside "Qwen" and "qwen"): each is a model of its own, so the model is named exactly."""
    named = ", ".join(f"'{served}'" for served in ids[:-1]) + f" and '{ids[-1]}'"
    label = server_label(kind)
    return ModelNotAvailableError(
        f"Model '{model}' could be any of {len(ids)} models served by the {label} at {url}: "
        f"{named}, whose ids differ only in case; nothing was sent.",
        model=model,
        suggestions=ids,
        hint=f"Pass the id of the one you mean exactly as the {label} lists it, "
        f"e.g. model={ids[0]!r}.",
        status_code=status_code,
        url=url,
    )


def not_running(reason: str, *, url: str, kind: str) -> ServerNotRunningError:
    """No connection: start the server, or fix the address."""
    return ServerNotRunningError(
        f"Cannot reach the {server_label(kind)} at {url}: {reason}.",
        hint="Start the server (e.g. `vllm serve <model>`, `llama-server -m <file.gguf>`, "
        "LM Studio's server or `ollama serve`), or correct base_url / OLLAMA_HOST: "
        "vLLM listens on http://host:8000/v1 by default.",
        url=url,
    )


def silent(seconds: float, *, url: str, kind: str) -> ServerTimeoutError:
    """Nothing for ``seconds``: loading, or a long queue."""
    return ServerTimeoutError(
        f"The {server_label(kind)} at {url} sent nothing for {seconds:g} s.",
        hint="The server may be loading the model or working through a queue: raise the "
        f"timeout (timeout=600 or {TIMEOUT_VAR}=600), or send fewer requests at "
        "once (a smaller pool_size).",
        url=url,
    )
