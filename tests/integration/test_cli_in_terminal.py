"""The CLI as a user runs it: in a pseudo-terminal (``isatty()`` is True), against the double.

CliRunner captures output in memory, so it never sees what a terminal sees: a progress bar
that redraws in place, colours, and the escaping of a server's text next to our own control
characters. These tests run the real command in a real pseudo-terminal (tests/conftest.py).
"""

from __future__ import annotations

import os
import re
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


@pytest.mark.parametrize(("columns", "columns_var"), [(80, False), (40, True)])
def test_the_bar_fits_the_terminal_so_that_it_redraws_in_place(
    terminal, env, fake, columns, columns_var
):
    """A redraw wider than the terminal wraps, and the carriage return goes back only to the
    start of its last row: each update then leaves a row behind. The bar was padded to 100
    columns, wider than the usual 80 (and than a narrow window), whatever the terminal."""
    command = [*CLI, "pull", "phi4:14b", "--host", fake.url]
    run = terminal(command, env, columns=columns, columns_var=columns_var)

    assert run.status == 0, run.text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", run.text)
    redraws = [part for line in plain.split("\n") for part in line.split("\r") if part]
    bars = [part for part in redraws if part.startswith("pulling ") and "%" in part]
    assert len(bars) >= 3, run.text
    too_wide = [part for part in redraws if len(part) >= columns and "pulling" in part]
    assert not too_wide, too_wide
    assert any("100%" in bar for bar in bars), bars  # the percentage is never cut off


def test_a_dumb_terminal_gets_no_colours(terminal, env, fake):
    """TERM=dumb (Emacs' shell, some CI consoles) shows escape sequences as text."""
    run = terminal([*CLI, "pull", "phi4:14b", "--host", fake.url], env, term="dumb")

    assert run.status == 0, run.text
    assert ESC not in run.output
    assert b"phi4:14b is ready" in run.output


def test_force_color_colours_a_pipe_and_no_color_still_wins(env, fake):
    """FORCE_COLOR (https://force-color.org) is how `| less -R` and CI logs ask for colour."""
    command = [*CLI, "pull", "phi4:14b", "--host", fake.url]
    forced = {**env, "FORCE_COLOR": "1"}

    coloured = subprocess.run(command, capture_output=True, env=forced, timeout=60, check=False)
    both = {**forced, "NO_COLOR": "1"}
    plain = subprocess.run(command, capture_output=True, env=both, timeout=60, check=False)

    assert coloured.returncode == plain.returncode == 0, (coloured.stderr, plain.stderr)
    assert ESC + b"32m" in coloured.stdout  # "phi4:14b is ready" in green
    assert b"\r" not in coloured.stdout  # colour, but still no bar off a terminal
    assert ESC not in plain.stdout + plain.stderr


def test_a_warning_after_the_answer_starts_on_a_line_of_its_own(terminal, env):
    # The offload warning is given when the answer's last chunk arrives, while the answer's
    # line is still open: it used to be glued to the answer's last word.
    from persona_ollama.testing import FakeModel

    gib = 1024**3
    big = FakeModel("llama3:70b", size=40 * gib, parameter_size="70.6B", context_length=8192)
    with FakeOllama([big], vram_gib=24) as server:
        server.reply_with("The answer.")
        run = terminal([*CLI, "run", "Hello", "-m", "llama3:70b", "--host", server.url], env)

    assert run.status == 0, run.text
    text = run.output.decode()
    assert "The answer.\r\nllama3:70b runs 41% on the CPU" in text, text
    assert "\r\n\r\nllama3:70b:" not in text  # no blank line before the summary either
