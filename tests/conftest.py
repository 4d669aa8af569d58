"""Shared fixtures: every test starts with the provider's process-wide caches empty."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from error_bases import error_bases  # noqa: F401  (autouse: the errors' bases restored)

from persona_ollama.server_state import SERVERS

# The CLI honours FORCE_COLOR and TERM=dumb (cli/app.py use_color): a CI that sets either would
# colour, or uncolour, outputs the tests compare. The tests that need them set them themselves.
os.environ.pop("FORCE_COLOR", None)
if os.environ.get("TERM") == "dumb":
    del os.environ["TERM"]


# tox runs the whole suite, with the coverage gate, on one Python (py311) and a sample of it on
# the others (tox.ini sets this variable there): tests marked ``once`` are left out of the
# sample, and the integration tests run on the oldest and the newest server profile only
# (tests/integration/conftest.py). Nothing that depends on the Python version is left out.
SAMPLE_VAR = "PERSONA_OLLAMA_TEST_SAMPLE"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(SAMPLE_VAR) != "1":
        return
    once = [item for item in items if item.get_closest_marker("once")]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [item for item in items if not item.get_closest_marker("once")]


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """What the process knows of each server (model facts, windows, versions, /v1 kinds) and
    the warnings already given are shared by every provider in a process (Persona builds one
    per call): one registry holds them all, and tests must not see each other's."""
    SERVERS.clear()
    yield
    SERVERS.clear()


@pytest.fixture(autouse=True)
def _private_timings(tmp_path_factory, monkeypatch):
    """Measured speeds (timings.py) go to a cache folder of the test's own, never the user's,
    and one test's measurements never change another's first-byte wait."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def cli_runner() -> CliRunner:
    """A CliRunner that keeps stderr apart from stdout on every click version (click < 8.2,
    the last for Python 3.9, mixes them unless told not to)."""
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    return CliRunner()


@dataclass(frozen=True)
class TerminalRun:
    """What a command wrote to a pseudo-terminal (stdout and stderr together, as a user sees
    them) and its exit status."""

    status: int
    output: bytes

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")


TERMINAL_COLUMNS = 200  # wide enough that no line of ours wraps


def run_in_terminal(
    argv: list[str],
    env: dict[str, str],
    *,
    cwd: str | None = None,
    timeout: float = 60.0,
    columns: int = TERMINAL_COLUMNS,
    columns_var: bool = True,
    term: str = "xterm-256color",
) -> TerminalRun:
    """Run ``argv`` with a pseudo-terminal as its standard input, output and error (so
    ``isatty()`` is True, as in a user's terminal) and collect every byte it writes.

    The terminal is ``columns`` wide; ``columns_var`` also says so in COLUMNS (a shell that
    exports it), else only the terminal's window size does (most shells). TERM is ``term``."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import termios
    import time

    leader, follower = pty.openpty()
    size = struct.pack("HHHH", 50, columns, 0, 0)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, size)
    env = {k: v for k, v in env.items() if k != "COLUMNS"}
    env = {**env, "TERM": term, **({"COLUMNS": str(columns)} if columns_var else {})}
    process = subprocess.Popen(
        argv, stdin=follower, stdout=follower, stderr=follower, env=env, cwd=cwd, close_fds=True
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every copy of the follower is closed, the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        else:
            raise AssertionError(f"{argv} still running after {timeout} s: {b''.join(chunks)!r}")
        status = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return TerminalRun(status, b"".join(chunks))


@pytest.fixture
def terminal() -> Callable[..., TerminalRun]:
    """:func:`run_in_terminal`; skips where there are no pseudo-terminals (Windows)."""
    if not sys.platform.startswith(("linux", "darwin")):
        pytest.skip("pseudo-terminals: Linux and macOS")
    return run_in_terminal
