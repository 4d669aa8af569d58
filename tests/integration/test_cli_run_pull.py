"""`persona-ollama run` and `pull` against the loopback double, through click's CliRunner."""

from __future__ import annotations

import json
import re
import socket

import pytest

from persona_ollama.backends.base import PullProgress
from persona_ollama.cli import main
from persona_ollama.testing import FakeModel, FakeOllama


@pytest.fixture
def fake(server_version):
    with FakeOllama(
        [
            FakeModel("llama3.2:3b"),
            FakeModel("qwen3:8b", capabilities=["completion", "thinking"], thinking="hmm"),
        ],
        version=server_version,
    ) as server:
        yield server


@pytest.fixture
def runner(monkeypatch, cli_runner):
    for name in ("OLLAMA_HOST", "OLLAMA_BASE_URL", "PERSONA_OLLAMA_MODEL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    return cli_runner


def free_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_run_streams_the_answer_and_prints_a_summary(runner, fake):
    fake.reply_with("Ana is a UX researcher.")
    result = runner.invoke(
        main, ["run", "Describe Ana", "--model", "llama3.2:3b", "--host", fake.url]
    )
    assert result.exit_code == 0, result.output
    assert "Ana is a UX researcher." in result.stdout
    assert "tokens in" in result.stderr
    assert "llama3.2:3b" in result.stderr


def test_run_reads_the_prompt_from_stdin(runner, fake):
    fake.reply_with(lambda request: f"got {len(request['messages'][-1]['content'])} chars")
    result = runner.invoke(main, ["run", "-m", "llama3.2:3b", "--host", fake.url], input="a" * 50)
    assert result.exit_code == 0, result.output
    assert "got 50 chars" in result.stdout


def test_run_passes_system_format_think_temperature_and_max_tokens(runner, fake):
    fake.reply_with('{"ok": true}', model="qwen3:8b")
    result = runner.invoke(
        main,
        [
            "run",
            "hi",
            "-m",
            "qwen3:8b",
            "--host",
            fake.url,
            "--system",
            "be brief",
            "--json-format",
            "--no-think",
            "--temperature",
            "0.1",
            "--max-tokens",
            "64",
        ],
    )
    assert result.exit_code == 0, result.output
    sent = fake.last_request("/api/chat").json
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert sent["format"] == "json"
    assert sent["think"] is False
    assert sent["options"]["temperature"] == 0.1
    assert sent["options"]["num_predict"] == 64


def test_run_json_output_parses(runner, fake):
    fake.reply_with("hello")
    result = runner.invoke(main, ["run", "hi", "-m", "llama3.2:3b", "--host", fake.url, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["content"] == "hello"
    assert data["finish_reason"] == "stop"


def test_run_says_when_the_token_limit_cut_the_answer(runner, fake):
    fake.reply_with("word " * 100)
    result = runner.invoke(
        main, ["run", "hi", "-m", "llama3.2:3b", "--host", fake.url, "--max-tokens", "5"]
    )
    assert result.exit_code == 0
    assert "raise --max-tokens" in result.stderr


def test_run_with_the_server_down_prints_the_hint_without_a_traceback(runner):
    url = free_url()
    result = runner.invoke(main, ["run", "hi", "-m", "llama3.2:3b", "--host", url])
    assert result.exit_code == 1
    assert f"Cannot reach the Ollama server at {url}" in result.stderr
    assert "ollama serve" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_run_with_a_model_not_pulled_names_the_pull_command(runner, fake):
    result = runner.invoke(main, ["run", "hi", "-m", "mistral:7b", "--host", fake.url])
    assert result.exit_code == 1
    assert "ollama pull mistral:7b" in result.stderr


def test_run_with_an_invalid_host_names_the_setting(runner):
    result = runner.invoke(main, ["run", "hi", "--host", "htp://x"])
    assert result.exit_code == 2  # a bad option value
    assert "Invalid value for '--host'" in result.stderr
    assert "unsupported scheme" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_run_without_a_prompt_is_a_usage_error(runner, fake):
    result = runner.invoke(main, ["run", "--host", fake.url], input="   ")
    assert result.exit_code == 2
    assert "empty" in result.stderr  # click prints usage errors on stderr


def test_debug_shows_the_traceback(runner):
    result = runner.invoke(main, ["run", "hi", "-m", "m", "--host", free_url(), "--debug"])
    assert result.exit_code != 0
    assert result.exception is not None


def test_pull_shows_progress_and_says_how_to_use_the_model(runner, fake):
    fake.pullable("phi4:14b")
    result = runner.invoke(main, ["pull", "phi4:14b", "--host", fake.url])
    assert result.exit_code == 0, result.output
    assert "pulling manifest" in result.stdout
    assert "pulling " in result.stdout
    assert "success" in result.stdout
    assert "persona-ollama run --model phi4:14b" in result.stdout
    assert "phi4:14b" in [m.name for m in fake.models]


def test_pull_of_an_unknown_model_exits_1_with_the_servers_reason(runner, fake):
    result = runner.invoke(main, ["pull", "no-such:1b", "--host", fake.url])
    assert result.exit_code == 1
    assert "file does not exist" in result.stderr


def test_pull_of_an_invalid_name_is_refused(runner, fake):
    result = runner.invoke(main, ["pull", "a b", "--host", fake.url])
    assert result.exit_code == 1
    assert "not a valid Ollama model name" in result.stderr
    assert fake.request_count() == 0


def test_version_and_help(runner):
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0
    assert "persona-ollama" in result.output
    assert set(main.commands) == {
        "bench",
        "doctor",
        "models",
        "recommend",
        "pull",
        "run",
        "persona",
    }
    help_text = runner.invoke(main, ["--help"]).output
    assert "Examples" in help_text
    for command in set(main.commands) - {"persona"}:  # its --help is Persona's
        sub_help = runner.invoke(main, [command, "--help"]).output
        assert "--host" in sub_help
        assert "Examples" in sub_help


def test_an_error_mid_answer_starts_on_its_own_line(runner, fake):
    fake.reply_with("one two three four five six")
    fake.error_mid_stream_next(after_chunks=2)
    result = runner.invoke(main, ["run", "hi", "-m", "llama3.2:3b", "--host", fake.url])
    assert result.exit_code == 1
    assert result.stdout.endswith("\n")
    # The printed part stays on the screen, whatever the hint says of the Python API (which
    # discards it): the user is told that it is incomplete before the error.
    assert result.stdout.startswith("one two")
    note, error = result.stderr.split("\n", 1)
    assert note == "The answer above broke off: it is incomplete."
    assert error.startswith("Error: The server's runner for 'llama3.2:3b' failed")


def test_an_error_before_any_text_adds_no_note(runner, fake):
    fake.error_mid_stream_next(after_chunks=0)
    result = runner.invoke(main, ["run", "hi", "-m", "llama3.2:3b", "--host", fake.url])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")


def test_pull_failing_midway_exits_1_with_the_reason(runner, fake):
    fake.pullable("phi4:14b")
    fake.error_mid_stream_next(error="unexpected EOF", after_chunks=3, path="/api/pull")
    result = runner.invoke(main, ["pull", "phi4:14b", "--host", fake.url])
    assert result.exit_code == 1
    assert "Pulling 'phi4:14b' failed: unexpected EOF" in result.stderr
    assert "phi4:14b" not in [m.name for m in fake.models]


def test_run_with_an_embedding_model_is_a_clear_error_without_a_context_warning(runner):
    embedder = FakeModel("nomic-embed-text", capabilities=["embedding"], context_length=2048)
    with FakeOllama([embedder]) as server:
        result = runner.invoke(main, ["run", "--host", server.url, "-m", "nomic-embed-text", "hi"])
        assert server.request_count("/api/chat") == 0  # refused before sending
    assert result.exit_code == 1
    assert "Error: nomic-embed-text is an embedding model" in result.stderr
    assert "persona-ollama models" in result.stderr
    assert "window" not in result.stderr  # no warning about a context never used


def test_pull_of_an_embedding_model_does_not_suggest_running_it(runner):
    with FakeOllama([]) as server:
        server.pullable(FakeModel("nomic-embed-text", capabilities=["embedding"]))
        result = runner.invoke(main, ["pull", "--host", server.url, "nomic-embed-text"])
    assert result.exit_code == 0, result.output
    assert "persona-ollama run" not in result.output
    assert "It is an embedding model: it cannot write personas" in result.output


def test_the_demo_knows_untagged_library_names_as_the_real_server_does(runner):
    """`ollama pull llama3.2` installs llama3.2:latest; the demo must accept and serve that name,
    with the catalogue's facts, not rename it to llama3.2:3b or fail the pull."""
    from persona_ollama.testing.demo import demo_server

    with demo_server(["nomic-embed-text", "qwen2.5"]) as demo:
        pulled = runner.invoke(main, ["pull", "llama3.2", "--host", demo.url])
        assert pulled.exit_code == 0, pulled.output
        names = [m.name for m in demo.models]
        assert "llama3.2:latest" in names
        assert "qwen2.5:latest" in names and "nomic-embed-text:latest" in names
        listed = runner.invoke(main, ["models", "--json", "--host", demo.url])
        ran = runner.invoke(main, ["run", "hi", "-m", "qwen2.5", "--host", demo.url])
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["llama3.2:latest"]["parameters"] == "3.2B"  # the catalogue's llama3.2:3b
    assert rows["qwen2.5:latest"]["context_length"] == 32768
    assert ran.exit_code == 0, ran.output


def test_the_overflow_hint_names_only_models_that_can_hold_the_prompt(runner):
    """A model with a longer context that is still too short is no way out: naming it only
    leads to the same error."""
    models = [
        FakeModel("qwen2.5:7b", context_length=32768),
        FakeModel("llama3.2:3b", context_length=131072),
    ]
    with FakeOllama(models) as server:
        args = ["run", "-m", "qwen2.5:7b", "--host", server.url]
        medium = runner.invoke(main, args, input="word " * 30_000)  # ~50K tokens
        huge = runner.invoke(main, args, input="word " * 200_000)  # ~330K tokens
        assert server.request_count("/api/chat") == 0
    assert medium.exit_code == 1 and huge.exit_code == 1
    assert "with a longer context: llama3.2:3b" in medium.stderr
    assert "llama3.2:3b" not in huge.stderr
    assert "Hint: Shorten the input" in huge.stderr


@pytest.mark.parametrize("completed", ["lots", [1], {"bytes": 1}, True])
def test_pull_progress_tolerates_a_completed_count_of_the_wrong_type(completed, capsys):
    from persona_ollama.cli.pull import Progress

    progress = Progress(interactive=False)
    progress.update(PullProgress("pulling abc", total=100, completed=completed))
    progress.update(PullProgress("success", done=True))

    assert "success" in capsys.readouterr().out


def test_pull_of_a_misspelt_name_suggests_the_nearest_catalogue_names(runner, fake):
    result = runner.invoke(main, ["pull", "lama3.2", "--host", fake.url])

    assert result.exit_code == 1
    assert "Pulling 'lama3.2' failed" in result.stderr
    hint = result.stderr.split("Hint: ", 1)[1]
    assert "Did you mean llama3.2:3b" in hint
    assert "`persona-ollama pull llama3.2:3b`" in hint


def test_the_run_summarys_times_add_up_against_the_demo_server(runner):
    """The double reports a cold load it never spends: a total measured here (about 0 s)
    beside the server's load (0.8 s) read "load 0.8 s, 0.0 s total"."""
    from persona_ollama.testing.demo import demo_server

    with demo_server(["llama3.2:3b"]) as demo:
        result = runner.invoke(main, ["run", "--host", demo.url, "--model", "llama3.2:3b", "hi"])

    assert result.exit_code == 0, result.output
    times = re.search(r"load ([\d.]+) s, ([\d.]+) s total", result.stderr)
    assert times is not None, result.stderr
    load, total = (float(value) for value in times.groups())
    assert 0 < load <= total


@pytest.mark.parametrize("width", [200, 79, 39, 20, 8, 1])
@pytest.mark.parametrize("completed", [0, 37, 100])
def test_a_bar_line_is_exactly_as_wide_as_it_may_be_and_keeps_its_percentage(width, completed):
    from persona_ollama.cli.pull import fit_bar

    line = fit_bar(
        "pulling 7dcb418fac4d", completed, 100, "1.0 GiB/2.0 GiB 1.6 GiB/s ETA 0:01", width
    )

    assert len(line) == width
    if width >= 8:
        assert f"{completed}%" in line
    if width >= 79:
        assert "ETA 0:01" in line and "pulling 7dcb418fac4d" in line


def test_a_terminals_bar_shows_a_layer_reported_past_its_size_as_full(capsys):
    from persona_ollama.cli.pull import Progress

    progress = Progress(interactive=True)
    progress.update(PullProgress("pulling abc", total=100, completed=10**12))

    assert "100% [########################]" in capsys.readouterr().out
