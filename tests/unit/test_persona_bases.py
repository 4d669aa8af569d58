"""_persona.py in process: Persona's classes only when the host has loaded them, and a class
created before Persona registered with its LLMProvider afterwards."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persona_ollama import _persona

_SPEC = importlib.util.spec_from_file_location(
    "persona_standin", Path(__file__).parents[2] / "bench" / "persona_standin.py"
)
assert _SPEC is not None and _SPEC.loader is not None
standin = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(standin)


def _forget_persona() -> None:
    for name in [m for m in sys.modules if m == "persona" or m.startswith("persona.")]:
        del sys.modules[name]
    for name in [m for m in sys.modules if m.startswith(standin.SDK_PACKAGE)]:
        del sys.modules[name]
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _persona._AfterBaseImport)]
    _persona._pending.clear()


@pytest.fixture
def persona_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    standin.build(str(tmp_path), modules=1, classes=1)
    monkeypatch.syspath_prepend(str(tmp_path))
    _forget_persona()
    yield tmp_path
    _forget_persona()


class _Provider(_persona._LLMProvider):
    name = "x"
    default_model = "m"
    available_models: list[str] = []  # noqa: RUF012 - a test double

    def generate(self, prompt: str, model: str | None = None, *args: Any, **kwargs: Any) -> Any:
        return None

    def is_configured(self) -> bool:
        return True


def test_installed_but_not_imported_persona_is_not_imported(persona_on_path: Path) -> None:
    assert _persona.host_base() is None
    assert _persona.PERSONA_AVAILABLE is False
    assert _persona.LLMProvider is _persona._LLMProvider
    assert "persona.core.providers" not in sys.modules


def test_a_loaded_provider_package_supplies_the_bases(persona_on_path: Path) -> None:
    import persona.core.providers  # noqa: F401

    base = _persona.host_base()
    assert base is not None
    assert _persona.PERSONA_AVAILABLE is True
    assert _persona.LLMProvider is base.LLMProvider
    assert _persona.ProviderError is base.ProviderError
    assert _persona.ModelNotFoundError is base.ModelNotFoundError


def test_an_older_persona_without_every_class_is_not_used(
    persona_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import persona.core.providers.base as base

    monkeypatch.delattr(base, "RateLimitError")
    assert _persona.host_base() is None
    assert _persona.ProviderError is _persona._ProviderError


def test_a_class_made_before_persona_is_registered_when_persona_loads(
    persona_on_path: Path,
) -> None:
    _persona.register_when_loaded(_Provider)
    _persona.register_when_loaded(_Provider)  # one watcher, however often
    assert sum(isinstance(f, _persona._AfterBaseImport) for f in sys.meta_path) == 1

    from persona.core.providers.base import LLMProvider

    assert issubclass(_Provider, LLMProvider)
    assert isinstance(_Provider(), LLMProvider)
    assert not any(isinstance(f, _persona._AfterBaseImport) for f in sys.meta_path)


def test_a_class_made_after_persona_is_registered_at_once(persona_on_path: Path) -> None:
    from persona.core.providers.base import LLMProvider

    _persona.register_when_loaded(_Provider)
    assert issubclass(_Provider, LLMProvider)
    assert not any(isinstance(f, _persona._AfterBaseImport) for f in sys.meta_path)


def test_the_watcher_ignores_other_modules_and_a_missing_persona(tmp_path: Path) -> None:
    watcher = _persona._AfterBaseImport()
    assert watcher.find_spec("json", None) is None
    _forget_persona()
    assert watcher.find_spec("persona.core.providers.base", [str(tmp_path)]) is None


def test_errors_defined_before_persona_move_onto_its_classes(persona_on_path: Path) -> None:
    class Error(_persona._ProviderError):
        pass

    class Denied(Error, _persona._AuthenticationError):
        pass

    _persona.adopt_errors_when_loaded()
    from persona.core.providers import base

    assert issubclass(Denied, base.AuthenticationError)
    with pytest.raises(base.ProviderError):
        raise Denied("no")
    # The plugin's own errors moved too (the autouse fixture puts them back afterwards).
    from persona_ollama.errors import ModelNotPulledError, OllamaError

    assert issubclass(OllamaError, base.ProviderError)
    assert issubclass(ModelNotPulledError, base.ModelNotFoundError)


def test_an_older_persona_keeps_the_stand_in_errors(
    persona_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Error(_persona._ProviderError):
        pass

    module = type(sys)("persona.core.providers.base")
    _persona._adopt(module)  # no error classes at all
    assert Error.__bases__ == (_persona._ProviderError,)


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _persona.Nope  # noqa: B018
