"""Read the code blocks of the Markdown docs, and compare the output they show with real output.

Pure functions (no server, no CLI): test_docs.py runs the blocks. The conventions are written
down for doc authors in docs/README.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
OPTIONS = re.compile(r"^\s*<!--\s*docs-test:(?P<options>.*?)-->\s*$")
# <port>, <the model's answer>: a placeholder in shown output matches any text on that line.
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>]*>")
ELLIPSIS = "..."
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOOPBACK_PORT = re.compile(r"\b127\.0\.0\.1:\d+")
SHOWN_ADDRESS = "127.0.0.1:11434"  # the docs always show Ollama's default address
TRAILING_COMMENT = re.compile(r"\s+#\s.*$")


@dataclass
class Block:
    """One fenced code block of a Markdown file."""

    path: str  # relative to the repository, with forward slashes
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    options: dict[str, str] = field(default_factory=dict)
    output: Block | None = None  # a ```text block showing what a ```python block prints

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}:{self.lang or 'plain'}"

    @property
    def first_line(self) -> str:
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")


def doc_files(repo: Path = REPO) -> list[Path]:
    """Every page the docs test covers: README.md and docs/**/*.md."""
    return [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]


def read_blocks(path: Path, repo: Path = REPO) -> list[Block]:
    """The fenced blocks of one file; a ```text block right after a ```python block (prose in
    between is fine, another block is not) becomes that block's ``output``."""
    relative = path.relative_to(repo).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        if end == len(lines):
            raise ValueError(f"{relative}:{index + 1}: the code block is never closed")
        info = opening["info"].strip()
        blocks.append(
            Block(
                path=relative,
                line=index + 1,
                lang=info.split()[0] if info else "",
                text="\n".join(body) + "\n",
                options=_options_before(lines, index),
            )
        )
        index = end + 1
    return _pair_outputs(blocks)


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _options_before(lines: Sequence[str], index: int) -> dict[str, str]:
    """``<!-- docs-test: key=value ... -->`` on the last non-blank line before a fence."""
    before = index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    found = OPTIONS.match(lines[before]) if before >= 0 else None
    if found is None:
        return {}
    options = {}
    for word in found["options"].split():
        key, equals, value = word.partition("=")
        if not equals:
            raise ValueError(f"docs-test option {word!r} is not key=value")
        options[key] = value
    return options


def _pair_outputs(blocks: list[Block]) -> list[Block]:
    for previous, block in zip(blocks, blocks[1:]):
        if block.lang == "text" and previous.lang == "python":
            previous.output = block
    return blocks


def is_output(block: Block, blocks: Iterable[Block]) -> bool:
    return any(other.output is block for other in blocks)


# -- console blocks --------------------------------------------------------------------------


@dataclass
class Step:
    """One ``$ command`` of a console block and the output shown under it."""

    command: str
    shown: list[str]


def console_steps(block: Block) -> list[Step]:
    steps: list[Step] = []
    for number, line in enumerate(block.text.splitlines(), block.line + 1):
        if line.startswith("$ "):
            # A trailing "  # comment" explains the command to the reader; it is not run.
            steps.append(Step(TRAILING_COMMENT.sub("", line[2:]).strip(), []))
        elif steps:
            steps[-1].shown.append(line)
        elif line.strip():
            raise ValueError(f"{block.path}:{number}: output before the first `$ ` command")
    if not steps:
        raise ValueError(f"{block.id}: a console block needs at least one `$ ` command")
    return steps


# -- comparing output ------------------------------------------------------------------------


def normalise(text: str, replacements: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Output lines as the docs show them: no colour, no trailing spaces, no blank lines at
    either end, loopback ports shown as 11434."""
    for old, new in replacements:
        text = text.replace(old, new)
    text = LOOPBACK_PORT.sub(SHOWN_ADDRESS, ANSI.sub("", text))
    lines = [line.rstrip() for line in text.splitlines()]
    return _trim(lines)


def _trim(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _pattern(shown: str) -> re.Pattern[str]:
    parts = PLACEHOLDER.split(shown.rstrip())
    return re.compile(".*".join(re.escape(part) for part in parts))


def mismatch(shown: Sequence[str], actual: Sequence[str]) -> str | None:
    """None when ``actual`` has the lines ``shown``; else what went wrong, for the failure.

    Shown lines match whole actual lines; ``<placeholder>`` stands for any text; a line
    ``...`` stands for any number of lines. Without ``...`` at the start or the end, the
    output must start or end there.
    """
    shown = _trim([line.rstrip() for line in shown])
    segments: list[list[str]] = [[]]
    for line in shown:
        if line.strip() == ELLIPSIS:
            segments.append([])
        else:
            segments[-1].append(line)
    anchored_start = not shown or shown[0].strip() != ELLIPSIS
    anchored_end = not shown or shown[-1].strip() != ELLIPSIS
    position = 0
    for number, segment in enumerate(segments):
        if not segment:
            continue
        first, last = number == 0, number == len(segments) - 1
        if last and anchored_end:
            candidates: Iterable[int] = [len(actual) - len(segment)]
        elif first and anchored_start:
            candidates = [0]
        else:
            candidates = range(position, len(actual) - len(segment) + 1)
        found = next(
            (at for at in candidates if at >= position and _matches(segment, actual, at)), None
        )
        if found is None or (first and anchored_start and found != 0):
            return _explain(segment, actual, position)
        position = found + len(segment)
    return None


def _matches(segment: Sequence[str], actual: Sequence[str], at: int) -> bool:
    if at < 0 or at + len(segment) > len(actual):
        return False
    return all(_pattern(line).fullmatch(actual[at + i]) for i, line in enumerate(segment))


def _explain(segment: Sequence[str], actual: Sequence[str], position: int) -> str:
    return (
        "the docs show:\n    "
        + "\n    ".join(segment)
        + f"\nbut the real output (from line {position + 1} on) is:\n    "
        + "\n    ".join(actual[position:] or ["(nothing)"])
    )


# -- template steps (docs/writing-a-provider.md) ----------------------------------------------

TEMPLATE_GUIDE = "docs/writing-a-provider.md"
TEMPLATE_ACTIONS = ("generate", "run")


def template_steps(repo: Path = REPO) -> list[Block]:
    """The blocks of the provider guide marked ``<!-- docs-test: template=ACTION ... -->``, in
    order: what tests/contract/test_template.py applies (``generate`` runs the generator
    here, ``run`` each command in the new project)."""
    steps = [b for b in read_blocks(repo / TEMPLATE_GUIDE, repo) if "template" in b.options]
    for block in steps:
        action = block.options["template"]
        if action not in TEMPLATE_ACTIONS:
            raise ValueError(f"{block.id}: template={action} is not one of {TEMPLATE_ACTIONS}")
    return steps
