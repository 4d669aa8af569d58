"""`persona-ollama bench [MODEL...]`: measure installed models on this machine with a persona job.

Each model gets the same standard persona prompt (the bundled sample interview notes, three
personas asked for as JSON) N times. From the server's own timings it reports prompt and answer
tokens/s and the time of the reference job (``choosing.speed.REFERENCE_JOB``, the same job the
speed model's estimates are quoted for); from the answers, how
many were valid JSON and what share of the quoted phrases appear word for word in the notes.
The speeds are recorded like every generation's (timings.py), so that `models`, `doctor` and
the first-byte wait use them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import click

from ..errors import OllamaError
from .app import common_options, echo, json_option, main, make_provider, print_json

if TYPE_CHECKING:
    from .._persona import LLMResponse
    from ..provider import OllamaProvider

SAMPLE = "interviews.csv"  # examples/interviews.csv, packaged (tests hold the two equal)
# Persona's own default answer limit: room for three personas (speed.REFERENCE_JOB counts
# 1,200 tokens each) and a thinking model's reasoning.
MAX_TOKENS = 4096
# Persona's own default sampling temperature (generate()'s default).
TEMPERATURE = 0.7
INSTRUCTIONS = """\
You are a UX researcher. From the interview notes below (CSV, one participant per row), write
3 user personas. Answer with JSON only, in this shape:
{"personas": [{"name": "...", "role": "...", "goals": ["..."], "pain_points": ["..."],
"behaviours": ["..."], "quotes": ["..."]}]}
Each persona's "quotes" are 2 to 4 phrases copied word for word from the notes.

Interview notes:
"""
# Double quotes, straight or curly, around 8 to 300 characters: a phrase presented as a quote.
_QUOTED = re.compile(r"[\"\u201c]([^\"\u201c\u201d]{8,300})[\"\u201d]")
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_REASONING = re.compile(r"^\s*<reasoning>.*?</reasoning>", re.DOTALL)


def sample_notes() -> str:
    """The bundled interview notes (the same file as examples/interviews.csv)."""
    return (resources.files(__package__) / "data" / SAMPLE).read_text(encoding="utf-8")


def bench_prompt(notes: str, run: int) -> str:
    """The standard persona prompt; ``run`` goes first, so that no run reuses the previous
    run's cached prompt and every run's prompt speed is measured in full."""
    return f"Run {run}.\n{INSTRUCTIONS}{notes}"


def parse_personas(content: str) -> Any:
    """The answer as JSON the way Persona reads it (an optional <reasoning> block and code
    fences removed); ValueError when it is not JSON."""
    text = _REASONING.sub("", content).strip()
    text = _FENCE.sub("", text).strip()
    return json.loads(text)


def quoted_phrases(content: str, parsed: Any) -> list[str]:
    """The phrases the answer presents as quotes: every string in a "quotes" list of the
    JSON, or (for an answer that is not JSON) every phrase in double quotes."""
    if parsed is None:
        return [match.group(1) for match in _QUOTED.finditer(content)]
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "quotes" and isinstance(item, list):
                    found.extend(q for q in item if isinstance(q, str) and q.strip())
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(parsed)
    return found


def _normal(text: str) -> str:
    """Case, whitespace, curly quotes and the CSV's doubled quotes made alike."""
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace('""', '"')
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    return " ".join(text.lower().split())


def verbatim(phrase: str, notes: str) -> bool:
    """Whether ``phrase`` (outer quotes and ellipses trimmed) appears word for word in
    ``notes``, ignoring case and whitespace."""
    core = _normal(phrase).strip(" \"'.\u2026")
    return bool(core) and core in _normal(notes)


@dataclass
class Run:
    """One run's figures (None: the server did not say)."""

    prompt_tokens: int | None = None
    answer_tokens: int | None = None
    prompt_seconds: float | None = None
    answer_seconds: float | None = None
    load_seconds: float | None = None
    wall_seconds: float | None = None
    valid_json: bool = False
    quotes: int = 0
    verbatim_quotes: int = 0
    #: "server": the server's own durations; "client": this machine's clock (a server that
    #: states none, such as llama-cpp-python's /v1 server).
    answer_clock: str = "server"


