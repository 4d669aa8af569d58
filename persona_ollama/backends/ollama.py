"""The Ollama backend: the native /api, in Ollama's own words.

Everything that is true of Ollama and of no other server lives here and in ollama_errors.py:
the URLs, the /api/chat body (``num_ctx``, ``truncate``, ``keep_alive``), the NDJSON answer
lines, /api/tags and /api/show read into :class:`~persona_ollama.model_info.ModelInfo`,
/api/ps read into loaded windows, the version rules (docs/reference/ollama-protocol.md) and
the advice (``ollama serve``, ``persona-ollama pull``).
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Generator, Iterator, Mapping
from itertools import repeat
from typing import Any

from .. import names
from ..errors import ModelNotPulledError, OllamaError, OllamaTimeoutError
from ..model_info import ModelInfo, placement
from ..server_state import ServerState
from ..settings import TIMEOUT_VAR
from ..transport.http import PROBE_TIMEOUT, Transport, answer_budget
from ..transport.ndjson import iter_ndjson
from .base import ChatRequest, Chunk, LoadedModel, PullProgress
from .ollama_errors import (
    error_from_pull_line,
    error_from_status,
    error_from_stream_line,
    model_not_pulled,
    not_running,
    wrong_shape,
)

log = logging.getLogger("persona_ollama")

# Before 0.12.6 the runner ignores truncate=false and keeps num_ctx tokens of a longer prompt
# (docs/reference/ollama-protocol.md, "Context and truncation"): only the estimate protects.
REFUSES_OVERFLOW_SINCE = (0, 12, 6)

# A clean end without a done line and without an error is how Ollama aborts a generation
# that repeats one token more than 30 times (llm/server.go and llm/llama_server.go,
# "token repeat limit"; docs/reference/ollama-protocol.md, "Streaming"), not a crash.
ENDED_QUIETLY = (
    "Ollama ends a stream this way when it stops a model that keeps repeating the same "
    "token: retry, change the prompt, or raise repeat_penalty or temperature. If every "
    "request ends like this, check the server log."
)
_NS_PER_SECOND = 1e9  # Ollama states durations in nanoseconds
# The fields of a Chunk after content and thinking, for a piece that is neither the last nor
# forwarded: Chunk's own defaults, so that the fast path below builds the same tuple.
_PLAIN = Chunk()[2:]
_tuple_new = tuple.__new__
_DONE = operator.attrgetter("done")  # the final item of a stream (C speed, once per token)


def release(version: str) -> tuple[int, ...] | None:
    """``"0.12.6"`` -> (0, 12, 6); ``"0.33.0-rc2"`` -> (0, 33, 0); None when unreadable."""
    head = version.strip().lstrip("v").split("-", 1)[0].split("+", 1)[0]
    parts = head.split(".")
    if not parts or not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


class OllamaBackend:
    """Ollama's native API (/api/*) over one pooled :class:`Transport`."""

    label = "Ollama server"
    sets_window = True
    reports_forwarding = True  # remote_host in every line of a forwarded answer

    def __init__(
        self, endpoint: Any, *, state: ServerState | None = None, **transport: Any
    ) -> None:
        """``state``: what this process knows of the server (the provider's; a backend built
        on its own has its own). ``transport``: the :class:`Transport` settings (timeouts,
        pool, headers, verify)."""
        self.endpoint = endpoint
        self.url = str(endpoint)
        self.state = state if state is not None else ServerState(self.url)
        self.transport = Transport(endpoint, self, **transport)

    # -- the transport's words ---------------------------------------------------------

    def status_error(
        self, status: int, body: str, *, model: str | None, deadline: float | None = None
    ) -> OllamaError:
        """An HTTP error status, in Ollama's terms (ollama_errors.error_from_status); asks
        nothing more, so ``deadline`` is not needed."""
        return error_from_status(status, body, url=self.url, model=model)

    def not_running(self, reason: str) -> OllamaError:
        """No connection: start Ollama, or fix OLLAMA_HOST."""
        return not_running(self.url, reason, bind_address_mapped=self.endpoint.bind_address_mapped)

    def silent(self, seconds: float) -> OllamaTimeoutError:
        """Nothing for ``seconds``: most often a large model still loading."""
        return OllamaTimeoutError(
            f"The Ollama server at {self.url} sent nothing for {seconds:g} s.",
            hint="Loading a large model can take minutes the first time: raise the timeout "
            f"(timeout=600 or {TIMEOUT_VAR}=600), or load it first with "
            "`ollama run <model> ''`.",
            url=self.url,
        )

    # -- the backend -------------------------------------------------------------------

    def version(self, *, timeout: float | None = None, deadline: float | None = None) -> str:
        """The server's version string (GET /api/version); no retries when probing."""
        transport = self.transport
        if timeout:
            response = transport.send(
                "GET",
                "/api/version",
                stream=True,
                timeout=(timeout, timeout),
                retries=0,
                deadline=deadline,
            )
            data = transport.json(response, deadline=deadline)
        else:
            data = transport.get_json("/api/version", deadline=deadline)
        value = transport.expect_dict(data, "/api/version").get("version")
        return str(value) if value is not None else "unknown"

    def refuses_overflow(self, *, deadline: float | None = None) -> bool | None:
        """Whether this server refuses an over-long prompt (0.12.6+) rather than cutting it;
        None when its version is unknown. Asked once per server for as long as its models'
        facts are trusted (FactsCache.ttl), then again: a server restarted with another
        release (an update, a downgrade) or unreadable the first time is not judged by what
        was seen once. A server that still cuts prompts is warned about once."""
        state = self.state
        with state.lock:
            fresh = time.monotonic() - state.release_at < state.facts.ttl
            if state.release_asked and fresh:
                seen = state.release
                return None if seen is None else seen >= REFUSES_OVERFLOW_SINCE
            state.release_asked = True
            state.release_at = time.monotonic()
        try:
            version = self.version(timeout=PROBE_TIMEOUT, deadline=deadline)
        except OllamaError:
            return None  # the chat request itself will say what is wrong
        seen = release(version)
        with state.lock:
            state.release = seen
        if seen is None:
            return None
        if seen < REFUSES_OVERFLOW_SINCE:
            state.warnings.warn_once(
                "cuts-prompts",
                f"The Ollama server at {self.url} is version {version}: before 0.12.6 Ollama "
                "silently cuts a prompt longer than num_ctx instead of refusing it, so only "
                "persona-ollama's size estimate protects your input. Update Ollama to 0.12.6 "
                "or later.",
            )
            return False
        return True

    def models(self, *, deadline: float | None = None) -> list[ModelInfo]:
        """Every installed model, newest first (GET /api/tags)."""
        transport = self.transport
        tags = transport.get_json("/api/tags", deadline=deadline)
        listing = transport.expect_dict(tags, "/api/tags")
        entries = transport.expect_list(listing, "models", "/api/tags")
        return [listed_model(entry) for entry in entries if isinstance(entry, dict)]

    def describe(
        self, model: str, listed: ModelInfo | None = None, *, deadline: float | None = None
    ) -> ModelInfo:
        """The full facts of ``model`` (POST /api/show); ``listed``, its /api/tags entry when
        known, adds the size and digest that /api/show leaves out."""
        transport = self.transport
        show = transport.expect_dict(
            transport.post_json(
                "/api/show",
                {"model": model},
                model=model,
                timeout=transport.quick,
                deadline=deadline,
            ),
            "/api/show",
        )
        return described_model(model, show, listed)

    def loaded_windows(self, *, deadline: float | None = None) -> dict[str, int]:
        """Loaded model -> the window it runs with (GET /api/ps ``context_length``; servers
        before 0.10 do not report it: nothing to reuse then)."""
        transport = self.transport
        loaded = transport.expect_dict(transport.get_json("/api/ps", deadline=deadline), "/api/ps")
        return loaded_windows_of(transport.expect_list(loaded, "models", "/api/ps"))

    def loaded_models(self, *, deadline: float | None = None) -> list[LoadedModel]:
        """The loaded models with their memory: /api/ps ``size`` (everything the runner
        allocated) and ``size_vram`` (the part on GPUs); see docs/reference/ollama-protocol.md,
        "Loaded models"."""
        transport = self.transport
        loaded = transport.expect_dict(transport.get_json("/api/ps", deadline=deadline), "/api/ps")
        return loaded_models_of(transport.expect_list(loaded, "models", "/api/ps"))

    def chat(
        self, request: ChatRequest, *, deadline: float | None = None
    ) -> Generator[Chunk, None, None]:
        """Stream POST /api/chat with ``truncate: false`` (refuse, never cut, a long prompt).

        An ``{"error": ...}`` line, a malformed line, a dropped connection or a stream that
        ends without ``done`` raise; a partial answer is never passed off as complete.
        """
        options = dict(request.options)
        if request.window is not None:
            options["num_ctx"] = request.window
        options["num_predict"] = request.max_tokens
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [dict(message) for message in request.messages],
            "options": options,
            "truncate": False,
        }
        if request.format is not None:
            body["format"] = request.format
        if request.think is not None:
            body["think"] = request.think
        if request.keep_alive is not None:
            body["keep_alive"] = request.keep_alive  # top level: ignored inside options
        body["stream"] = True
        model = request.model
        timeout = None
        if request.first_byte_wait is not None:  # load + prompt time of this prompt (waits.py)
            timeout = (self.transport.timeout[0], request.first_byte_wait)
        response = self.transport.send(
            "POST", "/api/chat", body, stream=True, model=model, timeout=timeout, deadline=deadline
        )

        def decode(pieces: Iterator[bytes]) -> Iterator[Chunk]:
            # map() with repeat(), not a generator or a partial with keywords: the fewest Python
            # frames per token (the per-chunk cost is in docs/benchmarks.md).
            return map(chat_chunk, iter_ndjson(pieces), repeat(self.url), repeat(model))

        return self.transport.stream(
            response,
            what="answer",
            decode=decode,
            is_final=_DONE,
            ended_quietly=ENDED_QUIETLY,
            limit=answer_budget(request.max_tokens),
            deadline=deadline,
        )

    def pull(
        self, model: str, *, deadline: float | None = None
    ) -> Generator[PullProgress, None, None]:
        """Stream POST /api/pull progress until ``{"status": "success"}``."""
        transport = self.transport
        response = transport.send(
            "POST", "/api/pull", {"model": model, "stream": True}, stream=True, deadline=deadline
        )

        def decode(pieces: Iterator[bytes]) -> Iterator[PullProgress]:
            for line in iter_ndjson(pieces):
                error = line.get("error")
                if error is not None:
                    raise error_from_pull_line(str(error), url=self.url, model=model)
                status = str(line.get("status", ""))
                yield PullProgress(
                    status,
                    total=_count_or_none(line.get("total")),
                    completed=_count_or_none(line.get("completed")),
                    done=status == "success",
                )

        return transport.stream(
            response, what="download", decode=decode, is_final=_DONE, deadline=deadline
        )

    def not_found(self, model: str, served: list[str] | None) -> ModelNotPulledError:
        """Not installed: the similar installed names, then `persona-ollama pull`."""
        return model_not_pulled(model, url=self.url, status_code=404, installed=served)

    def connections_in_use(self) -> int:
        """Pooled connections checked out right now."""
        return self.transport.connections_in_use()

    def close(self) -> None:
        """Close pooled connections."""
        self.transport.close()


