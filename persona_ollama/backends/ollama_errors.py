"""Turn what the server said (status and body, or an ``{"error": ...}`` line) into our errors.

Pure functions, table-tested: Ollama's wording has changed between versions
(docs/reference/ollama-protocol.md, "Errors"), so every known variant is matched here and
nowhere else.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ..errors import (
    MODEL_NOT_FOUND,
    REASON_REFUSED,
    ContextOverflowError,
    InsufficientMemoryError,
    ModelNotAvailableError,
    ModelRunnerError,
    ServerAuthenticationError,
    ServerBusyError,
    ServerError,
    ServerNotRunningError,
    ServerResponseError,
    SignInRequiredError,
    closest_models,
    is_out_of_memory,
    misspells,
    server_text_of,
)
from ..errors import (
    wrong_shape as generic_wrong_shape,
)
from ..names import is_cloud

if TYPE_CHECKING:
    from ..choosing.catalogue import Catalogue
from ..settings import API_KEY_VAR, API_VAR

_CONTEXT_OVERFLOW = (
    "prompt is longer than the context length",
    # v0.12.6 and later with truncate=false: runner/*/runner.go errorInputTooLong
    "input length exceeds the context length",
    "exceeds the available context",  # llama.cpp's server (Ollama v0.30+ passes it through)
    "exceed_context_size_error",
    "maximum context length",  # vLLM, OpenAI: "This model's maximum context length is ..."
    "longer than the maximum model length",  # vLLM
)
# llama-server's overflow error (Ollama v0.30+ embeds its JSON body in the "error" string):
# {"error":{"code":400,"message":"request (5000 tokens) exceeds the available context size
# (4096 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":5000,
# "n_ctx":4096}}; older llama.cpp builds leave the numbers out of the message.
_PROMPT_TOKENS_FIELD = re.compile(r'n_prompt_tokens\\?"\s*:\s*(\d+)')
_N_CTX_FIELD = re.compile(r'n_ctx\\?"\s*:\s*(\d+)')
_SIZES_IN_MESSAGE = re.compile(
    r"\((\d+) tokens\) exceeds the available context size \((\d+) tokens\)"
)
# llm/server.go (v0.11-v0.24) and llm/llama_server.go (v0.30+): the runner process died.
_RUNNER_STOPPED = "model runner has unexpectedly stopped"
# The same files: an error line after output started ("...while running the model: <why>").
_RUNNER_FAILED = "error was encountered while running the model"
# The same files, WaitUntilRunning: the runner died while loading ("llama runner process has
# terminated: exit status 2", v0.30+ "llama-server process has terminated: ..."), sent as 500
# by server/routes.go handleScheduleError.
_RUNNER_DIED = ("process has terminated", "process no longer running")
_BUSY = "server busy"


# Where Ollama is downloaded, for the hint of a server that is not running.
INSTALL_URL = "https://ollama.com/download"
# The request option that sets the model's window: the name messages give the window sent.
WINDOW_OPTION = "num_ctx"


def wrong_shape(field: str, expected: str, value: object, url: str = "") -> ServerResponseError:
    """The kernel's error for an answer field of the wrong type, with Ollama's advice."""
    return generic_wrong_shape(
        field,
        expected,
        value,
        url,
        hint="Check that the URL points at an Ollama server (or an OpenAI-compatible one with "
        "api='openai'), and that it is up to date.",
    )


def pull_hint(model: str) -> str:
    """The one pull command the plugin advises everywhere: ours, which shows progress."""
    return f"Run `persona-ollama pull {model}` to download it, then try again."


def model_not_pulled(
    model: str,
    *,
    url: str | None = None,
    server_text: str | None = None,
    status_code: int | None = None,
    installed: list[str] | None = None,
) -> ModelNotAvailableError:
    """The error for a missing model: the closest installed names first (a typo is likelier
    than a model never pulled), then the closest catalogue names, then the pull command.

    Pulling ``model`` itself is advised unless it is a misspelling: one edit (a letter added,
    dropped or changed) from an installed or catalogued name, which would only fail to pull.
    A name further from them may be a library model the catalogue lacks (qwen3:0.6b beside
    qwen3:4b), so it keeps its pull command after the similar names."""
    suggestions = closest_models(model, installed or [])
    catalogue = _packaged_catalogue()
    known = catalogue is not None and model in catalogue
    catalogued = [spec.name for spec in catalogue] if catalogue is not None else []
    pullable = known or not misspells(model, [*(installed or []), *catalogued])
    if _is_embedding_model(model, catalogue):
        # Pulling it (hundreds of MB) would only end in "it is an embedding model".
        hint = (
            f"{model} is an embedding model: it turns text into vectors and cannot write "
            "personas, so pulling it would not help. Pick a chat model: `persona-ollama models` "
            "lists the installed ones, `persona-ollama recommend` suggests one to pull."
        )
    elif suggestions:
        if len(suggestions) == 1:
            hint = f"Did you mean {suggestions[0]}? It is installed and has a similar name."
        else:
            hint = "Did you mean one of these installed models? " + ", ".join(suggestions) + "."
        if pullable:
            hint += f" To use '{model}' itself, run `persona-ollama pull {model}` first."
    elif not known and catalogue_names_like(model, catalogue):
        hint = did_you_mean_catalogue(catalogue_names_like(model, catalogue))
        if pullable:
            hint += (
                f" If you meant '{model}' itself, `persona-ollama pull {model}` downloads it "
                "when the library (https://ollama.com/library) has it."
            )
    else:
        hint = pull_hint(model)
    if installed == []:
        hint += " No model is installed yet: `persona-ollama recommend` suggests one."
    where = f" on the Ollama server at {url}" if url else ""
    return ModelNotAvailableError(
        f"Model '{model}' is not installed{where}.",
        model=model,
        suggestions=suggestions,
        hint=hint,
        server_text=server_text,
        status_code=status_code,
        url=url,
    )


def _packaged_catalogue() -> Catalogue | None:
    """The packaged catalogue; a user's is not read here: a malformed one must not turn an
    error message into another error."""
    from ..choosing.catalogue import load_catalogue

    try:
        return load_catalogue({})
    except ServerError:
        return None


def catalogue_names_like(model: str, catalogue: Catalogue | None) -> list[str]:
    """Chat models of the catalogue whose names are most like ``model`` (a misspelling of a
    library name: ``lama3.2`` -> llama3.2:3b, llama3.2:1b), closest first."""
    if catalogue is None:
        return []
    chat = [spec.name for spec in catalogue if not spec.embedding]
    return closest_models(model, chat)


def did_you_mean_catalogue(names: list[str]) -> str:
    """The hint naming catalogue models like the one asked for, and how to pull the first."""
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return (
        f"Did you mean {listed}? "
        f"The catalogue has {'it' if len(names) == 1 else 'these'}: "
        f"`persona-ollama pull {names[0]}` downloads {names[0]}."
    )


def _is_embedding_model(model: str, catalogue: Catalogue | None) -> bool:
    """``model`` is embedding-only by the selection's one predicate: the catalogue, else its
    name."""
    from ..choosing.selection import is_embedding_only
    from ..model_info import ModelInfo

    return is_embedding_only(ModelInfo(model), catalogue)


def overflow_sizes(body: str) -> tuple[int | None, int | None]:
    """(prompt tokens, context length) from an overflow error body, where the server gives them.

    Ollama v0.30+ passes llama-server's JSON error through (fields ``n_prompt_tokens`` and
    ``n_ctx``, escaped or not); the message also names both. Older texts carry neither.
    """
    prompt = _PROMPT_TOKENS_FIELD.search(body)
    window = _N_CTX_FIELD.search(body)
    if prompt and window:
        return int(prompt.group(1)), int(window.group(1))
    sizes = _SIZES_IN_MESSAGE.search(body)
    if sizes:
        return int(sizes.group(1)), int(sizes.group(2))
    return None, None


def context_overflow_from_server(
    server_text: str,
    *,
    status_code: int | None,
    url: str | None,
    body: str | None = None,
) -> ContextOverflowError:
    """The error for a prompt the server refused for length, with both sizes when it gave them."""
    prompt_tokens, context_length = overflow_sizes(body if body is not None else server_text)
    return ContextOverflowError(
        "The prompt is longer than the context the server made available to the model",
        refusal="it refused the request rather than cut the input.",
        window_name=WINDOW_OPTION,
        prompt_tokens=prompt_tokens,
        context_length=context_length,
        hint="Use a model with a longer context, pass a larger num_ctx, or shorten the input.",
        server_text=server_text,
        status_code=status_code,
        url=url,
    )


def runner_failed(
    text: str, *, model: str | None, status_code: int | None, url: str | None, started: bool
) -> ModelRunnerError:
    """The model's runner process died (before output) or failed mid-answer."""
    name = f"'{model}'" if model else "the model"
    if started:
        message = f"The server's runner for {name} failed in the middle of the answer: {text}"
    else:
        message = f"The server's runner for {name} stopped before answering: {text}"
    return ModelRunnerError(
        message,
        hint="Ollama's runner process crashed or was killed; the partial answer (if any) was "
        "discarded. Retry; if it repeats, read the server log (`ollama serve` output or "
        "~/.ollama/logs/server.log), update Ollama, or try a lower num_ctx or another model.",
        server_text=text,
        status_code=status_code,
        url=url,
    )


