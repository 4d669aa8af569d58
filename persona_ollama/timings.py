"""Measured speeds: the server's own timings of each generation, in a small local file.

After each answer the server states how many prompt and answer tokens it processed and how
long that took (the backend reads them into the final chunk's counts and durations, and the
load time). Those numbers, and never any text of a prompt or an answer, are kept per
server and model digest, so that ``models``, ``doctor``, ``bench`` and the first-byte wait use
this machine's real speeds rather than an estimate. What is stored, where, and how to turn it
off (PERSONA_OLLAMA_RECORD_TIMINGS=0) is in docs/privacy.md and docs/configuration.md.

The file is bounded (:data:`MAX_SAMPLES` per model, :data:`MAX_MODELS` models), written
atomically (a temporary file renamed over it) under an exclusive lock, so concurrent
processes neither corrupt it nor lose each other's samples; a damaged file is started afresh.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import RECORD_TIMINGS_VAR, env_bool

log = logging.getLogger("persona_ollama")

FILE_NAME = "speeds.json"
SCHEMA = 1
MAX_SAMPLES = 20  # per model and server: the newest are kept
MAX_MODELS = 100  # model/server pairs: the least recently measured are dropped
MAX_FILE_BYTES = 1024 * 1024  # a file larger than this is not ours (or damaged): ignored
# A prompt of fewer tokens says little about prompt speed (most of it was served from the
# prompt cache, or it is a one-word test): its prompt timing is not counted.
MIN_PROMPT_TOKENS = 16
# An answer timed by the client's clock needs this many tokens to say anything.
MIN_CLIENT_TOKENS = 4
LOCK_WAIT = 2.0  # seconds a writer waits for another process's lock before skipping a sample
# A sample is written at once when the file was last written longer ago than this; within it,
# samples wait in memory (and count for every reading here) until a timer writes them when
# the interval is over, or close() or the interpreter's exit comes first. A batch of short
# generations then writes the file every few seconds, not once per answer (each write costs
# milliseconds and serialises concurrent answers), and another process sees a sample within
# this many seconds.
WRITE_EVERY = 5.0


@dataclass(frozen=True)
class Sample:
    """One generation's timings as the server stated them (None: not stated)."""

    prompt_tokens: int | None
    prompt_seconds: float | None
    answer_tokens: int | None
    answer_seconds: float | None
    load_seconds: float | None
    at: float = 0.0  # Unix time it was recorded

    @property
    def useful(self) -> bool:
        """True when it holds a prompt or an answer speed."""
        return _rate(self.prompt_tokens, self.prompt_seconds, MIN_PROMPT_TOKENS) is not None or (
            _rate(self.answer_tokens, self.answer_seconds, 1) is not None
        )

    def row(self) -> list[Any]:
        """The sample as the file keeps it: six numbers, no text."""
        return [
            round(self.at, 1),
            self.prompt_tokens,
            _round(self.prompt_seconds),
            self.answer_tokens,
            _round(self.answer_seconds),
            _round(self.load_seconds),
        ]

    @classmethod
    def from_row(cls, row: Any) -> Sample | None:
        """A sample read back from the file; None for a row that is not six sound numbers."""
        if not isinstance(row, list) or len(row) != 6:
            return None
        at, pt, ps, at_, as_, ls = row
        if not _number(at):
            return None
        sample = cls(_count(pt), _secs(ps), _count(at_), _secs(as_), _secs(ls), float(at))
        return sample if sample.useful else None


