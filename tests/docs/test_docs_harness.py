"""The docs test's own rules: how blocks are read and how shown output is compared."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_harness import (
    console_steps,
    mismatch,
    normalise,
    read_blocks,
    template_steps,
)

OUTPUT = [
    "Server     http://127.0.0.1:11434  reachable (Ollama 0.33.0, 1.8 ms)",
    "Models  2",
    "Ready",
]


@pytest.mark.parametrize(
    "shown",
    [
        OUTPUT,
        [
            "Server     http://127.0.0.1:11434  reachable (Ollama <version>, <latency> ms)",
            "...",
            "Ready",
        ],
        ["...", "Ready"],
        ["Server     <anything>", "..."],
        ["...", "Models  2", "..."],
        ["", *OUTPUT, ""],
    ],
)
def test_shown_output_matches_when_every_line_matches_in_order(shown):
    assert mismatch(shown, OUTPUT) is None


@pytest.mark.parametrize(
    "shown",
    [
        ["Models  2", "Ready"],  # the output starts earlier: a leading ... is needed
        ["Server     <anything>", "Models  2"],  # and ends later
        ["...", "Ready", "Models  2"],  # out of order
        ["...", "Models  3", "..."],
        ["Server     <anything>", "Ready"],  # a line in between, without ...
    ],
)
def test_shown_output_does_not_match_when_lines_differ_or_are_missing(shown):
    assert mismatch(shown, OUTPUT) is not None


def test_normalise_shows_every_loopback_port_as_11434_and_drops_colour():
    text = "\x1b[32mServer http://127.0.0.1:40123  ok\x1b[0m  \n\n"

    assert normalise(text) == ["Server http://127.0.0.1:11434  ok"]


def test_blocks_carry_their_options_and_a_text_block_after_python_is_its_output(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "Intro.\n\n<!-- docs-test: models=none server=down -->\n```console\n$ persona-ollama"
        " doctor  # check\nError: ...\n```\n\n```python\nprint(1)\n```\n\nPrints:\n\n"
        "```text\n1\n```\n\n  ```py\n  indented()\n  ```\n",
        encoding="utf-8",
    )

    console, python, text, indented = read_blocks(page, repo=tmp_path)

    assert console.options == {"models": "none", "server": "down"}
    (step,) = console_steps(console)
    assert (step.command, step.shown) == ("persona-ollama doctor", ["Error: ..."])
    assert python.output is text
    assert (indented.lang, indented.text) == ("py", "indented()\n")


def test_a_console_block_without_a_command_is_refused(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("```console\npersona-ollama doctor\n```\n", encoding="utf-8")

    (block,) = read_blocks(page, repo=tmp_path)

    with pytest.raises(ValueError, match="before the first"):
        console_steps(block)


def test_the_provider_guide_has_the_template_steps_in_order() -> None:
    actions = [block.options["template"] for block in template_steps()]

    assert actions[0] == "generate"
    assert actions[1:] and set(actions[1:]) == {"run"}
