"""The plugin as a host meets it: the built wheel, installed into a fresh virtual environment.

A session fixture builds the wheel once (or takes PERSONA_OLLAMA_CONTRACT_WHEEL) and installs
it into a new venv without Persona. Every test then runs code inside that venv in a
subprocess, so nothing from the source tree or the dev environment can leak in. The end-to-end
tests drive the reference host (reference_host/persona_host.py) against the loopback double.

The suite names no server: the provider's registry name comes from the provider, the double
from ``testing.stand_in`` (the server of ``settings.DEFAULT_API``), the chat requests from the
double's generation routes. So it runs unchanged against a provider built from this repository
(docs/writing-a-provider.md; tests/contract/test_template.py proves it); the few checks of
Ollama's own API are marked ``native_only``.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persona_ollama import OllamaProvider, __version__
from persona_ollama.settings import BASE_URL_VAR, DEFAULT_API, HOST_VAR, PREFIX
from persona_ollama.testing import FakeModel, FakeServer, stand_in

pytestmark = pytest.mark.contract

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOST_DIR = HERE / "reference_host"
INTERVIEWS = HERE / "data" / "interviews.csv"
WHEEL_VARIABLE = PREFIX + "CONTRACT_WHEEL"
# The name a host asks for (--provider NAME): the provider's own, which the entry point must use.
PROVIDER = OllamaProvider(api_key=None, environ={}).name
native_only = pytest.mark.skipif(
    DEFAULT_API != "native", reason=f"Ollama's native API; the default API here is {DEFAULT_API}"
)
HEAVY_MODULES = ("requests", "psutil", "click", "pluggy")
PERSONA_FIELDS = ("id", "name", "demographics", "goals", "pain_points", "behaviours", "quotes")
SUBPROCESS_TIMEOUT = 120  # seconds; pip installs and wheel builds are the slow parts
# Not copied into the build directory: caches, environments and earlier build output.
BUILD_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".tox", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"
)
# Python 3.9's importlib.metadata lacks entry_points(group=...); the backport is a dependency.
ENTRY_POINTS_IMPORT = """\
import sys
if sys.version_info >= (3, 10):
    from importlib.metadata import entry_points
else:
    from importlib_metadata import entry_points
"""


@dataclass(frozen=True)
class InstalledPlugin:
    """A venv holding the built wheel and its dependencies, and nothing else."""

    wheel: Path
    venv: Path

    @property
    def bin_dir(self) -> Path:
        return self.venv / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin_dir / ("python.exe" if os.name == "nt" else "python")

    def run(
        self, *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(arg) for arg in args],
            capture_output=True,
            text=True,
            env={**clean_environment(), **(env or {})},
            # Never the repository: `python -c` would import the source tree, not the wheel.
            cwd=cwd or self.venv,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )

    def run_python(self, code: str) -> Any:
        """Run ``code`` in the venv's interpreter and return the JSON it prints last."""
        result = self.run(self.python, "-c", textwrap.dedent(code))
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    def host(
        self, *args: str | Path, server_url: str, cwd: Path
    ) -> subprocess.CompletedProcess[str]:
        """``python -m persona_host ARGS`` in the venv, talking to the server at ``server_url``."""
        env = {HOST_VAR: server_url, "PYTHONPATH": str(HOST_DIR)}
        return self.run(self.python, "-m", "persona_host", *args, env=env, cwd=cwd)


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that would point the plugin elsewhere."""
    drop = (HOST_VAR, BASE_URL_VAR, "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in drop and not key.startswith(PREFIX)
    }
    # No __pycache__ in the repository's reference host; no pip chatter.
    env.update(PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    return env


def checked(command: list[str | Path]) -> None:
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=clean_environment(),
        timeout=SUBPROCESS_TIMEOUT * 3,
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"


def build_wheel(workdir: Path) -> Path:
    """Build from a copy of the source tree, so build/ and *.egg-info never land in the repo."""
    source = workdir / "source"
    shutil.copytree(REPO, source, ignore=BUILD_IGNORE)
    out = workdir / "dist"
    # A build/ directory on sys.path imports as a namespace package named build: no origin.
    spec = importlib.util.find_spec("build")
    if spec is None or spec.origin is None:
        checked([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, source])
    else:
        checked([sys.executable, "-m", "build", "--wheel", "--outdir", out, source])
    (wheel,) = out.glob("persona_ollama-*.whl")
    return wheel


def install_plugin(tmp_path_factory: pytest.TempPathFactory) -> InstalledPlugin:
    """The wheel, built once, in a fresh venv: the session fixture ``installed_plugin``
    (tests/contract/conftest.py), shared by every module of this folder."""
    workdir = tmp_path_factory.mktemp("contract")
    given = os.environ.get(WHEEL_VARIABLE)
    wheel = Path(given) if given else build_wheel(workdir)
    assert wheel.is_file(), f"{WHEEL_VARIABLE}={given} is not a file"
    plugin = InstalledPlugin(wheel=wheel, venv=workdir / "venv")
    checked([sys.executable, "-m", "venv", plugin.venv])
    checked([plugin.python, "-m", "pip", "install", "-q", wheel])
    return plugin


@pytest.fixture
def server_with_models() -> Iterator[FakeServer]:
    """Two chat models and an embedding model, which a chat host must not be offered."""
    models = [
        FakeModel(name="llama3.2:3b", context_length=131072),
        FakeModel(name="qwen2.5:7b", context_length=32768),
        FakeModel(name="nomic-embed-text:latest", context_length=2048, capabilities=["embedding"]),
    ]
    with stand_in(models) as fake:
        yield fake


def prompt_of(body: Any) -> str:
    """The prompt a request carried, whatever the API's shape: its longest text."""
    if isinstance(body, str):
        return body
    values = body.values() if isinstance(body, dict) else body if isinstance(body, list) else []
    return max((prompt_of(value) for value in values), key=len, default="")