@dataclass(frozen=True)
class Speeds:
    """What the samples of one model on one server say, token-weighted over the kept runs.

    ``load_seconds`` is the longest load among them: a cold load, the one a wait must allow.
    """

    server: str
    model: str
    digest: str | None
    runs: int
    prompt_tokens_per_second: float | None
    answer_tokens_per_second: float | None
    load_seconds: float | None
    updated: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``--json`` output of models, doctor and bench)."""
        return {
            "runs": self.runs,
            "prompt_tokens_per_second": _round(self.prompt_tokens_per_second, 1),
            "answer_tokens_per_second": _round(self.answer_tokens_per_second, 1),
            "load_seconds": _round(self.load_seconds, 2),
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.updated)),
        }


def client_answer_timing(
    answer_tokens: int | None, text_seconds: float | None
) -> tuple[int | None, float | None]:
    """(tokens, seconds) of the answer by the client's clock, for a server that states no
    durations (llama-cpp-python's /v1 server): the tokens after the first, over the time from
    the first piece of the answer to the end (the first token's time belongs to the wait before it).
    (None, None) for fewer than MIN_CLIENT_TOKENS tokens: too few to time."""
    if answer_tokens is None or text_seconds is None or answer_tokens < MIN_CLIENT_TOKENS:
        return None, None
    if text_seconds <= 0:
        return None, None
    return answer_tokens - 1, text_seconds


def recording_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when PERSONA_OLLAMA_RECORD_TIMINGS switches recording off (default: on)."""
    env = os.environ if environ is None else environ
    enabled = env_bool(env, RECORD_TIMINGS_VAR)
    return True if enabled is None else enabled


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file: in the user's cache folder (XDG_CACHE_HOME, else ~/.cache; on Windows
    LOCALAPPDATA; on macOS ~/Library/Caches), under persona-ollama/."""

    def get(name: str) -> str:
        # The settings' mapping first (a host may pass its own), then the process's.
        return ((environ or {}).get(name) or os.environ.get(name) or "").strip()

    base = get("XDG_CACHE_HOME")
    if not base and sys.platform == "win32":
        base = get("LOCALAPPDATA")
    if not base:
        home = Path(get("HOME") or _home())
        base = str(home / "Library" / "Caches" if sys.platform == "darwin" else home / ".cache")
    return Path(base) / "persona-ollama" / FILE_NAME


def _home() -> Path:
    try:
        return Path.home()
    except RuntimeError:  # no home folder known (a service account): the temporary folder
        return Path(tempfile.gettempdir())


# A documented cache: the live store of each file in this process (from_env), held weakly,
# so it is bounded by the providers alive. Owner: this module.
_STORES: weakref.WeakValueDictionary[Path, TimingStore] = weakref.WeakValueDictionary()
_STORES_LOCK = threading.Lock()


class TimingStore:
    """The measured speeds in one file; safe to use from several threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # The view readings use (file + samples waiting), the file's (mtime, size) it was
        # read at, and the speeds worked out from its entries.
        self._cache: tuple[tuple[int, int] | None, dict[str, Any]] | None = None
        self._computed: dict[str, Speeds | None] = {}
        self._parsed: dict[str, list[Sample]] = {}  # each entry's rows, read once
        # Samples not yet in the file (WRITE_EVERY), and when this store last wrote it.
        self._pending: list[tuple[str, str, str | None, Sample]] = []
        self._written_at = -math.inf
        self._timer: threading.Timer | None = None
        # Why the last write failed; None once one succeeds (bench reports it).
        self.write_error: str | None = None
        atexit.register(_flush_at_exit, weakref.ref(self))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TimingStore:
        """The store at :func:`default_path`: one per file in this process (_STORES), so
        that every provider's samples share one write interval and one view."""
        path = default_path(environ)
        with _STORES_LOCK:
            store = _STORES.get(path)
            if store is None:
                store = _STORES[path] = cls(path)
        return store

    # -- reading -----------------------------------------------------------------------

    def speeds(self, server: str, model: str, digest: str | None = None) -> Speeds | None:
        """The measured speeds of ``model`` (by ``digest`` when known, else by name) on
        ``server``; None when it was never measured there."""
        with self._lock:
            entries = self._view()["models"]
            key = _key(server, model, digest)
            if key not in entries and digest is not None:
                # Measured before the digest was known (kept by name until then).
                key = _key(server, model, None)
            if key not in entries and digest is None:
                # A caller without the digest: the newest entry of that name on that server.
                named = [
                    (e.get("updated", 0), k)
                    for k, e in entries.items()
                    if e.get("server") == server and e.get("model") == model
                ]
                key = max(named, default=(0, key))[1]
            return self._speeds_of(key, entries[key]) if key in entries else None

    def all(self, server: str | None = None) -> list[Speeds]:
        """Every model's speeds (on ``server`` only, when given), the newest first."""
        with self._lock:
            found = [self._speeds_of(k, e) for k, e in self._view()["models"].items()]
        chosen = [s for s in found if s is not None and (server is None or s.server == server)]
        return sorted(chosen, key=lambda s: s.updated, reverse=True)

    def _speeds_of(self, key: str, entry: dict[str, Any]) -> Speeds | None:
        """The entry's speeds, worked out once until that entry changes (every generate
        asks, for its first-byte wait). The caller holds the lock."""
        if key not in self._computed:
            samples = self._parsed.get(key)
            if samples is None:
                samples = self._parsed[key] = _samples(entry)
            self._computed[key] = _speeds(entry, samples)
        return self._computed[key]

    def _view(self) -> dict[str, Any]:
        """The file's content with the samples still waiting to be written added: read again
        only when the file changed. The caller holds the lock."""
        try:
            stat = self.path.stat()
        except OSError:
            stamp = None
        else:
            stamp = (stat.st_mtime_ns, stat.st_size)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        data = _empty() if stamp is None else _load(self.path, stamp[1])
        for server, model, digest, sample in self._pending:
            _add(data, server, model, digest, sample)
        self._cache = (stamp, data)
        self._computed.clear()
        self._parsed.clear()
        return data

    # -- writing -----------------------------------------------------------------------

    def record(self, server: str, model: str, digest: str | None, sample: Sample) -> bool:
        """Add ``sample`` for ``model`` on ``server``: written at once when the file was
        last written more than WRITE_EVERY seconds ago, else at the next write, close() or
        exit (readings here count it meanwhile). False when it holds no speed, or (with a
        debug log line) when the file cannot be written. Never raises for a file problem: a
        measurement is worth less than the generation it came from."""
        if not sample.useful:
            return False
        with self._lock:
            self._pending.append((server, model, digest, sample))
            if self._cache is not None:  # readings here count it at once
                _add(self._cache[1], server, model, digest, sample)
                # The entries _add changed (it may also merge the name's into the digest's).
                key, by_name = _key(server, model, digest), _key(server, model, None)
                self._computed.pop(key, None)
                self._computed.pop(by_name, None)
                parsed = self._parsed.get(key)
                rows = len(self._cache[1]["models"][key]["samples"])
                grew = parsed is not None and (
                    rows == len(parsed) + 1 or rows == len(parsed) == MAX_SAMPLES
                )
                # Without a digest the entry is the name's own (key == by_name): nothing merged.
                merged = by_name != key and by_name in self._parsed
                if parsed is not None and grew and not merged:
                    self._parsed[key] = [*parsed, sample][-MAX_SAMPLES:]
                else:  # merged, dropped and added again, or never read: read its rows anew
                    self._parsed.pop(key, None)
                if by_name != key:
                    self._parsed.pop(by_name, None)
            wait = self._written_at + WRITE_EVERY - time.monotonic()
            if wait > 0 and self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True  # the exit hook writes what it would have
                self._timer.start()
        return self.flush() if wait <= 0 else True

    def flush(self) -> bool:
        """Write the samples waiting in memory; False (with a debug log line) when the file
        cannot be written (they are dropped then: a cache, not a record)."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._written_at = time.monotonic()
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()  # a no-op when the timer itself is calling
        if not pending:
            return True
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with _exclusive(self.path.with_name(self.path.name + ".lock")):
                try:
                    size = self.path.stat().st_size
                except FileNotFoundError:
                    data = _empty()
                else:
                    data = _load(self.path, size)
                for server, model, digest, sample in pending:
                    _add(data, server, model, digest, sample)
                _write_atomically(self.path, data)
        except (OSError, TimeoutError) as error:
            log.debug("measured speeds not recorded in %s: %s", self.path, error)
            self.write_error = str(error) or type(error).__name__
            written = False
        else:
            self.write_error = None
            written = True
        with self._lock:
            # Read again: the file (with what was written), never samples that were dropped.
            self._cache = None
        return written


def _flush_at_exit(store: weakref.ReferenceType[TimingStore]) -> None:
    """At the interpreter's exit, the samples a live store still holds are written."""
    alive = store()
    if alive is not None:
        alive.flush()


# -- the file's content ----------------------------------------------------------------------


def _empty() -> dict[str, Any]:
    return {"schema": SCHEMA, "models": {}}


def _key(server: str, model: str, digest: str | None) -> str:
    return f"{server} {digest or 'name:' + model}"


def _load(path: Path, size: int) -> dict[str, Any]:
    """The file's content, checked; an empty store for a missing, oversized or damaged file."""
    if size > MAX_FILE_BYTES:
        log.debug("%s is larger than %d bytes: ignored", path, MAX_FILE_BYTES)
        return _empty()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.debug("%s unreadable, starting afresh: %s", path, error)
        return _empty()
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return _empty()
    models = data.get("models")
    if not isinstance(models, dict):
        return _empty()
    clean = {k: v for k, v in models.items() if isinstance(k, str) and _valid_entry(v)}
    return {"schema": SCHEMA, "models": clean}


def _valid_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("server"), str)
        and isinstance(entry.get("model"), str)
        and isinstance(entry.get("samples"), list)
        and _number(entry.get("updated", 0))
    )


