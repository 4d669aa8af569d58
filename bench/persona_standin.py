"""A Persona-shaped package whose provider package is as heavy to import as the real one.

Persona (REPPL/Persona) cannot be installed in CI, but its shape is what start-up depends on:
``persona/core/providers/__init__.py`` imports every built-in provider and, through them,
the vendors' SDKs (openai, anthropic, google-genai: most of a second). ``base.py`` holds
``LLMProvider`` (an ABC), ``LLMResponse`` and the ``ProviderError`` family, field for field
as in Persona 1.11. :func:`build` writes that shape under a directory to put on ``sys.path``:
the SDKs are stood in for by generated modules (``persona_sdk_standin``) whose import costs
about as much, by compiling and executing real code, not by sleeping.
"""

from __future__ import annotations

import os
import textwrap

__all__ = ["SDK_PACKAGE", "build"]

SDK_PACKAGE = "persona_sdk_standin"

_BASE = '''\
"""Base classes for LLM providers (shaped like Persona 1.11's)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LLMResponse:
    content: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = "stop"
    raw_response: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class LLMProvider(ABC):
    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    @abstractmethod
    def default_model(self) -> str: ...

    @property
    @abstractmethod
    def available_models(self) -> list[str]: ...

    @abstractmethod
    def generate(self, prompt, model=None, max_tokens=4096, temperature=0.7, **kwargs): ...

    @abstractmethod
    def is_configured(self) -> bool: ...

    def validate_model(self, model: str) -> bool:
        return model in self.available_models


class ProviderError(Exception):
    pass


class AuthenticationError(ProviderError):
    pass


class RateLimitError(ProviderError):
    pass


class ModelNotFoundError(ProviderError):
    pass
'''

_PROVIDERS_INIT = '''\
"""LLM provider abstraction module: imports every provider and its SDK, as Persona's does."""

from persona.core.providers.base import LLMProvider, LLMResponse
from persona.core.providers.vendors import VENDORS
'''

_VENDORS = """\
import {sdk}

VENDORS = {sdk}.MODULES
"""

_REGISTRY = '''\
"""Provider plugin registry, shaped like persona.core.plugins.registries in Persona 1.11:
the built-in providers are imported before any entry point is loaded."""

import sys
from importlib.metadata import entry_points


class ProviderPluginRegistry:
    entry_point_group = "persona.providers"

    def __init__(self):
        import persona.core.providers  # noqa: F401 - the built-ins, as Persona registers them

        self.plugins = {}

    def discover_entry_points(self):
        if sys.version_info >= (3, 10):
            found = entry_points(group=self.entry_point_group)
        else:
            found = entry_points().get(self.entry_point_group, [])
        for ep in found:
            self.plugins[ep.name] = ep.load()
        return len(self.plugins)
'''


# Standard-library modules the real provider package has loaded by then (checked against
# Persona 1.11.1 with its SDKs installed: 465 modules, these among them).
_SDK_STDLIB = (
    "import __future__, atexit, dataclasses, inspect, json, logging, math, re, string\n"
    "import textwrap, threading, traceback, typing\n"
)


def _sdk_module(index: int, classes: int) -> str:
    """One stand-in SDK module: typed classes with methods and properties, like a client."""
    parts = [f'"""Stand-in SDK module {index}."""\n\nimport dataclasses\nimport typing\n']
    for number in range(classes):
        parts.append(
            textwrap.dedent(
                f"""
                @dataclasses.dataclass
                class Model{number}:
                    id: str = "m{number}"
                    size: int = {number}
                    tags: typing.List[str] = dataclasses.field(default_factory=list)

                    def describe(self, prefix: str = "") -> str:
                        return f"{{prefix}}{{self.id}}:{{self.size}}:{{len(self.tags)}}"

                    @property
                    def weight(self) -> float:
                        return self.size * {index + 1}.5
                """
            )
        )
    return "".join(parts)


def build(root: str, *, modules: int = 24, classes: int = 30) -> str:
    """Write the stand-in under ``root`` (created if needed) and return ``root``.

    ``modules`` x ``classes`` sizes the SDK import; the defaults cost a few hundred
    milliseconds on a laptop, of the order of Persona's real provider package.
    """
    files = {
        "persona/__init__.py": '"""Persona stand-in."""\n__version__ = "1.11.1"\n',
        "persona/core/__init__.py": "",
        "persona/core/providers/__init__.py": _PROVIDERS_INIT,
        "persona/core/providers/base.py": _BASE,
        "persona/core/providers/vendors.py": _VENDORS.format(sdk=SDK_PACKAGE),
        "persona/core/plugins/__init__.py": "",
        "persona/core/plugins/registries.py": _REGISTRY,
        f"{SDK_PACKAGE}/__init__.py": _SDK_STDLIB
        + "".join(f"from . import m{i}\n" for i in range(modules))
        + f"MODULES = {modules}\n",
    }
    for index in range(modules):
        files[f"{SDK_PACKAGE}/m{index}.py"] = _sdk_module(index, classes)
    for relative, text in files.items():
        path = os.path.join(root, *relative.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return root
