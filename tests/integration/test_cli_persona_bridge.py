"""`doctor`'s Persona line and `persona-ollama persona ...`, against Persona-shaped packages.

Each test builds the stand-in of Persona 1.11.1 (tests/contract/reference_host/persona_1_11.py:
a package named `persona` whose `persona generate` behaves as the real one does when a
provider fails) with one of three provider factories: built-in table first (Persona 1.11's
shape), entry point first (the change of docs/host-integration.md), or one nobody knows.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from shared_helpers import load_module

from persona_ollama import _host
from persona_ollama.choosing import hardware
from persona_ollama.cli import main
from persona_ollama.testing import FakeModel, FakeOllama

REFERENCE_HOST = Path(__file__).resolve().parents[1] / "contract" / "reference_host"
DATA = Path(__file__).resolve().parents[1] / "contract" / "data" / "interviews.csv"


persona_1_11 = load_module("persona_1_11", REFERENCE_HOST / "persona_1_11.py")
BUILTIN_FIRST: str = persona_1_11.BUILTIN_FIRST
ENTRY_POINT_FIRST: str = persona_1_11.ENTRY_POINT_FIRST
UNRECOGNISED: str = persona_1_11.UNRECOGNISED
make_persona = persona_1_11.make_persona


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path for the `persona` package; forgotten afterwards."""
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    monkeypatch.syspath_prepend(str(REFERENCE_HOST))
    for name in ("OLLAMA_HOST", "OLLAMA_BASE_URL", "PERSONA_OLLAMA_MODEL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONA_OLLAMA_MEMORY_GB", "16")
    hardware.clear_cache()
    yield directory
    for name in [n for n in sys.modules if n == "persona" or n.startswith("persona.")]:
        del sys.modules[name]
    sys.modules.pop("persona_host", None)


@pytest.fixture
def fake():
    with FakeOllama([FakeModel("qwen2.5:7b", context_length=32768)]) as server:
        server.reply_with(
            lambda request: json.dumps(
                {
                    "personas": [
                        {
                            "id": "p1",
                            "name": "Dana",
                            "demographics": {},
                            "goals": ["g"],
                            "pain_points": ["p"],
                            "behaviours": ["b"],
                            "quotes": ["q"],
                        }
                    ]
                }
            )
        )
        yield server


def test_factory_shapes_are_told_apart_from_their_source():
    assert _host.classify_factory(BUILTIN_FIRST) == _host.BUILT_IN
    assert _host.classify_factory(ENTRY_POINT_FIRST) == _host.PLUGIN
    assert _host.classify_factory(UNRECOGNISED) == _host.UNKNOWN
    assert _host.classify_factory("this is not python(") == _host.UNKNOWN
    # The built-in check first, but not the signature the bridge wraps: not patchable.
    other = BUILTIN_FIRST.replace("def create(cls, provider_name,", "def create(cls, name,")
    assert _host.classify_factory(other) == _host.UNKNOWN


def test_detection_does_not_import_persona(site):
    make_persona(site, BUILTIN_FIRST)
    host = _host.detect_host()
    assert (host.installed, host.version, host.resolution) == (True, "1.11.1", _host.BUILT_IN)
    assert not [n for n in sys.modules if n == "persona" or n.startswith("persona.")]


def test_doctor_names_the_built_in_provider_and_the_bridge(cli_runner, site, fake):
    make_persona(site, BUILTIN_FIRST)
    result = cli_runner.invoke(main, ["doctor", "--host", fake.url])
    assert result.exit_code == 0, result.output
    assert "Persona    Persona 1.11.1: `--provider ollama` uses Persona's built-in" in result.stdout
    assert "persona-ollama persona generate --from data.csv --provider ollama" in result.stdout
    report = json.loads(cli_runner.invoke(main, ["doctor", "--host", fake.url, "--json"]).stdout)
    assert report["host"]["provider_for_ollama"] == "built-in"
    assert report["host"]["version"] == "1.11.1"


def test_doctor_says_when_persona_uses_the_plugin(cli_runner, site, fake):
    make_persona(site, ENTRY_POINT_FIRST, version="1.12.0")
    result = cli_runner.invoke(main, ["doctor", "--host", fake.url])
    assert "Persona    Persona 1.12.0: `--provider ollama` uses this plugin." in result.stdout


