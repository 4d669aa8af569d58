"""The core's state and engine: what every face answers requests against.

- **The face interface** (:class:`Face`, :class:`Route`, :class:`Call`) that server.py
  dispatches to; it lives here so that the faces and the server import it without a cycle.
- **Tokens.** The double's tokeniser is deterministic, documented, and simple enough to compute in
  a test: a token is four bytes of UTF-8 (``count_tokens(text) == ceil(len(text.encode()) / 4)``);
  a chat prompt costs ``count_tokens(content) + MESSAGE_OVERHEAD_TOKENS`` per message, plus the
  tools JSON when tools are sent. ``prompt_eval_count`` and ``eval_count`` use these rules, so a
  test can state the exact numbers it expects.
- **The script**: canned replies, injected failures and latency, matched per request. Every rule
  has a path filter: ``None`` means the endpoints that run a model (the routes a face marks
  ``generation=True``), because that is where a real server is slow or fails, and a client
  typically asks for the model's details first; ``"*"`` means every path; any other string is
  one exact path such as ``"/api/pull"``.
- **The scheduler** (one runner per model, reloaded when runner options change), see
  :class:`Scheduler`.
- **The state** shared by every request thread: settings, installed models, loads, recorded
  requests, the script (:class:`ServerState`).
- **Generation**: running a fake model (checks, context sizing, truncation, the answer and its
  metrics), shared by /api/chat, /api/generate and /v1/chat/completions, which differ only in how
  they read the request and frame the result (:func:`run`).

Nothing here knows a URL path: the faces (native.py, openai.py) do.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, ClassVar, TypeVar

from .models import LIBRARY, Answer, FakeModel, as_model
from .wire import (
    LLAMA_SERVER,
    PROMPT_EVAL_SKIPS_CACHE,
    PROMPT_TOO_LONG,
    REFUSES_OVERFLOW,
    SHIFT_OFF_REFUSES,
    ApiError,
    Profile,
    Reply,
    Response,
    RunnerError,
    check_format,
    json_reply,
    parse_name,
    resolve_options,
    version_tuple,
)

__all__ = [
    "ANY_PATH",
    "BYTES_PER_TOKEN",
    "MESSAGE_OVERHEAD_TOKENS",
    "RUNNER",
    "Call",
    "Face",
    "Fault",
    "Generation",
    "GenerationRequest",
    "Latency",
    "Lease",
    "LoadedModel",
    "RecordedRequest",
    "ReplyRule",
    "Route",
    "Runner",
    "Scheduler",
    "Script",
    "ServerState",
    "Settings",
    "context_size",
    "count_prompt_tokens",
    "count_tokens",
    "run",
    "runner_options",
    "split_chunks",
    "truncate_to_tokens",
]


# The face interface ------------------------------------------------------------------------------
@dataclass
class Call:
    """One request being answered: the shared state, its record, the latency already waited."""

    state: ServerState
    record: RecordedRequest
    waited_s: float = 0.0


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class Route:
    """``method`` ``path`` is answered by ``handle``.

    A path ending in ``{name}`` (``/v1/models/{model}``) matches that prefix followed by at least
    one character. ``generation``: the route runs a model, so scripted rules without a path
    apply to it and it holds one of the ``parallel`` slots.
    """

    method: str
    path: str
    handle: Handler
    generation: bool = False

    @property
    def prefix(self) -> str | None:
        """The fixed part of a ``{name}`` path, or None for an exact path."""
        if self.path.endswith("}") and "{" in self.path:
            return self.path[: self.path.index("{")]
        return None


class Face:
    """One API a double serves: its routes and its error shape (subclass and set ``routes``)."""

    routes: ClassVar[Sequence[Route]] = ()
    not_implemented: ClassVar[frozenset[str]] = frozenset()
    """Paths the real server has and the double does not: a clear 501 beats a misleading 404."""

    def error(self, status: int, message: str) -> Reply:
        """The body of an error answered before any output: ``{"error": message}``."""
        return json_reply({"error": message}, status)

    def runner_error(self, state: ServerState, status: int, message: str) -> Response:
        """An error from the model runner (a RunnerError, ``runner_stopped_next``)."""
        return self.error(status, message)


# Tokens ----------------------------------------------------------------------------------------
BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # the role markers a chat template wraps around each message


def count_tokens(text: str) -> int:
    """Tokens in ``text``: its UTF-8 length divided by four, rounded up."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN)


