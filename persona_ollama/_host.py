"""Which provider the installed Persona runs for this plugin's name (``--provider`` PROVIDER),
and the bridge that makes it run this plugin without editing Persona.

Detection reads Persona's metadata and the *text* of its provider factory (parsed with ``ast``,
never imported): importing ``persona.core.providers`` loads every built-in provider and their
SDKs, which `persona-ollama doctor` should not pay for. The bridge (`persona-ollama persona ...`)
does import it, since it runs Persona's own command line in this process.

Persona 1.11's ``ProviderFactory.create`` (persona/core/providers/factory.py) looks the name up
in ``BUILTIN_PROVIDERS`` first, so a name it has built in means its built-in class even with
this plugin installed. docs/host-integration.md shows the upstream change: look the
``persona.providers`` entry point up first. The bridge applies exactly that change at run time,
only to a factory of the shape it recognises, and leaves a factory that already resolves entry
points alone. It also gives Persona's non-interactive progress display the ``error`` method that
its generate command calls (see :func:`report_errors_off_a_terminal`), so that the plugin's
message is printed when the output goes to a pipe.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

DISTRIBUTION = "persona"
FACTORY_FILE = ("core", "providers", "factory.py")
FACTORY_MODULE = "persona.core.providers.factory"
PROGRESS_MODULE = "persona.ui.streaming"
GROUP = "persona.providers"
INSTALL = 'pip install "git+https://github.com/REPPL/Persona.git"'
# This plugin's name in Persona's registry: the package's (persona_<name>), which its
# persona.providers entry point repeats (pyproject.toml; scripts/new_provider.py renames both).
PROVIDER = __name__.split(".")[0].partition("_")[2]

# What ``--provider`` PROVIDER resolves to.
PLUGIN = "plugin"  # the factory looks the entry point up first: this plugin
BUILT_IN = "built-in"  # the factory's built-in table first: Persona's own provider of the name
UNKNOWN = "unknown"  # a factory this module does not recognise
MISSING = "not installed"


@dataclass(frozen=True)
class HostInfo:
    """The host seen from this environment: is Persona there, which version, which provider."""

    installed: bool
    version: str | None
    resolution: str
    factory: str | None  # path of the factory's source file
    python: str  # the interpreter looked at: Persona must be installed beside the plugin

    @property
    def next_step(self) -> str:
        """What to do so that ``--provider`` PROVIDER generates through this plugin."""
        if self.resolution == PLUGIN:
            return f"Nothing: `persona generate --provider {PROVIDER}` uses this plugin."
        if self.resolution == BUILT_IN:
            return (
                "Run Persona through the bridge, which makes its factory use this plugin: "
                f"`persona-ollama persona generate --from data.csv --provider {PROVIDER} "
                "--model <model>`. Or apply the factory change of docs/host-integration.md."
            )
        if self.resolution == UNKNOWN:
            return (
                "Generate from Python with OllamaProvider (README), or apply the factory change "
                "of docs/host-integration.md."
            )
        return f"Install Persona beside the plugin (Python 3.12+): {INSTALL}"

    def describe(self) -> str:
        """One sentence for `doctor`."""
        if not self.installed:
            return f"not installed in this environment ({self.python})."
        version = f"Persona {self.version}"
        if self.resolution == PLUGIN:
            return f"{version}: `--provider {PROVIDER}` uses this plugin."
        if self.resolution == BUILT_IN:
            return (
                f"{version}: `--provider {PROVIDER}` uses Persona's built-in provider of that "
                "name, not this plugin (it sets no context window, so the server cuts long "
                "input to its default one, and it reads only Persona's own address variable)."
            )
        return f"{version}: its provider factory ({self.factory}) is not one this plugin knows."

    def as_dict(self) -> dict[str, Any]:
        """These facts as plain JSON-ready values (doctor's host section)."""
        return {
            "installed": self.installed,
            "version": self.version,
            f"provider_for_{PROVIDER}": self.resolution,
            "factory": self.factory,
            "python": self.python,
            "next_step": self.next_step,
        }


def detect_host() -> HostInfo:
    """Persona's version and factory, from metadata and source text, without importing it."""
    from importlib import metadata

    python = sys.executable
    try:
        version: str | None = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return HostInfo(False, None, MISSING, None, python)
    factory = factory_path()
    if factory is None:
        return HostInfo(True, version, UNKNOWN, None, python)
    try:
        source = factory.read_text(encoding="utf-8")
    except OSError:
        return HostInfo(True, version, UNKNOWN, str(factory), python)
    return HostInfo(True, version, classify_factory(source), str(factory), python)


def factory_path() -> Path | None:
    """Where persona/core/providers/factory.py is, found without importing ``persona``."""
    try:
        spec = importlib.util.find_spec(DISTRIBUTION)  # a top-level name: nothing is executed
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location).joinpath(*FACTORY_FILE)
        if candidate.is_file():
            return candidate
    return None