def _add(data: dict[str, Any], server: str, model: str, digest: str | None, sample: Sample) -> None:
    models: dict[str, Any] = data["models"]
    key = _key(server, model, digest)
    entry = models.get(key) or {"server": server, "model": model, "digest": digest, "samples": []}
    if digest is not None:
        # Runs kept by name before the digest was known (no listing at hand then) were of
        # the model installed under that name: they join its digest's runs.
        by_name = models.pop(_key(server, model, None), None)
        if by_name is not None:
            entry["samples"] = [*by_name["samples"], *entry["samples"]]
    entry["model"] = model  # the newest name of that digest
    entry["samples"] = ([*entry["samples"], sample.row()])[-MAX_SAMPLES:]
    entry["updated"] = sample.at
    models[key] = entry
    if len(models) > MAX_MODELS:
        oldest = sorted(models, key=lambda k: models[k].get("updated", 0))
        for stale in oldest[: len(models) - MAX_MODELS]:
            del models[stale]


def _samples(entry: Mapping[str, Any]) -> list[Sample]:
    """The sound samples of an entry's rows."""
    return [s for s in map(Sample.from_row, entry.get("samples", [])) if s is not None]


def _speeds(entry: Mapping[str, Any], samples: list[Sample]) -> Speeds | None:
    if not samples:
        return None
    prompt = [(s.prompt_tokens, s.prompt_seconds) for s in samples]
    answer = [(s.answer_tokens, s.answer_seconds) for s in samples]
    loads = [s.load_seconds for s in samples if s.load_seconds is not None]
    digest = entry.get("digest")
    return Speeds(
        server=str(entry["server"]),
        model=str(entry["model"]),
        digest=digest if isinstance(digest, str) else None,
        runs=len(samples),
        prompt_tokens_per_second=_weighted(prompt, MIN_PROMPT_TOKENS),
        answer_tokens_per_second=_weighted(answer, 1),
        load_seconds=max(loads) if loads else None,
        updated=max(s.at for s in samples),
    )


