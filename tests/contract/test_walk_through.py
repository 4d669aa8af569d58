"""A new user's walk through the plugin and Persona, scripted: the built wheel in a fresh venv
(the ``installed_plugin`` fixture), the stand-in of Persona 1.11.1 beside it
(reference_host/persona_1_11.py), the double as the server, and every command run the two
ways a user runs it: in a pseudo-terminal, and with its output to a pipe.

Each step is something that went wrong for the user of Persona 1.11.1 (issue 23): Persona's
"set OLLAMA_API_KEY" for a server that is down, the plugin's message lost to an
AttributeError in a pipe, a pull bar printed as one growing line with literal ``\\r``, a
bridge help that said nothing of the bridge, hints that offered to pull a misspelt name, and
a run summary whose times did not add up.

Not marked ``contract``: the steps check Ollama's own messages, and the template's copy runs
only the contract suite (``-m contract``), which names no server.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_helpers import load_module
from test_installed_plugin import (
    HOST_DIR,
    INTERVIEWS,
    InstalledPlugin,
    clean_environment,
    free_loopback_port,
)

from persona_ollama.settings import HOST_VAR
from persona_ollama.testing import FakeModel, FakeOllama
from persona_ollama.testing.demo import demo_server

# The wheel's install on each Python is test_installed_plugin.py's: tox runs these steps once,
# on py311 (tests/conftest.py).
pytestmark = pytest.mark.once

ESC = b"\x1b["


persona_1_11 = load_module("persona_1_11", HOST_DIR / "persona_1_11.py")


def persona_beside_the_plugin(tmp_path_factory: pytest.TempPathFactory, factory: str) -> Path:
    """Persona 1.11.1's stand-in, installed beside the plugin (a folder on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("persona-site")
    persona_1_11.make_persona(site, factory)
    return site


@pytest.fixture(scope="module")
def persona_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return persona_beside_the_plugin(tmp_path_factory, persona_1_11.BUILTIN_FIRST)


@pytest.fixture(scope="module", params=["1.11", "fixed"])
def any_persona_site(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """Persona 1.11.1 as released, and with the factory change of docs/host-integration.md."""
    factory = {"1.11": persona_1_11.BUILTIN_FIRST, "fixed": persona_1_11.ENTRY_POINT_FIRST}
    return persona_beside_the_plugin(tmp_path_factory, factory[request.param])


@pytest.fixture
def server() -> Iterator[FakeOllama]:
    models = [
        FakeModel("qwen2.5:7b", context_length=32768),
        FakeModel("nomic-embed-text:latest", context_length=2048, capabilities=["embedding"]),
    ]
    with FakeOllama(models) as fake:
        fake.pullable("phi4:14b")
        yield fake


def environment(site: Path, url: str) -> dict[str, str]:
    env = {**clean_environment(), HOST_VAR: url, "PERSONA_OLLAMA_MEMORY_GB": "16"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(HOST_DIR)])
    env.pop("NO_COLOR")  # colours as a user gets them
    return env


def command(plugin: InstalledPlugin, *args: str) -> list[str]:
    return [str(plugin.bin_dir / "persona-ollama"), *args]


def piped(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes]:
    """``argv`` with its output to a pipe (``| cat``): what CI, a notebook or ``tee`` gets."""
    result = subprocess.run(argv, capture_output=True, env=env, cwd=cwd, timeout=120, check=False)
    return result.returncode, result.stdout + result.stderr


FAILURES = {
    # name: (address, model, what the plugin says)
    "server down": (None, "qwen2.5:7b", [b"connection refused", b"ollama serve"]),
    "wrong address": ("{url}/api", "qwen2.5:7b", [b"drop /api"]),
    "misspelt model": ("{url}", "qwen2.5:7", [b"Did you mean qwen2.5:7b?"]),
    "embedding model": ("{url}", "nomic-embed-text", [b"embedding model", b"chat model"]),
}