def test_doctor_without_persona_says_how_to_install_it(cli_runner, site, fake, monkeypatch):
    monkeypatch.setattr(_host, "DISTRIBUTION", "persona-not-here")
    result = cli_runner.invoke(main, ["doctor", "--host", fake.url])
    assert "Persona    not installed in this environment" in result.stdout
    assert 'pip install "git+https://github.com/REPPL/Persona.git"' in result.stdout


@pytest.mark.parametrize("factory", [BUILTIN_FIRST, ENTRY_POINT_FIRST], ids=["1.11", "fixed"])
def test_the_bridge_runs_persona_with_this_plugin(cli_runner, site, fake, tmp_path, factory):
    make_persona(site, factory)
    out = tmp_path / "personas"
    args = ["persona", "generate", "--from", str(DATA), "--provider", "ollama"]
    args += ["--model", "qwen2.5:7b", "--output", str(out)]
    result = cli_runner.invoke(main, args, env={"OLLAMA_HOST": fake.url})
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Wrote 1 personas" in result.stdout
    assert len(list(out.glob("*.json"))) == 1
    # This plugin sent the request: it sizes num_ctx and forbids truncation.
    body = fake.last_request("/api/chat").json
    assert body["options"]["num_ctx"] >= 2048
    assert body["truncate"] is False


def test_the_bridge_refuses_a_factory_it_does_not_recognise(cli_runner, site):
    make_persona(site, UNRECOGNISED)
    result = cli_runner.invoke(main, ["persona", "generate", "--provider", "ollama"])
    assert result.exit_code == 1
    assert "is not one the bridge recognises" in result.stderr
    assert "docs/host-integration.md" in result.stderr


def test_the_bridge_without_persona_says_how_to_install_it(cli_runner, monkeypatch):
    monkeypatch.setattr(_host, "DISTRIBUTION", "persona-not-here")
    result = cli_runner.invoke(main, ["persona", "--help"])
    assert result.exit_code == 1
    assert "Persona is not installed in this environment" in result.stderr
    assert "Run Persona's command line" in result.stdout  # the bridge's own help still
    assert "Persona's own help follows." not in result.stdout  # no help of Persona's follows


@pytest.mark.parametrize("broken", ["factory", "cli", "streaming"])
def test_the_bridge_reports_a_persona_that_cannot_be_imported(cli_runner, site, broken):
    """A half-installed Persona (a dependency missing, the wrong Python) is a message naming the
    missing module and how to reinstall, not a traceback."""
    make_persona(site, BUILTIN_FIRST)
    relative = {
        "factory": "core/providers/factory.py",
        "cli": "ui/cli.py",
        "streaming": "ui/streaming.py",
    }[broken]
    module = site / "persona" / relative
    module.write_text("import persona_sdk_not_installed\n" + module.read_text(), encoding="utf-8")
    result = cli_runner.invoke(main, ["persona", "generate", "--provider", "ollama"])
    assert result.exit_code == 1, (result.output, result.exception)
    assert not isinstance(result.exception, ImportError)
    assert "Persona 1.11.1 could not be imported" in result.stderr
    assert "persona_sdk_not_installed" in result.stderr
    assert "pip install" in result.stderr


# -- what the user hears when generation fails --------------------------------------------------


@pytest.fixture
def chat_and_embedder():
    models = [
        FakeModel("qwen2.5:7b", context_length=32768),
        FakeModel("nomic-embed-text:latest", context_length=2048, capabilities=["embedding"]),
    ]
    with FakeOllama(models) as server:
        yield server


def free_loopback_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


FAILURES = {
    # name: (address, model, what the plugin says)
    "server down": (None, "qwen2.5:7b", ["connection refused", "ollama serve"]),
    "wrong address": ("{url}/api", "qwen2.5:7b", ["drop /api"]),
    "misspelt model": ("{url}", "qwen2.5:7", ["'qwen2.5:7' is not installed", "qwen2.5:7b"]),
    "embedding model": ("{url}", "nomic-embed-text", ["embedding model", "chat model"]),
}