def error_from_status(status: int, body: str, *, url: str, model: str | None = None) -> ServerError:
    """Map an HTTP error status and body onto the hierarchy in :mod:`persona_ollama.errors`."""
    text = server_text_of(body)
    lowered = text.lower()
    common = {"server_text": text, "status_code": status, "url": url}

    match = MODEL_NOT_FOUND.search(text)
    if status == 404 and match:
        return model_not_pulled(model or match.group(1), **common)  # type: ignore[arg-type]
    if any(marker in lowered for marker in _CONTEXT_OVERFLOW):
        return context_overflow_from_server(text, status_code=status, url=url, body=body)
    if is_out_of_memory(lowered):
        return out_of_memory(text, model=model, status_code=status, url=url)
    died = any(marker in lowered for marker in _RUNNER_DIED)
    if _RUNNER_STOPPED in lowered or _RUNNER_FAILED in lowered or died:
        return runner_failed(text, model=model, status_code=status, url=url, started=False)
    if status in (429, 503) or _BUSY in lowered:
        return ServerBusyError(
            f"The Ollama server at {url} is busy and kept refusing the request (HTTP {status}).",
            hint="Its queue is full (OLLAMA_MAX_QUEUE): retry later, send fewer requests at "
            "once, or raise OLLAMA_NUM_PARALLEL on the server.",
            **common,  # type: ignore[arg-type]
        )
    cloud = cloud_refusal(status, body, text, url=url, model=model)
    if cloud is not None:
        return cloud
    if status in (401, 403):
        return ServerAuthenticationError(
            f"The server at {url} refused the request (HTTP {status})"
            + (f": {text}" if text else "."),
            hint=f"If a reverse proxy guards the server, set {API_KEY_VAR} (bearer token) "
            "or put user:password@ in the URL. A bare 403 from Ollama itself means it rejected "
            "the Host header: connect by IP address or localhost, or make the reverse proxy "
            "send `Host: localhost`.",
            **common,  # type: ignore[arg-type]
        )
    if status in (404, 405) and not text.startswith("model"):
        address_hint = (
            "Check the address: a reverse proxy path must be part of OLLAMA_BASE_URL "
            "(e.g. https://host/ollama); `persona-ollama doctor` checks the set-up."
        )
        # /api, or an endpoint's whole URL pasted from a curl example (/api/chat), or /v1
        # and its endpoints from an OpenAI-compatible set-up.
        pasted = re.search(r"/(api|v1)(/[a-z_]+)*/?$", url)
        if pasted and pasted.group(1) == "api":  # the API path is added to the base URL
            path = pasted.group(0).rstrip("/")
            address_hint = (
                f"The address ends in {path}: drop {path} (use {url[: pasted.start()]}). "
                "The plugin adds /api/... itself."
            )
        elif pasted:
            path = pasted.group(0).rstrip("/")
            openai = "pass" if path == "/v1" else "keep only /v1 and pass"
            address_hint = (
                f"The address ends in {path}, the OpenAI-compatible API: drop {path} to use "
                f"Ollama's native API, or {openai} api='openai' ({API_VAR}=openai)."
            )
        return ServerResponseError(
            f"{url} answered HTTP {status} ({text or 'no body'}): it does not look like an Ollama "
            "server, or it is too old for this endpoint.",
            hint=address_hint,
            **common,  # type: ignore[arg-type]
        )
    hint: str | None = None
    if "does not support thinking" in lowered:
        hint = "This model cannot think: pass think=False (CLI: --no-think)."
    elif "does not support chat" in lowered or "does not support generate" in lowered:
        hint = "This is an embedding model; pick a chat model (`persona-ollama models`)."
    elif "does not support tools" in lowered:
        hint = "This model has no tool support; pick one that lists 'tools' in its capabilities."
    elif "invalid model name" in lowered:
        hint = "Model names look like llama3.2:3b or namespace/model:tag."
    return ServerResponseError(
        f"The Ollama server at {url} answered HTTP {status}: {text or '(empty body)'}",
        hint=hint,
        **common,  # type: ignore[arg-type]
    )


