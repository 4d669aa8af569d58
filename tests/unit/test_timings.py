"""Measured speeds (timings.py): what is kept, how it is summed up, and the file's safety."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from persona_ollama import timings
from persona_ollama.errors import ConfigurationError
from persona_ollama.timings import MAX_MODELS, MAX_SAMPLES, Sample, TimingStore

SERVER = "http://127.0.0.1:11434"


def sample(prompt=(1000, 2.0), answer=(100, 4.0), load=0.5, at=1_700_000_000.0) -> Sample:
    return Sample(prompt[0], prompt[1], answer[0], answer[1], load, at)


@pytest.fixture
def store(tmp_path) -> TimingStore:
    return TimingStore(tmp_path / "persona-ollama" / "speeds.json")


def test_speeds_are_token_weighted_over_the_kept_runs(store):
    store.record(SERVER, "qwen3:8b", "sha256:aa", sample(prompt=(1000, 2.0), answer=(100, 4.0)))
    store.record(SERVER, "qwen3:8b", "sha256:aa", sample(prompt=(3000, 2.0), answer=(300, 4.0)))

    speeds = store.speeds(SERVER, "qwen3:8b", "sha256:aa")

    assert speeds is not None
    assert speeds.runs == 2
    assert speeds.prompt_tokens_per_second == pytest.approx(4000 / 4.0)
    assert speeds.answer_tokens_per_second == pytest.approx(400 / 8.0)


def test_the_longest_load_is_kept_as_the_cold_load(store):
    for load in (0.01, 7.5, 0.02):
        store.record(SERVER, "m:1b", "d", sample(load=load))
    assert store.speeds(SERVER, "m:1b", "d").load_seconds == 7.5


def test_a_short_prompt_says_nothing_about_prompt_speed(store):
    store.record(SERVER, "m:1b", "d", sample(prompt=(3, 0.001), answer=(50, 1.0)))
    speeds = store.speeds(SERVER, "m:1b", "d")
    assert speeds.prompt_tokens_per_second is None
    assert speeds.answer_tokens_per_second == 50.0


def test_a_sample_without_any_speed_is_not_recorded(store):
    assert not store.record(SERVER, "m:1b", "d", Sample(None, None, None, None, 0.2, 1.0))
    assert not store.path.exists()


def test_the_file_holds_numbers_names_and_digests_only(store):
    store.record(SERVER, "qwen3:8b", "sha256:aa", sample())
    data = json.loads(store.path.read_text())
    (entry,) = data["models"].values()
    assert set(entry) == {"server", "model", "digest", "samples", "updated"}
    assert all(
        isinstance(value, (int, float)) or value is None
        for row in entry["samples"]
        for value in row
    )


def test_speeds_are_kept_per_server_and_digest(store):
    store.record(SERVER, "qwen3:8b", "sha256:aa", sample(answer=(100, 1.0)))
    store.record(SERVER, "qwen3:8b", "sha256:bb", sample(answer=(100, 2.0)))  # re-pulled
    store.record("http://gpu-box:11434", "qwen3:8b", "sha256:aa", sample(answer=(100, 0.1)))

    assert store.speeds(SERVER, "qwen3:8b", "sha256:aa").answer_tokens_per_second == 100
    assert store.speeds(SERVER, "qwen3:8b", "sha256:bb").answer_tokens_per_second == 50
    assert store.speeds("http://gpu-box:11434", "qwen3:8b").answer_tokens_per_second == 1000
    assert store.speeds(SERVER, "llama3.2:3b") is None
    assert {s.server for s in store.all()} == {SERVER, "http://gpu-box:11434"}
    assert len(store.all(SERVER)) == 2


def test_the_file_is_bounded(store):
    for run in range(MAX_SAMPLES + 5):
        store.record(SERVER, "m:1b", "d", sample(at=1000.0 + run))
    for model in range(MAX_MODELS + 3):
        store.record(SERVER, f"m{model}:1b", f"d{model}", sample(at=5000.0 + model))

    store.flush()
    data = json.loads(store.path.read_text())
    assert len(data["models"]) == MAX_MODELS
    assert store.speeds(SERVER, "m:1b", "d") is None  # the least recently measured went first
    assert store.speeds(SERVER, f"m{MAX_MODELS + 2}:1b", f"d{MAX_MODELS + 2}").runs == 1
    assert store.path.stat().st_size < timings.MAX_FILE_BYTES


def test_the_newest_samples_are_kept(store):
    for run in range(MAX_SAMPLES + 5):
        store.record(SERVER, "m:1b", "d", sample(at=1000.0 + run))
    speeds = store.speeds(SERVER, "m:1b", "d")
    assert speeds.runs == MAX_SAMPLES
    assert speeds.updated == 1000.0 + MAX_SAMPLES + 4


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps([1, 2]), json.dumps({"schema": 99, "models": {}}), "\x00" * 10],
)
def test_a_damaged_file_is_started_afresh(store, content):
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)

    assert store.speeds(SERVER, "m:1b") is None
    assert store.record(SERVER, "m:1b", "d", sample())
    assert store.speeds(SERVER, "m:1b", "d").runs == 1


def test_an_entry_of_the_wrong_shape_is_dropped(store):
    store.path.parent.mkdir(parents=True)
    good = {"server": SERVER, "model": "m:1b", "samples": [[1.0, 100, 1.0, 10, 1.0, 0.1]]}
    bad = {**good, "updated": "yesterday"}
    models = {"a": {**good, "updated": 5.0}, "b": bad, "c": {**good, "model": 7}}
    store.path.write_text(json.dumps({"schema": 1, "models": models}))

    assert store.speeds(SERVER, "m:1b").runs == 1
    assert len(store.all()) == 1


def test_bad_rows_are_skipped_not_fatal(store):
    store.path.parent.mkdir(parents=True)
    entry = {
        "server": SERVER,
        "model": "m:1b",
        "digest": "d",
        "samples": [["x"], [1.0, -5, 1.0, 10, 1.0, 0.1], [1.0, 100, 1.0, 10, "1", 0.1]],
    }
    store.path.write_text(json.dumps({"schema": 1, "models": {f"{SERVER} d": entry}}))
    speeds = store.speeds(SERVER, "m:1b", "d")
    # Row 2: a negative count is no count (its answer speed still counts); row 3: prompt only.
    assert speeds.runs == 2
    assert speeds.prompt_tokens_per_second == 100.0
    assert speeds.answer_tokens_per_second == 10.0


def test_a_file_that_cannot_be_written_loses_the_sample_not_the_call(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    store = TimingStore(blocker / "speeds.json")
    assert store.record(SERVER, "m:1b", "d", sample()) is False


def test_the_file_is_private(store):
    store.record(SERVER, "m:1b", "d", sample())
    assert store.path.stat().st_mode & 0o077 == 0
    assert store.path.parent.stat().st_mode & 0o077 == 0
    assert store.path.with_name("speeds.json.lock").stat().st_mode & 0o077 == 0


_RECORD_MANY = """
import sys
from pathlib import Path
from persona_ollama.timings import Sample, TimingStore
store = TimingStore(Path(sys.argv[1]))
worker = sys.argv[2]
for run in range(15):
    sample = Sample(1000, 2.0, 100, 4.0, 0.5, 1000.0 + run)
    assert store.record(SERVER, f"w{worker}:1b", f"d{worker}", sample)
