"""FakeOllama: a loopback HTTP double of the Ollama server, scripted from tests.

It answers the endpoints a client uses (/, /api/version, /api/tags, /api/show, /api/ps,
/api/chat, /api/generate, /api/pull, /v1/chat/completions, /v1/models) with the status codes,
texts, field names and units of the real server (docs/reference/ollama-protocol.md), as the
emulated release sends them (profiles.py), over real sockets, and records every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType

from ._names import parse_name
from .handler import FakeOllamaServer
from .models import DEFAULT_MODELS, Answer, FakeModel, as_model, cloud_stub, remote_alias
from .profiles import OOM_LLAMA_SERVER, OOM_SCHEDULER, PROFILES, Profile
from .script import (
    DROP,
    EMPTY,
    ERROR_MID_STREAM,
    INTERRUPTED,
    MALFORMED,
    NO_DONE,
    NO_USAGE,
    RUNNER,
    STATUS,
    UNSTREAMED_STATUS,
    Fault,
    Latency,
    ReplyRule,
)
from .state import RecordedRequest, ServerState, Settings

__all__ = ["BUSY", "OUT_OF_MEMORY", "PROFILES", "RUNNER_FAILED", "RUNNER_STOPPED", "FakeOllama"]

V1_CHAT = "/v1/chat/completions"

BUSY = "server busy, please try again.  maximum pending requests exceeded"  # two spaces, sic
OUT_OF_MEMORY = OOM_LLAMA_SERVER
OUT_OF_MEMORY_BEFORE_0_30 = OOM_SCHEDULER
# The error line of a runner that fails mid-answer (llm/server.go, llm/llama_server.go).
RUNNER_FAILED = Profile.runner_failed_text()
# A runner that died before answering (the same files: the request to it failed).
RUNNER_STOPPED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)
_STOP_TIMEOUT_S = 5.0


class FakeOllama:
    """A started-on-demand fake Ollama server on ``host``:``port`` (0 picks a free port).

    Use it as a context manager (``with FakeOllama() as fake:``) or call start()/stop().
    ``version`` is what /api/version reports, and the wire follows that release where it
    changed (the rules and their sources are in :mod:`persona_ollama.testing.profiles`;
    ``PROFILES`` lists one release on each side of every change): /api/tags fields, the 404
    text, overflow with ``truncate: false``, how a runner error is sent, the OOM text, the
    done line's content, the default context, /v1 finish chunks.
    ``default_num_ctx`` is OLLAMA_CONTEXT_LENGTH (None: the release's default, which since
    0.15.5 depends on ``vram_gib``, the GPU memory the server sees), ``chunk_size`` the
    characters per streamed chunk (None: one word per chunk), ``parallel`` the generations served
    at once, like OLLAMA_NUM_PARALLEL (None: unlimited; others wait, they never get a 503).
    ``load_time`` is how many seconds loading a model takes: a generation whose runner options
    (``num_ctx`` among them) differ from the loaded runner's waits for the running ones to finish
    and then reloads, as Ollama's scheduler does (``loads`` counts loads; see scheduler.py).

    Cloud models: a ``:cloud``/``-cloud`` name installs a stub (``add_cloud_model``), and
    ``add_remote_alias`` a local name for one; generation requests for them are recorded in
    ``forwarded_requests`` (what the real server would send to ollama.com) and answered, or
    refused with the signed-out 401 when ``signed_in=False`` (``sign_out()``).

    The scripting methods (``reply_with``, ``fail_next`` ...) take a ``path``: None means the
    generation endpoints (/api/chat, /api/generate, /v1/chat/completions), ``"*"`` any path.
    """

    def __init__(
        self,
        models: Iterable[FakeModel | str] = DEFAULT_MODELS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "0.33.0",
        default_num_ctx: int | None = None,
        chunk_size: int | None = None,
        parallel: int | None = None,
        vram_gib: float = 0.0,
        signed_in: bool = True,
        load_time: float = 0.0,
    ) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(
                f"chunk_size must be a positive number of characters, got {chunk_size}"
            )
        if parallel is not None and parallel < 1:
            raise ValueError(f"parallel must be at least 1 (or None for unlimited), got {parallel}")
        if load_time < 0:
            raise ValueError(f"load_time must be 0 or more seconds, got {load_time}")
        if default_num_ctx is not None and default_num_ctx < 1:
            raise ValueError(f"default_num_ctx must be at least 1, got {default_num_ctx}")
        num_ctx = Profile(version).default_num_ctx(default_num_ctx, int(vram_gib * 1024**3))
        settings = Settings(version, num_ctx, chunk_size, parallel, signed_in)
        self._state = ServerState(settings)
        self._state.scheduler.load_time_s = load_time
        for model in models:
            self._state.install(model)
        self._address = (host, port)
        self._server: FakeOllamaServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeOllama:
        """Bind and serve in a daemon thread; returns self. The socket is listening on return."""
        if self._server is not None:
            raise RuntimeError("FakeOllama is already running; stop() it first")
        self._state.stopping.clear()
        self._server = FakeOllamaServer(self._address, self._state)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to one interval
            name=f"FakeOllama:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every connection; idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._state.stopping.set()  # cuts simulated latency short
        server.shutdown()
        server.server_close()
        server.close_connections(_STOP_TIMEOUT_S)
        thread.join(_STOP_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOllama is not running; call start() or use `with`")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: what a client takes as OLLAMA_HOST."""
        host = self._address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def version(self) -> str:
        return self._state.settings.version

    # models -----------------------------------------------------------------------------------
    @property
    def models(self) -> list[FakeModel]:
        """Installed models, newest first (as /api/tags lists them)."""
        return self._state.installed()

    def add_model(self, model: FakeModel | str) -> FakeModel:
        """Install ``model``; a known name (e.g. ``"qwen3:8b"``) takes that model's facts."""
        return self._state.install(model)

    def remove_model(self, name: str) -> FakeModel:
        """Uninstall (and unload) a model; KeyError when no such model is installed."""
        return self._state.uninstall(name)

    def add_cloud_model(self, name: str, **facts: object) -> FakeModel:
        """Install the stub ``ollama pull NAME`` leaves for a cloud model (``gpt-oss:120b-cloud``):
        /api/tags and /api/show report its remote_host (v0.12+), and generation requests are
        forwarded (see ``forwarded_requests``) instead of answered here."""
        return self._state.install(cloud_stub(name, **facts))

    def add_remote_alias(self, name: str, of: FakeModel | str, **facts: object) -> FakeModel:
        """Install a model created ``FROM`` a remote one: a plain name, the same remote_host."""
        source = self._state.find(of) if isinstance(of, str) else of
        if source is None:
            source = as_model(of) if isinstance(of, str) else of
        return self._state.install(remote_alias(name, source, **facts))

    def sign_out(self) -> None:
        """Forwarding fails as when the server is signed out of ollama.com: HTTP 401
        ``unauthorized`` with a ``signin_url`` (v0.12.1+) or a ``public_key`` (v0.12.0)."""
        self._state.settings.signed_in = False

    def sign_in(self) -> None:
        self._state.settings.signed_in = True

    @property
    def forwarded_requests(self) -> list[RecordedRequest]:
        """Requests the real server would have sent on to a remote model's host (ollama.com or
        another Ollama), oldest first: a privacy test asserts this stays empty."""
        return self._state.forwarded()

    def pullable(self, model: FakeModel | str) -> FakeModel:
        """Let /api/pull find ``model`` (the built-in LIBRARY is pullable already)."""
        return self._state.add_pullable(model)

    @property
    def loaded_models(self) -> dict[str, int]:
        """Models in memory (as /api/ps shows them) -> the num_ctx each was loaded with."""
        return {loaded.model.name: loaded.num_ctx for loaded in self._state.loaded()}

    @property
    def loads(self) -> int:
        """Model loads so far (each reload counts), since the start or the last reset()."""
        return self._state.scheduler.loads

    def load_count(self, model: str) -> int:
        """Loads of one model so far."""
        return self._state.scheduler.loads_of(parse_name(model.strip()).key)

    @property
    def load_time(self) -> float:
        """Seconds a model load takes (settable)."""
        return self._state.scheduler.load_time_s

    @load_time.setter
    def load_time(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"load_time must be 0 or more seconds, got {seconds}")
        self._state.scheduler.load_time_s = seconds

    def on_request(self, listener: Callable[[RecordedRequest], None]) -> None:
        """Call ``listener`` with each request once it has been answered (``--log`` of
        ``python -m persona_ollama.testing``); it runs on the server's thread."""
        self._state.listen(listener)

    # scripting --------------------------------------------------------------------------------
    def reply_with(
        self,
        answer: Answer,
        *,
        model: str | None = None,
        thinking: str | None = None,
        done_reason: str | None = None,
        times: int | None = None,
        last_in_done: bool = False,
    ) -> None:
        """Answer generation requests (for ``model``, or any) with ``answer``.

        ``answer`` is the text, or a function of the request JSON returning it (the /api/chat
        or /api/generate body; for /v1/chat/completions, the /api/chat body the server
        translates it into, so ``request["messages"]`` works for both chat APIs). With ``times``
        the rule serves that many requests, in the order such rules were added; without it,
        it serves every request until reset() or a newer open-ended rule. ``thinking`` is the
        reasoning a thinking model emits first; ``done_reason`` overrides "stop"/"length".
        ``last_in_done``: the last piece of the answer comes on the done line, as an output
        parser's held-back text can since 0.13.3, and llama-server's final chunk since 0.30
        (profiles.DONE_CARRIES_CONTENT; ignored before).
        """
        key = parse_name(model.strip()).key if model is not None else None
        self._state.script.add_reply(
            ReplyRule(answer, key, thinking, done_reason, _count(times, "times"), last_in_done)
        )

    def fail_next(
        self, n: int = 1, status: int = 503, error: str = BUSY, *, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests get ``status`` with ``{"error": error}``."""
        self._fault(Fault(STATUS, _positive(n), path, status=status, error=error))

    def out_of_memory_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` matching requests fail to load the model: a 500 with the OOM text."""
        self.fail_next(n, 500, self._state.settings.profile.out_of_memory_text, path=path)

    def runner_stopped_next(
        self, n: int = 1, error: str = RUNNER_STOPPED, *, path: str | None = None
    ) -> None:
        """The next ``n`` matching requests find the model runner dead before any output: a
        500 from 0.12.6 on, a 200 stream of one error line before (profiles.STREAM_ERROR_STATUS)."""
        self._fault(Fault(RUNNER, _positive(n), path, status=500, error=error))

    def error_mid_stream_next(
        self, error: str = RUNNER_FAILED, after_chunks: int = 2, *, path: str | None = None
    ) -> None:
        """The next stream sends ``after_chunks`` chunks, then ``{"error": ...}``, and no done.

        The default text is the server's for a runner that fails mid-answer."""
        self._fault(
            Fault(ERROR_MID_STREAM, 1, path, error=error, after_chunks=_index(after_chunks))
        )

    def drop_connection_mid_stream_next(
        self, after_chunks: int = 2, *, path: str | None = None
    ) -> None:
        """The next stream sends ``after_chunks`` chunks, then the socket closes mid-response."""
        self._fault(Fault(DROP, 1, path, after_chunks=_index(after_chunks)))

    def end_stream_without_done_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` streams end cleanly but without their done line (or [DONE])."""
        self._fault(Fault(NO_DONE, _positive(n), path))

    def repetition_abort_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` streams stop as the server stops a model repeating one token over and
        over: the stream ends cleanly with neither a done line nor an error (llm/server.go
        Completion, "token repeat limit"; every release)."""
        self.end_stream_without_done_next(n, path=path)

    def interrupt_stream_next(self, after_chunks: int = 2) -> None:
        """The next /v1 stream sends ``after_chunks`` chunks, then ``[DONE]`` without a finish
        reason: how llama-cpp-python's server ends a stream another request interrupted."""
        self._fault(Fault(INTERRUPTED, 1, V1_CHAT, after_chunks=_index(after_chunks)))

    def context_overflow_next(self, context_length: int = 512, prompt_tokens: int = 6000) -> None:
        """The next streamed /v1 request gets an empty 200 stream, and the next unstreamed one
        llama-cpp-python's 400 ``context_length_exceeded`` with both sizes."""
        text = (
            f"This model's maximum context length is {context_length} tokens. However, you "
            f"requested {prompt_tokens + 10} tokens ({prompt_tokens} in the messages, 10 in the "
            "completion). Please reduce the length of the messages or completion."
        )
        self._fault(Fault(EMPTY, 1, V1_CHAT))
        self._fault(Fault(UNSTREAMED_STATUS, 1, V1_CHAT, status=400, error=text))

    def omit_usage_next(self, n: int = 1) -> None:
        """The next ``n`` /v1 streams have no usage event, whatever stream_options asks (as
        llama-cpp-python's server)."""
        self._fault(Fault(NO_USAGE, _positive(n), V1_CHAT))

    def malformed_json_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` 200 responses are cut in half: the body, or a stream's first line."""
        self._fault(Fault(MALFORMED, _positive(n), path))

    def latency(
        self,
        first_byte: float = 0.0,
        between_chunks: float = 0.0,
        *,
        times: int | None = None,
        path: str | None = None,
    ) -> None:
        """Wait ``first_byte`` seconds before answering (a cold load) and ``between_chunks``
        between streamed chunks (slow tokens). With ``times``, only for that many requests."""
        if first_byte < 0 or between_chunks < 0:
            raise ValueError("latency must be >= 0 seconds")
        self._state.script.add_latency(
            Latency(first_byte, between_chunks, path, _count(times, "times"))
        )

    def _fault(self, fault: Fault) -> None:
        self._state.script.add_fault(fault)

    # records ----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        return self._state.records()

    def request_count(self, path: str | None = None) -> int:
        """How many requests were received, for ``path`` or in total."""
        return sum(1 for r in self._state.records() if path is None or r.path == path)

    def last_request(self, path: str | None = None) -> RecordedRequest:
        """The most recent request (to ``path``); LookupError when there is none."""
        for record in reversed(self._state.records()):
            if path is None or record.path == path:
                return record
        raise LookupError(f"no request to {path or 'any path'} was received")

    def reset(self) -> None:
        """Forget recorded requests, scripted behaviour and loaded models; keep installed ones."""
        self._state.reset()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"<FakeOllama {where} version={self.version} models={len(self.models)}>"


def _positive(n: int) -> int:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return n


def _index(after_chunks: int) -> int:
    if after_chunks < 0:
        raise ValueError(f"after_chunks must be >= 0, got {after_chunks}")
    return after_chunks


def _count(times: int | None, name: str) -> int | None:
    if times is not None and times < 1:
        raise ValueError(f"{name} must be at least 1 (or None for every request), got {times}")
    return times
