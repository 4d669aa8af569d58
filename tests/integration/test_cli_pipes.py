"""The CLI writing into a pipe whose reader has gone (`persona-ollama models | head -1`): the
command stops quietly with exit status 1, as `--help` does, instead of reporting the closed
pipe as a bug of its own.

A real child process writes into a real pipe whose reading end is closed before it starts, so
its first write fails with EPIPE every time; the server is the loopback double.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from shared_helpers import ADDRESS_VARIABLES

from persona_ollama.testing import FakeModel, FakeOllama

MAIN = "from persona_ollama.cli import main; main()"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOllama]:
    with FakeOllama([FakeModel("llama3.2:3b"), FakeModel("myuser/notes:latest")]) as server:
        yield server


def run_into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``args``, its standard output a pipe nobody reads any more."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ADDRESS_VARIABLES and not k.startswith("PERSONA_OLLAMA_")
    }
    env["PERSONA_OLLAMA_MEMORY_GB"] = "16"  # choices independent of the machine
    reader, writer = os.pipe()
    os.close(reader)  # like `head -1` after its line
    try:
        return subprocess.run(
            [sys.executable, "-c", MAIN, *args],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "args",
    [["models"], ["models", "--api", "openai"], ["doctor"], ["models", "--json"]],
    ids=["models", "models-openai", "doctor", "models-json"],
)
def test_a_reader_that_went_away_ends_the_command_quietly(fake: FakeOllama, args) -> None:
    result = run_into_a_closed_pipe(*args, "--host", fake.url)

    assert result.returncode == 1
    assert "unexpected" not in result.stderr and "bug" not in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_help_into_a_closed_pipe_is_the_behaviour_followed() -> None:
    result = run_into_a_closed_pipe("--help")  # click's own handling of EPIPE

    assert (result.returncode, result.stderr) == (1, "")
