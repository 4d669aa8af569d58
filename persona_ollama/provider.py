"""OllamaProvider: Persona's ``LLMProvider`` contract, and nothing else.

One generate() reads top-down: the provider resolves the model (choosing/ when none is
named), request.py checks and sizes the call, a backend (backends/) sends it, and stream.py
turns the chunks into the answer. This module is the entry point's target, so it imports
nothing heavy at module level: requests, psutil and pluggy load on first use.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import __version__, names
from ._persona import LLMProvider, LLMResponse, register_when_loaded
from .catalogue_seam import HAS_CATALOGUE, first_chat_model
from .errors import (
    ConfigurationError,
    ContextOverflowError,
    ModelNotAvailableError,
    ServerError,
    ServerTimeoutError,
)
from .options import OPTION_TYPES, validate_keep_alive, validate_options
from .privacy import check_destination, check_server, warn_once
from .settings import (
    API_KEY_VAR,
    DEFAULT_API,
    HOST_VAR,
    MODEL_VAR,
    TIMEOUT_VAR,
    Settings,
    check_api,
)

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from .backends.base import Backend, ChatRequest, Chunk
    from .choosing.selection import Selection
    from .choosing.speed import Measured
    from .context import ContextPlan
    from .endpoint import Endpoint
    from .model_info import ModelInfo
    from .request import Preparation
    from .served import ServedModels
    from .server_state import ServerState
    from .stream import ChatStream
    from .timings import Speeds, TimingStore
    from .waits import Expectation

__all__ = ["OllamaProvider"]

log = logging.getLogger("persona_ollama")

DEFAULT_TIMEOUT = 300.0
SELECTION_TTL = 10.0  # seconds, like the model listing it is made from
# An answer whose load took this long followed a load from disk, after which the server is
# asked where it put the model; a warm call's load_duration is a few milliseconds.
LOADED_AFTER = 0.25
_PROBING = threading.Lock()
# This plugin's name in Persona's registry: its package's name without "persona_" (a copy of
# the template renames the package, and the name follows).
PLUGIN_NAME = __name__.split(".", 1)[0][len("persona_") :]


@dataclass(frozen=True)
class _Estimating:
    """What the speed model needs for a first-byte estimate, gathered before the window is
    chosen: this machine (choosing/speed.py Machine) and the catalogue."""

    machine: Any
    catalogue: Any


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
    """Persona provider for local models, served by the server its backend speaks to (``api``).

    ``base_url`` beats the address variables (settings.py: BASE_URL_VAR, then HOST_VAR; else
    the default address). ``model`` beats PERSONA_OLLAMA_MODEL, which beats the model chosen
    from what is installed and what this machine can hold. ``**options`` are default server
    options (``top_p``, ``seed`` ...) for every request.
    """

    __plugin_description__ = (
        f"Local models served by {PLUGIN_NAME.capitalize()}: research data stays on this machine"
    )
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
        restarts: int | None = None,
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
        from .backends.registry import declared
        from .endpoint import resolve_endpoint, v1_endpoint

        env = os.environ if environ is None else environ
        self._environ = env
        settings = Settings.from_env(env)
        # "native" or "openai" (settings.APIS); the backend declares its address and names.
        self.api = check_api(api, "api") if api is not None else settings.api or DEFAULT_API
        rules = declared(self.api)
        self._name_rules = rules.names
        self.endpoint: Endpoint = resolve_endpoint(base_url, env, rules=rules.address)
        self._explicit_model = names.check_name(model, rules.names) if model is not None else None
        self._env_model = names.check_name(settings.model, rules.names) if settings.model else None
        chosen = timeout if timeout is not None else settings.timeout or DEFAULT_TIMEOUT
        if isinstance(chosen, bool) or not isinstance(chosen, (int, float)) or not chosen > 0:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}.",
                hint=f"e.g. OllamaProvider(timeout=600) or {TIMEOUT_VAR}=600.",
            )
        self.timeout = float(chosen)
        # A timeout the user set is kept as the first-byte wait; the default one grows with
        # the expected load + prompt time (waits.py).
        self._timeout_chosen = timeout is not None or settings.timeout is not None
        from .timings import recording_enabled

        self._record_timings = recording_enabled(env)  # a bad value fails here, not later
        unknown = [key for key in extra_options if key not in OPTION_TYPES]
        if unknown:
            raise ConfigurationError(
                f"OllamaProvider got unexpected keyword argument(s): {', '.join(sorted(unknown))}.",
                hint="Accepted: "
                + ", ".join(_keyword_parameters(type(self).__init__))
                + ", and the server's options: "
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
        from .restart import RESTARTS, check_restarts

        # How often generate() asks again after the connection broke mid-answer (restart.py).
        if restarts is None:
            restarts = settings.restarts if settings.restarts is not None else RESTARTS
        self.restarts = check_restarts(restarts)
        # The /v1 form of the URL also keeps the two APIs' server states apart (server_state.py).
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
        from .server_state import SERVERS

        # What this process knows of the server, shared with every provider for it
        # (server_state.py): passed to the backend and the model listing when they open.
        self._state: ServerState = SERVERS.state(self.endpoint.server_key)
        self._backend: Backend | None = None
        self._served: ServedModels | None = None
        self._preparation: Preparation | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._selection: _Cached | None = None
        self._defaulted: str | None = None  # the last model default_model chose (not named)
        self._unlisted = False  # the last selection had no model list: the server did not answer
        self._timings: TimingStore | None = None

    def __repr__(self) -> str:
        return f"OllamaProvider(base_url={str(self.endpoint)!r}, model={self._explicit_model!r})"

    # -- plumbing ----------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        """The server's API (backends/), opened on first use (this is when requests loads)."""
        if self._backend is None:
            self._open()
        assert self._backend is not None
        return self._backend

    @property
    def served(self) -> ServedModels:
        """The server's models: the listing and each model's facts (served.py)."""
        if self._served is None:
            self._open()
        assert self._served is not None
        return self._served

    def _open(self) -> None:
        with self._lock:
            if self._backend is not None:
                return
            from .backends import open_backend
            from .request import Preparation
            from .served import ServedModels

            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            args = {k: v for k, v in self._client_args.items() if v is not None}
            backend = open_backend(
                self.api, self.endpoint, state=self._state, headers=headers, **args
            )
            served = ServedModels(backend, str(self.endpoint), self._state)
            self._preparation = Preparation(
                backend,
                served,
                self.endpoint,
                local_only=self.local_only,
                keep_alive=self.keep_alive,
                environ=self._environ,
            )
            self._served = served
            self._backend = backend

    def close(self) -> None:
        """Close pooled connections. The provider can still be used afterwards."""
        with self._lock:
            backend, self._backend = self._backend, None
            self._served = self._preparation = None
            workers, self._executor = self._executor, None
        if workers is not None:
            workers.shutdown(wait=False)  # calls under way finish on their own
        if backend is not None:
            backend.close()
        if self._timings is not None:
            self._timings.flush()  # measured speeds still in memory (timings.WRITE_EVERY)

    def refresh(self) -> None:
        """Forget cached model lists, model facts, loaded windows and the default model."""
        self._state.facts.forget()
        self._state.windows.forget()
        with self._lock:
            served = self._served
            self._selection = None
        if served is not None:
            served.forget()

    # -- the contract ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The provider's name in Persona's registry (:data:`PLUGIN_NAME`)."""
        return PLUGIN_NAME

    @property
    def default_model(self) -> str:
        """Explicit model > PERSONA_OLLAMA_MODEL > best installed model that fits this machine
        > best catalogue model that fits (generate() then says which one to pull)."""
        return self._default_model(None)

    def _default_model(self, deadline: float | None) -> str:
        """:attr:`default_model`, its model listing asked by ``deadline`` (deadline.py)."""
        if self._explicit_model:
            return self._explicit_model
        if self._env_model:
            return self._env_model
        if not HAS_CATALOGUE:
            return self._first_chat_model(deadline)
        choice = self.selection(deadline=deadline)
        model: str | None = choice.model
        if model is None:
            from .choosing.selection import FALLBACK_MODEL  # the catalogue's, loaded already

            # Hosts read default_model outside any try: name a small model instead of raising,
            # and generate() then says how to pull it, or (no model list) that the server
            # does not answer: a warning about fit would only come before that error.
            if not self._unlisted:
                warn_once(
                    "no-default",
                    f"No installed model fits this machine and no catalogue model does either; "
                    f"falling back to {FALLBACK_MODEL}. Set {MODEL_VAR} to choose.",
                )
            model = FALLBACK_MODEL
        self._defaulted = model
        return model

    def _first_chat_model(self, deadline: float | None) -> str:
        """The default model without a catalogue (catalogue_seam.py): the server's first chat
        model; when it lists none, or cannot be asked, NO_MODEL, and generate() says why."""
        try:
            listing = self.served.listing(deadline=deadline)
        except ServerError as error:
            log.debug("model list unavailable for the default model: %s", error.message)
            listing = []
        return first_chat_model(listing)

    def selection(self, *, deadline: float | None = None) -> Selection:
        """The default-model decision with its reasons (cached with the model list);
        ``deadline`` (a time.monotonic() instant) bounds asking for the model list."""
        with self._lock:
            cached = self._selection
        if cached is not None and time.monotonic() - cached.at < SELECTION_TTL:
            kept: Selection = cached.value
            return kept
        from .choosing.catalogue import load_catalogue
        from .choosing.hardware import probe
        from .choosing.selection import choose_default, plan_for

        try:
            listing = self.served.listing(deadline=deadline)
            self._unlisted = False
        except ServerError as error:
            log.debug("model list unavailable for selection: %s", error.message)
            listing = []
            self._unlisted = True
        profile = probe(server_is_local=self.endpoint.is_loopback, environ=self._environ)
        # Selection advises pulling where requests set the window (the server's own API, which
        # pulls); another server is told to start with a model.
        server = None if self.backend.sets_window else self.backend.label
        choice = choose_default(
            listing,
            profile.memory_budget_bytes,
            load_catalogue(self._environ),
            cpu_only=profile.cpu_only,
            server=server,
            plan=plan_for(profile, self._environ, self.measured_speeds(listing)),
            listed=not self._unlisted,
        )
        with self._lock:
            self._selection = _Cached(choice, time.monotonic())
        return choice

    @property
    def available_models(self) -> list[str]:
        """Installed chat-capable models; [] (with a logged warning) when the server is down."""
        try:
            return self.list_available_models()
        except ServerError as error:
            warn_once(
                "available_models",
                f"The {self.backend.label}'s model list is unavailable: {error.message}",
            )
            return []

    def list_available_models(self) -> list[str]:
        """Installed chat-capable models, newest first; raises when the server is down."""
        return self.served.chat_models()

    def installed_models(self) -> list[ModelInfo]:
        """Every model the server has (embedders and remote ones too), cached for a few
        seconds so that a command asking several questions makes one round trip."""
        return self.served.listing()

    def validate_model(self, model: str) -> bool:
        """True when ``model`` is installed, comparing names the way the server does."""
        available = self.available_models  # first: it opens the backend, which sets the rules
        canonical = self._state.names.canonical
        key = canonical(model)
        return any(canonical(name) == key for name in available)

    def is_configured(self) -> bool:
        """True when the provider has a usable address; makes no request.

        The server needs no key, and a malformed address was refused at construction
        (ConfigurationError), so this is True for every provider that exists. Whether a
        server answers is a different question, asked by ``health()``; ``generate()`` and
        ``list_available_models()`` raise with the reason and the fix. A host that stops on
        False prints its own advice (Persona 1.11: set an API key variable), which is wrong for
        a server that is down or at a wrong address."""
        return bool(self.endpoint.host)

    def health(self) -> dict[str, Any]:
        """A structured report: url, reachable, version, latency_ms, model_count, error."""
        from .transport.http import PROBE_TIMEOUT

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
            report["version"] = self.backend.version(timeout=PROBE_TIMEOUT)
            report["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
            report["reachable"] = True
            report["model_count"] = len(self.list_available_models())
        except ServerError as error:
            report["error"] = error.message
            report["hint"] = error.hint
            if isinstance(error, ServerTimeoutError) and not report["reachable"]:
                # The transport's hint is for a generation (a model loading, a queue); the
                # version request loads no model and waits in no queue.
                report["hint"] = (
                    "It accepts connections but does not answer a request that loads no "
                    "model: the server is stuck, or another program holds this port. Restart "
                    f"the server, or check the port in the address ({HOST_VAR})."
                )
        return report

    def model_info(self, name: str) -> ModelInfo:
        """Context length, parameter size, quantisation, capabilities... of an installed model.

        In local-only mode a name that runs elsewhere by its form alone (model_info.placement)
        is refused without a request: a server may forward even its description."""
        model = names.check_name(name, self._name_rules)
        if self.local_only:
            from .model_info import placement

            check_destination(
                model, placement(model), self.endpoint, local_only=True, label=self.backend.label
            )
        return self.served.facts(model)

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

        ``on_token`` (a callable) receives each piece of the answer as it arrives. When the
        connection breaks mid-answer the request is sent again, ``restarts`` times at most;
        after pieces reached ``on_token``, only when ``on_restart`` (called with the error
        first) is given (restart.py).
        """
        from .deadline import call_deadline
        from .restart import generate_with_restarts

        on_token = kwargs.pop("on_token", None)
        on_restart = kwargs.pop("on_restart", None)
        for label, callback in (("on_token", on_token), ("on_restart", on_restart)):
            if callback is not None and not callable(callback):
                # Found only mid-answer (or after a break), it would cost the answer.
                raise ConfigurationError(
                    f"{label} must be callable, got {type(callback).__name__}.",
                    hint=f"e.g. {label}=print, or leave it out.",
                )
        # One deadline over every attempt: each stream() is given it (within=).
        with call_deadline(self.deadline) as ends_at:
            return generate_with_restarts(
                lambda: self.stream(
                    prompt, model, max_tokens, temperature, _within=ends_at, **kwargs
                ),
                restarts=self.restarts,
                on_token=on_token,
                on_restart=on_restart,
                ends_at=ends_at,
                before_restart=self._forget_where_models_run if self.local_only else None,
            )

    def _forget_where_models_run(self) -> None:
        """Local-only mode, before a restart: behind a balancer it reaches another machine,
        whose models may not run where the cached listing and facts say; asked anew."""
        preparation = self._preparation
        if preparation is not None:
            preparation.served.forget()

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

                    from .transport.http import POOL_SIZE

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
        ``seed``, ``stop``, ``top_p`` and the server's other option names go into ``options``.
        """
        # generate()'s deadline over all its attempts (deadline.py); not for callers.
        within: float | None = kwargs.pop("_within", None)
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
        # Imported on the first generation, not with the entry point: Persona imports every
        # provider at start-up (docs/benchmarks.md).
        from .balancer import missing_on_a_machine, shorter_on_a_machine
        from .deadline import call_deadline
        from .request import Call, check_arguments
        from .stream import ChatStream, with_request_sizes

        # Before the default model is chosen (a model listing, a hardware probe): a call
        # refused anyway waits for none of that and is told what is wrong with it.
        check_arguments(Call(prompt, "", max_tokens, temperature, system=system, window=num_ctx))
        # The deadline covers everything the call does: choosing the default model (a model
        # listing), model facts, waiting for the headers and every read of the answer.
        with call_deadline(self.deadline, within=within) as ends_at:
            name = (
                names.check_name(model, self._name_rules)
                if model is not None
                else self._default_model(ends_at)
            )
            call = Call(
                prompt,
                name,
                max_tokens,
                temperature,
                system=system,
                format=format,
                think=think,
                keep_alive=keep_alive,
                window=num_ctx,
                options=request_options,
                chosen=self._chosen(model, name),
            )
            # Opened (again) only now: a close() from another thread while the default
            # model was chosen must not leave this call without a connection.
            backend = self.backend
            preparation = self._preparation
            assert preparation is not None
            # Before prepare(): the window it chooses is sent right after it, and probing the
            # hardware in between (once per process) would let another call's window win.
            machine = self._machine_for_estimate(prompt, system)
            prepared = preparation.prepare(call, deadline=ends_at)
            window = prepared.plan.window
            url = str(self.endpoint)
            windows = self._state.windows
            facts = self.served.facts(name, deadline=ends_at)  # cached by prepare()
            request = self._with_first_byte_wait(prepared.chat, facts, prepared.plan, machine)
            try:
                if prepared.shared_window:
                    # The window was chosen by windows.py: sent after smaller ones are answered.
                    # Waiting for a smaller window's answer counts against this call's deadline.
                    with windows.sending(name, window, until=ends_at):
                        try:
                            chunks = backend.chat(request, deadline=ends_at)
                        except ServerError:
                            windows.failed(name, window)
                            raise
                else:
                    chunks = backend.chat(request, deadline=ends_at)
            except ContextOverflowError as error:
                if prepared.chat.window is None:
                    raise
                sized = with_request_sizes(error, prepared.plan)
                trained = prepared.plan.context_length
                raise shorter_on_a_machine(sized, window=window, trained=trained, url=url) from None
            except ModelNotAvailableError:
                # Its facts were read a moment ago (prepare): one address, two answers.
                raise missing_on_a_machine(name, url, seen="described") from None
        return ChatStream(
            chunks,
            prepared.plan,
            model=name,
            endpoint=self.endpoint,
            window_sent=prepared.chat.window is not None,
            may_cut=prepared.may_cut,
            local_only=self.local_only,
            deadline=self.deadline,
            ends_at=ends_at,
            on_done=(
                None
                if facts.placement.remote
                else functools.partial(self._done, facts, deadline=ends_at)
            ),
            confirm=(
                functools.partial(preparation.confirm_local, name, deadline=ends_at)
                if self.local_only and not backend.reports_forwarding
                else None
            ),
            redact=backend.transport.redactor.text,
            label=backend.label,
        )

    # -- what a generation tells about this machine --------------------------------------

    @property
    def records_timings(self) -> bool:
        """Whether measured speeds are kept and used (PERSONA_OLLAMA_RECORD_TIMINGS)."""
        return self._record_timings

    def measured(self, model: ModelInfo) -> Speeds | None:
        """``model``'s speeds measured on this server (timings.py); None when it was never
        measured here, or speeds are not recorded."""
        if not self._record_timings:
            return None
        return self.timings().speeds(self._state.key, model.name, model.digest)

    def measured_speeds(self, models: Iterable[ModelInfo]) -> dict[str, Measured]:
        """The speeds measured on this server of ``models``, by name, for the ranking
        (measured beats estimated); empty when speeds are not recorded."""
        from .choosing.speed import Measured

        found = {}
        for model in models:
            speeds = self.measured(model)
            if speeds is not None:
                found[model.name] = Measured(
                    speeds.prompt_tokens_per_second,
                    speeds.answer_tokens_per_second,
                    speeds.load_seconds,
                    speeds.runs,
                )
        return found

    def timings(self) -> TimingStore:
        """The measured speeds of this machine's models (timings.py)."""
        if self._timings is None:
            from .timings import TimingStore

            self._timings = TimingStore.from_env(self._environ)
        return self._timings

    def _machine_for_estimate(self, prompt: Any, system: Any) -> _Estimating | None:
        """This machine for the speed model (choosing/speed.py) and the catalogue, when a
        first-byte wait may need estimating: a long prompt to a server on this machine, with
        the default timeout; else None (also when the speed model claims no speed here)."""
        from .waits import ESTIMATE_FROM_TOKENS

        if self._timeout_chosen or not self.endpoint.is_loopback:
            return None
        from .context import estimate_messages

        messages = [{"content": text} for text in (system, prompt) if isinstance(text, str)]
        if estimate_messages(messages) < ESTIMATE_FROM_TOKENS or not HAS_CATALOGUE:
            return None
        from .choosing.catalogue import load_catalogue
        from .choosing.hardware import probe
        from .choosing.speed import machine_for

        try:
            # One probe per process: concurrent first calls wait for it rather than each
            # running the accelerator tools.
            with _PROBING:
                profile = probe(server_is_local=True, environ=self._environ)
                catalogue = load_catalogue(self._environ)
        except ConfigurationError as error:
            log.debug("no prompt speed estimate: %s", error.message)
            return None
        machine = machine_for(profile)
        return None if machine is None else _Estimating(machine, catalogue)

    def _with_first_byte_wait(
        self,
        chat: ChatRequest,
        facts: ModelInfo,
        plan: ContextPlan,
        machine: _Estimating | None,
    ) -> ChatRequest:
        """``chat`` with a first-byte wait that covers loading ``facts``' model and reading
        this prompt on this machine (waits.py); unchanged when the user set the timeout.
        ``machine``: for the speed model's estimate when nothing was measured."""
        if self._timeout_chosen or facts.placement.remote:
            return chat
        from .waits import first_byte_wait

        expected = self._expected_first_byte(facts, plan.prompt_tokens, machine)
        wait = first_byte_wait(self.timeout, expected)
        if expected is None or wait == self.timeout:
            return chat
        log.info(
            "waiting up to %.0f s for the first byte: %s load + prompt time %.0f s (%d tokens)",
            wait,
            expected.source,
            expected.seconds,
            plan.prompt_tokens,
        )
        return dataclasses.replace(chat, first_byte_wait=wait)

    def _expected_first_byte(
        self, facts: ModelInfo, prompt_tokens: int, machine: _Estimating | None
    ) -> Expectation | None:
        """Load + prompt seconds: measured on this server, else the speed model's estimate
        on ``machine`` (waits.py)."""
        from .waits import expected_first_byte_seconds

        measured = self.measured(facts)
        estimated = None
        if measured is None and machine is not None:
            from .choosing.selection import model_facts
            from .choosing.speed import estimate, first_token_seconds

            known = model_facts(facts, machine.catalogue)
            if known is not None:
                speed = estimate(known, machine.machine, prompt_tokens)
                estimated = first_token_seconds(speed, prompt_tokens)
        return expected_first_byte_seconds(
            prompt_tokens, measured=measured, estimated_seconds=estimated
        )

    def _done(
        self,
        facts: ModelInfo,
        final: Chunk,
        text_seconds: float | None,
        *,
        deadline: float | None = None,
    ) -> None:
        """A complete local answer: record its timings, and after a load read where the
        server put the model (by the call's ``deadline``). Neither may fail the answer it
        follows. ``text_seconds``: the answer's time by this process's clock, for a server
        that states no durations."""
        if final.remote_host:
            return
        from .timings import Sample, client_answer_timing

        if self._record_timings:
            answer_tokens, answer_seconds = final.output_tokens, final.answer_seconds
            if answer_seconds is None:
                answer_tokens, answer_seconds = client_answer_timing(answer_tokens, text_seconds)
            sample = Sample(
                final.input_tokens,
                final.prompt_seconds,
                answer_tokens,
                answer_seconds,
                final.load_seconds,
                time.time(),
            )
            digest = facts.digest or self._digest(facts.name)
            self.timings().record(self._state.key, facts.name, digest, sample)
        if (final.load_seconds or 0.0) >= LOADED_AFTER:
            self._check_placement(facts.name, deadline)

    def _digest(self, model: str) -> str | None:
        """``model``'s digest from the listing already fetched (no request for it), which
        keeps a re-pulled model's speeds apart; None: the speeds are kept by name."""
        listed = self.served.listed(model)
        return listed.digest if listed is not None else None

    def _check_placement(self, model: str, deadline: float | None = None) -> None:
        """Warn once when the server put part of ``model`` on the CPU (offload.py)."""
        loaded_models = getattr(self.backend, "loaded_models", None)
        if loaded_models is None:
            return  # the server does not say where models sit
        from .offload import partial_offload_warning

        canonical = self._state.names.canonical
        key = canonical(model)
        try:
            loaded = next(
                (m for m in loaded_models(deadline=deadline) if canonical(m.name) == key),
                None,
            )
            listing = self.served.listing(deadline=deadline) if loaded is not None else []
        except ServerError as error:
            log.debug("GPU share of %s unknown: %s", model, error.message)
            return
        if loaded is None:
            return
        from .backends.registry import declared

        words = declared(self.api).context
        warning = partial_offload_warning(loaded, listing, server=str(self.endpoint), words=words)
        if warning is not None:
            self._state.warnings.warn_once(f"offload:{key}", warning)

    def _chosen(self, model: str | None, name: str) -> bool:
        """True when the model was chosen for the caller, not named: also when a host passes
        default_model back in as model= (Persona's judge and synthetic pipeline read it,
        then pass it)."""
        if self._explicit_model or self._env_model:
            return False
        return model is None or (
            self._defaulted is not None
            and self._state.names.canonical(name) == self._state.names.canonical(self._defaulted)
        )


# Imported before Persona's provider package (a script, not Persona's plugin loading): still
# an LLMProvider to isinstance once Persona is imported (see _persona.py).
register_when_loaded(OllamaProvider)