def _weighted(pairs: list[tuple[int | None, float | None]], minimum: int) -> float | None:
    """Total tokens over total seconds of the samples that state both (a long run weighs
    more than a short one, as it should: it is the better measurement)."""
    tokens = seconds = 0.0
    for count, duration in pairs:
        if _rate(count, duration, minimum) is not None:
            tokens += count  # type: ignore[operator]
            seconds += duration  # type: ignore[operator]
    return tokens / seconds if seconds > 0 else None


def _rate(tokens: int | None, seconds: float | None, minimum: int) -> float | None:
    if tokens is None or seconds is None or tokens < minimum or seconds <= 0:
        return None
    return tokens / seconds


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _count(value: Any) -> int | None:
    return int(value) if _number(value) and float(value).is_integer() else None


def _secs(value: Any) -> float | None:
    return float(value) if _number(value) and value < 1e7 else None


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# -- the file system -------------------------------------------------------------------------


def _write_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it over ``path``: a
    reader sees the old file or the new one, never half of one."""
    fd, temporary = tempfile.mkstemp(prefix=".speeds-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            # No fsync: a cache, and a file cut short by a crash is started afresh.
            json.dump(data, handle, separators=(",", ":"))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` across processes, waiting LOCK_WAIT at most
    (TimeoutError then)."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock_file(fd)
        try:
            yield
        finally:
            _unlock_file(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - CI runs on Linux
    import msvcrt

    def _lock_file(fd: int) -> None:
        ends = time.monotonic() + LOCK_WAIT
        os.lseek(fd, 0, os.SEEK_SET)  # the lock covers the first byte
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if time.monotonic() > ends:
                    raise TimeoutError("another process holds the timings lock") from None
                time.sleep(0.05)

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        ends = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > ends:
                    raise TimeoutError("another process holds the timings lock") from None
                time.sleep(0.05)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
