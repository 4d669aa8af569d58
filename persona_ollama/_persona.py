"""Persona's provider base classes, or shape-identical stand-ins when Persona is not loaded.

When the host has imported Persona's provider package, its classes are used so that the
host's ``isinstance`` checks and ``except ProviderError`` hold; otherwise the fallbacks below
mirror them field for field. The plugin never imports Persona itself: its provider package
imports every provider's SDK, which would cost the CLI most of a second. Persona is never
required at install time (the index's ``persona`` is another project).
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass
class _LLMResponse:
    """Standardised response from an LLM provider (mirror of Persona's)."""

    content: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = "stop"
    raw_response: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class _LLMProvider(abc.ABC):
    """Abstract LLM provider (mirror of Persona's ``LLMProvider``)."""

    @property
    @abc.abstractmethod
    def name(self) -> str: ...

    @property
    @abc.abstractmethod
    def default_model(self) -> str: ...

    @property
    @abc.abstractmethod
    def available_models(self) -> list[str]: ...

    @abc.abstractmethod
    def generate(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int = 4096,
        temperature: float = 0.7,
        **kwargs: Any,
    ) -> _LLMResponse: ...

    @abc.abstractmethod
    def is_configured(self) -> bool: ...

    async def generate_async(
        self,
        prompt: str,
        model: str | None = None,
        max_tokens: int = 4096,
        temperature: float = 0.7,
        **kwargs: Any,
    ) -> _LLMResponse:
        import asyncio

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, lambda: self.generate(prompt, model, max_tokens, temperature, **kwargs)
        )

    def validate_model(self, model: str) -> bool:
        return model in self.available_models


class _ProviderError(Exception):
    """Base exception for provider errors."""


class _AuthenticationError(_ProviderError):
    """Raised when authentication fails."""


class _RateLimitError(_ProviderError):
    """Raised when a rate limit is exceeded."""


class _ModelNotFoundError(_ProviderError):
    """Raised when the requested model is not available."""


_NAMES = (
    "LLMProvider",
    "LLMResponse",
    "ProviderError",
    "AuthenticationError",
    "RateLimitError",
    "ModelNotFoundError",
)
_BASE = "persona.core.providers.base"
# Persona's provider package: its __init__ imports every provider and their SDKs (most of a
# second), so the plugin never imports it; a host that loads the entry point has done so.
_HOST_MODULES = (_BASE, "persona.core.providers")


def host_base() -> ModuleType | None:
    """Persona's ``persona.core.providers.base`` when the host has imported Persona's provider
    package already, else None. Never imports that package itself: Persona loads provider
    entry points after it (``ProviderPluginRegistry`` imports its built-in providers first),
    and a program that has not imported it (the ``persona-ollama`` CLI) does not need it."""
    if not any(name in sys.modules for name in _HOST_MODULES):
        return None
    try:
        module = importlib.import_module(_BASE)
    except ImportError:  # an older Persona, or the unrelated ``persona`` from the index
        return None
    return module if all(hasattr(module, name) for name in _NAMES) else None


if TYPE_CHECKING:
    # Type-check against the fallbacks: they are shape-identical to Persona's classes.
    LLMProvider = _LLMProvider
    LLMResponse = _LLMResponse
    ProviderError = _ProviderError
    AuthenticationError = _AuthenticationError
    RateLimitError = _RateLimitError
    ModelNotFoundError = _ModelNotFoundError
    PERSONA_AVAILABLE: bool
else:

    def __getattr__(name: str) -> Any:
        """Resolve a base class when a module asks for it (PEP 562): Persona's when its
        provider package is loaded at that moment, else the stand-in. Classes are created
        with the bases resolved at their creation, so the order of imports decides (see
        docs/host-integration.md)."""
        if name == "PERSONA_AVAILABLE":
            return host_base() is not None
        if name not in _NAMES:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        base = host_base()
        return getattr(base, name) if base is not None else globals()[f"_{name}"]


def register_when_loaded(cls: type) -> None:
    """Make ``cls`` (built on the stand-in ``LLMProvider``) count as Persona's ``LLMProvider``
    if Persona's provider package is imported later: ``LLMProvider`` is an ABC, so
    ``LLMProvider.register(cls)`` makes ``isinstance`` and ``issubclass`` hold."""
    base = host_base()
    if base is not None:
        if not issubclass(cls, base.LLMProvider):
            base.LLMProvider.register(cls)
        return
    _pending.append(cls)
    _watch()


def adopt_errors_when_loaded() -> None:
    """If Persona's provider package is imported after the errors were defined on the stand-in
    bases, move them onto Persona's error classes then (``__bases__`` assignment: both are
    plain Exception subclasses), so that ``except ProviderError`` in the host catches them
    (``except`` ignores ABC registration, so registering would not do)."""
    if host_base() is None:
        _watch()


def _watch() -> None:
    if not any(isinstance(finder, _AfterBaseImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterBaseImport())


_pending: list[type] = []
_ERRORS = ("ProviderError", "AuthenticationError", "RateLimitError", "ModelNotFoundError")


def _adopt(module: ModuleType) -> None:
    """Persona's base module has just run: register pending providers, rebase our errors."""
    provider = getattr(module, "LLMProvider", None)
    while _pending and isinstance(provider, type) and hasattr(provider, "register"):
        provider.register(_pending.pop())
    if not all(isinstance(getattr(module, name, None), type) for name in _ERRORS):
        return  # an older or unrelated Persona: keep the stand-ins
    stand_ins = {globals()[f"_{name}"]: getattr(module, name) for name in _ERRORS}
    for stand_in, persona in stand_ins.items():
        for cls in stand_in.__subclasses__():
            if cls in stand_ins:
                continue  # the stand-in hierarchy itself
            try:
                cls.__bases__ = tuple(persona if b is stand_in else b for b in cls.__bases__)
            except TypeError:  # pragma: no cover - a layout CPython refuses; keep the stand-in
                continue


class _AfterBaseImport:
    """A meta path finder that only watches for Persona's base module being imported, lets the
    other finders find it, and adopts Persona's classes (``_adopt``) once it has run."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _BASE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self)
            _adopt(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


__all__: Sequence[str] = (
    "PERSONA_AVAILABLE",
    "AuthenticationError",
    "LLMProvider",
    "LLMResponse",
    "ModelNotFoundError",
    "ProviderError",
    "RateLimitError",
    "adopt_errors_when_loaded",
    "host_base",
    "register_when_loaded",
)