def count_prompt_tokens(
    messages: Iterable[Mapping[str, Any]], tools: Sequence[Any] | None = None
) -> int:
    """Tokens in a chat prompt: each message's content plus its overhead, plus the tools JSON."""
    total = sum(
        count_tokens(_text(message.get("content"))) + MESSAGE_OVERHEAD_TOKENS
        for message in messages
    )
    if tools:
        total += count_tokens(json.dumps(tools, separators=(",", ":")))
    return total


def _text(content: Any) -> str:
    return content if isinstance(content, str) else ""


def truncate_to_tokens(text: str, limit: int) -> str:
    """The longest prefix of ``text`` (whole characters) that is at most ``limit`` tokens."""
    budget = max(limit, 0) * BYTES_PER_TOKEN
    encoded = text.encode("utf-8")
    if len(encoded) <= budget:
        return text
    return encoded[:budget].decode("utf-8", errors="ignore")


_WORD = re.compile(r"\s*\S+\s*$|\s*\S+|\s+")


def split_chunks(text: str, size: int | None = None) -> list[str]:
    """Pieces to stream: ``size`` characters each, or one word with its leading space if None."""
    if not text:
        return []
    if size is not None:
        return [text[i : i + size] for i in range(0, len(text), size)]
    return _WORD.findall(text)


# The script ------------------------------------------------------------------------------------
ANY_PATH = "*"

# Fault kinds: "status" answers before any output; "runner" too, but as the release's stream
# writer sends a runner's error (wire.STREAM_ERROR_STATUS); the rest change a 200 response.
STATUS = "status"
RUNNER = "runner"
ERROR_MID_STREAM = "error_mid_stream"
DROP = "drop"
NO_DONE = "no_done"
MALFORMED = "malformed"
# What llama-cpp-python's server does, for the /v1 stream: [DONE] without a finish reason when
# another request interrupts it; an empty 200 stream for an over-long prompt (the error only
# comes unstreamed); no usage event, whatever stream_options asks.
INTERRUPTED = "interrupted"
EMPTY = "empty"
UNSTREAMED_STATUS = "unstreamed_status"
NO_USAGE = "no_usage"
STREAM_KINDS = (ERROR_MID_STREAM, DROP, NO_DONE, MALFORMED, INTERRUPTED, EMPTY)


@dataclass
class Fault:
    """A failure for the next ``remaining`` matching responses."""

    kind: str
    remaining: int
    path: str | None = None
    status: int = 500
    error: str = ""
    after_chunks: int = 0


@dataclass
class ReplyRule:
    """A canned answer; ``remaining`` None means every matching request until reset."""

    answer: Answer
    model_key: str | None = None
    thinking: str | None = None
    done_reason: str | None = None
    remaining: int | None = None
    last_in_done: bool = False  # the last piece rides on the done line (v0.30+ can do that)


@dataclass
class Latency:
    """Seconds before the first byte and between streamed chunks."""

    first_byte: float = 0.0
    between_chunks: float = 0.0
    path: str | None = None
    remaining: int | None = None


NO_LATENCY = Latency()


