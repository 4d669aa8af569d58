"""`persona-ollama doctor`, `models` and `recommend` against the loopback double."""

from __future__ import annotations

import dataclasses
import json

import pytest
from shared_helpers import clear_environment, free_url

from persona_ollama import OllamaProvider
from persona_ollama.choosing import hardware
from persona_ollama.cli import doctor as doctor_module
from persona_ollama.cli import main
from persona_ollama.testing import FakeModel, FakeOllama

INSTALLED = [
    FakeModel("llama3.2:3b", size=2_019_393_189, parameter_size="3.2B"),
    FakeModel(
        "qwen2.5:7b",
        family="qwen2",
        size=4_683_087_332,
        parameter_size="7.6B",
        context_length=32768,
    ),
    FakeModel("llama3:70b", size=39_969_745_349, parameter_size="70.6B", context_length=8192),
    FakeModel(
        "nomic-embed-text:latest",
        family="nomic-bert",
        capabilities=["embedding"],
        size=274_302_450,
        parameter_size="137M",
        context_length=2048,
    ),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    clear_environment(
        monkeypatch, "NO_COLOR", "PERSONA_OLLAMA_LOCAL_ONLY", "PERSONA_OLLAMA_CATALOGUE"
    )
    # A 16 GB budget makes the choices independent of the machine running the tests.
    monkeypatch.setenv("PERSONA_OLLAMA_MEMORY_GB", "16")
    hardware.clear_cache()
    yield
    hardware.clear_cache()


@pytest.fixture
def fake(server_version):
    with FakeOllama(INSTALLED, version=server_version) as server:
        yield server


@pytest.fixture
def runner(cli_runner):
    return cli_runner


def test_doctor_says_ready_and_explains_the_default(runner, fake):
    result = runner.invoke(main, ["doctor", "--host", fake.url])
    assert result.exit_code == 0, result.output
    assert f"{fake.url}  reachable (Ollama {fake.version}" in result.stdout
    # llama3.2:3b, with all four cited figures, ties qwen2.5:7b (IFEval and medians) at 71
    # and is the smaller: the default.
    assert "Default    llama3.2:3b (installed)" in result.stdout
    assert "PERSONA_OLLAMA_MEMORY_GB" in result.stdout  # the budget's reason
    assert "Ready" in result.stdout


def test_doctor_json_has_every_section(runner, fake):
    result = runner.invoke(main, ["doctor", "--host", fake.url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ready"] is True
    assert report["server"]["reachable"] is True
    assert report["default_model"]["model"] == "llama3.2:3b"
    assert report["default_model"]["reasons"]
    assert report["hardware"]["memory_budget_bytes"] == 16 * 1024**3
    assert {m["name"] for m in report["models"]} >= {"llama3:70b", "qwen2.5:7b"}


def test_doctor_with_the_server_down_exits_1_with_the_next_step(runner):
    url = free_url()
    result = runner.invoke(main, ["doctor", "--host", url])
    assert result.exit_code == 1
    assert "not reachable" in result.stdout
    assert "Next step" in result.stdout
    assert "ollama serve" in result.stdout
    # Nothing is known about its models: no claim that none is installed, no pull to run
    # against a server that does not answer.
    assert "No chat model is installed" not in result.stdout
    assert "persona-ollama pull" not in result.stdout
    assert "(unknown: the server did not answer)" in result.stdout
    report = json.loads(runner.invoke(main, ["doctor", "--host", url, "--json"]).stdout)
    assert report["default_model"]["installed"] is None


def test_doctor_with_a_v1_server_down_claims_nothing_about_what_it_serves(runner):
    result = runner.invoke(main, ["doctor", "--api", "openai", "--host", free_url()])

    assert result.exit_code == 1
    assert "not reachable" in result.stdout and "Next step" in result.stdout
    # The selection saw no model list: that is not a server serving no chat model.
    assert "serves no chat model" not in result.stdout
    assert "(unknown: the server did not answer)" in result.stdout


def test_doctor_with_the_server_down_explains_a_configured_model_by_its_setting(
    runner, monkeypatch
):
    monkeypatch.setenv("PERSONA_OLLAMA_MODEL", "llama3.2:3b")
    result = runner.invoke(main, ["doctor", "--host", free_url()])
    assert result.exit_code == 1
    assert "Default    llama3.2:3b (unknown: the server did not answer)" in result.stdout
    assert "- Set by PERSONA_OLLAMA_MODEL." in result.stdout
    assert "persona-ollama pull" not in result.stdout  # not a pull of another model


def test_doctor_with_nothing_installed_names_the_model_to_pull(runner):
    with FakeOllama([]) as empty:
        result = runner.invoke(main, ["doctor", "--host", empty.url, "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["next_step"].startswith("persona-ollama pull ")
    assert report["default_model"]["installed"] is False


def test_doctor_with_a_configured_model_that_is_missing_says_pull_it(runner, fake, monkeypatch):
    monkeypatch.setenv("PERSONA_OLLAMA_MODEL", "mistral:7b")
    result = runner.invoke(main, ["doctor", "--host", fake.url])
    assert result.exit_code == 1
    assert "persona-ollama pull mistral:7b" in result.stdout


def test_doctor_warns_about_a_bind_address(runner, fake, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", f"0.0.0.0:{fake.port}")
    result = runner.invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "bind address" in result.stdout


def test_doctor_warns_about_cloud_models_and_old_servers(runner):
    with FakeOllama(
        [FakeModel("llama3.2:3b"), FakeModel("gpt-oss:120b-cloud")], version="0.11.4"
    ) as server:
        result = runner.invoke(main, ["doctor", "--host", server.url])
    assert (
        "Remote models send prompts off this machine: gpt-oss:120b-cloud (to https://ollama.com:443)"
        in result.stdout
    )
    assert "0.11.4 is old" in result.stdout


def test_doctor_says_local_hardware_is_no_guide_to_a_remote_server(runner, fake, monkeypatch):
    def remote_provider(host, model=None):
        provider = OllamaProvider(base_url=fake.url, environ={})
        provider.endpoint = dataclasses.replace(provider.endpoint, is_loopback=False)
        return provider

    monkeypatch.setattr(doctor_module, "make_provider", remote_provider)
    result = runner.invoke(main, ["doctor"])
    assert "not on this machine" in result.stdout
    assert "hardware says nothing" in result.stdout


def test_doctor_with_an_invalid_host_is_a_usage_error_not_a_traceback(runner):
    result = runner.invoke(main, ["doctor", "--host", "http://:99999"])
    assert result.exit_code == 2  # a bad option value, as docs/cli.md says
    assert "Invalid value for '--host'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["doctor", "models", "recommend", "run"])
def test_a_malformed_host_is_named_as_the_option_the_user_typed(runner, command):
    """Not `base_url=...` (the Python argument): the CLI user typed --host. No password shown."""
    args = [command, "--json", "--host", "http://me:s3cret@gpu box:11434"]
    result = runner.invoke(main, args + (["hi"] if command == "run" else []))
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2
    assert error["error"].startswith("Invalid value for '--host': ")
    assert "base_url" not in error["error"] + str(error["hint"])
    assert "--host 127.0.0.1:11434" in error["error"]
    assert "s3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--api", "openai", "--host", "http://gpu box"],
        ["--host", "http://gpu box", "--api", "openai"],  # --api is read first wherever it is
        ["--host", "http://gpu box"],  # with PERSONA_OLLAMA_API=openai
        ["--host", "http://gpu box", "OpenAI"],  # the variable in any case, as the provider
    ],
)
def test_host_is_read_by_the_address_rules_of_the_selected_api(runner, monkeypatch, args):
    from persona_ollama.backends import registry
    from persona_ollama.backends.rules import AddressRules

    real = registry.declared
    rules = AddressRules(label="vLLM server", variables=("VLLM_URL",), default_port=8000)
    other = dataclasses.replace(real("openai"), address=rules)
    monkeypatch.setattr(registry, "declared", lambda api: other if api == "openai" else real(api))
    if "--api" not in args:
        spelt, args = (args[-1], args[:-1]) if len(args) == 3 else ("openai", args)
        monkeypatch.setenv("PERSONA_OLLAMA_API", spelt)

    result = runner.invoke(main, ["models", "--json", *args])

    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "'http://gpu box' is not a valid vLLM server address" in error
    assert "--host 127.0.0.1:8000" in error


def test_models_lists_chat_models_with_fit_and_default_marker(runner, fake):
    result = runner.invoke(main, ["models", "--host", fake.url])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # No MEASURED column before any model was measured on this server.
    assert lines[0].split() == [
        "NAME", "SIZE", "PARAMS", "QUANT", "CONTEXT", "MEMORY", "FITS", "TOK/S", "JOB", "DEFAULT"
    ]  # fmt: skip
    by_name = {line.split()[0]: line.split() for line in lines[1:]}
    assert "nomic-embed-text:latest" not in by_name
    assert by_name["llama3.2:3b"][-1] == "*" and by_name["qwen2.5:7b"][-1] != "*"
    # PERSONA_OLLAMA_MEMORY_GB (set for every test) describes memory by hand, so the hardware
    # is unknown and no speed is claimed: "?" for TOK/S and JOB.
    assert by_name["qwen2.5:7b"][-3:] == ["yes", "?", "?"]
    assert by_name["llama3:70b"][-3:] == ["no", "?", "?"]  # 70B does not fit 16 GB
    assert by_name["qwen2.5:7b"][-6] == "32768"  # no DEFAULT marker: CONTEXT is 6th from the end
    assert by_name["qwen2.5:7b"][-4] == "GiB"  # the memory at the planned context


def test_models_shows_the_measured_answer_speed(runner, fake):
    OllamaProvider(base_url=fake.url).generate("Hello " * 40, model="qwen2.5:7b", max_tokens=50)

    result = runner.invoke(main, ["models", "--host", fake.url])
    rows = json.loads(runner.invoke(main, ["models", "--host", fake.url, "--json"]).stdout)

    lines = result.stdout.splitlines()
    assert lines[0].split()[-2:] == ["MEASURED", "DEFAULT"]
    by_name = {line.split()[0]: line.split() for line in lines[1:]}
    assert by_name["qwen2.5:7b"][-2:] == ["40", "tok/s"]  # the double's 25 ms per token
    assert by_name["llama3.2:3b"][-2:] == ["-", "*"]  # not measured; the default
    measured = {row["name"]: row["measured"] for row in rows}
    assert measured["qwen2.5:7b"]["runs"] == 1
    assert measured["qwen2.5:7b"]["answer_tokens_per_second"] == 40.0
    assert measured["llama3.2:3b"] is None


def test_models_all_adds_catalogue_models_with_the_pull_command(runner, fake):
    result = runner.invoke(main, ["models", "--all", "--host", fake.url])
    assert result.exit_code == 0, result.output
    assert "(persona-ollama pull mistral:7b)" in result.stdout
    assert "(persona-ollama pull qwen2.5:7b)" not in result.stdout  # installed already
    # Facts the catalogue lacks are not shown as facts: an estimated size starts with "~",
    # an unknown context is "?" (llama4:scout has neither; gemma3:4b both).
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["llama4:scout"][1].startswith("~") and rows["llama4:scout"][5] == "?"
    assert not rows["gemma3:4b"][1].startswith("~") and rows["gemma3:4b"][5] == "131072"


def test_models_json_parses(runner, fake):
    result = runner.invoke(main, ["models", "--json", "--all", "--host", fake.url])
    rows = json.loads(result.stdout)
    installed = [r for r in rows if r["installed"]]
    assert {r["name"] for r in installed} == {"llama3.2:3b", "qwen2.5:7b", "llama3:70b"}
    assert any(r["pull"] == "persona-ollama pull mixtral:8x7b" for r in rows)
    by_name = {r["name"]: r for r in rows}
    assert by_name["llama4:scout"]["size_estimated"] is True
    assert by_name["llama4:scout"]["context_length"] is None  # unknown, not the assumed window
    assert by_name["gemma3:4b"]["size_estimated"] is False
    assert all(r["size_estimated"] is False for r in installed)


def test_models_with_nothing_installed_suggests_recommend(runner):
    with FakeOllama([]) as empty:
        result = runner.invoke(main, ["models", "--host", empty.url])
    assert result.exit_code == 0
    assert "persona-ollama recommend" in result.stdout


def test_models_with_the_server_down_exits_1_with_the_hint(runner):
    result = runner.invoke(main, ["models", "--host", free_url()])
    assert result.exit_code == 1
    assert "ollama serve" in result.stderr


def test_recommend_lists_models_that_fit_with_reasons(runner, fake):
    result = runner.invoke(main, ["recommend", "--host", fake.url, "-n", "3"])
    assert result.exit_code == 0, result.output
    ranked = [line for line in result.stdout.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert len(ranked) == 3
    assert "needs" in result.stdout


def test_recommend_json_marks_installed_models(runner, fake):
    result = runner.invoke(main, ["recommend", "--json", "--host", fake.url, "-n", "20"])
    picks = json.loads(result.stdout)
    assert all(p["fits"] for p in picks)
    assert any(p["installed"] for p in picks)
    assert all(p["memory_bytes"] <= 16 * 1024**3 for p in picks)


def test_recommend_works_without_a_server(runner):
    result = runner.invoke(main, ["recommend", "--host", free_url()])
    assert result.exit_code == 0
    assert "catalogue only" in result.stderr
    assert "1. " in result.stdout


@pytest.mark.parametrize(
    ("suffix", "scheme", "fix"),
    [("/api", "http", "drop /api"), ("", "https", "use http:// instead of https://")],
)
def test_recommend_at_a_wrong_address_says_how_to_fix_it(runner, fake, suffix, scheme, fix):
    """The catalogue is shown anyway; the note gave the error only, without the hint that
    every other command prints ("drop /api"), and called a server that answered unreachable."""
    host = fake.url.replace("http", scheme, 1) + suffix
    result = runner.invoke(main, ["recommend", "--host", host])

    assert result.exit_code == 0
    assert "1. " in result.stdout
    assert "catalogue only" in result.stderr
    assert "Hint: " in result.stderr
    assert fix in result.stderr.split("Hint: ", 1)[1]
    assert "not reachable" not in result.stderr


def test_recommend_json_without_a_server_does_not_claim_models_are_missing(runner):
    """Whether a model is installed is unknown when the server does not answer: null, not
    false (a script would pull what may be there), and the note still goes to stderr."""
    result = runner.invoke(main, ["recommend", "--json", "--host", free_url()])
    assert result.exit_code == 0
    picks = json.loads(result.stdout)
    assert picks and all(pick["installed"] is None for pick in picks)
    assert "catalogue only" in result.stderr


def test_no_color_removes_ansi_even_when_colour_is_forced(runner, fake, monkeypatch):
    coloured = runner.invoke(main, ["doctor", "--host", fake.url], color=True)
    assert "\x1b[" in coloured.stdout
    monkeypatch.setenv("NO_COLOR", "1")
    plain = runner.invoke(main, ["doctor", "--host", fake.url], color=True)
    assert "\x1b[" not in plain.stdout


@pytest.mark.parametrize("command", [["doctor"], ["models", "--all"], ["recommend"]])
def test_each_command_lists_the_installed_models_once(runner, fake, command):
    result = runner.invoke(main, [*command, "--host", fake.url])
    assert result.exit_code == 0, result.output
    assert fake.request_count("/api/tags") == 1


def test_doctor_explains_a_configured_model_by_its_setting(runner, fake, monkeypatch):
    monkeypatch.setenv("PERSONA_OLLAMA_MODEL", "llama3.2:3b")
    result = runner.invoke(main, ["doctor", "--host", fake.url, "--json"])
    assert result.exit_code == 0, result.output
    default = json.loads(result.stdout)["default_model"]
    memory = default.pop("memory_bytes")
    assert isinstance(memory, int) and memory > 2 * 10**9  # weights + KV at the planned window
    assert default == {
        "model": "llama3.2:3b",
        "installed": True,
        "source": "PERSONA_OLLAMA_MODEL",
        "reasons": ["Set by PERSONA_OLLAMA_MODEL."],
        "warnings": [],
        # No speed: PERSONA_OLLAMA_MEMORY_GB describes the memory, not the hardware.
        "decode_tps": None,
        "job_seconds": None,
        "speed_basis": None,
    }


@pytest.mark.parametrize("command", [["models"], ["run", "hi"]])
def test_json_error_is_an_object_on_stdout_with_the_exit_code(runner, command):
    with FakeOllama() as stopped:
        url = stopped.url
    result = runner.invoke(main, [*command, "--json", "--host", url])
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert set(error) == {"error", "hint", "exit_code"}
    assert error["exit_code"] == 1
    assert error["error"].startswith("Cannot reach the Ollama server")
    assert "ollama serve" in error["hint"]


def test_json_usage_error_exits_2_with_an_object(runner):
    result = runner.invoke(main, ["models", "--json", "--colour"], prog_name="persona-ollama")
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2
    assert "--colour" in error["error"]
    assert error["hint"] == "See `persona-ollama models --help`."


def test_usage_error_without_json_keeps_clicks_usage_text(runner):
    result = runner.invoke(main, ["models", "--colour"], prog_name="persona-ollama")
    assert result.exit_code == 2
    assert "Usage: persona-ollama models" in result.stderr
    assert not result.stdout.lstrip().startswith("{")


def test_a_base_url_ending_in_api_is_told_to_drop_it(runner, fake):
    result = runner.invoke(main, ["models", "--host", fake.url + "/api"])
    assert result.exit_code == 1
    assert f"Hint: The address ends in /api: drop /api (use {fake.url})." in result.stderr


@pytest.mark.parametrize(
    ("pasted", "drop"),
    [
        ("/api/chat", "/api/chat"),
        ("/api/generate/", "/api/generate"),
        ("/api/tags", "/api/tags"),
        ("/v1/chat/completions", "/v1/chat/completions"),
    ],
)
def test_a_base_url_ending_in_an_endpoint_is_told_to_drop_it(runner, fake, pasted, drop):
    """An endpoint's URL pasted from a curl example got the generic "a reverse proxy path must
    be part of OLLAMA_BASE_URL" hint, not the one for /api and /v1."""
    result = runner.invoke(main, ["models", "--host", fake.url + pasted])
    assert result.exit_code == 1
    hint = result.stderr.split("Hint: ", 1)[1]
    assert f"The address ends in {drop}" in hint
    assert f"drop {drop}" in hint
    if drop.startswith("/api"):
        assert f"(use {fake.url})" in hint


def test_a_mistyped_model_leads_with_the_installed_name(runner, fake):
    result = runner.invoke(main, ["run", "--host", fake.url, "--model", "qwen2.5:7", "hi"])
    assert result.exit_code == 1
    hint = result.stderr.split("Hint: ", 1)[1]
    assert hint.startswith("Did you mean qwen2.5:7b?")
    assert "pull" not in hint  # pulling the misspelt name would only fail


def test_recommend_names_our_pull_command(runner, fake):
    result = runner.invoke(main, ["recommend", "--host", fake.url, "-n", "20"])
    assert "[persona-ollama pull " in result.output
    assert "[ollama pull" not in result.output


def test_doctor_is_not_ready_with_an_embedding_model_set(runner, fake, monkeypatch):
    monkeypatch.setenv("PERSONA_OLLAMA_MODEL", "nomic-embed-text")
    result = runner.invoke(main, ["doctor", "--host", fake.url])
    assert result.exit_code == 1
    assert "Ready" not in result.stdout
    assert "Next step  nomic-embed-text is an embedding model" in result.stdout


def test_doctor_is_not_ready_when_the_configured_model_cannot_be_described(runner, monkeypatch):
    # A server error on /api/show says nothing about the model: not Ready, and not "not
    # installed" either. (Before 0.30 /api/tags gives no context length: /api/show is asked.)
    monkeypatch.setenv("PERSONA_OLLAMA_MODEL", "qwen2.5:7b")
    with FakeOllama(INSTALLED, version="0.24.0") as server:
        server.fail_next(5, 500, "boom", path="/api/show")
        result = runner.invoke(main, ["doctor", "--host", server.url, "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 1
    assert report["ready"] is False
    assert report["default_model"]["installed"] is None
    assert report["next_step"]


def test_doctor_is_not_ready_with_a_cloud_model_set(runner, monkeypatch):
    with FakeOllama([FakeModel("gpt-oss:120b-cloud")]) as server:
        monkeypatch.setenv("PERSONA_OLLAMA_MODEL", "gpt-oss:120b-cloud")
        report = json.loads(runner.invoke(main, ["doctor", "--host", server.url, "--json"]).stdout)
    assert report["ready"] is False
    assert "remote model: it runs on https://ollama.com:443" in report["next_step"]


@pytest.mark.parametrize("name", ["mxbai-embed-large", "bge-m3:567m"])
def test_a_missing_embedding_model_is_not_worth_pulling(runner, fake, monkeypatch, name):
    """The catalogue knows it cannot write personas: pulling it (hundreds of MB) only leads to
    "it is an embedding model" afterwards, so the first answer says so."""
    monkeypatch.setenv("PERSONA_OLLAMA_MODEL", name)
    doctor = runner.invoke(main, ["doctor", "--host", fake.url])
    ran = runner.invoke(main, ["run", "hi", "--host", fake.url])
    assert doctor.exit_code == 1 and ran.exit_code == 1
    for output in (doctor.stdout, ran.stderr):
        assert "is an embedding model" in output
        assert f"persona-ollama pull {name}" not in output


@pytest.mark.parametrize("args", [["--json", "doctor"], ["--json"], ["--jsn", "models", "--json"]])
def test_json_before_the_command_still_gets_a_json_usage_error(runner, args):
    """`persona-ollama --json doctor | jq` must see the failure, wherever --json was put."""
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2
    assert error["hint"].endswith(" --help`.")  # the program name: `main` under CliRunner


@pytest.mark.parametrize(
    ("version", "names_its_server"),
    [
        ("0.12.6", False),
        ("unknown", False),
        ("llama.cpp server (OpenAI-compatible API)", True),
        ("Acme 2.1.0", True),  # another backend (docs/writing-a-provider.md) names its server
    ],
)
def test_doctor_calls_only_a_release_number_ollama(version: str, names_its_server: bool):
    assert doctor_module._v1({"version": version}) is names_its_server


def test_an_unexpected_error_with_a_long_text_is_shown_cut_with_a_mark(runner, fake, monkeypatch):
    def broken() -> None:
        raise RuntimeError("x" * 2000)

    monkeypatch.setattr(doctor_module, "host_section", broken)

    result = runner.invoke(main, ["doctor", "--host", fake.url])

    assert result.exit_code == 1, result.output
    line = next(ln for ln in result.stderr.splitlines() if ln.startswith("Error: "))
    assert line.startswith("Error: unexpected RuntimeError: xxx")
    assert line.endswith("x...")  # the cut says so
    assert len(line) == len("Error: unexpected RuntimeError: ") + 500