def loaded_windows_of(entries: list[Any]) -> dict[str, int]:
    """Canonical name -> window, from /api/ps ``models`` (entries without a name or a
    positive ``context_length`` are skipped)."""
    windows: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        length = entry.get("context_length")
        name = entry.get("name") or entry.get("model")
        if isinstance(name, str) and isinstance(length, int) and _positive_int(length):
            windows[names.canonical(name)] = length
    return windows


def loaded_models_of(entries: list[Any]) -> list[LoadedModel]:
    """/api/ps ``models`` as :class:`LoadedModel`; a size that is not a whole number >= 0 is
    unknown (None), an entry without a name is skipped."""
    found: list[LoadedModel] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        name = entry.get("name") or entry.get("model")
        if not isinstance(name, str) or not name:
            continue
        length = entry.get("context_length")
        found.append(
            LoadedModel(
                name,
                _count_or_none(entry.get("size")),
                _count_or_none(entry.get("size_vram")),
                length if _positive_int(length) else None,
            )
        )
    return found


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _count_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def chat_chunk(line: dict[str, Any], url: str = "", model: str | None = None) -> Chunk:
    """One /api/chat line as a :class:`Chunk`. An ``{"error": ...}`` line raises the error it
    reports (for ``model``); a field of the wrong type raises OllamaResponseError naming it
    (validated at the edge, never a TypeError later)."""
    error = line.get("error")
    if error is not None:
        raise error_from_stream_line(str(error), url=url, model=model)
    message = line.get("message")
    if type(message) is not dict:
        raise wrong_shape("message", "an object", message, url)
    thought = message.get("thinking")
    if thought is not None and type(thought) is not str:
        raise wrong_shape("message.thinking", "text", thought, url)
    piece = message.get("content")
    if piece is not None and type(piece) is not str:
        raise wrong_shape("message.content", "text", piece, url)
    # Only a stated host means a forwarded answer (false, 0 or "" from a broken server do not).
    host = line.get("remote_host")
    if line.get("done") is not True:
        if not host:  # the common case, once per token: built in C, without Chunk.__new__
            return _tuple_new(Chunk, (piece or "", thought or "", *_PLAIN))
        return Chunk(
            piece or "",
            thought or "",
            remote_host=str(host),
            remote_model=_text(line.get("remote_model")),
        )
    return Chunk(
        piece or "",
        thought or "",
        done=True,
        reason=_final_text(line, "done_reason", url),
        model=_final_text(line, "model", url),
        input_tokens=_final_count(line, "prompt_eval_count", url),
        output_tokens=_final_count(line, "eval_count", url),
        prompt_seconds=_seconds(line, "prompt_eval_duration", url),
        answer_seconds=_seconds(line, "eval_duration", url),
        load_seconds=_seconds(line, "load_duration", url),
        remote_host=str(host) if host else None,
        remote_model=_text(line.get("remote_model")),
        raw={key: value for key, value in line.items() if key != "message"},
    )