def classify_factory(source: str) -> str:
    """PLUGIN, BUILT_IN or UNKNOWN for the source of Persona's factory module.

    Reads ``ProviderFactory.create`` statement by statement: whichever comes first, an entry
    point lookup or the ``BUILTIN_PROVIDERS`` check, decides what a name that both know means.
    BUILT_IN also requires the signature the runtime patch wraps,
    ``create(cls, provider_name, api_key=None, **kwargs)`` as a classmethod.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return UNKNOWN
    create = _factory_create(tree)
    if create is None:
        return UNKNOWN
    for statement in create.body:
        if _is_docstring(statement):
            continue
        dumped = ast.dump(statement)
        if "entry_point" in dumped or repr(GROUP) in dumped:
            return PLUGIN
        if "BUILTIN_PROVIDERS" in dumped:
            return BUILT_IN if _patchable(create) else UNKNOWN
    return UNKNOWN


def _factory_create(tree: ast.Module) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "ProviderFactory":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "create":
                    return item
    return None


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def _patchable(create: ast.FunctionDef) -> bool:
    decorators = [d.id for d in create.decorator_list if isinstance(d, ast.Name)]
    positional = [a.arg for a in create.args.args]
    return (
        decorators == ["classmethod"]
        and positional[:3] == ["cls", "provider_name", "api_key"]
        and create.args.kwarg is not None
    )


# -- the bridge ---------------------------------------------------------------------------------


class BridgeError(Exception):
    """The bridge cannot run Persona with this plugin; the message says why and what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def provider_entry_points() -> dict[str, Any]:
    """Installed provider plugins by name (docs/host-integration.md's 3.9-compatible lookup)."""
    from importlib import metadata

    if sys.version_info >= (3, 10):
        found: Any = metadata.entry_points(group=GROUP)
    else:  # pragma: no cover - Persona needs Python 3.12; kept for the 3.9 type check
        found = metadata.entry_points().get(GROUP, [])
    return {entry_point.name: entry_point for entry_point in found}


def resolve_entry_points_first(factory_class: Any) -> None:
    """Make ``factory_class.create`` look the ``persona.providers`` entry point up before its
    built-in table: the change of docs/host-integration.md, applied to the class in memory."""
    original = factory_class.__dict__.get("create")
    if not isinstance(original, classmethod):
        raise BridgeError(
            "Persona's ProviderFactory.create is not a classmethod here.",
            hint=HostInfo(True, None, UNKNOWN, None, sys.executable).next_step,
        )
    wrapped: Callable[..., Any] = original.__func__

    def create(cls: Any, provider_name: str, api_key: str | None = None, **kwargs: Any) -> Any:
        entry_point = provider_entry_points().get(provider_name.lower())
        if entry_point is not None:
            return entry_point.load()(api_key=api_key, **kwargs)
        return wrapped(cls, provider_name, api_key, **kwargs)

    create.__doc__ = wrapped.__doc__
    create.__wrapped__ = wrapped  # type: ignore[attr-defined]
    factory_class.create = classmethod(create)  # type: ignore[arg-type]


