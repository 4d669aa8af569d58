"""The scheduler (:class:`Scheduler`): one runner per model, reloaded when runner options change."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .models import FakeModel

__all__ = [
    "Lease",
    "Runner",
    "Scheduler",
    "runner_options",
]


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
    It follows the default server's scheduler, server/sched.go in its source (read at v0.12.6
    and v0.32.15):

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

    Not modelled: memory, so different models never evict each other (the server's limit on
    loaded models), and the automatic VRAM-tier num_ctx (the double's ``default_num_ctx`` stands
    for it). The server's limit on parallel requests is the double's ``parallel`` setting
    (``ServerState.slot``).
    """

    def __init__(
        self,
        stopping: threading.Event,
        *,
        load_time_s: float = 0.0,
        key: Callable[[str], str] = str.strip,
    ) -> None:
        """``key``: the server's naming's (model_names.py): which model a runner is for."""
        self.load_time_s = load_time_s
        self._key = key
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
        """Loads of one model (its key in the server's naming)."""
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
                    current = self._live().get(self._key(model.name))
                    if current is not None:
                        # Expire it: it unloads when its requests have finished.
                        current.expiring = True
                        while current.refs > 0 and not self._stopping.is_set():
                            self._cond.wait(0.05)
                        if self._runners.get(self._key(model.name)) is current:
                            del self._runners[self._key(model.name)]
                        continue
                    wanted.refs = 1
                    self._runners[self._key(model.name)] = wanted
                    self._loads[self._key(model.name)] += 1
                if self.load_time_s > 0:
                    self._stopping.wait(self.load_time_s)
                with self._cond:
                    wanted.loading = False
                    wanted.ready.set()
                    self._cond.notify_all()
                return Lease(wanted, cold=True)

    def _use_loaded(self, wanted: Runner, v030: bool) -> Lease | None:
        with self._cond:
            runner = self._live().get(self._key(wanted.model.name))
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
                    if self._runners.get(self._key(runner.model.name)) is runner:
                        del self._runners[self._key(runner.model.name)]
                else:
                    runner.expires_at = time.time() + runner.keep_alive_s
            self._cond.notify_all()

    def unload(self, model: FakeModel) -> None:
        """keep_alive 0 with no messages: unload now, or when the running requests finish."""
        with self._cond:
            runner = self._runners.get(self._key(model.name))
            if runner is None:
                return
            if runner.refs > 0:
                runner.expiring = True
            else:
                del self._runners[self._key(model.name)]
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