def _final_count(line: Mapping[str, Any], field: str, url: str) -> int | None:
    """A count or a duration (ns) of the final line: None when absent, else a finite number
    >= 0 (anything else is an error naming the field)."""
    value = line.get(field)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or value > 2**63
    ):
        raise wrong_shape(field, "a whole number >= 0", value, url)
    return int(value)


def _seconds(line: Mapping[str, Any], field: str, url: str) -> float | None:
    count = _final_count(line, field, url)
    # Divided, not multiplied by 1e-9: 300 ms is 0.3 s, not 0.30000000000000004 (raw_response).
    return None if count is None else count / _NS_PER_SECOND


def _final_text(line: Mapping[str, Any], field: str, url: str) -> str | None:
    value = line.get(field)
    if value is not None and not isinstance(value, str):
        raise wrong_shape(field, "text", value, url)
    return value or None


def _described(details: Mapping[str, Any], caps: Any) -> dict[str, Any]:
    """The fields /api/show and /api/tags describe alike: ``details`` and ``capabilities``."""
    return {
        "family": _text(details.get("family")),
        "parameter_size": _text(details.get("parameter_size")),
        "quantization_level": _text(details.get("quantization_level")),
        "capabilities": tuple(c for c in caps if isinstance(c, str))
        if isinstance(caps, list)
        else (),
    }


