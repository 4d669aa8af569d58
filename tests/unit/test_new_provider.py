"""scripts/new_provider.py writes a new provider's project: the kernel and what it imports, the
skeleton of one backend and one face, the contract suite and the kernel's tests, renamed, and
refuses (listing file:line) a project that still names the template's server."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("new_provider", REPO / "scripts" / "new_provider.py")
assert SPEC is not None and SPEC.loader is not None
new_provider = importlib.util.module_from_spec(SPEC)
sys.modules["new_provider"] = new_provider
SPEC.loader.exec_module(new_provider)

ACME = new_provider.Names("acme", "Acme")
SETTINGS = 'PREFIX = "PERSONA_OLLAMA_"\nAPIS = ("native", "openai")\nDEFAULT_API = "native"\n'
REGISTRY = (
    "BACKENDS = {\n"
    '    "native": (".ollama_rules", ".ollama", "OllamaBackend"),\n'
    '    "openai": (".openai_rules", ".openai", "OpenAIBackend"),\n'
    "}\n"
)
# A small source tree shaped like the repository: what the generator reads of it.
SOURCE = {
    "pyproject.toml": 'dependencies = [\n    "requests>=2.28",\n    "click>=8.0",\n]\n',
    "persona_ollama/__init__.py": '"""The package."""\nfrom .names import check\n',
    "persona_ollama/py.typed": "",
    "persona_ollama/settings.py": SETTINGS,
    "persona_ollama/names.py": (
        "import requests\n\n\ndef check(name):\n"
        "    from .store.words import entries  # lazy: still comes along\n"
        "    from .choosing.catalogue import ranked  # optional: left out\n"
        "    return ranked(entries(name))\n"
    ),
    "persona_ollama/store/__init__.py": "",
    "persona_ollama/store/words.py": "def entries(name):\n    return [name]\n",
    "persona_ollama/store/data/words.json": "[]\n",
    "persona_ollama/choosing/__init__.py": "",
    "persona_ollama/choosing/catalogue.py": "def ranked(names):\n    return names\n",
    "persona_ollama/choosing/data/models.json": "[]\n",
    "persona_ollama/cli/__init__.py": "import click\n",
    "persona_ollama/backends/__init__.py": "",
    "persona_ollama/backends/registry.py": REGISTRY,
    "persona_ollama/backends/ollama.py": "class Backend:\n    pass\n",
    "tests/error_bases.py": "",
    "tests/real_waits.py": "",
    "tests/contract/conftest.py": "",
    "tests/contract/test_installed_plugin.py": "from persona_ollama import names\n",
    "tests/contract/reference_host/persona_host.py": "",
    "tests/contract/data/interviews.csv": "id,quote\n",
    "tests/contract/test_product_contract.py": "# this plugin's own checks\n",
    "tests/unit/test_names.py": "from persona_ollama import names\n\n\ndef test_x():\n    pass\n",
    "tests/unit/test_cli.py": "from persona_ollama.cli import main\n",
    "tests/unit/test_options.py": "from persona_ollama import names\n",
    "tests/unit/test_mocked.py": (
        "from persona_ollama import names\n\n\ndef test_x(mocked):\n    pass\n"
    ),
    "tests/unit/test_server_facts.py": "from persona_ollama import names  # Ollama's rules\n",
}


# A small scripts/template: the example's files, named as the template names them.
TEMPLATE = {
    "pyproject.toml": (
        'name = "persona-acme"\ndependencies = [\n    # @DEPENDENCIES@\n]\n'
        '[project.entry-points."persona.providers"]\nacme = "persona_acme:AcmeProvider"\n'
        "[project.entry-points.pytest11]\n"
        'persona_acme = "persona_acme.testing.pytest_plugin"\n'
        '[tool.setuptools.package-data]\npersona_acme = ["py.typed"]\n# @PACKAGE_DATA@\n'
    ),
    "CHANGELOG.md": "# Changelog\n\n## [Unreleased]\n- persona-acme, from the template.\n",
    "README.md": "# persona-acme\n\nSet ACME_HOST.\n",
    "persona_acme/backends/acme_rules.py": "ADDRESS = ('PERSONA_ACME_URL', 'ACME_HOST')\n",
    "persona_acme/backends/acme.py": "from ..names import check\n\n\nclass AcmeBackend: ...\n",
    "persona_acme/testing/__init__.py": "",
    "persona_acme/testing/acme.py": "class AcmeFace:\n    pass\n",
    "persona_acme/testing/stand_in.py": "from .acme import AcmeFace\n",
    "tests/unit/test_backend_acme.py": "from persona_acme.backends.acme import AcmeBackend\n",
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The small source tree, generated from with the small scripts/template."""
    monkeypatch.setattr(new_provider, "TEMPLATE", write_tree(tmp_path / "example", TEMPLATE))
    return write_tree(tmp_path / "template", SOURCE)