def cloud_refusal(
    status: int, body: str, text: str, *, url: str, model: str | None
) -> ServerError | None:
    """The server refused to forward to ollama.com: signed out, or cloud turned off.

    Signed out, Ollama answers 401 ``{"error": "unauthorized", "signin_url": ...}`` (v0.12.1+,
    server/routes.go ChatHandler and server/cloud_proxy.go writeCloudUnauthorized; v0.12.0 sent
    ``public_key`` instead of the URL). With OLLAMA_NO_CLOUD (v0.17+) it answers 403
    ``ollama cloud is disabled: ...`` (internal/cloud DisabledError).
    """
    name = f"'{model}'" if model else "the model"
    subject = f"Model '{model}'" if model else "The model"
    common = {"server_text": text, "status_code": status, "url": url}
    if status == 403 and text.startswith("ollama cloud is disabled"):
        return ServerAuthenticationError(
            f"The Ollama server at {url} refused {name}: {text}. It is a cloud model, and "
            "cloud models are turned off on that server.",
            hint="Pick a local model (`persona-ollama models`).",
            **common,  # type: ignore[arg-type]
        )
    if status != 401:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or parsed.get("error") != "unauthorized":
        return None
    signin = parsed.get("signin_url")
    signin_url = signin if isinstance(signin, str) and signin else None
    if signin_url is None and "public_key" not in parsed and not (model and is_cloud(model)):
        # A plain 401: a reverse proxy, not Ollama's cloud. For a cloud name the bare form is
        # the server's own (v0.18+ server/cloud_proxy.go writeCloudUnauthorized, no link).
        return None
    hint = "Run `ollama signin` on the machine where Ollama runs"
    hint += f" (or open {signin_url})" if signin_url else ""
    hint += ", or pick a local model (`persona-ollama models`)."
    return SignInRequiredError(
        f"{subject} runs on ollama.com, and the Ollama server "
        f"at {url} is not signed in to it (HTTP 401).",
        signin_url=signin_url,
        hint=hint,
        **common,
    )