def personas_from_request(request: dict[str, Any]) -> str:
    """The double's answer: personas built from the CSV rows the prompt carried."""
    prompt = prompt_of(request)
    count = int(re.search(r"create exactly (\d+)", prompt).group(1))  # type: ignore[union-attr]
    data = re.search(r"<data [^>]*>\n(.*)\n</data>", prompt, re.DOTALL).group(1)  # type: ignore[union-attr]
    rows = list(csv.DictReader(io.StringIO(data)))
    personas = []
    for index in range(count):
        group = rows[index::count]
        personas.append(
            {
                "id": f"persona-{index + 1}",
                "name": f"The {group[0]['role'].lower()}",
                "demographics": {
                    "roles": [row["role"] for row in group],
                    "company_sizes": [int(row["company_size"]) for row in group],
                },
                "goals": [
                    f"Turn {row['industry'].lower()} research into decisions" for row in group
                ],
                "pain_points": [row["notes"].split(";")[0] for row in group],
                "behaviours": [f"Works in {row['tools']}" for row in group],
                "quotes": [row["quote"] for row in group],
            }
        )
    reasoning = f"<reasoning>{len(rows)} participants, grouped round-robin.</reasoning>\n"
    return reasoning + json.dumps({"personas": personas})


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- what the host finds in the installed distribution ------------------------------------------


def test_entry_point_names_the_provider_and_targets_its_class(installed_plugin: InstalledPlugin):
    found = installed_plugin.run_python(
        ENTRY_POINTS_IMPORT
        + """
import json
print(json.dumps({ep.name: ep.value for ep in entry_points(group="persona.providers")}))
"""
    )

    assert found == {PROVIDER: "persona_ollama:OllamaProvider"}


def test_entry_point_class_builds_like_personas_factory_without_persona(
    installed_plugin: InstalledPlugin,
):
    report = installed_plugin.run_python(
        ENTRY_POINTS_IMPORT
        + f"NAME = {PROVIDER!r}\n"
        + """
import importlib.util, json
(ep,) = [ep for ep in entry_points(group="persona.providers") if ep.name == NAME]
cls = ep.load()
provider = cls(api_key=None)
print(json.dumps({
    "persona_installed": importlib.util.find_spec("persona") is not None,
    "module_file": sys.modules["persona_ollama"].__file__,
    "name": provider.name,
    "description": cls.__plugin_description__,
    "version": cls.__plugin_version__,
    "author": cls.__plugin_author__,
    "has_generate_async": callable(getattr(provider, "generate_async", None)),
}))
"""
    )

    assert report["persona_installed"] is False
    assert Path(report["module_file"]).is_relative_to(installed_plugin.venv)
    assert report["name"] == PROVIDER
    assert report["description"]
    assert report["version"] == __version__
    assert report["author"]
    assert report["has_generate_async"] is True


@pytest.mark.parametrize(
    "step",
    [
        "import persona_ollama",
        "from persona_ollama import OllamaProvider",
        "from persona_ollama import OllamaProvider; OllamaProvider(api_key=None)",
    ],
    ids=["import", "entry-point-load", "construct"],
)
def test_loading_the_plugin_imports_no_heavy_dependency(
    installed_plugin: InstalledPlugin, step: str
):
    loaded = installed_plugin.run_python(
        f"""
import json, sys
{step}
print(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))
"""
    )

    assert loaded == []


