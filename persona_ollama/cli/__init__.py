"""The `persona-ollama` command: check the set-up, list and pull models, try a prompt.

Every command takes --host (else OLLAMA_BASE_URL / OLLAMA_HOST); those that print data take
--json for scripts. Errors become a message with its hint and exit code 1; --debug shows the
traceback instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from ..errors import OllamaError
from ..reader import printable

if TYPE_CHECKING:
    from ..provider import OllamaProvider

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = """
\b
Examples:
  persona-ollama doctor                 is everything ready to generate?
  persona-ollama models --all           installed models, and what else fits
  persona-ollama recommend              the best models for this machine
  persona-ollama pull llama3.2:3b       download a model with a progress bar
  persona-ollama run "Say hello"        try a prompt with the default model
"""


def use_color() -> bool | None:
    """False when NO_COLOR is set (https://no-color.org); else let click decide (tty or not)."""
    return False if os.environ.get("NO_COLOR") else None


# What may be secret in the text of an unexpected exception: header values, URL passwords,
# and the configured key itself.
_SECRETS = (
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer\s+|basic\s+)?[^'\",}\s]+"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(://[^/@\s:]*:)[^/@\s]*@"),
)


def redact(text: str, *, headers: bool = True) -> str:
    """``text`` without credentials: the API key, URL passwords and (``headers``, for the
    text of an unexpected exception) Authorization values."""
    key = (os.environ.get("PERSONA_OLLAMA_API_KEY") or "").strip()
    if len(key) >= 4:
        text = text.replace(key, "[redacted]")
    if headers:
        text = _SECRETS[0].sub(lambda m: m.group(1) + "[redacted]", text)
        text = _SECRETS[1].sub(lambda m: m.group(1) + " [redacted]", text)
    return _SECRETS[2].sub(lambda m: m.group(1) + "[redacted]@", text)


def echo(text: str = "", *, err: bool = False, nl: bool = True, **style: Any) -> None:
    text = printable(text)
    if style:
        text = click.style(text, **style)
    click.echo(text, err=err, nl=nl, color=use_color())


class _Group(click.Group):
    """Turns every error into a message and a hint instead of a traceback: the plugin's own,
    and (redacted: no key, no password) any other; --debug shows the traceback instead."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OllamaError as error:
            if ctx.meta.get("persona_ollama.debug"):
                raise
            # The plugin's own messages hold no secret by design; the server's text might.
            echo(f"Error: {redact(error.message, headers=False)}", err=True, fg="red", bold=True)
            if error.hint:
                echo(f"Hint: {redact(error.hint, headers=False)}", err=True, fg="yellow")
            ctx.exit(1)
        except KeyboardInterrupt:
            echo("\nInterrupted.", err=True)
            ctx.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            if ctx.meta.get("persona_ollama.debug"):
                raise
            text = redact(str(error))[:500]
            echo(f"Error: unexpected {type(error).__name__}: {text}", err=True, fg="red", bold=True)
            echo(
                "Hint: this is a bug or an unusual set-up; run the command again with --debug "
                "for the traceback, and report it.",
                err=True,
                fg="yellow",
            )
            ctx.exit(1)


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta["persona_ollama.debug"] = True
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    return value


def debug_option(func: F) -> F:
    """--debug, accepted before or after the command name."""
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show tracebacks and HTTP details.",
    )(func)


def common_options(func: F) -> F:
    """--host and --debug, accepted by every command."""
    func = click.option(
        "--host",
        metavar="URL",
        help="Ollama server, e.g. 127.0.0.1:11434 or https://gpu-box/ollama "
        "(default: OLLAMA_BASE_URL, then OLLAMA_HOST, then http://127.0.0.1:11434).",
    )(func)
    return debug_option(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def make_provider(host: str | None, model: str | None = None) -> OllamaProvider:
    from ..provider import OllamaProvider

    return OllamaProvider(base_url=host, model=model)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def human_bytes(value: float | None) -> str:
    """Binary units (GiB), matching the memory figures of the probe and the catalogue."""
    if value is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@click.group(cls=_Group, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="persona-ollama")
@debug_option
def main() -> None:
    """Generate Persona user personas with local models served by Ollama.

    Research data stays on this machine. Start with `persona-ollama doctor`.
    """


# The commands live in their own modules and register themselves on `main`.
from . import doctor as doctor  # noqa: E402
from . import models as models  # noqa: E402
from . import pull as pull  # noqa: E402
from . import run as run  # noqa: E402
