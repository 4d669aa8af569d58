"""The Ollama double: the double's core (server.py) with Ollama's two faces.

``FakeOllama`` serves the native /api (native.py) and the OpenAI-compatible /v1 (openai.py) on
the neutral :class:`~persona_ollama.testing.server.FakeServer`; both faces follow the wire rules
of wire.py. It lives apart from the core so that the core imports no face: a double of another
server (scripts/template's Acme face) takes the core without Ollama's parts.

The core's neutral modules follow Ollama where they say "the server"; the names they leave out:
the scheduler (scheduler.py) is Ollama's server/sched.go; memory is not modelled, so
OLLAMA_MAX_LOADED_MODELS has no effect; ``parallel`` is OLLAMA_NUM_PARALLEL;
``state.DEFAULT_KEEP_ALIVE_S`` is OLLAMA_KEEP_ALIVE's default (5m); the runner that keeps
exactly num_ctx tokens before v0.12.6 (generation.py) is runner/ollamarunner/runner.go
NewSequence at v0.11.11; the protocol reference the core cites is
docs/reference/ollama-protocol.md; a remote model's host is ollama.com.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence

from .face import Face
from .host_check import host_is_local
from .models import FakeModel
from .native import NativeFace
from .ollama_models import DEFAULT_MODELS, LIBRARY, remote_alias
from .ollama_names import OLLAMA_NAMES, cloud_stub
from .ollama_profiles import OllamaProfile
from .openai import CHAT_PATH as V1_CHAT
from .openai import OpenAIFace
from .script import EMPTY, INTERRUPTED, NO_USAGE, UNSTREAMED_STATUS, Fault
from .server import FakeServer, _index, _positive
from .state import Settings

__all__ = ["DOUBLE_HEADER", "FakeOllama"]

DOUBLE_HEADER = "X-Fake-Ollama"
"""A response header the real server never sends: the live tests skip when they see it."""


class FakeOllama(FakeServer):
    """A started-on-demand fake Ollama server on ``host``:``port`` (0 picks a free port).

    It answers the endpoints a client uses (/, /api/version, /api/tags, /api/show, /api/ps,
    /api/chat, /api/generate, /api/pull: native.py; /v1/chat/completions, /v1/models:
    openai.py) with the status codes, texts, field names and units of the real server
    (docs/reference/ollama-protocol.md), as the emulated release sends them, over real sockets,
    and records every request.

    Use it as a context manager (``with FakeOllama() as fake:``) or call start()/stop().
    ``version`` is what /api/version reports, and the wire follows that release where it
    changed (the rules and their sources are in :mod:`persona_ollama.testing.wire`;
    ``PROFILES`` lists one release on each side of every change): /api/tags fields, the 404
    text, overflow with ``truncate: false``, how a runner error is sent, the OOM text, the
    done line's content, the default context, /v1 finish chunks.
    ``default_num_ctx`` is OLLAMA_CONTEXT_LENGTH (None: the release's default, which since
    0.15.5 depends on ``vram_gib``, the GPU memory the server sees; /api/ps reports a loaded
    model's ``size_vram`` against it too: all of it when it fits, none when 0, the GPU's
    size when it does not fit), ``chunk_size`` the
    characters per streamed chunk (None: one word per chunk), ``parallel`` the generations served
    at once, like OLLAMA_NUM_PARALLEL (None: unlimited; others wait, they never get a 503).
    ``load_time`` is how many seconds loading a model takes: a generation whose runner options
    (``num_ctx`` among them) differ from the loaded runner's waits for the running ones to finish
    and then reloads, as Ollama's scheduler does (``loads`` counts loads; see
    :class:`~persona_ollama.testing.scheduler.Scheduler`). ``faces`` replaces the native and
    OpenAI faces (see :mod:`persona_ollama.testing.server`). ``tls`` (a server-side
    :class:`ssl.SSLContext`) serves https, as behind a TLS reverse proxy.

    Cloud models: a ``:cloud``/``-cloud`` name installs a stub (``add_cloud_model``), and
    ``add_remote_alias`` a local name for one; generation requests for them are recorded in
    ``forwarded_requests`` (what the real server would send to ollama.com) and answered, or
    refused with the signed-out 401 when ``signed_in=False`` (``sign_out()``).

    The scripting methods (``reply_with``, ``fail_next`` ...) take a ``path``: None means the
    generation endpoints (/api/chat, /api/generate, /v1/chat/completions), ``"*"`` any path.
    """

    double_header = DOUBLE_HEADER

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
        faces: Sequence[Face] | None = None,
        tls: ssl.SSLContext | None = None,
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
        num_ctx = OllamaProfile(version).default_num_ctx(default_num_ctx, int(vram_gib * 1024**3))
        super().__init__(
            [NativeFace(), OpenAIFace()] if faces is None else faces,
            models,
            host=host,
            port=port,
            settings=Settings(
                version,
                num_ctx,
                chunk_size,
                parallel,
                signed_in,
                int(vram_gib * 1024**3),
                profile_type=OllamaProfile,
            ),
            load_time=load_time,
            host_check=host_is_local,
            tls=tls,
            naming=OLLAMA_NAMES,
            library=LIBRARY.values(),
        )

    # models -----------------------------------------------------------------------------------
    def add_cloud_model(self, name: str, **facts: object) -> FakeModel:
        """Install the stub ``ollama pull NAME`` leaves for a cloud model (``gpt-oss:120b-cloud``):
        /api/tags and /api/show report its remote_host (v0.12+), and generation requests are
        forwarded (see ``forwarded_requests``) instead of answered here."""
        return self._state.install(cloud_stub(name, **facts))

    def add_remote_alias(self, name: str, of: FakeModel | str, **facts: object) -> FakeModel:
        """Install a model created ``FROM`` a remote one: a plain name, the same remote_host."""
        # The source as the server names it: a cloud name is remote, a bad one refused.
        source = (self._state.find(of) if isinstance(of, str) else None) or self._state.as_model(of)
        return self._state.install(remote_alias(name, source, **facts))

    def sign_out(self) -> None:
        """Forwarding fails as when the server is signed out of ollama.com: HTTP 401
        ``unauthorized`` with a ``signin_url`` (v0.12.1+) or a ``public_key`` (v0.12.0)."""
        self._state.settings.signed_in = False

    def sign_in(self) -> None:
        self._state.settings.signed_in = True

    def pullable(self, model: FakeModel | str) -> FakeModel:
        """Let /api/pull find ``model`` (the built-in LIBRARY is pullable already)."""
        return self._state.add_pullable(model)

    # scripting --------------------------------------------------------------------------------
    def out_of_memory_next(self, n: int = 1, *, path: str | None = None) -> None:
        """The next ``n`` matching requests fail to load the model: a 500 with the OOM text."""
        self.fail_next(n, 500, self._state.settings.profile.out_of_memory_text, path=path)

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
