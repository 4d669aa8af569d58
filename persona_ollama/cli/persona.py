"""`persona-ollama persona ARGS...`: run Persona's own command line with this plugin as its
`ollama` provider, without editing Persona (see persona_ollama/_host.py)."""

from __future__ import annotations

import click

from .app import echo, main


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def persona(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Run Persona's command line, its `--provider ollama` resolved to this plugin.

    Everything after `persona` goes to Persona unchanged (`persona-ollama persona --help` is
    Persona's help). Persona 1.11 maps `ollama` to its built-in provider; for this run, its
    provider factory looks installed plugins up first, the change docs/host-integration.md
    proposes upstream. A Persona that already does that runs unchanged; one whose factory is
    not recognised is refused.

    \b
    Examples:
      persona-ollama persona generate --from interviews.csv --provider ollama --model qwen2.5:7b
    """
    from .._host import BridgeError, run_persona

    try:
        status = run_persona(list(args))
    except BridgeError as error:
        if set(args) & {"-h", "--help"}:  # no Persona to ask: this command's own help
            echo(ctx.get_help())
            echo()
        echo(f"Error: {error.message}", err=True, fg="red", bold=True)
        echo(f"Hint: {error.hint}", err=True, fg="yellow")
        raise click.exceptions.Exit(1) from None
    raise click.exceptions.Exit(status)