assert store.flush()  # what OllamaProvider.close() does
"""


@pytest.mark.real_wait("four processes contend for the file lock, which is polled")
def test_concurrent_processes_lose_no_sample(store):
    # Separate interpreters (not forks of this multi-threaded test process), writing at once.
    code = f"SERVER = {SERVER!r}\n" + _RECORD_MANY
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(store.path), str(n)]) for n in range(4)
    ]
    assert [worker.wait(60) for worker in workers] == [0, 0, 0, 0]
    assert [store.speeds(SERVER, f"w{n}:1b", f"d{n}").runs for n in range(4)] == [15] * 4


def test_default_path_follows_xdg_cache_home(tmp_path):
    path = timings.default_path({"XDG_CACHE_HOME": str(tmp_path)})
    assert path == tmp_path / "persona-ollama" / "speeds.json"


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("0", False), ("yes", True)])
def test_recording_can_be_switched_off(value, expected):
    environ = {} if value is None else {"PERSONA_OLLAMA_RECORD_TIMINGS": value}
    assert timings.recording_enabled(environ) is expected


def test_a_bad_switch_value_names_the_variable():
    with pytest.raises(ConfigurationError, match="PERSONA_OLLAMA_RECORD_TIMINGS"):
        timings.recording_enabled({"PERSONA_OLLAMA_RECORD_TIMINGS": "maybe"})


def test_runs_kept_by_name_join_the_digest_once_it_is_known(store):
    store.record(SERVER, "qwen3:8b", None, sample(answer=(100, 1.0)))
    store.record(SERVER, "qwen3:8b", "sha256:aa", sample(answer=(100, 3.0)))

    speeds = store.speeds(SERVER, "qwen3:8b", "sha256:aa")

    assert speeds.runs == 2
    assert speeds.answer_tokens_per_second == 50.0
    assert len(store.all()) == 1


@pytest.mark.parametrize("digest", ["sha256:aa", None])
def test_each_row_is_read_once_while_samples_join_the_entry(store, monkeypatch, digest):
    # Every generate asks for the model's speeds (its first-byte wait) and then records one
    # more sample: the rows already read must not be read again, with a digest or (a model
    # whose facts came from /api/show alone) without one.
    read = []
    from_row = Sample.from_row
    monkeypatch.setattr(
        Sample, "from_row", staticmethod(lambda row: read.append(row) or from_row(row))
    )
    for n in range(1, 6):
        store.record(SERVER, "qwen3:8b", digest, sample(answer=(100 * n, 1.0)))
        assert store.speeds(SERVER, "qwen3:8b", digest).runs == n

    assert len(read) == 1  # the first reading; each later sample joined the list read
    assert store.speeds(SERVER, "qwen3:8b", digest).answer_tokens_per_second == 300.0


@pytest.mark.parametrize(
    ("tokens", "seconds", "expected"),
    [
        (11, 2.0, (10, 2.0)),
        (3, 2.0, (None, None)),
        (None, 2.0, (None, None)),
        (11, 0.0, (None, None)),
    ],
)
def test_an_answer_timed_by_the_client_counts_the_tokens_after_the_first(tokens, seconds, expected):
    assert timings.client_answer_timing(tokens, seconds) == expected


def test_without_any_home_folder_the_file_goes_to_the_temporary_folder(monkeypatch):
    import tempfile
    from pathlib import Path

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    path = timings.default_path({})
    assert str(path).startswith(tempfile.gettempdir())


def test_samples_within_the_write_interval_wait_in_memory_and_count_meanwhile(store, monkeypatch):
    writes: list[object] = []
    write = timings._write_atomically
    monkeypatch.setattr(timings, "_write_atomically", lambda *a: writes.append(a) or write(*a))
    for run in range(10):
        store.record(SERVER, "m:1b", "d", sample(at=1000.0 + run))

    assert len(writes) == 1  # the first, at once; the other nine wait for WRITE_EVERY
    assert store.speeds(SERVER, "m:1b", "d").runs == 10  # readings here count them
    assert TimingStore(store.path).speeds(SERVER, "m:1b", "d").runs == 1  # the file: one yet
    assert store.flush() and len(writes) == 2
    assert TimingStore(store.path).speeds(SERVER, "m:1b", "d").runs == 10


def test_a_sample_after_the_write_interval_is_written_at_once(store, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(timings.time, "monotonic", lambda: clock[0])
    store.record(SERVER, "m:1b", "d", sample(at=1000.0))
    clock[0] += timings.WRITE_EVERY
    store.record(SERVER, "m:1b", "d", sample(at=1001.0))
    assert TimingStore(store.path).speeds(SERVER, "m:1b", "d").runs == 2


def test_samples_still_in_memory_are_written_when_the_interpreter_exits(store):
    code = (
        "import sys; from pathlib import Path; from persona_ollama.timings import Sample, "
        "TimingStore\n"
        "store = TimingStore(Path(sys.argv[1]))\n"
        "for run in range(5):\n"
        f"    store.record({SERVER!r}, 'm:1b', 'd', Sample(1000, 2.0, 100, 4.0, 0.5, 1e9 + run))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(store.path)], timeout=60)
    assert done.returncode == 0
    assert store.speeds(SERVER, "m:1b", "d").runs == 5


def test_samples_waiting_in_memory_are_written_when_the_interval_is_over(store, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(timings.time, "monotonic", lambda: clock[0])
    timers: list[_HeldTimer] = []
    monkeypatch.setattr(
        timings.threading, "Timer", lambda *a: timers.append(_HeldTimer(*a)) or timers[-1]
    )
    store.record(SERVER, "m:1b", "d", sample(at=1000.0))
    clock[0] += 1.0
    store.record(SERVER, "m:1b", "d", sample(at=1001.0))
    reader = TimingStore(store.path)
    assert reader.speeds(SERVER, "m:1b", "d").runs == 1
    [timer] = timers
    assert timer.started and timer.interval == pytest.approx(timings.WRITE_EVERY - 1.0)
    timer.fire()  # the interval is over: the timer writes, with no other call
    assert reader.speeds(SERVER, "m:1b", "d").runs == 2


class _HeldTimer:
    """A threading.Timer that fires when the test says the interval is over."""

    def __init__(self, interval: float, function) -> None:
        self.interval, self.fire = interval, function
        self.daemon = self.started = False

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        pass


def test_samples_that_could_not_be_written_are_not_counted_afterwards(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    store = TimingStore(blocker / "persona-ollama" / "speeds.json")
    store.speeds(SERVER, "m:1b", "d")  # a view read before the samples arrive
    store.record(SERVER, "m:1b", "d", sample(at=1000.0))  # written at once: and failing

    assert store.write_error is not None
    assert store.speeds(SERVER, "m:1b", "d") is None  # dropped, as the file says


def test_speeds_kept_up_to_date_in_memory_match_a_fresh_reading_of_the_file(store):
    store.speeds(SERVER, "m:1b", "d")  # a view exists: later samples join it as they come
    for run in range(MAX_SAMPLES + 7):
        store.record(SERVER, "m:1b", "d", sample(answer=(100 + run, 4.0 + run), at=1000.0 + run))
        store.speeds(SERVER, "m:1b", "d")
    store.record(SERVER, "m:1b", None, sample(at=5000.0))  # by name: merged on the next digest
    store.record(SERVER, "m:1b", "d", sample(at=5001.0))
    in_memory = store.speeds(SERVER, "m:1b", "d")
    store.flush()

    fresh = TimingStore(store.path).speeds(SERVER, "m:1b", "d")
    assert in_memory.runs == fresh.runs == MAX_SAMPLES
    assert in_memory.answer_tokens_per_second == pytest.approx(fresh.answer_tokens_per_second)
    assert in_memory.updated == fresh.updated
