"""`persona-ollama pull MODEL`: download a model with a progress bar per layer."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from ..names import check_name
from ..terminal import printable
from .app import common_options, echo, human_bytes, main, make_provider, use_color

if TYPE_CHECKING:
    from ..backends.base import PullProgress

BAR_WIDTH = 24
MIN_BAR_WIDTH = 8  # narrower than this, a bar shows nothing the percentage does not
REDRAW_EVERY = 0.1  # seconds: the server reports every 60 ms; the terminal needs less


class Progress:
    """Renders pull status lines: one redrawn bar per layer on a terminal, plain lines otherwise."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.layer: str | None = None
        self.started = 0.0
        self.first_completed = 0
        self.drawn_at = 0.0
        self.last_status: str | None = None

    def update(self, progress: PullProgress) -> None:
        """Show one status of the pull stream: a layer download with a size advances its bar;
        any other status is printed when it differs from the one before (the server repeats a
        status while it waits)."""
        status = progress.status
        total, completed = progress.total, progress.completed or 0
        if total and status.startswith("pulling "):
            self._bar(status, total, completed)
            return
        self._finish_bar()
        if status != self.last_status:
            echo(status)
            self.last_status = status

    def _bar(self, status: str, total: int, completed: int) -> None:
        now = time.monotonic()
        if status != self.layer:
            self._finish_bar()
            self.layer, self.started, self.first_completed = status, now, completed
            if not self.interactive:
                echo(f"{status} ({human_bytes(total)})")
        if not self.interactive:
            return
        if now - self.drawn_at < REDRAW_EVERY and completed < total:
            return
        self.drawn_at = now
        elapsed = max(now - self.started, 1e-6)
        rate = (completed - self.first_completed) / elapsed
        eta = (total - completed) / rate if rate > 0 else None
        eta_text = f"ETA {int(eta // 60)}:{int(eta % 60):02d}" if eta is not None else "ETA --:--"
        line = fit_bar(
            printable(status),
            min(completed, total),
            total,
            f"{human_bytes(completed)}/{human_bytes(total)} {human_bytes(rate)}/s {eta_text}",
            terminal_width(),
        )
        # The carriage return that redraws the bar is ours; only the server's text (the
        # status) is escaped. echo() would escape the \r too, growing one endless line.
        click.echo("\r" + line, nl=False, color=use_color())

    def _finish_bar(self) -> None:
        if self.layer is not None and self.interactive:
            echo("")
        self.layer = None


def terminal_width() -> int:
    """Columns the bar may fill: the terminal's width (COLUMNS, else the window size) less
    the last column, where some terminals wrap at once."""
    return max(shutil.get_terminal_size().columns - 1, 1)


def fit_bar(status: str, completed: int, total: int, details: str, width: int) -> str:
    """One bar line exactly ``width`` columns wide (spaces clear a longer line before it).

    A line wider than the terminal wraps, and the carriage return of the next redraw goes back
    to the start of its last row only, so each update would leave a row behind. What gives
    way, in order: the bar narrows to MIN_BAR_WIDTH, the sizes and ETA go, the bar goes, and
    last the status is cut; the percentage stays."""
    percent = f"{completed * 100 // total:3d}%"
    for bar_width in range(BAR_WIDTH, MIN_BAR_WIDTH - 1, -1):
        filled = bar_width * completed // total
        bar = f"[{'#' * filled}{'-' * (bar_width - filled)}]"
        line = f"{status} {percent} {bar} {details}"
        if len(line) <= width:
            return line.ljust(width)
    for line in (f"{status} {percent} {bar}", f"{status} {percent}"):
        if len(line) <= width:
            return line.ljust(width)
    keep = max(width - len(percent) - 1, 0)
    return (status[:keep] + " " + percent)[-width:].ljust(width)


@main.command()
@click.argument("model")
@common_options
def pull(model: str, host: str | None) -> None:
    """Download MODEL from the Ollama library, showing progress per layer.

    \b
    Examples:
      persona-ollama pull llama3.2:3b
      persona-ollama pull qwen2.5:7b --host gpu-box:11434

    Ctrl-C stops cleanly; run the same command again to resume.
    """
    name = check_name(model)
    provider = make_provider(host)
    progress = Progress(interactive=sys.stdout.isatty())
    stream = provider.backend.pull(name)
    try:
        for line in stream:
            progress.update(line)
    except KeyboardInterrupt:
        stream.close()
        progress._finish_bar()
        echo(f"Pull of {name} interrupted; run the same command to resume.", err=True)
        raise click.exceptions.Exit(130) from None
    progress._finish_bar()
    if _can_chat(provider, name):
        echo(f'{name} is ready: persona-ollama run --model {name} "Say hello"', fg="green")
    else:
        echo(
            f"{name} is ready. It is an embedding model: it cannot write personas; "
            "`persona-ollama recommend` suggests a chat model.",
            fg="yellow",
        )


def _can_chat(provider: Any, name: str) -> bool:
    """Whether the pulled model can write text (an embedding model cannot); True if unknown."""
    from ..errors import OllamaError

    try:
        return bool(provider.model_info(name).can_chat)
    except OllamaError:
        return True  # the pull succeeded; the suggestion is only a suggestion
