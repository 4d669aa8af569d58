"""One context window per loaded model, so that a batch does not reload it.

A server whose requests set the context window (``Backend.sets_window``) may reload a model
whenever a request's window differs from the loaded one (the backend's reference page says
which releases do), and a load takes seconds for a 7B model, a minute for a 70B one. Sizing
the window per prompt from the ladder alone makes a batch whose prompts straddle a rung reload
on every flip. So, unless the caller names the window:

- a window that is already loaded (the backend's ``loaded_windows``, looked up at most every
  :data:`PS_TTL` seconds) or that this process sent for the model recently is reused when the
  prompt and its answer fit in it;
- otherwise the window grows to the prompt's rung (never shrinks below a known window), and
  from then on smaller prompts reuse it;
- decisions for one model are taken one at a time, so concurrent calls agree on one window;
- a request for a grown window is sent only once the requests already on their way with a
  smaller one have been answered (the server has given them the loaded runner): one arriving
  after the grown window was loaded would make the server reload the smaller window again;
- a reused window larger than the prompt needs must fit the memory budget the model selection
  uses (``cap``); when it does not, the prompt gets its own rung as before.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from . import names

__all__ = ["PS_TTL", "SENT_TTL", "Windows"]

# Asking what is loaded is a cheap local call, but one per generation is still one too many.
PS_TTL = 2.0
# How long a window this process sent is assumed to be loaded: five minutes, the time a model
# stays loaded after its last request by default (the backend's reference page gives the source).
SENT_TTL = 300.0


@dataclass
class _Seen:
    window: int
    at: float


class Windows:
    """One server's windows, per model: the loaded window (as the server says) and the window
    last sent; a part of its :class:`~persona_ollama.server_state.ServerState`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # _known() is also called with it held
        self._answered = threading.Condition(self._lock)
        self._sending: dict[str, Counter[int]] = {}
        self._fetching = threading.Lock()
        self._ps: tuple[float, dict[str, int]] | None = None
        self._sent: dict[str, _Seen] = {}
        self._caps: dict[str, _Seen] = {}

    def loaded(self, fetch: Callable[[], dict[str, int]]) -> dict[str, int]:
        """Loaded models -> their window, from ``fetch`` (the backend's
        ``loaded_windows``) at most every PS_TTL s.

        Concurrent callers share one fetch. A failing fetch counts as "nothing known".
        """
        cached = self._ps  # one attribute read: atomic
        if cached is not None and time.monotonic() - cached[0] < PS_TTL:
            return cached[1]
        with self._fetching:
            cached = self._ps
            if cached is not None and time.monotonic() - cached[0] < PS_TTL:
                return cached[1]
            try:
                windows = fetch()
            except Exception:  # noqa: BLE001 - a hint only; the generation reports real errors
                windows = {}
            with self._lock:
                self._ps = (time.monotonic(), windows)
            return windows

    def choose(
        self,
        model: str,
        *,
        needed: int,
        rung: int,
        loaded: int | Callable[[], int | None] | None,
        limit: int | None,
        cap: Callable[[], int | None],
    ) -> int:
        """The window to send: a known one when ``needed`` tokens fit in it, else ``rung``
        (or the known window, when larger). ``loaded`` is the server's loaded window, or a
        callable that looks it up (``loaded``), called only when the window this process sent
        last does not hold ``needed``. ``limit`` is the model's trained context; ``cap``
        (called only when a known window is larger than ``rung``, and then remembered for
        SENT_TTL) the largest window that fits the memory budget, None when unknown."""
        key = _canonical(model)
        if callable(loaded):
            # The window sent last is most likely what is loaded: look only when it is too small.
            loaded = None if self._known(key, None, limit) >= needed else loaded()
        fits = self._cap(key, cap) if self._known(key, loaded, limit) > rung else None
        with self._lock:
            known = self._known(key, loaded, limit)
            if known > rung and fits is None:
                fits = self._cap(key, cap)  # a concurrent call grew the window meanwhile
            if known > rung and fits is not None and known > fits:
                known = 0  # it would not fit in memory: better a reload than a spill
            window = known if known >= needed else max(rung, known)
            self._sent[key] = _Seen(window, time.monotonic())
            return window

    def _known(self, key: str, loaded: int | None, limit: int | None) -> int:
        """The largest window known to be loaded (0: none), within the trained context."""
        sent = self._sent.get(key)  # one dict read: atomic, no lock needed
        recent = sent.window if sent is not None and time.monotonic() - sent.at < SENT_TTL else 0
        known = max(loaded or 0, recent)
        return 0 if limit is not None and known > limit else known

    def _cap(self, key: str, cap: Callable[[], int | None]) -> int | None:
        """``cap()``, remembered per model: the budget and the model's size rarely change."""
        cached = self._caps.get(key)
        if cached is not None and time.monotonic() - cached.at < SENT_TTL:
            return cached.window if cached.window >= 0 else None
        value = cap()
        self._caps[key] = _Seen(-1 if value is None else value, time.monotonic())
        return value

    def sending(self, model: str, window: int, until: float | None = None) -> _Sending:
        """A context manager around sending a request with ``window`` until the server starts
        answering: it waits while requests with a smaller window for the same model are still
        unanswered, but not past ``until`` (a time.monotonic() instant, the call's deadline):
        then it goes on, and the request itself fails with the deadline's error."""
        return _Sending(self, _canonical(model), window, until)

    def failed(self, model: str, window: int) -> None:
        """A request sent with ``window`` failed before the server answered: the window may
        never have loaded (out of memory, a crashed runner), so it is no longer assumed loaded;
        reused for smaller prompts, it would fail them too for SENT_TTL."""
        key = _canonical(model)
        with self._lock:
            sent = self._sent.get(key)
            if sent is not None and sent.window == window:
                del self._sent[key]
            self._ps = None

    def forget(self) -> None:
        """Forget what is known of the server's windows (``OllamaProvider.refresh``)."""
        with self._lock:
            self._ps = None
            self._sent.clear()
            self._caps.clear()


class _Sending:
    """Registers one request on its way; a class, not a generator: this runs per request."""

    __slots__ = ("_key", "_owner", "_until", "_window")

    def __init__(self, owner: Windows, key: str, window: int, until: float | None) -> None:
        self._owner, self._key, self._window, self._until = owner, key, window, until

    def __enter__(self) -> None:
        owner, window, until = self._owner, self._window, self._until
        with owner._answered:
            on_the_way = owner._sending.setdefault(self._key, Counter())
            while any(other < window for other in on_the_way):
                if until is None:
                    owner._answered.wait()
                    continue
                left = until - time.monotonic()
                if left <= 0:
                    break  # the deadline is the caller's: another call's answer is not
                owner._answered.wait(left)
            on_the_way[window] += 1

    def __exit__(self, *exc: object) -> None:
        owner, window = self._owner, self._window
        with owner._answered:
            on_the_way = owner._sending[self._key]
            on_the_way[window] -= 1
            if on_the_way[window] <= 0:
                del on_the_way[window]
                owner._answered.notify_all()  # only a change of windows can release a waiter


_canonical = functools.lru_cache(maxsize=256)(names.canonical)