@dataclass
class ModelBench:
    """Every run of one model, and what they add up to."""

    model: str
    runs: list[Run] = field(default_factory=list)
    error: str | None = None
    thinking: bool = False  # the model reasons first: the reference job writes more

    def rate(self, tokens: str, seconds: str) -> float | None:
        """Total ``tokens`` over total ``seconds`` of the runs that state both."""
        pairs = [(getattr(r, tokens), getattr(r, seconds)) for r in self.runs]
        counted = [(t, s) for t, s in pairs if t and s]
        total = sum(s for _, s in counted)
        return sum(t for t, _ in counted) / total if total > 0 else None

    def summary(self) -> dict[str, Any]:
        """The JSON form: speeds, the reference job, JSON validity and verbatim quotes."""
        from ..choosing.speed import REFERENCE_JOB

        prompt = self.rate("prompt_tokens", "prompt_seconds")
        answer = self.rate("answer_tokens", "answer_seconds")
        loads = [r.load_seconds for r in self.runs if r.load_seconds is not None]
        quotes = sum(r.quotes for r in self.runs)
        found = sum(r.verbatim_quotes for r in self.runs)
        return {
            "model": self.model,
            "runs": len(self.runs),
            "error": self.error,
            "prompt_tokens_per_second": _round(prompt),
            "answer_tokens_per_second": _round(answer),
            "load_seconds": _round(max(loads)) if loads else None,
            "reference_job_seconds": _round(
                REFERENCE_JOB.prompt_tokens / prompt
                + REFERENCE_JOB.answer_tokens(self.thinking) / answer
            )
            if prompt and answer
            else None,
            "valid_json": sum(r.valid_json for r in self.runs),
            "quotes": quotes,
            "verbatim_quotes": found,
            "verbatim_share": _round(found / quotes, 3) if quotes else None,
            "answer_clock": "client"
            if any(r.answer_clock == "client" for r in self.runs)
            else "server",
            "details": [vars(run) for run in self.runs],
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def score(response: LLMResponse, notes: str, text_seconds: float | None = None) -> Run:
    """One answer's figures: the server's timings (the answer's by ``text_seconds``, this
    machine's clock from its first piece to its end, when the server states none), JSON
    validity, verbatim quotes."""
    from ..timings import client_answer_timing

    raw = response.raw_response
    try:
        parsed = parse_personas(response.content)
    except ValueError:
        parsed = None
    quotes = quoted_phrases(response.content, parsed)
    prompt_rate = raw.get("prompt_tokens_per_second")
    answer_rate = raw.get("tokens_per_second")
    prompt_tokens = raw.get("input_tokens")
    answer_tokens = raw.get("output_tokens")
    answer_seconds = answer_tokens / answer_rate if answer_tokens and answer_rate else None
    clock = "server"
    if answer_seconds is None:
        answer_tokens, answer_seconds = client_answer_timing(answer_tokens, text_seconds)
        clock = "client"
    return Run(
        prompt_tokens=prompt_tokens,
        answer_tokens=answer_tokens,
        prompt_seconds=prompt_tokens / prompt_rate if prompt_tokens and prompt_rate else None,
        answer_seconds=answer_seconds,
        answer_clock=clock,
        load_seconds=raw.get("load_seconds"),
        wall_seconds=raw.get("wall_seconds"),
        valid_json=parsed is not None,
        quotes=len(quotes),
        verbatim_quotes=sum(verbatim(q, notes) for q in quotes),
    )


def _speed(value: float | None) -> str:
    if value is None:
        return "not stated by the server"
    return f"{value:.0f} tokens/s" if value >= 10 else f"{value:.1f} tokens/s"


def render(result: dict[str, Any]) -> None:
    """One model's summary for a person."""
    from ..choosing.speed import REFERENCE_JOB, format_duration

    echo(result["model"], bold=True)
    if result["error"]:
        echo(f"  failed     {result['error']}", fg="red")
        if not result["runs"]:
            return
    echo(f"  prompt     {_speed(result['prompt_tokens_per_second'])}")
    clock = " (this machine's clock: the server states no timings)"
    answer = _speed(result["answer_tokens_per_second"])
    echo(f"  answer     {answer}{clock if result['answer_clock'] == 'client' else ''}")
    if result["load_seconds"] is not None:
        echo(f"  load       {result['load_seconds']:.2f} s (the longest of the runs)")
    job = result["reference_job_seconds"]
    echo(
        f"  reference  {format_duration(job) if job is not None else '?'} for "
        f"{REFERENCE_JOB.personas} personas from a {REFERENCE_JOB.transcript_tokens:,}-token "
        "transcript, model loaded"
    )
    echo(f"  JSON       {result['valid_json']} of {result['runs']} answers valid")
    if result["quotes"]:
        echo(
            f"  quotes     {result['verbatim_quotes']} of {result['quotes']} quoted phrases "
            f"found word for word in the notes ({result['verbatim_share']:.0%})"
        )
    else:
        echo("  quotes     none in the answers")


def _read_notes(path: str) -> str:
    """The text of ``path``; a usage error (exit 2) for a file that is not UTF-8 text."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path!r} is not UTF-8 text.", param_hint="--notes") from None
    except OSError as error:
        raise click.BadParameter(
            f"{path!r} cannot be read: {error.strerror}.", param_hint="--notes"
        ) from None
    if not text.strip():
        raise click.BadParameter(f"{path!r} is empty.", param_hint="--notes")
    return text


@main.command()
@click.argument("models", nargs=-1)
@click.option(
    "-n",
    "--runs",
    type=click.IntRange(min=1, max=100),
    default=3,
    show_default=True,
    help="Runs per model.",
)
@click.option(
    "--notes",
    type=click.Path(exists=True, dir_okay=False),
    help="Your own notes or transcript (a text or CSV file) instead of the bundled sample.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=MAX_TOKENS,
    show_default=True,
    help="The answer's limit.",
)
@json_option
@common_options
def bench(
    models: tuple[str, ...],
    runs: int,
    notes: str | None,
    max_tokens: int,
    as_json: bool,
    host: str | None,
) -> None:
    """Measure MODELS (default: the default model) on this machine with a persona job.

    Each run asks for three personas as JSON from the bundled sample interview notes
    (or your own: --notes FILE).
    Reports prompt and answer tokens/s from the server's own timings, the time of the
    reference job (three personas from a 20,000-token transcript), how many answers were
    valid JSON, and the share of quoted phrases found word for word in the notes. The
    speeds are recorded for `models`, `doctor` and the first-byte wait (docs/privacy.md).

    \b
    Examples:
      persona-ollama bench
      persona-ollama bench qwen3:8b llama3.2:3b -n 5
      persona-ollama bench --notes transcript.txt
      persona-ollama bench --json
    """
    text = _read_notes(notes) if notes else sample_notes()
    provider = make_provider(host)
    chosen = list(models) or [provider.default_model]
    results = []
    for model in chosen:
        measured = ModelBench(model)
        for run in range(1, runs + 1):
            if not as_json:
                echo(f"{model}: run {run} of {runs}...", err=True, dim=True)
            first: float | None = None
            try:
                chat = provider.stream(
                    bench_prompt(text, run),
                    model=model,
                    max_tokens=max_tokens,
                    temperature=TEMPERATURE,
                )
                with chat:
                    for _piece in chat:
                        first = first or time.perf_counter()
            except OllamaError as error:
                measured.error = f"{error.message} {error.hint or ''}".strip()
                break
            assert chat.response is not None  # a stream read to its end has its response
            spread = time.perf_counter() - first if first is not None else None
            measured.runs.append(score(chat.response, text, spread))
        if measured.runs:
            measured.thinking = provider.model_info(model).thinks  # known: it just answered
        results.append(measured.summary())
    if as_json:
        print_json(results)
    else:
        for result in results:
            render(result)
        if any(result["runs"] for result in results):
            echo(_recorded(provider), dim=True)
    if any(result["error"] for result in results):
        raise click.exceptions.Exit(1)


def _recorded(provider: OllamaProvider) -> str:
    """Whether the speeds just measured were kept: written now (not at exit), so that a
    file that cannot be written is said, not claimed recorded."""
    if not provider.records_timings:
        return "Not recorded: PERSONA_OLLAMA_RECORD_TIMINGS is off."
    store = provider.timings()
    if not store.flush() or store.write_error is not None:
        return (
            f"Not recorded: {store.path} cannot be written ({store.write_error}); "
            "set XDG_CACHE_HOME to a writable folder."
        )
    return "Recorded for `models`, `doctor` and the first-byte wait (docs/privacy.md)."