def listed_model(entry: Mapping[str, Any]) -> ModelInfo:
    """One /api/tags entry, tolerating older servers' gaps.

    Since v0.30 the list carries ``details.context_length`` and ``capabilities`` (api/types.go
    ListModelResponse, ModelDetails), enough to plan a request without /api/show: the entry
    is then ``complete``. The Modelfile's own num_ctx is not listed there: the ladder alone
    sizes the window then. A remote model is never complete: /api/show says more about where
    it runs.
    """
    raw_details = entry.get("details")
    details: Mapping[str, Any] = raw_details if isinstance(raw_details, Mapping) else {}
    caps = entry.get("capabilities")
    name = str(entry.get("name") or entry.get("model") or "")
    size = entry.get("size")
    length = details.get("context_length")
    where = placement(
        name,
        remote_host=entry.get("remote_host"),
        remote_model=entry.get("remote_model"),
        size=size,
    )
    digest = entry.get("digest")
    return ModelInfo(
        name=name,
        **_described(details, caps),
        context_length=length if _positive_int(length) else None,
        size_bytes=size if _positive_int(size) else None,
        digest=str(digest) if digest else None,
        placement=where,
        complete=_positive_int(length) and isinstance(caps, list) and not where.remote,
    )


def described_model(
    name: str, show: Mapping[str, Any], listed: ModelInfo | None = None
) -> ModelInfo:
    """A /api/show answer (fields may be missing on old servers); ``listed``, the model's
    /api/tags entry when known, adds its size, digest and remote fields."""
    details = show.get("details")
    if not isinstance(details, dict):
        details = {}
    size = listed.size_bytes if listed else None
    where = placement(
        name,
        remote_host=show.get("remote_host")
        or (listed.placement.host if listed and listed.placement.remote else None),
        remote_model=show.get("remote_model")
        or (listed.placement.remote_model if listed else None),
        size=size,
    )
    if listed is not None and listed.placement.remote and not where.remote:
        where = listed.placement
    return ModelInfo(
        name=name,
        **_described(details, show.get("capabilities")),
        context_length=trained_context_length(show),
        modelfile_num_ctx=modelfile_num_ctx(show),
        digest=listed.digest if listed else None,
        size_bytes=size,
        placement=where,
    )


def trained_context_length(show: Mapping[str, Any]) -> int | None:
    """The model's trained context from /api/show: ``model_info["<arch>.context_length"]``."""
    info = show.get("model_info")
    if isinstance(info, Mapping):
        arch = info.get("general.architecture")
        if isinstance(arch, str):
            value = info.get(f"{arch}.context_length")
            if isinstance(value, int) and value > 0:
                return value
        for key, value in info.items():  # an architecture name we did not expect
            if key.endswith(".context_length") and isinstance(value, int) and value > 0:
                return value
    return None


def modelfile_num_ctx(show: Mapping[str, Any]) -> int | None:
    """A ``PARAMETER num_ctx`` the model's Modelfile sets, if any (/api/show "parameters").

    The server prints each value with Go's ``%#v`` (server/routes.go GetModelInfo); a value
    read back from JSON is a float there, so 1,000,000 and more come out as ``1.048576e+06``.
    """
    text = show.get("parameters")
    if not isinstance(text, str):
        return None
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "num_ctx":
            return go_integer(value.strip())
    return None


def go_integer(text: str) -> int | None:
    """An integer printed by Go's ``%v``/``%#v``: ``8192``, ``8192.0`` or ``1.048576e+06``."""
    text = text.strip().strip('"')
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)
