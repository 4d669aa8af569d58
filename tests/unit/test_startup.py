"""Start-up with Persona installed: the plugin never imports Persona's provider package itself
(its __init__ imports every provider SDK), yet inside Persona it is Persona's LLMProvider.

Each case runs in a fresh interpreter next to a Persona-shaped stand-in (bench/persona_standin.py)
and reports which modules it loaded.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "persona_standin", Path(__file__).parents[2] / "bench" / "persona_standin.py"
)
assert _SPEC is not None and _SPEC.loader is not None
standin_module = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(standin_module)
SDK_PACKAGE: str = standin_module.SDK_PACKAGE
HEAVY = ("requests", "urllib3", "psutil", "click", "pluggy")


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("persona-standin"))
    return standin_module.build(path, modules=2, classes=2)  # type: ignore[no-any-return]


def run(standin: str, code: str, tmp_path: Path) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with the stand-in importable; it sets ``out``."""
    program = (
        f"import sys, json\nsys.path.insert(0, {standin!r})\nout = {{}}\n"
        + textwrap.dedent(code)
        + "\nprint(json.dumps(out))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", program],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def persona_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m == "persona" or m.startswith(("persona.", SDK_PACKAGE))]


def test_the_cli_imports_nothing_of_persona(standin: str, tmp_path: Path) -> None:
    out = run(
        standin,
        """
        import contextlib, io
        from persona_ollama.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as help_text:
            try:
                main(["--help"])
            except SystemExit:
                pass
        out["help"] = help_text.getvalue()
        out["modules"] = sorted(sys.modules)
        """,
        tmp_path,
    )
    assert "Usage" in out["help"]
    assert persona_modules(out["modules"]) == []


def test_inside_persona_the_entry_point_is_persona_s_provider(standin: str, tmp_path: Path) -> None:
    out = run(
        standin,
        """
        from persona.core.plugins.registries import ProviderPluginRegistry
        registry = ProviderPluginRegistry()
        before = set(sys.modules)
        registry.discover_entry_points()
        out["new"] = sorted(set(sys.modules) - before)
        from persona.core.providers import base
        cls = registry.plugins["ollama"]
        provider = cls(api_key=None)
        from persona_ollama import OllamaError, ModelNotPulledError
        out["isinstance"] = isinstance(provider, base.LLMProvider)
        out["subclass"] = base.LLMProvider in cls.__mro__
        out["errors"] = issubclass(OllamaError, base.ProviderError)
        out["not_found"] = issubclass(ModelNotPulledError, base.ModelNotFoundError)
        from persona_ollama import _persona
        out["available"] = _persona.PERSONA_AVAILABLE
        """,
        tmp_path,
    )
    assert out["isinstance"] and out["subclass"] and out["errors"] and out["not_found"]
    assert out["available"] is True
    # Loading the entry point loads the plugin's own light modules and nothing heavy.
    assert not [m for m in out["new"] if m.split(".")[0] in HEAVY]
    ours = [m for m in out["new"] if m.startswith("persona_ollama")]
    assert set(ours) <= {
        "persona_ollama",
        "persona_ollama._lazy",
        "persona_ollama._persona",
        "persona_ollama.catalogue_seam",  # whether choosing/ is here: a path lookup, no import
        "persona_ollama.context",
        "persona_ollama.errors",
        # the default backend's declarations (its address variables, model names): no requests
        "persona_ollama.backends",
        "persona_ollama.backends.ollama_rules",
        "persona_ollama.backends.registry",
        "persona_ollama.backends.rules",
        "persona_ollama.stream",
        "persona_ollama.names",
        "persona_ollama.options",
        "persona_ollama.privacy",
        "persona_ollama.provider",
        "persona_ollama.settings",
        "persona_ollama.thinking",
        "persona_ollama.windows",
    }
    others = [m for m in out["new"] if not m.startswith("persona_ollama")]
    assert len(others) <= 5, others  # a few standard-library modules at most


def test_imported_before_persona_the_provider_still_counts_as_persona_s(
    standin: str, tmp_path: Path
) -> None:
    out = run(
        standin,
        """
        from persona_ollama import OllamaProvider, OllamaError
        out["loaded_before"] = [m for m in sys.modules if m.startswith("persona.")]
        import persona.core.providers
        from persona.core.providers.base import LLMProvider, ProviderError
        out["isinstance"] = isinstance(OllamaProvider(api_key=None), LLMProvider)
        out["issubclass"] = issubclass(OllamaProvider, LLMProvider)
        out["errors"] = issubclass(OllamaError, ProviderError)
        try:
            from persona_ollama import ModelNotPulledError
            raise ModelNotPulledError("gone", model="m")
        except ProviderError:
            out["caught"] = True
        """,
        tmp_path,
    )
    assert out["loaded_before"] == []
    assert out["isinstance"] and out["issubclass"]
    assert out["errors"] is True and out["caught"] is True


def test_without_persona_the_stand_ins_are_used(tmp_path: Path) -> None:
    out = run(
        str(tmp_path / "nothing-here"),
        """
        from persona_ollama import OllamaProvider, _persona
        out["base"] = OllamaProvider.__mro__[1].__module__
        out["available"] = _persona.PERSONA_AVAILABLE
        """,
        tmp_path,
    )
    assert out == {"base": "persona_ollama._persona", "available": False}