def report_errors_off_a_terminal(progress_module: Any) -> bool:
    """Give Persona's non-interactive progress handler the ``error`` method its generate
    command calls; return whether one was added.

    Persona 1.11's ``persona generate`` reports a failed generation with
    ``progress_handler.error(str(exc))`` and exits 1. With output to a terminal the handler is
    ``StreamingOutput``, which prints ``Error: ...``; to a pipe it is ``SimpleProgress``, which
    has no ``error``, so the plugin's message and hint became an AttributeError. The method
    added prints what the interactive handler prints. A handler that has one is left alone."""
    handler = getattr(progress_module, "SimpleProgress", None)
    if not isinstance(handler, type) or hasattr(handler, "error"):
        return False

    def error(self: Any, message: str) -> None:
        console = getattr(self, "console", None)
        if console is None:
            print(f"Error: {message}", file=sys.stderr)
            return
        # Rich markup: a "[" of the message is text, not the start of a style tag.
        console.print("\n[red]Error:[/red] " + message.replace("[", "\\["))

    setattr(handler, "error", error)  # noqa: B010 - a class only known at run time
    return True


def _repair_progress(host: HostInfo) -> None:
    """Apply :func:`report_errors_off_a_terminal` when Persona has that module; a Persona
    without it (another layout) runs as it is."""
    try:
        module = importlib.import_module(PROGRESS_MODULE)
    except ImportError as error:
        if error.name is not None and PROGRESS_MODULE.startswith(error.name):
            return  # no such module in this Persona
        raise _not_importable(host, error) from None
    report_errors_off_a_terminal(module)


def console_script() -> Callable[[], Any]:
    """Persona's own ``persona`` command, as its distribution declares it."""
    from importlib import metadata

    for entry_point in metadata.distribution(DISTRIBUTION).entry_points:
        if entry_point.group == "console_scripts" and entry_point.name == "persona":
            return entry_point.load()  # type: ignore[no-any-return]
    raise BridgeError(
        "Persona declares no `persona` command.",
        hint=f"Reinstall Persona: {INSTALL}",
    )


def _not_importable(host: HostInfo, error: ImportError) -> BridgeError:
    """Persona is installed but does not import (a dependency missing, a Python it does not
    support): say which module, not a traceback."""
    return BridgeError(
        f"Persona {host.version} could not be imported in this environment ({host.python}): "
        f"{error}.",
        hint=f"Reinstall Persona beside the plugin (Python 3.12+): {INSTALL}",
    )


def run_persona(
    args: Sequence[str],
    host: HostInfo | None = None,
    *,
    before: Callable[[], None] | None = None,
) -> int:
    """Run Persona's command line with ``args`` in this process, its factory resolving
    provider plugins first; return its exit status. ``before`` is called once Persona's
    command is found, just before it runs (what follows is Persona's output)."""
    host = host or detect_host()
    if not host.installed:
        raise BridgeError(
            f"Persona is not installed in this environment ({host.python}).",
            hint=host.next_step,
        )
    if host.resolution == UNKNOWN:
        raise BridgeError(
            f"Persona {host.version}'s provider factory ({host.factory or 'not found'}) is not "
            f"one the bridge recognises, so it will not change it: `--provider {PROVIDER}` might "
            "not mean this plugin.",
            hint=host.next_step,
        )
    if host.resolution == BUILT_IN:
        try:
            module = importlib.import_module(FACTORY_MODULE)
        except ImportError as error:
            raise _not_importable(host, error) from None
        factory_class = getattr(module, "ProviderFactory", None)
        if factory_class is None:
            raise BridgeError(
                f"{FACTORY_MODULE} has no ProviderFactory.",
                hint=HostInfo(True, host.version, UNKNOWN, host.factory, host.python).next_step,
            )
        resolve_entry_points_first(factory_class)
    _repair_progress(host)
    try:
        command = console_script()
    except ImportError as error:
        raise _not_importable(host, error) from None
    if before is not None:
        before()
    saved = sys.argv
    sys.argv = ["persona", *args]  # click, typer and argparse commands all read sys.argv
    try:
        result = command()
    except SystemExit as stop:
        code = stop.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    finally:
        sys.argv = saved
    return result if isinstance(result, int) else 0
