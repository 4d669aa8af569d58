"""scripts/new_provider.py renames the template's names in a copy, and no fact about Ollama."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("new_provider", REPO / "scripts" / "new_provider.py")
assert SPEC is not None and SPEC.loader is not None
new_provider = importlib.util.module_from_spec(SPEC)
sys.modules["new_provider"] = new_provider
SPEC.loader.exec_module(new_provider)

TREE = {
    "pyproject.toml": (
        'name = "persona-ollama"\n'
        '[project.entry-points."persona.providers"]\n'
        'ollama = "persona_ollama:OllamaProvider"\n'
        "[project.entry-points.pytest11]\n"
        'persona_ollama = "persona_ollama.testing.pytest_plugin"\n'
        "[project.scripts]\n"
        'persona-ollama = "persona_ollama.cli:main"\n'
    ),
    "persona_ollama/__init__.py": "from .provider import OllamaProvider\n",
    "persona_ollama/provider.py": (
        "class OllamaProvider:\n"
        "    def name(self):\n"
        '        """The provider\'s name in Persona\'s registry: ``"ollama"``."""\n'
        '        return "ollama"\n'
        "    def hint(self):\n"
        '        return "Start Ollama with `ollama serve` or set OLLAMA_HOST."\n'
    ),
    "persona_ollama/settings.py": 'PREFIX = "PERSONA_OLLAMA_"\nHOST_VAR = "OLLAMA_HOST"\n',
    "persona_ollama/backends/ollama.py": "class OllamaBackend:\n    label = 'Ollama server'\n",
    "persona_ollama/testing/server.py": "class FakeOllama:\n    pass\n",
    "persona_ollama/choosing/data/models.json": '["persona-ollama catalogue", "llama3.2:3b"]\n',
    "tests/contract/data/interviews.csv": "id,quote\nR01,I tried persona-ollama\n",
    "README.md": "# persona-ollama\n\n    persona generate --provider ollama\n",
    "CHANGELOG.md": "## 0.1.0\n- persona-ollama released\n",
    "scripts/new_provider.py": "# the tool\n",
    "tests/contract/test_template.py": "# the template test\n",
    "tests/test_provider.py": "from persona_ollama import OllamaProvider\n",
    ".git/config": "persona_ollama\n",
}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name, text in TREE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def read(root: Path, name: str) -> str:
    return (root / name).read_text(encoding="utf-8")


def test_renames_package_distribution_class_registry_name_prefix_and_cli(copy: Path) -> None:
    assert new_provider.main(["acme", "Acme", "--root", str(copy)]) == 0

    assert not (copy / "persona_ollama").exists()
    pyproject = read(copy, "pyproject.toml")
    assert 'name = "persona-acme"' in pyproject
    assert 'acme = "persona_acme:AcmeProvider"' in pyproject
    assert 'persona_acme = "persona_acme.testing.pytest_plugin"' in pyproject
    assert 'persona-acme = "persona_acme.cli:main"' in pyproject
    assert read(copy, "persona_acme/__init__.py") == "from .provider import AcmeProvider\n"
    provider = read(copy, "persona_acme/provider.py")
    assert 'return "acme"' in provider and '``"acme"``' in provider
    assert read(copy, "persona_acme/settings.py").startswith('PREFIX = "PERSONA_ACME_"')
    assert read(copy, "README.md") == "# persona-acme\n\n    persona generate --provider acme\n"
    assert "from persona_acme import AcmeProvider" in read(copy, "tests/test_provider.py")


def test_leaves_facts_about_ollama_history_research_data_and_version_control(copy: Path) -> None:
    new_provider.main(["acme", "Acme", "--root", str(copy)])

    assert "`ollama serve` or set OLLAMA_HOST" in read(copy, "persona_acme/provider.py")
    assert 'HOST_VAR = "OLLAMA_HOST"' in read(copy, "persona_acme/settings.py")
    assert (
        read(copy, "persona_acme/backends/ollama.py") == TREE["persona_ollama/backends/ollama.py"]
    )
    assert read(copy, "persona_acme/testing/server.py") == TREE["persona_ollama/testing/server.py"]
    assert read(copy, "CHANGELOG.md") == TREE["CHANGELOG.md"]
    assert (
        read(copy, "persona_acme/choosing/data/models.json")
        == '["persona-acme catalogue", "llama3.2:3b"]\n'
    )
    csv = "tests/contract/data/interviews.csv"
    assert read(copy, csv) == TREE[csv]
    assert read(copy, ".git/config") == "persona_ollama\n"


def test_deletes_the_templates_own_tools_from_the_copy(copy: Path) -> None:
    new_provider.main(["acme", "Acme", "--root", str(copy)])

    assert not (copy / "scripts" / "new_provider.py").exists()
    assert not (copy / "tests" / "contract" / "test_template.py").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme", "Acme"], "not a short name"),
        (["acme", "acme"], "not a display name"),
        (["ollama", "Ollama"], "the template's own name"),
    ],
)
def test_refuses_bad_names_before_changing_anything(
    copy: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert new_provider.main([*args, "--root", str(copy)]) == 1

    assert message in capsys.readouterr().err
    assert (copy / "persona_ollama" / "provider.py").is_file()
    assert read(copy, "pyproject.toml") == TREE["pyproject.toml"]


def test_refuses_a_copy_that_was_renamed_already(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert new_provider.main(["acme", "Acme", "--root", str(copy)]) == 0

    assert new_provider.main(["other", "Other", "--root", str(copy)]) == 1
    assert "no persona_ollama package" in capsys.readouterr().err
