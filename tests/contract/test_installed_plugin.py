"""The plugin as a host meets it: the built wheel, installed into a fresh virtual environment.

A session fixture builds the wheel once (or takes PERSONA_OLLAMA_CONTRACT_WHEEL) and installs
it into a new venv without Persona. Every test then runs code inside that venv in a
subprocess, so nothing from the source tree or the dev environment can leak in. The end-to-end
tests drive the reference host (reference_host/persona_host.py) against the loopback double.

The suite names no server: the provider's registry name comes from the provider, the double
from ``testing.stand_in`` (the server of ``settings.DEFAULT_API``), the chat requests from the
double's generation routes, the models served from the double. Nor does it assume what a server
may do differently: the double may serve one model of those it is given (a one-model server),
a request may carry the prompt as one string and no model name, and an error may come as an
event inside a 200 stream. So it runs unchanged against a provider built from this repository
(docs/writing-a-provider.md; tests/contract/test_template.py proves it). The checks of this
plugin's own server, console script and catalogue are in test_product_contract.py.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persona_ollama import OllamaProvider, __version__
from persona_ollama.settings import BASE_URL_VAR, HOST_VAR, PREFIX
from persona_ollama.testing import FakeModel, FakeServer, stand_in

pytestmark = pytest.mark.contract

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOST_DIR = HERE / "reference_host"
INTERVIEWS = HERE / "data" / "interviews.csv"
WHEEL_VARIABLE = PREFIX + "CONTRACT_WHEEL"
# The name a host asks for (--provider NAME): the provider's own, which the entry point must use.
PROVIDER = OllamaProvider(api_key=None, environ={}).name
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


def chat_models(server: FakeServer) -> set[str]:
    """The names of the models the double serves that can chat."""
    return {model.name for model in server.models if not model.has("embedding")}


def model_asked(server: FakeServer, body: Any) -> str:
    """The model a chat request asked for: the body's ``model``, or, on a server that serves
    one model and takes no name, that one."""
    if isinstance(body, dict) and "model" in body:
        return str(body["model"])
    (only,) = [model.name for model in server.models]
    return only


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


def test_wheel_ships_the_type_marker_and_no_tests(installed_plugin: InstalledPlugin):
    with zipfile.ZipFile(installed_plugin.wheel) as wheel:
        names = set(wheel.namelist())

    assert "persona_ollama/py.typed" in names
    assert not [name for name in names if name.startswith("tests/")]


# -- the reference host, end to end against the loopback double ---------------------------------


def host_generate(
    plugin: InstalledPlugin, server_url: str, tmp_path: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """The host's ``generate`` from the interviews CSV into ``tmp_path/out``, with ``options``."""
    return plugin.host(
        "generate",
        "--from",
        INTERVIEWS,
        "--provider",
        PROVIDER,
        *options,
        "--output",
        tmp_path / "out",
        server_url=server_url,
        cwd=tmp_path,
    )


def generate_from_the_csv(
    plugin: InstalledPlugin, server: FakeServer, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Three personas from the whole CSV, written to ``tmp_path/out``."""
    server.reply_with(personas_from_request)
    return host_generate(plugin, server.url, tmp_path, "--model", "llama3.2:3b", "--count", "3")


def input_tokens_of(result: subprocess.CompletedProcess[str]) -> int:
    return int(re.search(r"(\d+) input tokens", result.stdout).group(1))  # type: ignore[union-attr]


def test_host_generates_personas_from_the_whole_csv(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    csv_text = INTERVIEWS.read_text(encoding="utf-8")

    result = generate_from_the_csv(installed_plugin, server_with_models, tmp_path)

    assert result.returncode == 0, result.stderr
    written = sorted((tmp_path / "out").glob("*.json"))
    assert len(written) == 3
    for path in written:
        persona = json.loads(path.read_text(encoding="utf-8"))
        assert set(PERSONA_FIELDS) <= set(persona)
        assert all(quote in csv_text for quote in persona["quotes"])
    (chat,) = server_with_models.generations
    assert model_asked(server_with_models, chat.json) == "llama3.2:3b"
    assert csv_text in prompt_of(chat.json)
    assert input_tokens_of(result) > len(csv_text) // 4  # the double counts four bytes a token


def test_host_reports_an_error_sent_inside_the_answer_and_writes_nothing(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    # Whether the server sends it as a line, an event or a frame, inside a 200 stream.
    server_with_models.error_mid_stream_next("the model failed half-way", after_chunks=1)

    result = generate_from_the_csv(installed_plugin, server_with_models, tmp_path)

    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("Error: ")
    assert "the model failed half-way" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list((tmp_path / "out").glob("*.json"))  # no partial answer as personas


def test_host_without_model_uses_the_plugins_default_model(
    installed_plugin: InstalledPlugin, tmp_path: Path
):
    with stand_in([FakeModel(name="llama3.2:3b", context_length=131072)]) as fake:
        fake.reply_with(personas_from_request)

        result = host_generate(installed_plugin, fake.url, tmp_path, "--count", "2")
        chats = [model_asked(fake, request.json) for request in fake.generations]

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
    if len(server_with_models.models) == 1:  # a one-model server: the error names the one
        assert server_with_models.models[0].name in result.stderr


def test_host_lists_the_installed_chat_models(
    installed_plugin: InstalledPlugin, server_with_models: FakeServer, tmp_path: Path
):
    result = installed_plugin.host(
        "models", "--provider", PROVIDER, server_url=server_with_models.url, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == chat_models(server_with_models)
    assert "nomic-embed-text:latest" not in result.stdout