@pytest.mark.parametrize("output", ["terminal", "pipe"])
@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
def test_through_the_bridge_the_user_hears_the_plugin(
    installed_plugin, any_persona_site, server, terminal, tmp_path, failure, output
):
    address, model, said = FAILURES[failure]
    url = address.format(url=server.url) if address else f"http://127.0.0.1:{free_loopback_port()}"
    env = environment(any_persona_site, url)
    argv = command(installed_plugin, "persona", "generate", "--from", str(INTERVIEWS))
    argv += ["--provider", "ollama", "--model", model, "--output", str(tmp_path / "out")]

    if output == "terminal":
        run = terminal(argv, env, cwd=str(tmp_path))
        status, text = run.status, run.output
    else:
        status, text = piped(argv, env, tmp_path)

    assert status == 1, text.decode()
    assert b"Error: " in text and b"Hint: " in text, text.decode()
    for words in said:
        assert words in text, text.decode()
    assert b"API_KEY" not in text  # Persona's advice for a provider "not configured"
    assert b"AttributeError" not in text and b"Traceback" not in text
    assert b"pull qwen2.5:7`" not in text  # never offered to pull the misspelt name
    assert not server.generations


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_the_bridges_help_says_what_it_does_then_shows_personas(
    installed_plugin, persona_site, terminal, tmp_path, option
):
    env = environment(persona_site, "http://127.0.0.1:11434")

    run = terminal(command(installed_plugin, "persona", option), env, cwd=str(tmp_path))

    assert run.status == 0, run.text
    text = re.sub(r"\x1b\[[0-9;]*m", "", run.text)
    bridge = text.index("resolved to this plugin")
    assert bridge < text.index("Persona's own help follows.") < text.index("usage: persona")


def test_pull_redraws_one_bar_in_a_terminal_and_prints_plain_lines_to_a_pipe(
    installed_plugin, persona_site, server, terminal, tmp_path
):
    server.latency(between_chunks=0.12, path="/api/pull")
    env = environment(persona_site, server.url)
    argv = command(installed_plugin, "pull", "phi4:14b")

    run = terminal(argv, env, cwd=str(tmp_path))
    status, text = piped(argv, env, tmp_path)

    assert run.status == status == 0, (run.text, text)
    assert b"\\r" not in run.output  # the bar's own carriage return, escaped
    assert run.output.count(b"\rpulling ") >= 3, run.text
    assert ESC in run.output  # colours on a terminal ...
    assert ESC not in text and b"\r" not in text  # ... and none in a pipe


def test_a_servers_control_characters_stay_escaped_in_a_terminal(
    installed_plugin, persona_site, server, terminal, tmp_path
):
    server.error_mid_stream_next(error="disk full \x1b[2J", path="/api/pull")
    env = environment(persona_site, server.url)

    run = terminal(command(installed_plugin, "pull", "phi4:14b"), env, cwd=str(tmp_path))

    assert run.status == 1, run.text
    assert b"disk full \\x1b[2J" in run.output and b"\x1b[2J" not in run.output


def test_pull_of_a_misspelt_name_names_the_nearest_catalogue_models(
    installed_plugin, persona_site, server, tmp_path
):
    env = environment(persona_site, server.url)

    status, text = piped(command(installed_plugin, "pull", "lama3.2"), env, tmp_path)

    assert status == 1, text.decode()
    assert b"Did you mean llama3.2:3b" in text
    assert b"`persona-ollama pull llama3.2:3b`" in text
    assert b"pull lama3.2`" not in text


def test_the_demo_servers_run_summary_adds_up(installed_plugin, persona_site, tmp_path):
    with demo_server(["llama3.2:3b"]) as demo:
        env = environment(persona_site, demo.url)
        argv = command(installed_plugin, "run", "--model", "llama3.2:3b", "Say hello")
        status, text = piped(argv, env, tmp_path)

    assert status == 0, text.decode()
    times = re.search(rb"load ([\d.]+) s, ([\d.]+) s total", text)
    assert times is not None, text.decode()
    load, total = (float(value) for value in times.groups())
    assert 0 < load <= total
