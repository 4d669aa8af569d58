"""A stand-in for the real Persona 1.11.1 package, for the bridge's tests: a test fixture.

``make_persona(site, factory)`` writes a package named ``persona`` (with its dist-info, so
importlib.metadata sees it) into ``site``. Its ``persona`` command is the reference host's
generate path (persona_host.py) wrapped the way Persona 1.11.1's ``persona generate``
(persona/ui/commands/generate.py) wraps its pipeline, observed against the real release:

- a provider whose ``is_configured()`` is False stops the run with ``Error: NAME is not
  configured.`` and ``Set the NAME_API_KEY environment variable.``, exit 1;
- a failed generation is reported with ``progress_handler.error(str(exc))``, exit 1. The
  handler is ``StreamingOutput`` on a terminal, which prints ``Error: ...``; off a terminal
  it is ``SimpleProgress``, which has *no* ``error`` method, so the plugin's message became
  ``AttributeError: 'SimpleProgress' object has no attribute 'error'`` (persona/ui/
  streaming.py). The bridge must repair that in memory;
- the console prints Rich markup (``[red]Error:[/red]``); the stand-in strips it.

The provider factory takes one of the shapes below: built-in table first (Persona 1.11's
shape), entry point first (the change of docs/host-integration.md), or one nobody knows.
Standard library only; runs on Python 3.9 too (the real Persona needs 3.12).
"""

from __future__ import annotations

from pathlib import Path

VERSION = "1.11.1"

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

STREAMING = r'''
import re
import sys


class Console:
    """Rich's Console.print, without the styling: markup tags go, an escaped "[" stays."""

    def print(self, text=""):
        text = re.sub(r"(?<!\\)\[/?[a-z ]+\]", "", str(text)).replace("\\[", "[")
        print(text, flush=True)


class StreamingOutput:
    """The handler on a terminal (a Rich Live display in Persona)."""

    def __init__(self, console=None, show_progress=True):
        self.console = console or Console()

    def start(self, total, **kwargs):
        self.console.print(f"Generating {total} personas... (live display)")
        return self.console.print

    def error(self, message):
        self.console.print(f"\n[red]Error:[/red] {message}")


class SimpleProgress:
    """The handler off a terminal. Persona 1.11.1's has no error() method."""

    def __init__(self, console=None):
        self.console = console or Console()

    def start(self, total, **kwargs):
        self.console.print(f"\nGenerating {total} personas...\n")
        return self.console.print


def get_progress_handler(console=None, show_progress=True):
    if sys.stdout.isatty() and show_progress:
        return StreamingOutput(console=console, show_progress=True)
    return SimpleProgress(console=console)
'''

CLI = """
import sys

import persona_host
from persona.core.providers.factory import ProviderFactory
from persona.ui.streaming import Console, get_progress_handler


def main():
    console = Console()
    args = persona_host.parser().parse_args(sys.argv[1:])
    try:
        provider = ProviderFactory.create(args.provider)
        if not provider.is_configured():
            console.print(f"[red]Error:[/red] {args.provider} is not configured.")
            console.print(f"Set the {args.provider.upper()}_API_KEY environment variable.")
            sys.exit(1)
    except ValueError as e:
        console.print(f"[red]Error:[/red] {e}")
        sys.exit(1)
    handler = get_progress_handler(console=console)
    handler.start(total=args.count, provider=args.provider, model=args.model)
    try:
        persona_host.generate(provider, args)
    except Exception as e:
        handler.error(str(e))
        sys.exit(1)
"""


def make_persona(site: Path, factory: str, version: str = VERSION) -> Path:
    """Write the stand-in package and its metadata into ``site``; return the package path."""
    package = site / "persona"
    for directory in (package, package / "core", package / "core" / "providers", package / "ui"):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").write_text("", encoding="utf-8")
    (package / "core" / "providers" / "factory.py").write_text(factory, encoding="utf-8")
    (package / "ui" / "streaming.py").write_text(STREAMING, encoding="utf-8")
    (package / "ui" / "cli.py").write_text(CLI, encoding="utf-8")
    info = site / f"persona-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: persona\nVersion: {version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[console_scripts]\npersona = persona.ui.cli:main\n", encoding="utf-8"
    )
    return package