class Script:
    """The thread-safe queue of scripted behaviour that the request handlers consult."""

    def __init__(self, generation_paths: Iterable[str] = ()) -> None:
        self.generation_paths = frozenset(generation_paths)  # what a ``None`` path means
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._replies: list[ReplyRule] = []
        self._latencies: list[Latency] = []

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._replies.clear()
            self._latencies.clear()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def add_reply(self, rule: ReplyRule) -> None:
        with self._lock:
            self._replies.append(rule)

    def add_latency(self, latency: Latency) -> None:
        with self._lock:
            self._latencies.append(latency)

    def matches(self, rule_path: str | None, path: str) -> bool:
        """Whether a rule for ``rule_path`` (None: the generation paths; ``"*"``: any) applies."""
        if rule_path is None:
            return path in self.generation_paths
        return rule_path in (ANY_PATH, path)

    def take_fault(self, path: str, kinds: tuple[str, ...]) -> Fault | None:
        """Consume the oldest fault of one of ``kinds`` that matches ``path``."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and self.matches(fault.path, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def take_reply(self, model_key: str) -> ReplyRule | None:
        """Counted rules in the order they were scripted, then the newest open-ended one."""
        with self._lock:
            return _take(self._replies, lambda rule: rule.model_key in (None, model_key))

    def take_latency(self, path: str) -> Latency:
        """Like take_reply: counted settings first, then the newest open-ended one."""
        with self._lock:
            latency = _take(self._latencies, lambda rule: self.matches(rule.path, path))
            return latency or NO_LATENCY


_Rule = TypeVar("_Rule", ReplyRule, Latency)


def _take(rules: list[_Rule], matches: Callable[[_Rule], bool]) -> _Rule | None:
    matching = [rule for rule in rules if matches(rule)]
    for rule in matching:
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
            return rule
    return matching[-1] if matching else None


# The scheduler ---------------------------------------------------------------------------------
# api.Runner's fields besides num_ctx, with api.DefaultOptions' values (api/types.go, v0.12.6).
_RUNNER_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("num_batch", 512),
    ("num_gpu", -1),
    ("main_gpu", 0),
    ("use_mmap", None),
    ("num_thread", 0),
)
# Since 0.30 (v0.32.15 alike): main_gpu is a pointer, so an absent main_gpu differs from 0, and
# draft_num_predict is a runner option too.
_RUNNER_DEFAULTS_030: tuple[tuple[str, Any], ...] = (
    ("num_batch", 512),
    ("num_gpu", -1),
    ("main_gpu", None),
    ("use_mmap", None),
    ("num_thread", 0),
    ("draft_num_predict", 0),
)


def runner_options(options: Mapping[str, Any], *, v030: bool) -> tuple[tuple[str, Any], ...]:
    """The runner options (except num_ctx) a request runs with, defaults filled in."""
    fields = _RUNNER_DEFAULTS_030 if v030 else _RUNNER_DEFAULTS
    return tuple((name, options.get(name, default)) for name, default in fields)


@dataclass
class Runner:
    """A model loaded (or loading) with fixed runner options."""

    model: FakeModel
    num_ctx: int  # the window it runs with (capped at the trained context)
    requested_ctx: int  # num_ctx as the request that loaded it asked (compared before 0.30)
    auto_ctx: bool  # loaded with the automatic num_ctx
    options: tuple[tuple[str, Any], ...]
    keep_alive_s: float
    shift: bool = True  # context shift (compared since 0.30)
    refs: int = 0
    loading: bool = True
    expiring: bool = False
    expires_at: float = math.inf  # Unix seconds once idle
    ready: threading.Event = field(default_factory=threading.Event)
    # The last prompt's messages: llama-server reuses their common prefix (v0.30+).
    cached: tuple[str, ...] = ()


@dataclass
class Lease:
    """One request's hold on a runner; ``cold`` when the request had to load it."""

    runner: Runner
    cold: bool
    released: bool = False