def test_the_stand_in_loses_the_plugins_message_off_a_terminal_as_persona_does(
    site, chat_and_embedder, tmp_path, monkeypatch, capsys
):
    """Without the bridge, Persona 1.11.1's generate (here with the factory change applied, so
    the plugin runs) turns a failure into an AttributeError when output is not a terminal."""
    make_persona(site, ENTRY_POINT_FIRST)
    monkeypatch.setenv("OLLAMA_HOST", chat_and_embedder.url)
    args = ["generate", "--from", str(DATA), "--provider", "ollama", "--model", "qwen2.5:7"]
    monkeypatch.setattr(sys, "argv", ["persona", *args, "--output", str(tmp_path / "out")])
    from persona.ui.cli import main as persona_main

    with pytest.raises(AttributeError, match="'SimpleProgress' object has no attribute 'error'"):
        persona_main()
    assert "Did you mean" not in capsys.readouterr().out


@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
@pytest.mark.parametrize("factory", [BUILTIN_FIRST, ENTRY_POINT_FIRST], ids=["1.11", "fixed"])
def test_the_bridge_prints_the_plugins_message_off_a_terminal(
    cli_runner, site, chat_and_embedder, tmp_path, factory, failure
):
    make_persona(site, factory)
    address, model, said = FAILURES[failure]
    url = address.format(url=chat_and_embedder.url) if address else free_loopback_url()
    args = ["persona", "generate", "--from", str(DATA), "--provider", "ollama"]
    args += ["--model", model, "--output", str(tmp_path / "out")]

    result = cli_runner.invoke(main, args, env={"OLLAMA_HOST": url})

    assert result.exit_code == 1, (result.output, result.exception)
    assert "\nError: " in result.stdout and "\nHint: " in result.stdout
    for text in said:
        assert text in result.stdout
    assert "AttributeError" not in result.output
    assert "API_KEY" not in result.output  # Persona's advice for a provider "not configured"
    assert not chat_and_embedder.generations
    assert not (tmp_path / "out").exists()


def test_the_bridge_repairs_only_a_progress_handler_without_error():
    class WithError:
        def error(self, message: str) -> None:
            raise AssertionError("kept")

    class Module:
        SimpleProgress = WithError

    assert _host.report_errors_off_a_terminal(Module) is False
    assert _host.report_errors_off_a_terminal(object()) is False  # no such class: nothing


def test_the_repaired_handler_prints_the_whole_message_with_or_without_a_console(capsys):
    printed: list[str] = []

    class Console:
        def print(self, text: str) -> None:
            printed.append(text)

    class WithConsole:
        console = Console()

    class Bare:
        pass

    for handler in (WithConsole, Bare):
        module = type("Module", (), {"SimpleProgress": handler})
        assert _host.report_errors_off_a_terminal(module) is True
        handler().error("Model 'x' [v2] is not installed.\nHint: Did you mean y?")  # type: ignore[attr-defined]

    # Rich markup would swallow "[v2]": the bracket is escaped for the console.
    assert printed == [
        "\n[red]Error:[/red] Model 'x' \\[v2] is not installed.\nHint: Did you mean y?"
    ]
    assert (
        capsys.readouterr().err
        == "Error: Model 'x' [v2] is not installed.\nHint: Did you mean y?\n"
    )


@pytest.mark.parametrize("option", ["--help", "-h"])
def test_the_bridges_help_says_what_it_does_then_shows_personas(cli_runner, site, option):
    make_persona(site, BUILTIN_FIRST)

    result = cli_runner.invoke(main, ["persona", option])

    assert result.exit_code == 0, (result.output, result.exception)
    bridge = result.stdout.index("its `--provider ollama` resolved to this plugin")
    personas = result.stdout.index("generate personas from a data file")  # the stand-in's help
    assert bridge < result.stdout.index("Persona's own help follows.") < personas
    assert "No such option" not in result.output


def test_a_deeper_h_is_left_to_persona(cli_runner, site):
    """`persona serve -h` is Persona's --host: only a leading -h is the bridge's help."""
    make_persona(site, BUILTIN_FIRST)

    result = cli_runner.invoke(main, ["persona", "generate", "-h"])

    assert result.exit_code == 0, (result.output, result.exception)
    assert "Persona's own help follows." not in result.stdout
    assert "--from FILE" in result.stdout  # argparse's own help of the stand-in's generate


def test_the_provider_name_the_bridge_speaks_of_is_the_entry_points():
    from importlib import metadata

    ours = [
        entry_point.name
        for entry_point in metadata.distribution("persona-ollama").entry_points
        if entry_point.group == _host.GROUP
    ]
    assert ours == [_host.PROVIDER]
    assert (
        f"--provider {_host.PROVIDER}"
        in _host.HostInfo(True, "1.12.0", _host.PLUGIN, None, "python").describe()
    )
