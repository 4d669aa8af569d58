"""The state shared by every request thread (:class:`ServerState`).

Settings, installed models, loads, recorded requests and the script; the scheduler it holds
(scheduler.py) decides which runners are loaded.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from email.message import Message
from typing import Any

from .go import version_tuple
from .model_names import PLAIN, Naming
from .models import FakeModel
from .profiles import NEWEST, RELOAD_BY_EFFECTIVE_WINDOW, Profile
from .scheduler import Lease, Scheduler, runner_options
from .script import Script

__all__ = [
    "DEFAULT_KEEP_ALIVE_S",
    "LoadedModel",
    "RecordedRequest",
    "ServerState",
    "Settings",
]


# The state -------------------------------------------------------------------------------------
DEFAULT_KEEP_ALIVE_S = 300.0  # the server's keep-alive when none is configured: 5m


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
    version: str = NEWEST  # the emulated release (NEWEST: every rule of the profile in effect)
    default_num_ctx: int = 4096
    chunk_size: int | None = None
    parallel: int | None = None
    signed_in: bool = True  # to the remote models' host: whether forwarding to it works
    vram_bytes: int = 0  # the GPU memory the server sees: /api/ps size_vram (0: no GPU)
    # The server's release rules and error texts (None: its faces', else the base Profile's).
    profile_type: type[Profile] | None = None

    def at_least(self, *version: int) -> bool:
        """Whether the emulated server is this version or newer (behaviour changed over time)."""
        return self.version == NEWEST or version_tuple(self.version) >= version

    @property
    def profile(self) -> Profile:
        """The emulated release's wire rules and error texts (profiles.py)."""
        return (self.profile_type or Profile)(self.version)


class ServerState:
    """Thread-safe state; the handlers read and change it only through these methods."""

    def __init__(
        self,
        settings: Settings,
        generation_paths: Iterable[str] = (),
        *,
        naming: Naming = PLAIN,
        library: Iterable[FakeModel] = (),
    ) -> None:
        """``naming``: how the server names models (model_names.py); ``library``: the models
        it knows by name, whose facts a bare name installs and which it can pull."""
        self.settings = settings
        self.naming = naming
        self.label = "FakeServer"  # the double's class, which its own error texts name
        self.script = Script(generation_paths)
        self.stopping = threading.Event()  # set by stop(): wakes simulated latency at once
        self._lock = threading.RLock()
        self._installed: dict[str, FakeModel] = {}
        self._library: dict[str, FakeModel] = {}
        for known in library:
            self.add_pullable(replace(known))  # the server's own copy: its installs change it
        self.scheduler = Scheduler(self.stopping, key=naming.key)
        self._leases = threading.local()  # the runners the current request thread holds
        self._records: list[RecordedRequest] = []
        self._forwarded: list[RecordedRequest] = []
        self._listeners: list[Callable[[RecordedRequest], None]] = []
        self._slots = (
            threading.BoundedSemaphore(self.settings.parallel) if self.settings.parallel else None
        )

    # models -----------------------------------------------------------------------------------
    def as_model(self, model: FakeModel | str) -> FakeModel:
        """``model`` as this server lists it (Naming.adopt: a FakeModel is changed in place); a
        bare name the library knows takes a copy of that model's facts. Raises ValueError for a
        name the server refuses."""
        if isinstance(model, str):
            with self._lock:
                known = self._library.get(self.naming.key(model))
            model = replace(known) if known else self.naming.model(model)
        return self.naming.adopt(model)

    def key(self, name: str) -> str:
        """The lookup key of ``name`` (every spelling of one model has the same)."""
        return self.naming.key(name)

    def install(self, model: FakeModel | str) -> FakeModel:
        installed = self.as_model(model)
        with self._lock:
            self._installed[self.key(installed.name)] = installed
        return installed

    def uninstall(self, name: str) -> FakeModel:
        key = self.key(name)
        self.scheduler.forget(key)
        with self._lock:
            try:
                return self._installed.pop(key)
            except KeyError:
                raise KeyError(f"no installed model named {name!r}") from None

    def find(self, name: str) -> FakeModel | None:
        with self._lock:
            return self._installed.get(self.key(name))

    def installed(self) -> list[FakeModel]:
        """Newest ``modified_at`` first, like /api/tags."""
        with self._lock:
            models = list(self._installed.values())
        return sorted(models, key=lambda model: model.modified_at, reverse=True)

    def add_pullable(self, model: FakeModel | str) -> FakeModel:
        pullable = self.as_model(model)
        with self._lock:
            self._library[self.key(pullable.name)] = pullable
        return pullable

    def find_pullable(self, name: str) -> FakeModel | None:
        with self._lock:
            return self._library.get(self.key(name))

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
        # The release's reload rule, not a version number: the core names no server's releases.
        newer = self.settings.profile.has(RELOAD_BY_EFFECTIVE_WINDOW)
        lease = self.scheduler.acquire(
            model,
            num_ctx=num_ctx,
            requested_ctx=num_ctx if requested_ctx is None else requested_ctx,
            auto_ctx=auto_ctx,
            options=runner_options(options or {}, v030=newer),
            keep_alive_s=keep,
            v030=newer,
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
        key = self.key(model.name)
        runner = next(
            (h.runner for h in reversed(held) if self.key(h.runner.model.name) == key), None
        )
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
        """Hold one of ``parallel`` generation slots (the parallel limit): wait, never 503."""
        if self._slots is None:
            yield
            return
        with self._slots:
            yield