class Scheduler:
    """Thread-safe runner table with a load counter; ``load_time_s`` is how long a load takes.

    One runner per model, reloaded when runner options change.
    It follows Ollama's server/sched.go (read at v0.12.6 and v0.32.15):

    - ``getRunner`` uses the loaded runner at once when ``runnerRef.needsReload`` says it can serve
      the request; otherwise the request joins the pending queue, which ``processPending`` serves
      one request at a time.
    - ``needsReload`` compares the runner options (``api.Runner``: num_ctx, num_batch, num_gpu,
      main_gpu, use_mmap, num_thread, and draft_num_predict from 0.30) of the loaded runner with the
      request's, field for field (unchanged in v0.33.0-rc2). A negative num_gpu on the request
      matches any. Since 0.30 (absent from v0.24.0, the release before) the
      request's num_ctx is first capped at the trained context (``effectiveContext``), and when
      both the runner and the request use the automatic num_ctx (no num_ctx in the request or the
      Modelfile: ``usesAutomaticNumCtx`` in server/routes.go) the window is not compared at all;
      a different context shift (the request's ``shift``, else ``supportsContextShift``: off for
      deepseek2 models) also reloads.
    - A runner that needs reloading is expired: it unloads once its requests have finished (its
      ``refCount`` drops to 0), then the pending request loads a new one. Requests that the old
      runner can still serve keep using it meanwhile, as in ``getRunner``.
    - ``keep_alive`` (the request's session duration) starts counting when the runner's last
      request finishes; 0 unloads it then, a negative value keeps it forever.
    - /api/ps lists loaded runners (not one that is still loading) with the window they were
      loaded with (``PsHandler`` in server/routes.go reports it as ``context_length``).

    Not modelled: memory, so different models never evict each other (OLLAMA_MAX_LOADED_MODELS),
    and the automatic VRAM-tier num_ctx (the double's ``default_num_ctx`` stands for it).
    OLLAMA_NUM_PARALLEL slots are the server's ``parallel`` setting (``ServerState.slot``).
    """

    def __init__(self, stopping: threading.Event, *, load_time_s: float = 0.0) -> None:
        self.load_time_s = load_time_s
        self._stopping = stopping
        self._cond = threading.Condition()
        self._pending = threading.Lock()  # processPending: one pending request at a time
        self._runners: dict[str, Runner] = {}
        self._loads: Counter[str] = Counter()

    # counters ---------------------------------------------------------------------------------
    @property
    def loads(self) -> int:
        """Model loads since the start (or the last reset), reloads included."""
        with self._cond:
            return sum(self._loads.values())

    def loads_of(self, model_key: str) -> int:
        """Loads of one model (its parsed-name key)."""
        with self._cond:
            return self._loads[model_key]

    def reset(self) -> None:
        with self._cond:
            self._runners.clear()
            self._loads.clear()
            self._cond.notify_all()

    # scheduling -------------------------------------------------------------------------------
    def acquire(
        self,
        model: FakeModel,
        *,
        num_ctx: int,
        requested_ctx: int,
        auto_ctx: bool,
        options: tuple[tuple[str, Any], ...],
        keep_alive_s: float,
        v030: bool,
        shift: bool = True,
    ) -> Lease:
        """A runner that serves this request, loading or reloading one when needed."""
        wanted = Runner(model, num_ctx, requested_ctx, auto_ctx, options, keep_alive_s, shift)
        lease = self._use_loaded(wanted, v030)
        if lease is not None:
            return lease
        with self._pending:
            while True:
                with self._cond:
                    lease = self._use_loaded(wanted, v030)
                    if lease is not None:
                        return lease
                    current = self._live().get(model.key)
                    if current is not None:
                        # Expire it: it unloads when its requests have finished.
                        current.expiring = True
                        while current.refs > 0 and not self._stopping.is_set():
                            self._cond.wait(0.05)
                        if self._runners.get(model.key) is current:
                            del self._runners[model.key]
                        continue
                    wanted.refs = 1
                    self._runners[model.key] = wanted
                    self._loads[model.key] += 1
                if self.load_time_s > 0:
                    self._stopping.wait(self.load_time_s)
                with self._cond:
                    wanted.loading = False
                    wanted.ready.set()
                    self._cond.notify_all()
                return Lease(wanted, cold=True)

    def _use_loaded(self, wanted: Runner, v030: bool) -> Lease | None:
        with self._cond:
            runner = self._live().get(wanted.model.key)
            if runner is None or self._needs_reload(runner, wanted, v030):
                return None
            runner.refs += 1
            runner.keep_alive_s = wanted.keep_alive_s  # the latest request's session duration
            runner.expires_at = math.inf
        runner.ready.wait()  # a compatible runner still loading: wait for it, do not reload
        return Lease(runner, cold=False)

    @staticmethod
    def _needs_reload(runner: Runner, wanted: Runner, v030: bool) -> bool:
        """runnerRef.needsReload, for the fields the double models."""
        existing, new = dict(runner.options), dict(wanted.options)
        if new.get("num_gpu", -1) < 0:
            existing["num_gpu"] = new["num_gpu"] = -1
        if v030:
            if runner.shift != wanted.shift:
                return True
            # effectiveContext caps at the trained length; two automatic windows always match.
            if runner.auto_ctx and wanted.auto_ctx:
                return existing != new
            return existing != new or runner.num_ctx != wanted.num_ctx
        return existing != new or runner.requested_ctx != wanted.requested_ctx

    def release(self, lease: Lease) -> None:
        """The request is done: start the keep-alive clock, or unload when it is 0."""
        with self._cond:
            if lease.released:
                return
            lease.released = True
            runner = lease.runner
            runner.refs -= 1
            if runner.refs <= 0:
                if runner.expiring or runner.keep_alive_s <= 0:
                    if self._runners.get(runner.model.key) is runner:
                        del self._runners[runner.model.key]
                else:
                    runner.expires_at = time.time() + runner.keep_alive_s
            self._cond.notify_all()

    def unload(self, model: FakeModel) -> None:
        """keep_alive 0 with no messages: unload now, or when the running requests finish."""
        with self._cond:
            runner = self._runners.get(model.key)
            if runner is None:
                return
            if runner.refs > 0:
                runner.expiring = True
            else:
                del self._runners[model.key]
            self._cond.notify_all()

    def forget(self, model_key: str) -> None:
        """The model was removed: drop its runner."""
        with self._cond:
            self._runners.pop(model_key, None)
            self._cond.notify_all()

    def loaded(self) -> list[Runner]:
        """Loaded runners (not those still loading)."""
        with self._cond:
            return [runner for runner in self._live().values() if not runner.loading]

    def _live(self) -> dict[str, Runner]:
        now = time.time()
        for key in [k for k, r in self._runners.items() if r.refs <= 0 and r.expires_at <= now]:
            del self._runners[key]
        return self._runners