def read(root: Path, name: str) -> str:
    return (root / name).read_text(encoding="utf-8")


def files_of(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# -- what the project holds ------------------------------------------------------------------


def test_the_project_holds_the_kernel_what_it_imports_the_skeleton_and_the_contract_suite(
    source: Path, tmp_path: Path
):
    project = tmp_path / "persona-acme"

    found = new_provider.generate(project, ACME, source)

    files = files_of(project)
    assert found == []
    assert {
        "persona_acme/__init__.py",
        "persona_acme/names.py",
        "persona_acme/py.typed",
        "persona_acme/store/words.py",  # imported by the kernel, lazily
        "persona_acme/store/data/words.json",  # with its package's data
        "persona_acme/backends/acme.py",
        "persona_acme/backends/acme_rules.py",
        "persona_acme/testing/acme.py",
        "tests/contract/test_installed_plugin.py",
        "tests/unit/test_names.py",
        "tests/unit/test_backend_acme.py",
        "CHANGELOG.md",
        "README.md",
    } <= files
    assert not [name for name in files if name.startswith("persona_acme/cli/")]
    # The catalogue is optional: the kernel asks whether it is there (catalogue_seam).
    assert not [name for name in files if name.startswith("persona_acme/choosing/")]
    assert "persona_acme/backends/ollama.py" not in files
    assert "tests/contract/test_product_contract.py" not in files


def test_kernel_tests_that_need_the_templates_fixtures_cli_or_server_are_left_out(
    source: Path, tmp_path: Path
):
    project = tmp_path / "persona-acme"

    new_provider.generate(project, ACME, source)

    tests = {name for name in files_of(project) if name.startswith("tests/unit/")}
    assert "tests/unit/test_names.py" in tests
    assert "tests/unit/test_cli.py" not in tests  # cli/ is not in the project
    assert "tests/unit/test_mocked.py" not in tests  # a fixture of the template's conftest
    assert "tests/unit/test_server_facts.py" not in tests  # names the template's server
    assert "tests/unit/test_options.py" not in tests  # its cases are the server's options


def test_everything_is_renamed_and_the_settings_name_the_new_server(source: Path, tmp_path: Path):
    project = tmp_path / "out"

    new_provider.generate(project, new_provider.Names("vllm", "Vllm"), source)

    assert (project / "persona_vllm" / "backends" / "vllm.py").is_file()
    assert "class VllmBackend:" in read(project, "persona_vllm/backends/vllm.py")
    assert "from .vllm import VllmFace" in read(project, "persona_vllm/testing/stand_in.py")
    settings = read(project, "persona_vllm/settings.py")
    assert 'PREFIX = "PERSONA_VLLM_"' in settings
    assert 'APIS = ("vllm",)' in settings and 'DEFAULT_API = "vllm"' in settings
    assert read(project, "persona_vllm/backends/registry.py") == (
        'BACKENDS = {\n    "vllm": (".vllm_rules", ".vllm", "VllmBackend"),\n}\n'
    )
    assert "('PERSONA_VLLM_URL', 'VLLM_HOST')" in read(
        project, "persona_vllm/backends/vllm_rules.py"
    )
    pyproject = read(project, "pyproject.toml")
    assert 'name = "persona-vllm"' in pyproject
    assert 'vllm = "persona_vllm:VllmProvider"' in pyproject
    assert 'persona_vllm = "persona_vllm.testing.pytest_plugin"' in pyproject
    # What the package imports, and nothing else (cli/ and its click are left out).
    assert '    "requests>=2.28",\n]' in pyproject and "click" not in pyproject
    assert '"persona_vllm.store" = ["data/*"]' in pyproject and "choosing" not in pyproject
    assert "from persona_vllm import names" in read(project, "tests/unit/test_names.py")


def test_the_compatibility_names_and_every_listing_of_them_are_left_out(
    source: Path, tmp_path: Path
):
    package = source / "persona_ollama"
    (package / "errors.py").write_text(
        "class ServerError(Exception):\n    pass\n\n\n"
        "# compatibility aliases: begin (the names users import)\n"
        "OllamaError = ServerError\n"
        "# compatibility aliases: end\n"
        '__all__ = [  # noqa: RUF022 - the aliases apart, in their block\n    "ServerError",\n'
        "    # compatibility aliases: begin\n"
        '    "OllamaError",\n    # compatibility aliases: end\n]\n'
    )
    (package / "__init__.py").write_text(
        "from .names import check\n"
        "from .errors import (\n    OllamaError,\n    ServerError,\n)\n"
        '_LAZY = {\n    "OllamaError": "errors",\n    "ServerError": "errors",\n}\n'
    )
    project = tmp_path / "persona-acme"

    found = new_provider.generate(project, ACME, source)

    assert found == []
    errors = read(project, "persona_acme/errors.py")
    assert "compatibility" not in errors and '__all__ = [\n    "ServerError",\n]' in errors
    init = read(project, "persona_acme/__init__.py")
    assert "    ServerError,\n)" in init and '    "ServerError": "errors",\n}' in init
    compile(errors + init, "generated", "exec")


def test_compatibility_names_the_project_still_uses_stay_and_are_listed(
    source: Path, tmp_path: Path
):
    package = source / "persona_ollama"
    (package / "errors.py").write_text(
        "class ServerError(Exception):\n    pass\n\n\n"
        "# -- Compatibility aliases: the names users import\n"
        "OllamaError = ServerError\n"
        "# -- end of the compatibility aliases\n"
    )
    (package / "stream.py").write_text("from .errors import OllamaError\n")
    (package / "__init__.py").write_text("from . import names, stream\n")
    project = tmp_path / "persona-acme"

    found = new_provider.generate(project, ACME, source)

    assert "persona_acme/errors.py:6: OllamaError = ServerError" in found
    assert "persona_acme/stream.py:1: from .errors import OllamaError" in found
    assert read(project, "persona_acme/errors.py") == read(source, "persona_ollama/errors.py")


def test_the_changelog_is_a_fresh_one(source: Path, tmp_path: Path):
    project = tmp_path / "persona-acme"

    new_provider.generate(project, ACME, source)

    changelog = read(project, "CHANGELOG.md")
    assert "## [Unreleased]" in changelog and "persona-acme" in changelog
    assert not re.search(r"^## \[\d", changelog, re.MULTILINE)  # no release of the template's


# -- the check -------------------------------------------------------------------------------


def test_a_line_naming_the_templates_server_in_any_case_is_listed_and_fails_the_command(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    names = source / "persona_ollama" / "names.py"
    names.write_text(read(source, "persona_ollama/names.py") + "# as OLLAMA does\n")
    project = tmp_path / "persona-acme"

    found = new_provider.generate(project, ACME, source)

    assert found == ["persona_acme/names.py:8: # as OLLAMA does"]
    assert (project / "persona_acme" / "names.py").is_file()  # left in place to read


def test_the_command_lists_the_offences_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(new_provider, "generate", lambda target, names: ["a.py:3: Ollama"])

    assert new_provider.main(["acme", "Acme", str(tmp_path / "out")]) == 1

    err = capsys.readouterr().err
    assert "still names the template's server on 1 lines" in err
    assert "  a.py:3: Ollama" in err


def test_a_clean_project_is_announced_with_its_names(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
):
    monkeypatch.setattr(new_provider, "REPO", source)

    assert new_provider.main(["acme", "Acme", str(tmp_path / "persona-acme")]) == 0

    assert 'entry point acme = "persona_acme:AcmeProvider"' in capsys.readouterr().out


def test_a_seam_of_another_shape_stops_the_generator_with_what_to_update(
    source: Path, tmp_path: Path
):
    (source / "persona_ollama" / "settings.py").write_text(SETTINGS.replace("APIS", "API_NAMES"))

    with pytest.raises(new_provider.GenerateError, match="update SEAMS"):
        new_provider.generate(tmp_path / "out", ACME, source)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme", "Acme"], "not a short name"),
        (["acme", "acme"], "not a display name"),
        (["ollama", "Ollama"], "the template's own name"),
    ],
)
def test_bad_names_are_refused_before_anything_is_written(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    target = tmp_path / "out"

    assert new_provider.main([*args, str(target)]) == 1

    assert message in capsys.readouterr().err
    assert not target.exists()


def test_a_target_that_is_not_empty_or_inside_the_template_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "kept.txt").write_text("mine")

    assert new_provider.main(["acme", "Acme", str(tmp_path)]) == 1
    assert new_provider.main(["acme", "Acme", str(REPO / "build" / "acme")]) == 1

    err = capsys.readouterr().err
    assert "is not empty" in err and "inside the template" in err
    assert read(tmp_path, "kept.txt") == "mine"
    assert not (REPO / "build" / "acme").exists()


