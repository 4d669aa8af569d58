"""`doctor`'s Persona line and `persona-ollama persona ...`, against Persona-shaped packages.

Each test builds a small package named `persona` (with its dist-info, so importlib.metadata sees
it) whose command line is the reference host's generate path (tests/contract/reference_host)
and whose provider factory has one of three shapes: built-in table first (Persona 1.11's
shape), entry point first (the change of docs/host-integration.md), or one nobody knows.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from persona_ollama import _host
from persona_ollama.choosing import hardware
from persona_ollama.cli import main
from persona_ollama.testing import FakeModel, FakeOllama

REFERENCE_HOST = Path(__file__).resolve().parents[1] / "contract" / "reference_host"
DATA = Path(__file__).resolve().parents[1] / "contract" / "data" / "interviews.csv"

BUILTIN_FIRST = '''
class BuiltinOllama:
    """Stands in for Persona's own Ollama provider: using it is the bug the bridge fixes."""

    def __init__(self, api_key=None, **kwargs):
        raise RuntimeError("the built-in provider was used")


class ProviderFactory:
    BUILTIN_PROVIDERS = {"ollama": BuiltinOllama}

    @classmethod
    def create(cls, provider_name, api_key=None, **kwargs):
        """Create a provider by name."""
        provider_name = provider_name.lower()
        if provider_name in cls.BUILTIN_PROVIDERS:
            return cls.BUILTIN_PROVIDERS[provider_name](api_key=api_key, **kwargs)
        raise ValueError(f"Unknown provider: {provider_name}")
'''

# Real Persona needs Python 3.12; this stand-in also runs on 3.9, whose importlib.metadata
# entry_points() takes no group= (it returns a dict of groups).
ENTRY_POINT_FIRST = """
import sys
from importlib.metadata import entry_points


def provider_entry_points():
    if sys.version_info >= (3, 10):
        return {ep.name: ep for ep in entry_points(group="persona.providers")}
    return {ep.name: ep for ep in entry_points().get("persona.providers", [])}


class ProviderFactory:
    BUILTIN_PROVIDERS = {}

    @classmethod
    def create(cls, provider_name, api_key=None, **kwargs):
        found = provider_entry_points()
        entry_point = found.get(provider_name.lower())
        if entry_point is not None:
            return entry_point.load()(api_key=api_key, **kwargs)
        if provider_name in cls.BUILTIN_PROVIDERS:
            return cls.BUILTIN_PROVIDERS[provider_name](api_key=api_key, **kwargs)
        raise ValueError(provider_name)
"""

UNRECOGNISED = """
def create(name):
    raise ValueError(name)
"""

CLI = """
import sys

import persona_host
from persona.core.providers.factory import ProviderFactory


def main():
    args = persona_host.parser().parse_args(sys.argv[1:])
    provider = ProviderFactory.create(args.provider)
    persona_host.generate(provider, args)
"""


def make_persona(site: Path, factory: str, version: str = "1.11.1") -> None:
    package = site / "persona"
    for directory in (package, package / "core", package / "core" / "providers", package / "ui"):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").write_text("", encoding="utf-8")
    (package / "core" / "providers" / "factory.py").write_text(factory, encoding="utf-8")
    (package / "ui" / "cli.py").write_text(CLI, encoding="utf-8")
    info = site / f"persona-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: persona\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[console_scripts]\npersona = persona.ui.cli:main\n", encoding="utf-8"
    )


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


@pytest.mark.parametrize("broken", ["factory", "cli"])
def test_the_bridge_reports_a_persona_that_cannot_be_imported(cli_runner, site, broken):
    """A half-installed Persona (a dependency missing, the wrong Python) is a message naming the
    missing module and how to reinstall, not a traceback."""
    make_persona(site, BUILTIN_FIRST)
    relative = "core/providers/factory.py" if broken == "factory" else "ui/cli.py"
    module = site / "persona" / relative
    module.write_text("import persona_sdk_not_installed\n" + module.read_text(), encoding="utf-8")
    result = cli_runner.invoke(main, ["persona", "generate", "--provider", "ollama"])
    assert result.exit_code == 1, (result.output, result.exception)
    assert not isinstance(result.exception, ImportError)
    assert "Persona 1.11.1 could not be imported" in result.stderr
    assert "persona_sdk_not_installed" in result.stderr
    assert "pip install" in result.stderr