# The state -------------------------------------------------------------------------------------
DEFAULT_KEEP_ALIVE_S = 300.0  # OLLAMA_KEEP_ALIVE's default, 5m


@dataclass
class RecordedRequest:
    """One request as the double received it.

    ``headers`` is case-insensitive (``headers["content-type"]``). ``json`` is the decoded body,
    or None when the body is empty or not JSON. ``num_ctx`` is the context size a generation
    request ran with (after request option > Modelfile PARAMETER > server default, capped at
    the trained length); ``status`` is the HTTP status the double answered with.
    """

    method: str
    path: str
    headers: Message
    body: bytes
    json: Any = None
    num_ctx: int | None = None
    status: int | None = None


@dataclass
class LoadedModel:
    """A model in memory, as /api/ps reports it."""

    model: FakeModel
    num_ctx: int
    expires_at: float  # Unix seconds; inf for a model kept alive forever


@dataclass
class Settings:
    version: str = "0.33.0"
    default_num_ctx: int = 4096
    chunk_size: int | None = None
    parallel: int | None = None
    signed_in: bool = True  # to ollama.com: whether forwarding a remote model's request works
    vram_bytes: int = 0  # the GPU memory the server sees: /api/ps size_vram (0: no GPU)

    def at_least(self, *version: int) -> bool:
        """Whether the emulated server is this version or newer (behaviour changed over time)."""
        return version_tuple(self.version) >= version

    @property
    def profile(self) -> Profile:
        """The emulated release's wire rules (wire.py, "Version profiles")."""
        return Profile(self.version)


