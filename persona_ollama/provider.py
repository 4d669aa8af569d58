"""OllamaProvider: Persona's ``LLMProvider`` contract over Ollama's native API.

It composes the HTTP client (client.py), context sizing (context.py) and default-model
selection (selection.py). This module is the entry point's target, so it imports nothing
heavy at module level: requests, psutil and pluggy load on first use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import __version__, names
from ._persona import LLMProvider, LLMResponse, register_when_loaded
from .context import MIN_USEFUL_ANSWER, ContextPlan, estimate_messages, plan
from .errors import (
    ConfigurationError,
    ContextOverflowError,
    LocalOnlyViolationError,
    ModelNotPulledError,
    OllamaError,
)
from .facts import (
    FACTS,
    ModelInfo,
    Placement,
    model_info_from_show,
    model_info_from_tags,
    placement,
)
from .generation import ChatRequest, ChatStream, with_request_sizes
from .options import (
    OPTION_TYPES,
    validate_format,
    validate_keep_alive,
    validate_options,
    validate_think,
)
from .privacy import check_destination, check_server, warn_once
from .settings import API_KEY_VAR, MODEL_VAR, TIMEOUT_VAR, Settings, check_api
from .windows import WINDOWS

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .choosing.selection import Selection
    from .client import OllamaClient
    from .endpoint import Endpoint

__all__ = ["ChatStream", "ModelInfo", "OllamaProvider"]

log = logging.getLogger("persona_ollama")

TAGS_TTL = 10.0  # seconds; keeps `available_models` cheap without hiding a fresh pull for long
DEFAULT_TIMEOUT = 300.0
# Extra answer budget for a thinking model's reasoning, as a multiple of max_tokens: the
# server counts thinking tokens against num_predict, so without it reasoning eats the answer.
THINKING_BUDGET = 1.0

# At most this many /api/show calls to find longer-context models for an overflow's hint, on
# servers whose /api/tags does not list context lengths (before v0.30).
MAX_SHOW_FOR_ALTERNATIVES = 12

# Fallback when nothing is installed and no catalogue model fits: small enough for any laptop,
# so generate() can say `persona-ollama pull` it.
FALLBACK_MODEL = "llama3.2:3b"


# Before 0.12.6 the runner ignores truncate=false and keeps num_ctx tokens of a longer prompt
# (docs/reference/ollama-protocol.md, "Context and truncation"): only the estimate protects.
REFUSES_OVERFLOW_SINCE = (0, 12, 6)
# Server URL -> its release, None when /api/version failed or was unreadable.
_VERSIONS_SEEN: dict[str, tuple[int, ...] | None] = {}
_VERSIONS_LOCK = threading.Lock()


def _release(version: str) -> tuple[int, ...] | None:
    """``"0.12.6"`` -> (0, 12, 6); ``"0.33.0-rc2"`` -> (0, 33, 0); None when unreadable."""
    head = version.strip().lstrip("v").split("-", 1)[0].split("+", 1)[0]
    parts = head.split(".")
    if not parts or not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


@dataclass
class _Cached:
    value: Any
    at: float


def _keyword_parameters(function: Any) -> list[str]:
    """The named parameters of ``function`` (what the unknown-argument error lists)."""
    import inspect

    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]


class OllamaProvider(LLMProvider):
    """Persona provider for local models served by Ollama.

    ``base_url`` beats OLLAMA_BASE_URL, which beats OLLAMA_HOST (default
    http://127.0.0.1:11434). ``model`` beats PERSONA_OLLAMA_MODEL, which beats the model
    chosen from what is installed and what this machine can hold. ``**options`` are default
    Ollama options (``top_p``, ``num_gpu`` ...) for every request.
    """

    __plugin_description__ = "Local models served by Ollama: research data stays on this machine"
    __plugin_version__ = __version__
    __plugin_author__ = "persona-ollama contributors"

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        timeout: float | None = None,
        api_key: str | None = None,
        *,
        keep_alive: float | str | None = None,
        options: Mapping[str, Any] | None = None,
        retries: int | None = None,
        pool_size: int | None = None,
        pool_timeout: float | None = None,
        connect_timeout: float | None = None,
        verify: bool | str | None = None,
        local_only: bool | None = None,
        deadline: float | None = None,
        api: str | None = None,
        environ: Mapping[str, str] | None = None,
        **extra_options: Any,
    ) -> None:
        """Read and check every setting (arguments over ``environ``, default ``os.environ``).

        Raises ConfigurationError for any bad value and LocalOnlyViolationError for a server
        local-only mode refuses; nothing is sent to the server (the client opens on first use).
        """
        from .endpoint import resolve_endpoint, v1_endpoint

        env = os.environ if environ is None else environ
        self._environ = env
        settings = Settings.from_env(env)
        self.endpoint: Endpoint = resolve_endpoint(base_url, env)
        self._explicit_model = names.check_name(model) if model is not None else None
        self._env_model = names.check_name(settings.model) if settings.model else None
        chosen = timeout if timeout is not None else settings.timeout or DEFAULT_TIMEOUT
        if isinstance(chosen, bool) or not isinstance(chosen, (int, float)) or not chosen > 0:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}.",
                hint=f"e.g. OllamaProvider(timeout=600) or {TIMEOUT_VAR}=600.",
            )
        self.timeout = float(chosen)
        unknown = [key for key in extra_options if key not in OPTION_TYPES]
        if unknown:
            raise ConfigurationError(
                f"OllamaProvider got unexpected keyword argument(s): {', '.join(sorted(unknown))}.",
                hint="Accepted: "
                + ", ".join(_keyword_parameters(type(self).__init__))
                + ", and Ollama options: "
                + ", ".join(sorted(OPTION_TYPES))
                + ".",
            )
        self.default_options = validate_options({**(options or {}), **extra_options})
        self.keep_alive = validate_keep_alive(keep_alive) if keep_alive is not None else None
        self._api_key = api_key or settings.api_key
        if self._api_key is not None:
            from .settings import check_secret

            check_secret(self._api_key, "api_key" if api_key else API_KEY_VAR)
        self.local_only = bool(local_only if local_only is not None else settings.local_only)
        self.endpoint = check_server(self.endpoint, local_only=self.local_only)
        if deadline is not None and not deadline > 0:
            raise ConfigurationError(
                f"deadline must be a positive number of seconds, got {deadline!r}.",
                hint="e.g. deadline=900 stops any generation that runs past 15 minutes.",
            )
        self.deadline = deadline
        # "native" (/api/chat) or "openai" (/v1/chat/completions of vLLM, llama.cpp, LM Studio,
        # LiteLLM or Ollama); the /v1 form of the URL also keeps their cached facts apart.
        self.api = check_api(api, "api") if api is not None else settings.api or "native"
        if self.api == "openai":
            self.endpoint = v1_endpoint(self.endpoint, v1=True)
        self._client_args: dict[str, Any] = {
            "timeout": self.timeout,
            "retries": retries,
            "pool_size": pool_size,
            "pool_timeout": pool_timeout,
            "connect_timeout": connect_timeout,
            "verify": verify if verify is not None else (settings.ca_bundle or True),
        }
        if isinstance(self._client_args["verify"], str):
            from .settings import check_ca_bundle

            check_ca_bundle(self._client_args["verify"])
        self._client: OllamaClient | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._tags: _Cached | None = None
        self._selection: _Cached | None = None
        self._defaulted: str | None = None  # the last model default_model chose (not named)

    def __repr__(self) -> str:
        return f"OllamaProvider(base_url={str(self.endpoint)!r}, model={self._explicit_model!r})"

    # -- plumbing ----------------------------------------------------------------------

    @property
    def client(self) -> OllamaClient:
        """The pooled HTTP client, created on first use (this is when requests is imported)."""
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    from .client import OllamaClient

                    kind: type[OllamaClient] = OllamaClient
                    if self.api == "openai":
                        from .openai_client import OpenAIClient

                        kind = OpenAIClient
                    headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
                    args = {k: v for k, v in self._client_args.items() if v is not None}
                    self._client = kind(self.endpoint, headers=headers, **args)
                client = self._client
        return client

    def close(self) -> None:
        """Close pooled connections. The provider can still be used afterwards."""
        with self._lock:
            client, self._client = self._client, None
            workers, self._executor = self._executor, None
        if workers is not None:
            workers.shutdown(wait=False)  # calls under way finish on their own
        if client is not None:
            client.close()

    def refresh(self) -> None:
        """Forget cached model lists, model facts and the default model."""
        FACTS.forget(str(self.endpoint))
        WINDOWS.forget(str(self.endpoint))
        with self._lock:
            self._tags = None
            self._selection = None

    # -- the contract ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The provider's name in Persona's registry: ``"ollama"``."""
        return "ollama"

    @property
    def default_model(self) -> str:
        """Explicit model > PERSONA_OLLAMA_MODEL > best installed model that fits this machine
        > best catalogue model that fits (generate() then says which one to pull)."""
        if self._explicit_model:
            return self._explicit_model
        if self._env_model:
            return self._env_model
        choice = self.selection()
        model: str | None = choice.model
        if model is None:
            # Hosts read default_model outside any try: name a small model instead of raising,
            # and generate() then says how to pull it.
            warn_once(
                "no-default",
                f"No installed model fits this machine and no catalogue model does either; "
                f"falling back to {FALLBACK_MODEL}. Set {MODEL_VAR} to choose.",
            )
            model = FALLBACK_MODEL
        self._defaulted = model
        return model

    def selection(self) -> Selection:
        """The default-model decision with its reasons (cached with the model list)."""
        with self._lock:
            cached = self._selection
        if cached is not None and time.monotonic() - cached.at < TAGS_TTL:
            return cached.value  # type: ignore[no-any-return]
        from .choosing.catalogue import load_catalogue
        from .choosing.hardware import probe
        from .choosing.selection import InstalledModel, choose_default

        try:
            tags = self.installed_tags()
        except OllamaError as error:
            log.debug("model list unavailable for selection: %s", error.message)
            tags = []
        profile = probe(server_is_local=self.endpoint.is_loopback, environ=self._environ)
        server = None
        if self.api == "openai":
            from .openai_client import server_label

            kind = getattr(self.client, "kind", "OpenAI-compatible server")
            server = server_label(kind)
        choice = choose_default(
            [InstalledModel.from_tags_entry(entry) for entry in tags],
            profile.memory_budget_bytes,
            load_catalogue(self._environ),
            cpu_only=profile.cpu_only,
            server=server,
        )
        with self._lock:
            self._selection = _Cached(choice, time.monotonic())
        return choice

    @property
    def available_models(self) -> list[str]:
        """Installed chat-capable models; [] (with a logged warning) when the server is down."""
        try:
            return self.list_available_models()
        except OllamaError as error:
            warn_once("available_models", f"Ollama model list unavailable: {error.message}")
            return []

    def list_available_models(self) -> list[str]:
        """Installed chat-capable models, newest first; raises when the server is down."""
        from .choosing.selection import InstalledModel

        models = [InstalledModel.from_tags_entry(entry) for entry in self.installed_tags()]
        return [model.name for model in models if model.can_chat]

    def installed_tags(self) -> list[dict[str, Any]]:
        """The server's /api/tags entries (every installed model, embedders too), cached for a
        few seconds so that a command asking several questions makes one round trip."""
        with self._lock:
            cached = self._tags
        if cached is not None and time.monotonic() - cached.at < TAGS_TTL:
            return cached.value  # type: ignore[no-any-return]
        tags = self.client.tags()
        now = time.monotonic()
        with self._lock:
            self._tags = _Cached(tags, now)
        FACTS.reconcile(str(self.endpoint), tags)  # drop facts of removed or re-pulled models
        return tags

    def validate_model(self, model: str) -> bool:
        """True when ``model`` is installed, comparing names the way the server does."""
        key = names.canonical(model)
        return any(names.canonical(name) == key for name in self.available_models)

    def is_configured(self) -> bool:
        """True when an Ollama server answers (about a second at most when none does)."""
        from .client import PROBE_TIMEOUT

        try:
            self.client.version(timeout=PROBE_TIMEOUT)
        except OllamaError:
            return False
        return True

    def health(self) -> dict[str, Any]:
        """A structured report: url, reachable, version, latency_ms, model_count, error."""
        from .client import PROBE_TIMEOUT

        report: dict[str, Any] = {
            "url": str(self.endpoint),
            "reachable": False,
            "version": None,
            "latency_ms": None,
            "model_count": None,
            "error": None,
            "hint": None,
        }
        started = time.perf_counter()
        try:
            report["version"] = self.client.version(timeout=PROBE_TIMEOUT)
            report["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            report["reachable"] = True
            report["model_count"] = len(self.list_available_models())
        except OllamaError as error:
            report["error"] = error.message
            report["hint"] = error.hint
        return report

    def model_info(self, name: str) -> ModelInfo:
        """Context length, parameter size, quantisation, capabilities... of an installed model.

        In local-only mode a ``:cloud``/``-cloud`` name is refused without a request: from
        v0.18 the server forwards even /api/show of such a name to ollama.com."""
        model = names.check_name(name)
        if self.local_only:
            check_destination(model, placement(model), self.endpoint, local_only=True)
        return self._model_facts(model)

    def _model_facts(self, model: str) -> ModelInfo:
        info = FACTS.get(str(self.endpoint), model)
        if info is not None:
            return info
        info = self._facts_from_tags(model)
        if info is not None:  # v0.30+ lists context length and capabilities: no /api/show
            FACTS.put(str(self.endpoint), info)
            return info
        try:
            show = self.client.show(model)
        except ModelNotPulledError:
            raise self._not_pulled(model) from None
        entry = self._known_entry(model)
        digest = entry.get("digest") if entry else None
        info = model_info_from_show(model, show, str(digest) if digest else None, entry)
        FACTS.put(str(self.endpoint), info)
        return info

    def _facts_from_tags(self, model: str) -> ModelInfo | None:
        """The facts from an already fetched /api/tags, when it lists all that is needed."""
        with self._lock:
            cached = self._tags
        if cached is None or time.monotonic() - cached.at >= TAGS_TTL:
            return None
        key = names.canonical(model)
        for entry in cached.value:
            if names.canonical(str(entry.get("name", ""))) == key:
                return model_info_from_tags(model, entry)
        return None

    def _server_may_cut(self) -> bool:
        """False when the server is known to refuse an over-long prompt (0.12.6+) rather than
        cut it: then no count it reports is a sign of a cut, and from 0.30 a low one only
        means a prefix came from the cache (docs/reference/ollama-protocol.md)."""
        with _VERSIONS_LOCK:
            release = _VERSIONS_SEEN.get(str(self.endpoint))
        return release is None or release < REFUSES_OVERFLOW_SINCE

    def _warn_if_server_cuts_prompts(self) -> None:
        """Once per server and process: say so when its version still cuts long prompts."""
        url = str(self.endpoint)
        with _VERSIONS_LOCK:
            if url in _VERSIONS_SEEN:
                return
            _VERSIONS_SEEN[url] = None
        from .client import PROBE_TIMEOUT

        try:
            version = self.client.version(timeout=PROBE_TIMEOUT)
        except OllamaError:
            return  # the chat request itself will say what is wrong
        release = _release(version)
        with _VERSIONS_LOCK:
            _VERSIONS_SEEN[url] = release
        if release is not None and release < REFUSES_OVERFLOW_SINCE:
            warn_once(
                f"cuts-prompts:{url}",
                f"The Ollama server at {url} is version {version}: before 0.12.6 Ollama "
                "silently cuts a prompt longer than num_ctx instead of refusing it, so only "
                "persona-ollama's size estimate protects your input. Update Ollama to 0.12.6 "
                "or later.",
            )

    def _known_entry(self, model: str) -> dict[str, Any] | None:
        """The model's element of an already fetched /api/tags (no extra round trip)."""
        with self._lock:
            cached = self._tags
        if cached is None:
            return None
        key = names.canonical(model)
        for entry in cached.value:
            if names.canonical(str(entry.get("name", ""))) == key:
                return entry  # type: ignore[no-any-return]
        return None

    def _not_pulled(self, model: str) -> ModelNotPulledError:
        from ._http_errors import model_not_pulled

        FACTS.forget(str(self.endpoint), model)
        with self._lock:
            self._tags = None
        try:
            installed: list[str] | None = self.list_available_models()
        except OllamaError:
            installed = None
        error = model_not_pulled(
            model, url=str(self.endpoint), status_code=404, installed=installed, api=self.api
        )
        if self.api == "openai":  # advice that works on that kind of server
            from .openai_client import OpenAIClient

            client = self.client
            if isinstance(client, OpenAIClient):
                return client._in_its_words(error)
        return error

    # -- generation --------------------------------------------------------------------

    def generate(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int = 4096,
        temperature: float = 0.7,
        **kwargs: Any,
    ) -> LLMResponse:
        """Generate an answer to ``prompt``; see :meth:`stream` for the keyword arguments.

        ``on_token`` (a callable) receives each piece of the answer as it arrives.
        """
        on_token = kwargs.pop("on_token", None)
        chat = self.stream(prompt, model, max_tokens, temperature, **kwargs)
        try:
            for piece in chat:
                if on_token is not None:
                    on_token(piece)
        finally:
            # on_token raising (or Ctrl-C inside it) must not keep the connection checked out.
            chat.close()
        assert chat.response is not None
        return chat.response

    async def generate_async(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int = 4096,
        temperature: float = 0.7,
        **kwargs: Any,
    ) -> LLMResponse:
        """:meth:`generate` in a worker thread, so concurrent calls share the pooled client.

        The provider has its own workers, as many as pooled connections: asyncio's default
        executor has min(32, CPUs + 4), which would queue a batch of 32 on a 2-core machine.
        """
        import asyncio
        import contextvars
        import functools

        call = functools.partial(self.generate, prompt, model, max_tokens, temperature, **kwargs)
        context = contextvars.copy_context()  # as asyncio.to_thread does
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._workers(), context.run, call)

    def _workers(self) -> ThreadPoolExecutor:
        """The threads of generate_async, created on first use."""
        workers = self._executor
        if workers is None:
            with self._lock:
                if self._executor is None:
                    from concurrent.futures import ThreadPoolExecutor

                    from .client import POOL_SIZE

                    size = self._client_args["pool_size"] or POOL_SIZE
                    self._executor = ThreadPoolExecutor(size, thread_name_prefix="persona-ollama")
                workers = self._executor
        return workers

    def stream(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int = 4096,
        temperature: float = 0.7,
        *,
        system: str | None = None,
        format: str | dict[str, Any] | None = None,
        think: bool | str | None = None,
        keep_alive: float | str | None = None,
        num_ctx: int | None = None,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> ChatStream:
        """Start a generation and return an iterator of answer pieces.

        Everything is checked and the context planned before the request is sent; the
        returned :class:`ChatStream` carries the final :class:`LLMResponse` once exhausted.
        ``system_prompt`` is accepted as an alias of ``system`` (Persona passes it);
        ``seed``, ``stop``, ``top_p`` and other Ollama option names go into ``options``.
        """
        alias = kwargs.pop("system_prompt", None)
        if system is None:
            system = alias
        # Precedence: constructor defaults < the temperature argument < options= < option kwargs.
        request_options = {**self.default_options, "temperature": temperature, **(options or {})}
        for key in list(kwargs):
            if key in OPTION_TYPES:
                request_options[key] = kwargs.pop(key)
        for key in kwargs:
            warn_once(f"kwarg:{key}", f"OllamaProvider ignores the argument {key!r}.")
        from .client import call_deadline

        native = self.api == "native"  # only there is the plan's num_ctx what the server used
        # The deadline covers everything the call does: model facts, waiting for the headers
        # and every read of the answer.
        with call_deadline(self.deadline) as ends_at:
            request = self._prepare(
                prompt,
                model,
                max_tokens,
                temperature,
                system=system,
                format=format,
                think=think,
                keep_alive=keep_alive,
                num_ctx=num_ctx,
                options=request_options,
            )
            try:
                if native and num_ctx is None and "num_ctx" not in request_options:
                    # The window was chosen by windows.py: sent after smaller ones are answered.
                    # Waiting for a smaller window's answer counts against this call's deadline.
                    url, window = str(self.endpoint), request.plan.num_ctx
                    with WINDOWS.sending(url, request.model, window, until=ends_at):
                        try:
                            chunks = self.client.chat(request.body)
                        except OllamaError:
                            WINDOWS.failed(url, request.model, window)
                            raise
                else:
                    chunks = self.client.chat(request.body)
            except ContextOverflowError as error:
                raise (with_request_sizes(error, request) if native else error) from None
        chunks = _watch_remote(chunks, request.model, self.endpoint, self.local_only)
        next(chunks)  # primed, so that closing it closes the client's stream (see there)
        return ChatStream(
            chunks,
            request,
            deadline=self.deadline,
            ends_at=ends_at,
            url=str(self.endpoint),
            fill_sizes=native,
        )

    def _prepare(
        self,
        prompt: Any,
        model: str | None,
        max_tokens: int,
        temperature: float,
        *,
        system: str | None,
        format: Any,
        think: Any,
        keep_alive: Any,
        num_ctx: int | None,
        options: dict[str, Any],
    ) -> ChatRequest:
        """The checked chat request for one generate call, built before a byte is sent.

        Checks the arguments, where the model runs (local-only mode, remote default models),
        that it can chat, and plans the context window (ContextOverflowError when the prompt
        cannot fit); raises ConfigurationError for bad input.
        """
        if not isinstance(prompt, str):
            raise ConfigurationError(
                f"prompt must be text (str), got {type(prompt).__name__}.",
                hint="Decode bytes first, e.g. data.decode('utf-8').",
            )
        if system is not None and not isinstance(system, str):
            raise ConfigurationError(f"system must be text (str), got {type(system).__name__}.")
        for label, value in (("max_tokens", max_tokens), ("num_ctx", num_ctx)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigurationError(f"{label} must be an integer, got {value!r}.")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or temperature != temperature  # NaN
            or temperature in (float("inf"), float("-inf"))
        ):
            raise ConfigurationError(
                f"temperature must be a finite number, got {temperature!r}.",
                hint="e.g. temperature=0.7 (0 for the most repeatable answers).",
            )
        name = names.check_name(model) if model is not None else self.default_model
        # Chosen for the caller, not named: also when a host passes default_model back in as
        # model= (Persona's judge and synthetic pipeline read it, then pass it).
        chosen = not (self._explicit_model or self._env_model) and (
            model is None
            or (
                self._defaulted is not None
                and names.canonical(name) == names.canonical(self._defaulted)
            )
        )

        def check(where: Placement) -> None:
            if chosen and where.remote and not self.local_only:  # local-only refuses below
                # Selection skips remote models; should one get through anyway (a listing
                # without remote fields, a stale cache), it is refused, not used with a warning.
                raise ConfigurationError(
                    f"The default model '{name}' runs on {where.host_text}, not on the Ollama "
                    f"server ({where.evidence}), so it was not used: a remote model is used "
                    "only when you name it.",
                    hint=f"Name a local model (model=... or {MODEL_VAR}); "
                    "`persona-ollama models` marks remote ones.",
                    url=str(self.endpoint),
                )
            check_destination(name, where, self.endpoint, local_only=self.local_only)

        # The name alone first: from v0.18 even /api/show of a cloud name goes to ollama.com.
        check(placement(name))
        checked = validate_options(options)
        if self.api == "native":
            self._warn_if_server_cuts_prompts()
        if "num_predict" in checked:  # options={"num_predict": n} means max_tokens=n
            max_tokens = checked.pop("num_predict")
        if self.local_only:
            # Listed even when facts are cached: those are process-wide for minutes and may
            # predate `ollama create NAME` FROM a cloud model over a local model of that name.
            # The listing (one round trip per provider, cached a few seconds) says where the
            # model runs now, and its size tells a stub on a server that lists no remote_host.
            try:
                self.installed_tags()
            except OllamaError as error:
                log.debug("model list unavailable for the local-only check: %s", error.message)
            entry = self._known_entry(name)
            if entry is not None:
                listed = placement(
                    name,
                    remote_host=entry.get("remote_host"),
                    remote_model=entry.get("remote_model"),
                    size=entry.get("size"),
                )
                check(listed)
        facts = self._model_facts(name)
        # Then what the server says (remote_host of an alias, a stub's size): still before
        # a byte of the prompt is sent.
        check(facts.placement)
        if not facts.can_chat:
            # Before sizing the context: its warnings would be about a request never served.
            raise ConfigurationError(
                f"{name} is an embedding model: it turns text into vectors and cannot write "
                "text, so it cannot generate.",
                hint="Pick a chat model: `persona-ollama models` lists the installed ones, "
                "`persona-ollama recommend` suggests one to pull.",
            )
        messages: list[dict[str, Any]] = []
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        thinks = facts.thinks and think is not False
        budget = max_tokens + (int(max_tokens * THINKING_BUDGET) if thinks else 0)
        explicit_ctx = num_ctx if num_ctx is not None else checked.pop("num_ctx", None)
        prompt_tokens = estimate_messages(messages)
        # A model the overflow hint names must hold what plan() requires of this one.
        holds = prompt_tokens + min(budget, MIN_USEFUL_ANSWER)
        try:
            context = plan(
                prompt_tokens,
                budget,
                context_length=facts.context_length,
                num_ctx=explicit_ctx,
                preferred=facts.modelfile_num_ctx,
                model=name,
                alternatives=lambda: self._longer_context_models(facts.context_length, name, holds),
            )
        except ContextOverflowError as error:
            if self.api == "openai":
                raise self._in_v1_words(error) from None
            raise
        if explicit_ctx is None and self.api == "native":
            window = self._shared_window(name, context, budget)
            if window != context.num_ctx:
                context = replace(context, num_ctx=window)
        for warning in context.warnings:
            log.warning(warning)
        body: dict[str, Any] = {
            "model": name,
            "messages": messages,
            "options": {**checked, "num_ctx": context.num_ctx, "num_predict": context.num_predict},
            "truncate": False,  # refuse rather than silently cut an over-long prompt
        }
        if format is not None:
            body["format"] = validate_format(format)
        if think is not None:
            body["think"] = validate_think(think)
        alive = keep_alive if keep_alive is not None else self.keep_alive
        if alive is not None:
            body["keep_alive"] = validate_keep_alive(alive)  # top level: ignored in options
        may_cut = self._server_may_cut() if self.api == "native" else True
        return ChatRequest(body=body, plan=context, model=name, server_may_cut=may_cut)

    def _shared_window(self, model: str, context: ContextPlan, budget: int) -> int:
        """The window to send instead of the prompt's own rung, so that the loaded model is
        not reloaded for a smaller window (see windows.py)."""
        url = str(self.endpoint)
        return WINDOWS.choose(
            url,
            model,
            needed=context.prompt_tokens + budget,
            rung=context.num_ctx,
            loaded=lambda: WINDOWS.loaded(url, self.client.ps).get(names.canonical(model)),
            limit=context.context_length,
            cap=lambda: self._window_cap(model),
        )

    def _window_cap(self, model: str) -> int | None:
        """The largest ladder window with which ``model`` fits the memory budget the default
        model selection uses; None when the budget or the model's size is unknown."""
        from .choosing.catalogue import load_catalogue
        from .choosing.hardware import probe
        from .choosing.selection import InstalledModel, estimate_memory_bytes
        from .context import LADDER

        try:
            budget = probe(server_is_local=self.endpoint.is_loopback, environ=self._environ)
        except ConfigurationError as error:  # a bad PERSONA_OLLAMA_MEMORY_GB: as the catalogue
            log.debug("memory check of the window skipped: %s", error.message)
            return None
        if budget.memory_budget_bytes is None:
            return None
        try:
            tags = self.installed_tags()
        except OllamaError:
            return None
        key = names.canonical(model)
        entry = next((e for e in tags if names.canonical(str(e.get("name", ""))) == key), None)
        if entry is None:
            return None
        installed = InstalledModel.from_tags_entry(entry)
        try:
            catalogue = load_catalogue(self._environ)
        except ConfigurationError as error:
            # Only a hint for reusing a window: a broken catalogue is reported where it is
            # needed (model selection, `persona-ollama models`), not by failing a generation.
            log.debug("memory check of the window skipped: %s", error.message)
            return None
        fitting = 0
        for window in LADDER:
            memory = estimate_memory_bytes(installed, window, catalogue)
            if memory is None:
                return None
            if memory > budget.memory_budget_bytes:
                break
            fitting = window
        return fitting

    def _in_v1_words(self, error: ContextOverflowError) -> ContextOverflowError:
        """The overflow found before sending, told of the /v1 server rather than of Ollama:
        its window is what the server states (vLLM's max_model_len, llama.cpp's n_ctx)."""
        from .openai_client import GENERIC, server_label

        label = server_label(getattr(self.client, "kind", GENERIC))
        error.message = error.message.replace(
            "its trained context of", f"the context the {label} states:"
        ).replace(
            "Nothing was sent: Ollama would have silently dropped part of the input.",
            f"Nothing was sent to the {label}.",
        )
        if error.hint:
            error.hint = error.hint.replace("Installed models", "Served models")
        return error

    def _longer_context_models(
        self, context_length: int | None, model: str, holds: int = 0
    ) -> list[str]:
        """Installed models known to have a longer trained context, of at least ``holds``
        tokens (one still too short is no way out), longest first."""
        if context_length is None:
            return []
        try:
            tags = self.installed_tags()
        except OllamaError:
            return []
        from .choosing.selection import InstalledModel

        longer = []
        asked = 0
        for entry in tags:
            if InstalledModel.from_tags_entry(entry).placement.remote:
                continue  # never suggested: only a caller who names it sends data there
            name = str(entry.get("name"))
            details = entry.get("details") or {}
            length = details.get("context_length") if isinstance(details, dict) else None
            if not isinstance(length, int) and asked < MAX_SHOW_FOR_ALTERNATIVES:
                # Before v0.30 /api/tags lists no context length: ask /api/show (error path only).
                asked += 1
                try:
                    facts = self._model_facts(name)
                except OllamaError:
                    continue
                length = facts.context_length if facts.can_chat else None
            if (
                isinstance(length, int)
                and length > context_length
                and length >= holds
                and name != model
            ):
                longer.append((length, name))
        return [name for _, name in sorted(longer, reverse=True)[:3]]


def _watch_remote(
    chunks: Generator[dict[str, Any], None, None],
    model: str,
    endpoint: Endpoint,
    local_only: bool,
) -> Generator[dict[str, Any], None, None]:
    """``chunks``, checked for the ``remote_host`` a forwarded answer carries in every line
    (api/types.go ChatResponse, v0.12+).

    The checks before sending cannot close every gap: a model replaced (``ollama create``
    FROM a cloud model) after they ran, or within the few seconds the model list is cached,
    is forwarded anyway. Then the prompt has left; local-only mode refuses the answer and
    says so, and otherwise the once-per-process warning names the host.

    Like the client's stream, it is started at once (to its first yield) by the caller:
    closing a generator that never started runs nothing, not even its ``finally``, so
    ``ChatStream.close()`` on a
    stream never read would not close ``chunks`` (Python 3.12+ keeps it alive until the
    stream is dropped), and its pooled connection would stay checked out.
    """
    try:
        yield {}  # the priming step: nothing is read before the first next()
        for chunk in chunks:  # the first line is enough: the server names the host in every one
            host = chunk.get("remote_host")
            if host:
                upstream = chunk.get("remote_model")
                if local_only:  # `finally` closes the stream
                    raise LocalOnlyViolationError(
                        f"The Ollama server forwarded '{model}' to {host} although local-only "
                        "mode had checked it: the model was replaced between that check and the "
                        "request, so the prompt has left this machine. The answer was discarded.",
                        hint="See what replaced it (`persona-ollama models` marks remote models) "
                        "and remove or rename it on the Ollama server.",
                        url=str(endpoint),
                    )
                where = Placement(
                    True,
                    str(host),
                    str(upstream) if upstream else None,
                    "the server's answer names remote_host",
                )
                check_destination(model, where, endpoint, local_only=False)
            yield chunk
            break
        yield from chunks  # the rest at C speed: the per-chunk path stays as cheap as it was
    finally:
        chunks.close()  # however this ends: read out, closed unread, or raised


# Imported before Persona's provider package (a script, not Persona's plugin loading): still
# an LLMProvider to isinstance once Persona is imported (see _persona.py).
register_when_loaded(OllamaProvider)