def error_from_stream_line(text: str, *, url: str, model: str | None) -> ServerError:
    """An ``{"error": ...}`` line after output had started (the status stayed 200).

    A runner that stops mid-answer crashed or failed; only an explicit memory message means
    the model ran out of memory.
    """
    readable = server_text_of(json.dumps({"error": text}))
    lowered = text.lower()
    if is_out_of_memory(lowered):
        return out_of_memory(readable, model=model, status_code=200, url=url)
    if any(marker in lowered for marker in _CONTEXT_OVERFLOW):
        return context_overflow_from_server(readable, status_code=200, url=url, body=text)
    if _RUNNER_STOPPED in lowered or _RUNNER_FAILED in lowered:
        # "unexpectedly stopped" means the request to the runner failed, so nothing had been
        # generated: servers before 0.12.6 send it as a 200 stream's only line.
        started = _RUNNER_STOPPED not in lowered
        return runner_failed(readable, model=model, status_code=200, url=url, started=started)
    return ServerResponseError(
        f"The server stopped with an error in the middle of the answer: {readable}",
        hint="The partial answer was discarded. Retry; if it repeats, check the server log "
        "(`ollama serve` output or ~/.ollama/logs/server.log).",
        server_text=readable,
        status_code=200,
        url=url,
    )