# -- the real repository ---------------------------------------------------------------------


def test_the_repositorys_project_holds_its_kernel_and_no_cli_catalogue_or_ollama_backend(
    tmp_path: Path,
):
    project = tmp_path / "persona-acme"

    offences = new_provider.generate(project, ACME)

    assert offences == []  # no line of the project names Ollama
    files = files_of(project)
    # The double's core came along without Ollama's names, models, profiles or faces.
    assert {"persona_acme/testing/model_names.py", "persona_acme/testing/profiles.py"} <= files
    assert not [name for name in files if re.match(r"persona_acme/testing/(ollama|native)", name)]
    assert {"persona_acme/provider.py", "persona_acme/context.py", "persona_acme/py.typed"} <= files
    assert not [name for name in files if name.startswith("persona_acme/cli/")]
    assert not [name for name in files if re.match(r"persona_acme/backends/(ollama|openai)", name)]
    assert not [name for name in files if name.startswith("persona_acme/choosing/")]
    assert "tests/contract/test_template.py" not in files
    assert not (project / "scripts").exists()


def test_the_guide_states_the_skeletons_files_and_their_real_sizes():
    """docs/writing-a-provider.md's table lists exactly the skeleton's files, each with its
    line count within 10 % of the file's."""
    guide = read(REPO, "docs/writing-a-provider.md")
    table = guide.split("## The files you change", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| [^|]+ \| (\d+) \|$", table, re.MULTILINE)
    template = new_provider.TEMPLATE

    assert {path for path, _ in rows} == set(new_provider.SKELETON)
    for path, stated in rows:
        real = len((template / path).read_text(encoding="utf-8").splitlines())
        assert abs(int(stated) - real) <= real * 0.1, (
            f"{path}: the guide says {stated}, it has {real}"
        )
