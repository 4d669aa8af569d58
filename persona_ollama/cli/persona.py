"""`persona-ollama persona ARGS...`: run Persona's own command line with this plugin as its
`ollama` provider, without editing Persona (see persona_ollama/_host.py)."""

from __future__ import annotations

import click

from .app import echo, main

HELP_OPTIONS = ("-h", "--help")  # the other commands' help options (app.py)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def persona(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run Persona's command line, its `--provider ollama` resolved to this plugin.

    Everything after `persona` goes to Persona unchanged. Persona 1.11 maps `ollama` to its
    built-in provider; for this run, its provider factory looks installed plugins up first,
    the change docs/host-integration.md proposes upstream, and a failed generation prints
    this plugin's message and hint also when the output is not a terminal. A Persona that
    already looks plugins up first runs unchanged; one whose factory is not recognised is
    refused. `persona-ollama persona --help` (or -h) shows this text, then Persona's help.

    \b
    Examples:
      persona-ollama persona generate --from interviews.csv --provider ollama --model qwen2.5:7b
      persona-ollama persona generate --help
    """
    from .._host import BridgeError, run_persona

    arguments = list(args)
    asks_help = bool(arguments) and arguments[0] in HELP_OPTIONS
    if asks_help:
        # Only in first place: deeper down, -h is Persona's (`persona serve -h` is --host).
        arguments[0] = "--help"
        echo(ctx.get_help())

    def announce() -> None:  # once Persona is known to run: its help does follow
        echo()
        echo("Persona's own help follows.", bold=True)
        echo()

    try:
        status = run_persona(arguments, before=announce if asks_help else None)
    except BridgeError as error:
        echo(f"Error: {error.message}", err=True, fg="red", bold=True)
        echo(f"Hint: {error.hint}", err=True, fg="yellow")
        raise click.exceptions.Exit(1) from None
    raise click.exceptions.Exit(status)
