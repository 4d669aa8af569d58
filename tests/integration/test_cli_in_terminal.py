"""The CLI as a user runs it: in a pseudo-terminal (``isatty()`` is True), against the double.

CliRunner captures output in memory, so it never sees what a terminal sees: a progress bar
that redraws in place, colours, and the escaping of a server's text next to our own control
characters. These tests run the real command in a real pseudo-terminal (tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from persona_ollama.testing import FakeOllama

CLI = [sys.executable, "-c", "from persona_ollama.cli import main; main()"]
ESC = b"\x1b["


@pytest.fixture
def env() -> dict[str, str]:
    """This environment, with nothing pointing elsewhere and colours allowed."""
    drop = ("OLLAMA_HOST", "OLLAMA_BASE_URL", "NO_COLOR")
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ = {k: v for k, v in environ.items() if not k.startswith("PERSONA_OLLAMA_")}
    environ["PERSONA_OLLAMA_MEMORY_GB"] = "16"
    return environ


@pytest.fixture
def fake():
    with FakeOllama(["llama3.2:3b"]) as server:
        server.pullable("phi4:14b")
        server.latency(between_chunks=0.12, path="/api/pull")  # so the bar redraws
        yield server


def test_pull_redraws_its_bar_in_place_in_a_terminal(terminal, env, fake):
    run = terminal([*CLI, "pull", "phi4:14b", "--host", fake.url], env)

    assert run.status == 0, run.text
    assert b"\\r" not in run.output  # the escaped carriage return of the old bug
    redraws = run.output.count(b"\rpulling ")
    assert redraws >= 3, run.text  # one line redrawn, not a line per update
    assert b"100% [########################]" in run.output


def test_colours_only_in_a_terminal(terminal, env, fake):
    command = [*CLI, "pull", "phi4:14b", "--host", fake.url]

    in_terminal = terminal(command, env)
    piped = subprocess.run(command, capture_output=True, env=env, timeout=60, check=False)

    assert in_terminal.status == piped.returncode == 0, (in_terminal.text, piped.stderr)
    assert ESC + b"32m" in in_terminal.output  # "phi4:14b is ready" in green
    assert ESC not in piped.stdout + piped.stderr
    assert b"\r" not in piped.stdout  # no bar off a terminal: one line per layer


def test_no_color_turns_colours_off_in_a_terminal(terminal, env, fake):
    run = terminal([*CLI, "pull", "phi4:14b", "--host", fake.url], {**env, "NO_COLOR": "1"})

    assert run.status == 0, run.text
    assert ESC not in run.output


def test_a_servers_control_characters_are_shown_escaped_in_a_terminal(terminal, env, fake):
    fake.error_mid_stream_next(error="disk full \x1b[2J\x1b]0;owned\x07", path="/api/pull")

    run = terminal([*CLI, "pull", "phi4:14b", "--host", fake.url], env)

    assert run.status == 1, run.text
    assert b"disk full \\x1b[2J\\x1b]0;owned\\x07" in run.output
    assert b"\x1b[2J" not in run.output and b"\x1b]0;" not in run.output
    assert ESC + b"31m" in run.output  # our own colour still gets through