def error_from_pull_line(text: str, *, url: str, model: str | None) -> ServerError:
    """An ``{"error": ...}`` line in a pull's progress stream."""
    name = model or "the model"
    hint = "Retry: a pull resumes where it stopped. Check the server's disk space and network."
    if "file does not exist" in text or "not found" in text:
        hint = (
            f"The registry has no model named '{name}': check the name and tag at "
            "https://ollama.com/library (e.g. llama3.2:3b)."
        )
        like = catalogue_names_like(model, _packaged_catalogue()) if model else []
        if like:
            hint = f"The registry has no model named '{name}'. " + did_you_mean_catalogue(like)
    return ServerResponseError(
        f"Pulling '{name}' failed: {text}",
        hint=hint,
        server_text=text,
        status_code=200,
        url=url,
    )


def out_of_memory(
    text: str, *, model: str | None, status_code: int | None, url: str | None
) -> InsufficientMemoryError:
    """The error for a server that could not load ``model`` for lack of memory (its ``text``)."""
    name = f"'{model}'" if model else "the model"
    return InsufficientMemoryError(
        f"The server could not load {name}: not enough memory ({text}).",
        hint="Pick a smaller model (`persona-ollama recommend` lists those that fit), close "
        "other programs that use memory, or lower num_ctx.",
        server_text=text,
        status_code=status_code,
        url=url,
    )


def not_running(
    url: str, reason: str, *, bind_address_mapped: bool = False
) -> ServerNotRunningError:
    """Nothing answers at ``url``: name the URL and lead with the likeliest fix for ``reason``.

    A refused connection reached the machine, so Ollama is not running there; an unreachable
    host, a name that does not resolve or a timeout means the address or the network is wrong,
    and starting Ollama here would not help.
    """
    if reason == REASON_REFUSED:
        hint = (
            "Start the server with `ollama serve` (or open the Ollama app). Not installed? See "
            f"{INSTALL_URL}. If Ollama runs on another machine or port, set OLLAMA_HOST "
            "(e.g. OLLAMA_HOST=gpu-box:11434)."
        )
    else:
        hint = (
            f"Check the address in OLLAMA_HOST (or OLLAMA_BASE_URL, or --host): {url} is not "
            "reachable from this machine. Check that the server is switched on and on a network "
            "this machine can reach (VPN, firewall). If Ollama runs here, set "
            "OLLAMA_HOST=127.0.0.1:11434 and start it with `ollama serve`."
        )
    if bind_address_mapped:
        hint += (
            " OLLAMA_HOST holds a bind address (0.0.0.0 or [::]); it was read as this "
            "machine's loopback address for connecting."
        )
    return ServerNotRunningError(
        f"Cannot reach the Ollama server at {url}: {reason}.", hint=hint, url=url
    )
