"""`persona-ollama run PROMPT`: generate with the default or a chosen model, streaming."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from ..errors import OllamaError
from ..terminal import printable
from .app import common_options, echo, json_option, main, make_provider, print_json


@main.command()
@click.argument("prompt", required=False)
@click.option("-m", "--model", help="Model to use (default: PERSONA_OLLAMA_MODEL or the best fit).")
@click.option("-s", "--system", help="System prompt.")
@click.option("--json-format", is_flag=True, help="Ask the model for a JSON answer.")
@click.option("--think/--no-think", default=None, help="Switch a thinking model's reasoning.")
@click.option("-t", "--temperature", type=float, default=0.7, show_default=True)
@click.option("--max-tokens", type=click.IntRange(min=1), default=4096, show_default=True)
@json_option
@common_options
def run(
    prompt: str | None,
    model: str | None,
    system: str | None,
    json_format: bool,
    think: bool | None,
    temperature: float,
    max_tokens: int,
    as_json: bool,
    host: str | None,
) -> None:
    """Generate an answer to PROMPT (or to standard input) and stream it.

    \b
    Examples:
      persona-ollama run "Describe a typical UX researcher in one sentence"
      cat interviews.csv | persona-ollama run --system "Summarise the themes" --model qwen2.5:7b
      persona-ollama run --json-format "List three goals as JSON" --json
    """
    if prompt is None:
        if sys.stdin.isatty():
            raise click.UsageError("Give a PROMPT argument or pipe text on standard input.")
        prompt = sys.stdin.read()
    if not prompt.strip():
        raise click.UsageError("The prompt is empty.")
    provider = make_provider(host, model)
    chosen = provider.default_model
    chat = provider.stream(
        prompt,
        chosen,
        max_tokens,
        temperature,
        system=system,
        format="json" if json_format else None,
        think=think,
    )
    printed = False
    line = _AnswerLine()
    package_log = logging.getLogger("persona_ollama")
    package_log.addHandler(line)
    try:
        for piece in chat:
            if not as_json:
                text = printable(piece)
                click.echo(text, nl=False)
                sys.stdout.flush()
                printed = True
                if text:
                    line.open = not text.endswith("\n")
    except OllamaError:
        if printed:
            click.echo()  # the error message starts on a line of its own
            # What was printed stays on the screen, whatever the error's hint says of the
            # Python API, which discards a partial answer.
            echo("The answer above broke off: it is incomplete.", err=True, fg="yellow")
        raise
    finally:
        package_log.removeHandler(line)
    response = chat.response
    assert response is not None
    raw = response.raw_response
    if as_json:
        print_json(
            {
                "model": response.model,
                "content": response.content,
                # null where the server sent no count (raw_response says so): never a false 0.
                **{
                    key: None if raw.get(key, 0) is None else getattr(response, key)
                    for key in ("input_tokens", "output_tokens")
                },
                "finish_reason": response.finish_reason,
                "raw_response": response.raw_response,
            }
        )
        return
    if line.open or not line.ended:
        click.echo()
    rate = raw.get("tokens_per_second")
    counts = [
        "?" if raw.get(key, 0) is None else str(getattr(response, key))
        for key in ("input_tokens", "output_tokens")
    ]  # "?": the server sent no count (a /v1 server without usage)
    summary = (
        f"{response.model}: {counts[0]} tokens in, {counts[1]} out"
        + (f", {rate:.1f} tokens/s" if rate else "")
        + (f", load {load:.1f} s" if (load := raw.get("load_seconds")) is not None else "")
        + f", {_total_seconds(raw):.1f} s total"
    )
    if response.finish_reason == "length":
        summary += " (stopped at the token limit: raise --max-tokens)"
    echo(summary, err=True, dim=True)


class _AnswerLine(logging.Handler):
    """While the answer streams: a warning logged meanwhile (the offload warning comes with
    the last chunk) starts on a line of its own, not glued to the answer's last word."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.open = False  # the answer's last line has no newline yet
        self.ended = False  # a warning ended that line

    def emit(self, record: logging.LogRecord) -> None:
        if self.open:
            click.echo()
            sys.stdout.flush()
            self.open, self.ended = False, True
        # This handler stops Python's last-resort one (which prints warnings to stderr when
        # nothing is configured) from running: do its job where no other handler would.
        if not self._others(record.name) and logging.lastResort is not None:
            logging.lastResort.handle(record)

    def _others(self, name: str) -> bool:
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            if any(handler is not self for handler in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False


def _total_seconds(raw: dict[str, Any]) -> float:
    """The total beside the load time, from the same clock: the server's ``total_duration``
    (nanoseconds: load + prompt + answer) where it sends one, else the time measured here (a
    /v1 server states no timings). Mixing the two could print a load longer than the total
    (a double reports times it never spent)."""
    total = raw.get("total_duration")
    if isinstance(total, (int, float)) and not isinstance(total, bool) and total > 0:
        return float(total) / 1e9
    wall = raw.get("wall_seconds")
    return float(wall) if isinstance(wall, (int, float)) else 0.0
