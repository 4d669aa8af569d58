"""The `persona-ollama` click group and what its commands share: options, output, errors.

The command modules (bench, doctor, models, persona, pull, run) import this module and register
themselves on ``main``; this module imports none of them, so the import graph stays acyclic.
``persona_ollama.cli`` imports the commands and re-exports ``main``, the console script.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import __version__
from ..errors import MAX_SERVER_TEXT, OllamaError, shortened
from ..settings import API_KEY_VAR, API_VAR, APIS, DEFAULT_API, FORCE_COLOR_VAR, NO_COLOR_VAR
from ..terminal import printable

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
  persona-ollama bench                  measure the default model on this machine
  persona-ollama persona generate ...   run Persona with this plugin
"""


def use_color() -> bool | None:
    """Whether to print colours: never with NO_COLOR set (https://no-color.org), always with
    FORCE_COLOR set (https://force-color.org: a pipe into `less -R`, a CI log), never on a
    TERM=dumb terminal (it shows the escape sequences as text); else only on a terminal
    (None: click decides)."""
    if os.environ.get(NO_COLOR_VAR):
        return False
    if os.environ.get(FORCE_COLOR_VAR):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return None


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
    key = (os.environ.get(API_KEY_VAR) or "").strip()
    if len(key) >= 4:
        text = text.replace(key, "[redacted]")
    if headers:
        text = _SECRETS[0].sub(lambda m: m.group(1) + "[redacted]", text)
        text = _SECRETS[1].sub(lambda m: m.group(1) + " [redacted]", text)
    return _SECRETS[2].sub(lambda m: m.group(1) + "[redacted]@", text)


def echo(text: str = "", *, err: bool = False, nl: bool = True, **style: Any) -> None:
    """Print ``text`` with its control characters made visible (a server's text cannot drive
    the terminal), styled with click's ``style`` keywords unless NO_COLOR is set."""
    text = printable(text)
    if style:
        text = click.style(text, **style)
    click.echo(text, err=err, nl=nl, color=use_color())


EXIT_ERROR = 1
EXIT_USAGE = 2  # click's own status for a usage error
EXIT_INTERRUPTED = 130


def report_error(ctx: click.Context, message: str, hint: str | None, exit_code: int) -> None:
    """Tell the user what went wrong and exit: ``Error:``/``Hint:`` lines on standard error, or,
    when the command was given --json, one JSON object on standard output, so that a script
    reading it (``| jq``) sees the failure and not an empty success."""
    if ctx.meta.get("persona_ollama.json"):
        click.echo(json.dumps({"error": message, "hint": hint, "exit_code": exit_code}, indent=2))
    else:
        echo(f"Error: {message}", err=True, fg="red", bold=True)
        if hint:
            echo(f"Hint: {hint}", err=True, fg="yellow")
    ctx.exit(exit_code)


def _wants_json(args: list[str]) -> bool:
    """--json among the options (an argument after ``--`` is not one)."""
    options = args[: args.index("--")] if "--" in args else args
    return "--json" in options