class ServerState:
    """Thread-safe state; the handlers read and change it only through these methods."""

    def __init__(self, settings: Settings, generation_paths: Iterable[str] = ()) -> None:
        self.settings = settings
        self.script = Script(generation_paths)
        self.stopping = threading.Event()  # set by stop(): wakes simulated latency at once
        self._lock = threading.RLock()
        self._installed: dict[str, FakeModel] = {}
        self._library: dict[str, FakeModel] = dict(LIBRARY)
        self.scheduler = Scheduler(self.stopping)
        self._leases = threading.local()  # the runners the current request thread holds
        self._records: list[RecordedRequest] = []
        self._forwarded: list[RecordedRequest] = []
        self._listeners: list[Callable[[RecordedRequest], None]] = []
        self._slots = (
            threading.BoundedSemaphore(self.settings.parallel) if self.settings.parallel else None
        )

    # models -----------------------------------------------------------------------------------
    def install(self, model: FakeModel | str) -> FakeModel:
        installed = as_model(model, self._library)
        with self._lock:
            self._installed[installed.key] = installed
        return installed

    def uninstall(self, name: str) -> FakeModel:
        key = parse_name(name.strip()).key
        self.scheduler.forget(key)
        with self._lock:
            try:
                return self._installed.pop(key)
            except KeyError:
                raise KeyError(f"no installed model named {name!r}") from None

    def find(self, name: str) -> FakeModel | None:
        with self._lock:
            return self._installed.get(parse_name(name).key)

    def installed(self) -> list[FakeModel]:
        """Newest ``modified_at`` first, like /api/tags."""
        with self._lock:
            models = list(self._installed.values())
        return sorted(models, key=lambda model: model.modified_at, reverse=True)

    def add_pullable(self, model: FakeModel | str) -> FakeModel:
        pullable = as_model(model, self._library)
        with self._lock:
            self._library[pullable.key] = pullable
        return pullable

    def find_pullable(self, name: str) -> FakeModel | None:
        with self._lock:
            return self._library.get(parse_name(name).key)

    # loads ------------------------------------------------------------------------------------
    def load(
        self,
        model: FakeModel,
        num_ctx: int,
        keep_alive_s: float | None,
        *,
        options: dict[str, Any] | None = None,
        requested_ctx: int | None = None,
        auto_ctx: bool = False,
        shift: bool = True,
    ) -> bool:
        """Get a runner for ``model`` with ``num_ctx`` and the runner ``options`` for the current
        request (see Scheduler); True when that needed a (re)load (a cold start).

        The request holds the runner until :meth:`finish_request`; a keep_alive of 0 unloads
        the model then.
        """
        keep = DEFAULT_KEEP_ALIVE_S if keep_alive_s is None else keep_alive_s
        lease = self.scheduler.acquire(
            model,
            num_ctx=num_ctx,
            requested_ctx=num_ctx if requested_ctx is None else requested_ctx,
            auto_ctx=auto_ctx,
            options=runner_options(options or {}, v030=self.settings.at_least(0, 30)),
            keep_alive_s=keep,
            v030=self.settings.at_least(0, 30),
            shift=shift,
        )
        held: list[Lease] | None = getattr(self._leases, "held", None)
        if held is None:
            held = self._leases.held = []
        held.append(lease)
        return lease.cold

    def finish_request(self) -> None:
        """The current request's generation is over: release the runners it holds."""
        held: list[Lease] = getattr(self._leases, "held", None) or []
        while held:
            self.scheduler.release(held.pop())

    def reuse_prompt(self, model: FakeModel, prompt: tuple[str, ...]) -> int:
        """How many leading items of ``prompt`` the current request's runner holds in its cache
        from its last prompt; ``prompt`` is cached in their place (a reload starts empty)."""
        held: list[Lease] = getattr(self._leases, "held", None) or []
        runner = next((h.runner for h in reversed(held) if h.runner.model.key == model.key), None)
        if runner is None:
            return 0
        with self._lock:
            same = 0
            for before, now in zip(runner.cached, prompt):
                if before != now:
                    break
                same += 1
            runner.cached = prompt
        return same

    def unload(self, model: FakeModel) -> None:
        self.scheduler.unload(model)

    def loaded(self) -> list[LoadedModel]:
        """Models in memory, the longest remaining keep-alive first (like /api/ps)."""
        now = time.time()
        live = [
            # A busy runner's keep-alive clock has not started: it expires a session after now.
            LoadedModel(r.model, r.num_ctx, now + r.keep_alive_s if r.refs > 0 else r.expires_at)
            for r in self.scheduler.loaded()
        ]
        return sorted(live, key=lambda loaded: loaded.expires_at, reverse=True)

    # records ----------------------------------------------------------------------------------
    def record(self, request: RecordedRequest) -> RecordedRequest:
        with self._lock:
            self._records.append(request)
        return request

    def listen(self, listener: Callable[[RecordedRequest], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def notify(self, request: RecordedRequest) -> None:
        """Tell the listeners about a request once it has been answered."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(request)

    def records(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def forward(self, request: RecordedRequest) -> None:
        """Note a request the real server would have sent on to a remote model's host."""
        with self._lock:
            self._forwarded.append(request)

    def forwarded(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._forwarded)

    def reset(self) -> None:
        """Forget requests, scripted behaviour and loads; installed models stay."""
        with self._lock:
            self._records.clear()
            self._forwarded.clear()
        self.scheduler.reset()
        self.script.clear()

    # time and concurrency ---------------------------------------------------------------------
    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False (at once) when the server is stopping."""
        if seconds <= 0:
            return not self.stopping.is_set()
        return not self.stopping.wait(seconds)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of ``parallel`` generation slots (OLLAMA_NUM_PARALLEL): wait, never 503."""
        if self._slots is None:
            yield
            return
        with self._slots:
            yield


# Generation ------------------------------------------------------------------------------------
# Nominal timings reported in the metrics (nanoseconds); simulated latency is added on top.
COLD_LOAD_NS = 750_000_000
WARM_LOAD_NS = 15_000_000
PROMPT_EVAL_NS_PER_TOKEN = 250_000  # 4,000 tokens/s
EVAL_NS_PER_TOKEN = 25_000_000  # 40 tokens/s
OPEN_ENDED_FACTOR = 10  # num_predict < 0 is capped at 10 x num_ctx (Ollama HEAD)


@dataclass
class GenerationRequest:
    """A checked request, whatever endpoint it came from."""

    verb: str  # "chat" or "generate": the word in `"m" does not support chat`
    model_arg: str  # the request's model string, echoed in every response
    model: FakeModel
    messages: list[dict[str, Any]]
    raw: Any  # the request JSON, handed to reply functions
    options: Any = None
    think: bool | str | None = None
    format: Any = None
    keep_alive_s: float | None = None
    tools: list[Any] = field(default_factory=list)
    truncate: bool = True
    shift: bool = True
    capabilities: tuple[str, ...] = ()  # needed beyond completion, e.g. ("insert",)


@dataclass
class Generation:
    """What the model produced; ``done_reason`` "load"/"unload" mark the empty-prompt trick."""

    done_reason: str
    thinking: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    metrics: dict[str, int] = field(default_factory=dict)
    last_in_done: bool = False  # the reply asked for the last piece on the done line

    @property
    def is_trick(self) -> bool:
        return self.done_reason in ("load", "unload")


def context_size(model: FakeModel, options: dict[str, Any], default_num_ctx: int) -> int:
    """num_ctx: request option > Modelfile PARAMETER (both in ``options``) > server default,
    capped at the trained length and floored at 4 (2048 for vision models)."""
    num_ctx = int(options.get("num_ctx", default_num_ctx))
    if model.context_length:
        num_ctx = min(num_ctx, model.context_length)
    return max(num_ctx, 2048 if model.has("vision") else 4)


def run(
    state: ServerState, req: GenerationRequest, record: RecordedRequest, *, waited_s: float = 0.0
) -> Generation:
    """Check, load and generate in the order the server does; raise ApiError on the way."""
    model = req.model
    if not req.messages and req.keep_alive_s == 0:
        state.unload(model)
        return Generation("unload")
    think = req.think
    if model.has("thinking"):
        think = True if think is None else think
    elif think:
        raise ApiError(400, f'"{req.model_arg}" does not support thinking')
    if not model.has("completion"):
        raise ApiError(400, f'"{req.model_arg}" does not support {req.verb}')
    needed = (*req.capabilities, *(("tools",) if req.tools else ()))
    for capability in needed:
        if not model.has(capability):
            raise ApiError(400, f"{model.parsed_name.full} does not support {capability}")
    options = resolve_options(model, req.options)
    num_ctx = context_size(model, options, state.settings.default_num_ctx)
    record.num_ctx = num_ctx
    # usesAutomaticNumCtx (server/routes.go): no num_ctx in the request or the Modelfile.
    explicit = isinstance(req.options, dict) and req.options.get("num_ctx") is not None
    cold = state.load(
        model,
        num_ctx,
        req.keep_alive_s,
        options=options,
        requested_ctx=int(options.get("num_ctx", state.settings.default_num_ctx)),
        auto_ctx=not explicit and "num_ctx" not in model.parameters,
        shift=_context_shift(req),
    )
    if not req.messages:
        return Generation("load")
    check_format(req.format)
    prompt_tokens = _prompt_tokens(req, num_ctx, state.settings.profile)
    if state.settings.profile.has(PROMPT_EVAL_SKIPS_CACHE):
        prompt_tokens = _uncached(state, req, prompt_tokens)
    return _answer(state, req, options, think, num_ctx, prompt_tokens, cold, waited_s)


def _context_shift(req: GenerationRequest) -> bool:
    """resolveContextShift (server/sched.go): the request's shift, else whether the model
    supports shifting (not deepseek2 models)."""
    asked = req.raw.get("shift") if isinstance(req.raw, dict) else None
    return asked if isinstance(asked, bool) else req.model.family != "deepseek2"


def _prompt_tokens(req: GenerationRequest, num_ctx: int, profile: Profile) -> int:
    """Tokens evaluated, after Ollama's two silent truncation stages
    (docs/reference/ollama-protocol.md, "Context and truncation")."""
    messages = list(req.messages)
    tokens = count_prompt_tokens(messages, req.tools)
    # llama-server needs one free position: it refuses a prompt that fills the slot
    # (n_tokens >= n_ctx), and Ollama truncates to num_ctx - 1 for it (llm/llama_server.go
    # completionPromptForRequest, v0.30+). The runners before keep up to num_ctx.
    limit = num_ctx - 1 if profile.has(LLAMA_SERVER) else num_ctx
    if tokens <= limit:
        return tokens
    refuses = profile.has(REFUSES_OVERFLOW)
    if refuses and not req.truncate:
        # The runner refuses (v0.12.6+), or llama-server does (v0.30+): wire.py.
        raise RunnerError(400, profile.overflow_text(tokens, num_ctx))
    # Stage 1: drop the oldest messages, keeping system messages and the last message.
    droppable = [i for i, m in enumerate(messages[:-1]) if m.get("role") != "system"]
    for index in droppable:
        messages[index] = {}
        tokens = count_prompt_tokens([m for m in messages if m], req.tools)
        if tokens <= num_ctx:  # server/prompt.go chatPrompt compares with num_ctx itself
            break
    if tokens <= limit:
        return tokens
    if not refuses:
        # Before v0.12.6 the runner keeps exactly num_ctx tokens, whatever truncate says
        # (runner/ollamarunner/runner.go NewSequence at v0.11.11).
        return num_ctx
    # Stage 2, truncate=true: the runner keeps the first num_keep tokens and the end, num_ctx
    # in all (NewSequence, v0.12.6-v0.24); llama-server needs one token of room, so num_ctx - 1
    # (llm/llama_server.go completionPromptForRequest, v0.30+). Refused when shifting is off,
    # from v0.30.9 (SHIFT_OFF_REFUSES); before, shift only mattered while generating.
    if not req.shift and profile.has(SHIFT_OFF_REFUSES):
        raise ApiError(400, PROMPT_TOO_LONG)
    return limit


def _uncached(state: ServerState, req: GenerationRequest, prompt_tokens: int) -> int:
    """llama-server's timings.prompt_n: the tokens it evaluated, after the prefix it reused
    from the previous prompt (whole messages here); at least one is always evaluated."""
    prompt = tuple(json.dumps(message, sort_keys=True) for message in req.messages)
    same = state.reuse_prompt(req.model, prompt)
    if same == 0:
        return prompt_tokens
    reused = count_prompt_tokens(list(req.messages)[:same])
    return max(1, prompt_tokens - reused)


def _answer(
    state: ServerState,
    req: GenerationRequest,
    options: dict[str, Any],
    think: bool | str | None,
    num_ctx: int,
    prompt_tokens: int,
    cold: bool,
    waited_s: float,
) -> Generation:
    model = req.model
    rule = state.script.take_reply(model.key)
    answer = rule.answer if rule else model.reply
    text = _call(answer, req.raw) if callable(answer) else answer
    if text is None:
        text = (
            f"Fake answer from {model.name}: the prompt had {prompt_tokens} tokens "
            f"in {_plural(len(req.messages), 'message')}."
        )
    if req.format not in (None, "") and not _is_json(text):
        text = json.dumps({"response": text})
    thinking = ""
    if model.has("thinking") and think:
        scripted = rule.thinking if rule else None
        default = f"The user sent {_plural(len(req.messages), 'message')}. I will answer."
        thinking = scripted or model.thinking or default
    num_predict = int(options.get("num_predict", -1))
    limit = num_predict if num_predict >= 0 else OPEN_ENDED_FACTOR * num_ctx
    kept_thinking = truncate_to_tokens(thinking, limit)
    content = truncate_to_tokens(text, limit - count_tokens(kept_thinking))
    done_reason = "stop" if (kept_thinking, content) == (thinking, text) else "length"
    stopped = _cut_at_stop(content, options.get("stop", []))
    if stopped != content:
        content, done_reason = stopped, "stop"
    eval_count = count_tokens(kept_thinking) + count_tokens(content)
    metrics = {
        "load_duration": (COLD_LOAD_NS if cold else WARM_LOAD_NS) + int(waited_s * 1e9),
        "prompt_eval_count": prompt_tokens,
        "prompt_eval_duration": prompt_tokens * PROMPT_EVAL_NS_PER_TOKEN,
        "eval_count": eval_count,
        "eval_duration": eval_count * EVAL_NS_PER_TOKEN,
    }
    total = metrics["load_duration"] + metrics["prompt_eval_duration"] + metrics["eval_duration"]
    size = state.settings.chunk_size
    return Generation(
        done_reason=rule.done_reason if rule and rule.done_reason else done_reason,
        last_in_done=bool(rule and rule.last_in_done),
        thinking=split_chunks(kept_thinking, size),
        content=split_chunks(content, size),
        # Ollama leaves out every metric that is zero.
        metrics={
            key: value for key, value in {"total_duration": total, **metrics}.items() if value
        },
    )


def _call(answer: Callable[[Any], str], request: Any) -> str:
    try:
        return answer(request)
    except Exception as exc:
        # A bug in a test's reply function should reach the test as a readable server error,
        # not as a connection the double closed without answering.
        raise ApiError(500, f"FakeOllama: the reply function raised {exc!r}") from exc


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _cut_at_stop(text: str, stops: list[str]) -> str:
    cuts = [text.find(stop) for stop in stops if stop and stop in text]
    return text[: min(cuts)] if cuts else text