def test_wheel_ships_type_marker_and_model_catalogue(installed_plugin: InstalledPlugin):
    with zipfile.ZipFile(installed_plugin.wheel) as wheel:
        names = set(wheel.namelist())

    assert "persona_ollama/py.typed" in names
    assert "persona_ollama/choosing/data/models.json" in names
    assert not [name for name in names if name.startswith("tests/")]


def test_console_script_is_installed_and_reports_the_version(installed_plugin: InstalledPlugin):
    script = installed_plugin.bin_dir / (
        "persona-ollama.exe" if os.name == "nt" else "persona-ollama"
    )
    assert script.is_file()

    result = installed_plugin.run(script, "--version")

    if result.returncode == 2 and "no such option" in result.stderr.lower():
        pytest.xfail("the persona-ollama CLI does not take --version yet")
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


# -- the reference host, end to end against the loopback double ---------------------------------


def host_generate(
    plugin: InstalledPlugin, server_url: str, tmp_path: Path, *options: str, output: str = "out"
) -> subprocess.CompletedProcess[str]:
    """The host's ``generate`` from the interviews CSV with this plugin, into tmp_path/output."""
    return plugin.host(
        "generate",
        "--from",
        INTERVIEWS,
        "--provider",
        PROVIDER,
        *options,
        "--output",
        tmp_path / output,
        server_url=server_url,
        cwd=tmp_path,
    )


def generate_from_the_csv(
    plugin: InstalledPlugin, server: FakeServer, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    server.reply_with(personas_from_request)
    return host_generate(
        plugin, server.url, tmp_path, "--model", "llama3.2:3b", "--count", "3", output="personas"
    )


def input_tokens_of(result: subprocess.CompletedProcess[str]) -> int:
    return int(re.search(r"(\d+) input tokens", result.stdout).group(1))  # type: ignore[union-attr]


def test_host_generates_personas_from_the_whole_csv(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    csv_text = INTERVIEWS.read_text(encoding="utf-8")

    result = generate_from_the_csv(installed_plugin, server_with_models, tmp_path)

    assert result.returncode == 0, result.stderr
    written = sorted((tmp_path / "personas").glob("*.json"))
    assert len(written) == 3
    for path in written:
        persona = json.loads(path.read_text(encoding="utf-8"))
        assert set(PERSONA_FIELDS) <= set(persona)
        assert all(quote in csv_text for quote in persona["quotes"])
    (chat,) = server_with_models.generations
    assert chat.json["model"] == "llama3.2:3b"
    assert csv_text in prompt_of(chat.json)
    assert input_tokens_of(result) > len(csv_text) // 4  # the double counts four bytes a token


@native_only
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


def test_host_without_model_uses_the_plugins_default_model(
    installed_plugin: InstalledPlugin, tmp_path: Path
):
    with stand_in([FakeModel(name="llama3.2:3b", context_length=131072)]) as fake:
        fake.reply_with(personas_from_request)

        result = host_generate(installed_plugin, fake.url, tmp_path, "--count", "2")
        chats = [request.json["model"] for request in fake.generations]

    assert result.returncode == 0, result.stderr
    assert chats == ["llama3.2:3b"]
    assert len(list((tmp_path / "out").glob("*.json"))) == 2


def test_host_reports_the_plugins_hint_when_nothing_listens(
    installed_plugin: InstalledPlugin, tmp_path: Path
):
    url = f"http://127.0.0.1:{free_loopback_port()}"

    result = host_generate(installed_plugin, url, tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert url in result.stderr
    assert "\nHint: " in result.stderr  # what to do, not only what went wrong
    assert "Traceback" not in result.stderr
    assert "API_KEY" not in result.stderr  # the host's advice for a provider "not configured"
    assert not (tmp_path / "out").exists()
    if DEFAULT_API == "native":
        assert "ollama serve" in result.stderr


def test_host_reports_a_missing_model_with_advice_and_sends_nothing(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    result = host_generate(installed_plugin, server_with_models.url, tmp_path, "--model", "nope:1b")

    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "nope:1b" in result.stderr
    assert "\nHint: " in result.stderr
    assert "Traceback" not in result.stderr
    assert not server_with_models.generations
    if DEFAULT_API == "native":
        assert "ollama pull nope:1b" in result.stderr


def test_host_lists_the_installed_chat_models(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    result = installed_plugin.host(
        "models", "--provider", PROVIDER, server_url=server_with_models.url, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"llama3.2:3b", "qwen2.5:7b"}