class _Group(click.Group):
    """Turns every error into a message and a hint instead of a traceback: the plugin's own,
    and (redacted: no key, no password) any other; --debug shows the traceback instead."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Click's parsing, except that a usage error of the group itself becomes the JSON
        error object when --json is among the arguments."""
        # Read before click parses anything: a usage error is raised before --json is.
        ctx.meta["persona_ollama.json"] = _wants_json(list(args))
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            # A usage error of the group itself (`persona-ollama --json doctor`) is raised
            # here, before invoke(): it too is JSON when --json was asked for.
            if not ctx.meta["persona_ollama.json"]:
                raise
            hint = f"See `{ctx.command_path} --help`."
            report_error(ctx, error.format_message(), hint, EXIT_USAGE)
            raise  # not reached: report_error exits

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command and turn what it raises into a message and hint (see
        :func:`report_error`): exit 1 for an error, 2 for a usage error, 130 when interrupted.
        With --debug, the plugin's errors and unexpected ones propagate with their traceback."""
        try:
            return super().invoke(ctx)
        except OllamaError as error:
            if ctx.meta.get("persona_ollama.debug"):
                raise
            # The plugin's own messages hold no secret by design; the server's text might.
            hint = redact(error.hint, headers=False) if error.hint else None
            report_error(ctx, redact(error.message, headers=False), hint, EXIT_ERROR)
        except click.UsageError as error:
            if not ctx.meta.get("persona_ollama.json"):
                raise  # click prints the usage and the message, and exits 2
            hint = None
            if error.ctx is not None:
                hint = f"See `{error.ctx.command_path} --help`."
            report_error(ctx, error.format_message(), hint, EXIT_USAGE)
        except KeyboardInterrupt:
            if ctx.meta.get("persona_ollama.json"):
                report_error(ctx, "Interrupted.", None, EXIT_INTERRUPTED)
            echo("\nInterrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`| head -1`): nothing to report to it. Click's main exits
            # 1 quietly, as it does for --help.
            raise
        except Exception as error:
            if ctx.meta.get("persona_ollama.debug"):
                raise
            text = shortened(redact(str(error)), MAX_SERVER_TEXT)
            report_error(
                ctx,
                f"unexpected {type(error).__name__}: {text}",
                "This is a bug or an unusual set-up: run the command again with --debug for the "
                "traceback, and report it.",
                EXIT_ERROR,
            )


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


def _set_api(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta["persona_ollama.api"] = value
    return value


def _api_of(ctx: click.Context) -> str:
    """The API of this command line: --api (eager, so read before --host wherever it is
    written), else PERSONA_OLLAMA_API, else the default; an unknown value in the environment
    is the provider's to report, so the default's rules read --host meanwhile."""
    api = ctx.meta.get("persona_ollama.api") or os.environ.get(API_VAR, "").strip().lower()
    return api if api in APIS else DEFAULT_API  # any case, as settings.check_api reads it


def _check_host(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A malformed --host is a bad option value (exit 2, click's "Invalid value for '--host'"),
    worded for the option the user typed, not the Python API's ``base_url=``, by the address
    rules of the backend of the selected API (the provider reads it by the same rules)."""
    if value is None or not value.strip():
        return value  # blank counts as unset, as for the address variables
    from ..backends.registry import declared
    from ..endpoint import parse_host

    try:
        parse_host(value, source="--host", rules=declared(_api_of(ctx)).address)
    except OllamaError as error:
        raise click.BadParameter(error.message) from None
    return value


def common_options(func: F) -> F:
    """--host, --api and --debug, accepted by every command."""
    func = click.option(
        "--api",
        type=click.Choice(APIS),
        metavar="API",
        expose_value=False,
        is_eager=True,  # before --host, which is read by the selected API's rules
        callback=_set_api,
        help="native (Ollama's /api) or openai (a /v1 server: vLLM, llama.cpp, LM Studio, "
        "LiteLLM) (default: PERSONA_OLLAMA_API, then native).",
    )(func)
    func = click.option(
        "--host",
        metavar="URL",
        callback=_check_host,
        help="Ollama server, e.g. 127.0.0.1:11434 or https://gpu-box/ollama "
        "(default: OLLAMA_BASE_URL, then OLLAMA_HOST, then http://127.0.0.1:11434).",
    )(func)
    return debug_option(func)


def json_option(func: F) -> F:
    """--json, passed to the command as ``as_json``: print machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def make_provider(host: str | None, model: str | None = None) -> OllamaProvider:
    """The provider a command talks through: ``host`` and ``model`` as given (None: the
    environment, then the defaults) and the --api of the current command line, if any.
    Imported lazily so that ``--help`` loads no HTTP library."""
    from ..provider import OllamaProvider

    context = click.get_current_context(silent=True)
    api = context.meta.get("persona_ollama.api") if context is not None else None
    provider = OllamaProvider(base_url=host, model=model, api=api)
    if context is not None:
        # Closed when the command ends: its connections, and the measured speeds it holds
        # in memory written (timings.py).
        context.call_on_close(provider.close)
    return provider


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on standard output; values JSON cannot hold become
    their ``str()``."""
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
