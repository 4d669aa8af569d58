"""The contract checks of this plugin's own server, console script and catalogue.

test_installed_plugin.py holds the checks any provider built from this repository passes;
these are the ones about Ollama and this product: the context sent to Ollama's native API, the
advice that names Ollama's commands, the ``persona-ollama`` console script and the packaged
model catalogue. scripts/new_provider.py leaves this file out of a new provider's copy.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from test_installed_plugin import (
    InstalledPlugin,
    free_loopback_port,
    generate_from_the_csv,
    host_generate,
    input_tokens_of,
)

from persona_ollama import __version__
from persona_ollama.testing import FakeServer

pytestmark = pytest.mark.contract


def test_host_gets_an_ollama_context_that_fits_the_whole_csv(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    result = generate_from_the_csv(installed_plugin, server_with_models, tmp_path)

    assert result.returncode == 0, result.stderr
    (chat,) = server_with_models.generations
    assert chat.json["truncate"] is False
    options = chat.json["options"]
    assert options["num_ctx"] >= input_tokens_of(result) + options["num_predict"]
    assert options["num_predict"] >= 4096


def test_host_is_told_to_start_ollama_when_nothing_listens(
    installed_plugin: InstalledPlugin, tmp_path: Path
):
    url = f"http://127.0.0.1:{free_loopback_port()}"

    result = host_generate(installed_plugin, url, tmp_path)

    assert result.returncode == 1
    assert "ollama serve" in result.stderr


def test_host_is_told_how_to_pull_a_missing_model(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    result = host_generate(installed_plugin, server_with_models.url, tmp_path, "--model", "nope:1b")

    assert result.returncode == 1
    assert "ollama pull nope:1b" in result.stderr


def test_wheel_ships_the_model_catalogue(installed_plugin: InstalledPlugin):
    with zipfile.ZipFile(installed_plugin.wheel) as wheel:
        names = set(wheel.namelist())

    assert "persona_ollama/choosing/data/models.json" in names


def test_console_script_is_installed_and_reports_the_version(installed_plugin: InstalledPlugin):
    script = installed_plugin.bin_dir / (
        "persona-ollama.exe" if os.name == "nt" else "persona-ollama"
    )
    assert script.is_file()

    result = installed_plugin.run(script, "--version")

    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout
