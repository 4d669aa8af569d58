"""`persona-ollama bench` against the loopback double: speeds from the server's timings, the
reference job, JSON validity, verbatim quotes, recording, and a model that fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shared_helpers import clear_environment

from persona_ollama.choosing.speed import REFERENCE_JOB
from persona_ollama.cli import bench as bench_module
from persona_ollama.cli import main
from persona_ollama.testing import FakeModel
from persona_ollama.testing.engine import EVAL_NS_PER_TOKEN, PROMPT_EVAL_NS_PER_TOKEN
from persona_ollama.timings import TimingStore

REAL_QUOTE = "By the time I've tagged the fifth interview I've forgotten what the first person"
INVENTED = "I wish every tool had a dark mode and a pony."
ANSWER = json.dumps(
    {"personas": [{"name": "Ana", "quotes": [REAL_QUOTE, INVENTED]}, {"name": "Bo", "quotes": []}]}
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    clear_environment(monkeypatch, "PERSONA_OLLAMA_TIMEOUT", "PERSONA_OLLAMA_RECORD_TIMINGS")
    monkeypatch.setenv("PERSONA_OLLAMA_MEMORY_GB", "16")


@pytest.fixture
def fake(fake_ollama_factory):
    server = fake_ollama_factory([FakeModel("llama3.2:3b"), FakeModel("qwen3:8b", family="qwen3")])
    server.reply_with(ANSWER)
    return server


def bench(cli_runner, fake, *args: str):
    return cli_runner.invoke(main, ["bench", "--host", fake.url, *args])


def test_bench_reports_speeds_reference_job_json_and_verbatim_quotes(cli_runner, fake):
    result = bench(cli_runner, fake, "llama3.2:3b", "-n", "2", "--json")

    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    prompt_rate, answer_rate = 1e9 / PROMPT_EVAL_NS_PER_TOKEN, 1e9 / EVAL_NS_PER_TOKEN
    assert report["runs"] == 2
    assert report["prompt_tokens_per_second"] == pytest.approx(prompt_rate, rel=1e-3)
    assert report["answer_tokens_per_second"] == pytest.approx(answer_rate, rel=1e-3)
    # The speed model's reference job (one definition), at the measured speeds.
    job = REFERENCE_JOB.prompt_tokens / prompt_rate + REFERENCE_JOB.answer_tokens() / answer_rate
    assert report["reference_job_seconds"] == pytest.approx(job, rel=1e-3)
    assert report["valid_json"] == 2
    assert (report["quotes"], report["verbatim_quotes"], report["verbatim_share"]) == (4, 2, 0.5)
    # Every run read the whole prompt: none was served from the previous run's cache.
    prompts = [run["prompt_tokens"] for run in report["details"]]
    assert prompts[0] == prompts[1] > 1000


def test_bench_text_output_and_recorded_speeds(cli_runner, fake):
    result = bench(cli_runner, fake, "llama3.2:3b", "-n", "3")

    assert result.exit_code == 0, result.output
    assert "llama3.2:3b: run 3 of 3..." in result.stderr
    assert "  prompt     4000 tokens/s" in result.stdout
    assert "  answer     40 tokens/s" in result.stdout
    assert "  reference  2 min for 3 personas from a 20,000-token transcript" in result.stdout
    assert "  JSON       3 of 3 answers valid" in result.stdout
    assert "3 of 6 quoted phrases found word for word in the notes (50%)" in result.stdout
    speeds = TimingStore.from_env().speeds(fake.url, "llama3.2:3b")
    assert speeds is not None and speeds.runs == 3
    models = cli_runner.invoke(main, ["doctor", "--host", fake.url]).stdout
    assert "Measured   llama3.2:3b 4000 prompt / 40 answer tokens/s" in models


def test_bench_without_a_model_measures_the_default_one(cli_runner, fake):
    result = bench(cli_runner, fake, "-n", "1", "--json")
    assert result.exit_code == 0, result.output
    # The default: llama3.2:3b has cited figures, qwen3:8b none (so no score).
    assert [r["model"] for r in json.loads(result.stdout)] == ["llama3.2:3b"]


def test_a_model_that_fails_is_reported_and_the_others_still_measured(cli_runner, fake):
    result = bench(cli_runner, fake, "nope:1b", "llama3.2:3b", "-n", "1")

    assert result.exit_code == 1
    assert "failed     Model 'nope:1b' is not installed" in result.stdout
    assert "persona-ollama pull nope:1b" in result.stdout
    assert "  JSON       1 of 1 answers valid" in result.stdout
    assert "Traceback" not in result.output


def test_nothing_is_recorded_when_recording_is_off(cli_runner, fake, monkeypatch):
    monkeypatch.setenv("PERSONA_OLLAMA_RECORD_TIMINGS", "0")
    result = bench(cli_runner, fake, "llama3.2:3b", "-n", "1")
    assert "Not recorded: PERSONA_OLLAMA_RECORD_TIMINGS is off." in result.stdout
    assert not TimingStore.from_env().path.exists()


def test_a_bad_run_count_is_a_usage_error(cli_runner, fake):
    result = bench(cli_runner, fake, "-n", "0")
    assert result.exit_code == 2
    assert "Invalid value for '-n' / '--runs'" in result.stderr


def test_the_packaged_sample_is_the_example_file():
    example = Path(__file__).resolve().parents[2] / "examples" / "interviews.csv"
    assert bench_module.sample_notes() == example.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("content", "valid"),
    [
        ('{"personas": []}', True),
        ("<reasoning>think</reasoning>\n```json\n[1, 2]\n```", True),
        ("Here are the personas: {", False),
    ],
)
def test_answers_are_read_as_persona_reads_them(content, valid):
    try:
        bench_module.parse_personas(content)
    except ValueError:
        assert not valid
    else:
        assert valid


def test_quotes_of_an_answer_that_is_not_json_are_its_double_quoted_phrases():
    content = f'She said \u201c{REAL_QUOTE}\u201d and then "short" and "{INVENTED}"'
    quotes = bench_module.quoted_phrases(content, None)
    assert quotes == [REAL_QUOTE, INVENTED]  # "short" is under 8 characters
    notes = bench_module.sample_notes()
    assert [bench_module.verbatim(q, notes) for q in quotes] == [True, False]


def test_verbatim_ignores_case_spacing_curly_quotes_and_outer_ellipses():
    notes = bench_module.sample_notes()
    assert bench_module.verbatim(
        "\u2026by the time I\u2019ve   TAGGED the fifth interview...", notes
    )
    assert not bench_module.verbatim("...", notes)


def test_your_own_notes_are_used_and_checked(cli_runner, fake, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text(f"{REAL_QUOTE}, she said.\n", encoding="utf-8")
    result = bench(cli_runner, fake, "llama3.2:3b", "-n", "1", "--notes", str(notes), "--json")
    (report,) = json.loads(result.stdout)
    assert report["details"][0]["prompt_tokens"] < 300  # the notes, not the sample
    assert (report["quotes"], report["verbatim_quotes"]) == (2, 1)

    binary = tmp_path / "notes.bin"
    binary.write_bytes(b"\xff\xfe\x00bad")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    for path, problem in ((binary, "is not UTF-8 text"), (empty, "is empty")):
        result = bench(cli_runner, fake, "--notes", str(path))
        assert result.exit_code == 2
        assert problem in result.stderr


@pytest.mark.parametrize("runs", ["1", "3"])
def test_a_speeds_file_that_cannot_be_written_is_reported_not_claimed(
    cli_runner, fake, monkeypatch, tmp_path, runs
):
    # The cache folder is a plain file: the speeds cannot be written. Claiming "Recorded"
    # would send the user to `models` for figures that are not there.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    result = bench(cli_runner, fake, "llama3.2:3b", "-n", runs)

    assert result.exit_code == 0, result.output
    assert "  answer     40 tokens/s" in result.stdout  # the measurement itself is shown
    assert "Recorded for" not in result.stdout
    assert f"Not recorded: {blocker / 'persona-ollama' / 'speeds.json'} cannot be written" in (
        result.stdout
    )
    assert TimingStore.from_env().speeds(fake.url, "llama3.2:3b") is None
