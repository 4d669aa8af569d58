"""Cloud and remote models against the loopback double: never chosen, refused in local-only mode
before the prompt is sent, warned about once otherwise, shown as remote by the CLI."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from persona_ollama import OllamaProvider, privacy
from persona_ollama.choosing import hardware
from persona_ollama.choosing.selection import Selection
from persona_ollama.cli import main
from persona_ollama.errors import (
    CloudSignInRequiredError,
    ConfigurationError,
    LocalOnlyViolationError,
    ModelNotPulledError,
)
from persona_ollama.testing import FakeModel, FakeOllama

PROMPT = "Interview 7: the participant described her diagnosis in detail"
CLOUD = "gpt-oss:120b-cloud"
ALIAS = "notes-model"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OLLAMA_HOST", "OLLAMA_BASE_URL", "PERSONA_OLLAMA_MODEL", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PERSONA_OLLAMA_LOCAL_ONLY", raising=False)
    monkeypatch.setenv("PERSONA_OLLAMA_MEMORY_GB", "16")  # choices independent of this machine
    hardware.clear_cache()
    yield
    hardware.clear_cache()


@pytest.fixture
def fake():
    """A local model, a cloud stub and a local alias of the stub (no cloud suffix)."""
    with FakeOllama(["llama3.2:3b"]) as server:
        server.add_cloud_model(CLOUD)
        server.add_remote_alias(ALIAS, CLOUD)
        yield server


def prompt_reached_the_server(fake: FakeOllama) -> bool:
    return any(PROMPT.encode() in request.body for request in fake.requests)


def provider_for(fake: FakeOllama, **kwargs: object) -> OllamaProvider:
    return OllamaProvider(base_url=fake.url, environ={"PERSONA_OLLAMA_MEMORY_GB": "16"}, **kwargs)


# -- the double speaks like the real server ------------------------------------------------------


def test_the_double_lists_remote_fields_from_0_12_like_the_real_server(fake):
    def tags(server):
        listing = requests.get(f"{server.url}/api/tags", timeout=5).json()["models"]
        return {m["name"]: m for m in listing}

    listed = tags(fake)
    assert listed[f"{ALIAS}:latest"]["remote_host"] == "https://ollama.com:443"
    assert listed[f"{ALIAS}:latest"]["remote_model"] == "gpt-oss:120b"
    assert listed[CLOUD]["size"] < 1024  # a stub holds no weights
    assert "remote_host" not in listed["llama3.2:3b"]
    show = requests.post(f"{fake.url}/api/show", json={"model": ALIAS}, timeout=5).json()
    assert show["remote_host"] == "https://ollama.com:443"
    with FakeOllama([CLOUD], version="0.11.4") as old:
        assert all("remote_host" not in entry for entry in tags(old).values())
    # What the provider reads from it: one placement per model.
    placements = {m.name: m.placement for m in provider_for(fake).installed_models()}
    assert placements[f"{ALIAS}:latest"].host == "https://ollama.com:443"
    assert not placements["llama3.2:3b"].remote


def test_the_double_forwards_cloud_names_without_a_stub_from_0_18(fake):
    with FakeOllama(["llama3.2:3b"], version="0.18.0") as newer:
        answer = provider_for(newer).generate("hi", model="kimi-k2:1t-cloud")
        assert len(newer.forwarded_requests) == 2  # /api/show and /api/chat both go on
        assert answer.raw_response["remote_host"] == "https://ollama.com:443"
    with FakeOllama(["llama3.2:3b"], version="0.17.0") as older:
        with pytest.raises(Exception, match="not installed"):
            provider_for(older).generate("hi", model="kimi-k2:1t-cloud")
        assert older.forwarded_requests == []


# -- selection -----------------------------------------------------------------------------------


def test_default_model_never_names_a_remote_model_and_generate_sends_nothing_there(fake):
    provider = provider_for(fake)
    assert provider.default_model == "llama3.2:3b"
    reasons = " ".join(provider.selection().reasons)
    assert f"{CLOUD}: skipped, it runs on https://ollama.com:443" in reasons
    assert f"{ALIAS}:latest: skipped" in reasons
    provider.generate(PROMPT)
    assert fake.last_request("/api/chat").json["model"] == "llama3.2:3b"
    assert fake.forwarded_requests == []


def test_a_huge_cloud_model_does_not_win_on_its_parameter_count():
    with FakeOllama(["llama3.2:1b"]) as server:
        server.add_cloud_model("deepseek-v3.1:671b-cloud", parameter_size="671.0B")
        assert provider_for(server).default_model == "llama3.2:1b"


def test_with_only_remote_models_the_default_is_a_local_model_to_pull():
    with FakeOllama([CLOUD]) as server:
        server.add_remote_alias(ALIAS, CLOUD)
        provider = provider_for(server)
        selection = provider.selection()
        assert not selection.installed
        assert provider.default_model not in (CLOUD, ALIAS, f"{ALIAS}:latest")
        assert "cloud" not in provider.default_model
        with pytest.raises(ModelNotPulledError, match="persona-ollama pull"):
            provider.generate(PROMPT)
        assert server.forwarded_requests == []
        assert not prompt_reached_the_server(server)


def test_context_overflow_never_suggests_a_remote_model(fake):
    provider = provider_for(fake)
    assert provider.served.longer_context(1024, "llama3.2:3b") == []


def test_the_default_is_never_a_catalogue_name_that_a_remote_model_holds():
    # `ollama create mistral-small:24b` FROM a cloud model: the name the catalogue would
    # suggest pulling is taken by a remote model, so suggesting it sends the prompt away.
    with FakeOllama([]) as server:
        server.add_cloud_model(CLOUD)
        server.add_remote_alias("mistral-small:24b", CLOUD)
        provider = provider_for(server)
        assert provider.default_model not in ("mistral-small:24b", CLOUD)
        with pytest.raises(Exception, match="ollama pull"):
            provider.generate(PROMPT)
        assert server.forwarded_requests == []


@pytest.mark.parametrize("passed_back", [False, True])
def test_a_default_that_turns_out_remote_is_refused_not_used(fake, monkeypatch, passed_back):
    # Whatever led selection astray (a listing without remote fields, a stale cache), a model
    # the caller did not name is not used once the server says it runs elsewhere; also when
    # the host reads default_model and passes it back as model= (Persona's judge does).
    astray = Selection(ALIAS, True, ("led astray",))
    monkeypatch.setattr(OllamaProvider, "selection", lambda self, **deadline: astray)
    provider = provider_for(fake)
    with pytest.raises(ConfigurationError, match="only when you name it") as caught:
        provider.generate(PROMPT, model=provider.default_model if passed_back else None)
    assert "https://ollama.com:443" in caught.value.message
    assert fake.forwarded_requests == []
    assert provider_for(fake).generate(PROMPT, model=ALIAS).content  # named: used


# -- local-only ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [ALIAS, CLOUD, "qwen3-coder:480b-cloud"])
def test_local_only_refuses_a_remote_model_before_the_prompt_is_sent(fake, model):
    provider = provider_for(fake, local_only=True)
    with pytest.raises(LocalOnlyViolationError) as caught:
        provider.generate(PROMPT, model=model)
    error = caught.value
    assert f"'{model}'" in error.message
    assert "https://ollama.com:443" in error.message
    assert "persona-ollama models" in error.hint and "PERSONA_OLLAMA_LOCAL_ONLY" in error.hint
    assert fake.request_count("/api/chat") == 0
    assert fake.forwarded_requests == []
    assert not prompt_reached_the_server(fake)


def test_local_only_refuses_a_cloud_name_without_any_request(fake):
    provider = provider_for(fake, local_only=True)
    with pytest.raises(LocalOnlyViolationError):
        provider.generate(PROMPT, model=CLOUD)
    assert fake.request_count() == 0  # not even /api/show, which v0.18+ forwards by name


def test_local_only_refuses_a_stub_by_its_size_on_a_server_that_lists_no_remote_fields():
    with FakeOllama(["llama3.2:3b"], version="0.11.4") as server:
        server.add_remote_alias(ALIAS, CLOUD)
        provider = provider_for(server, local_only=True)
        with pytest.raises(LocalOnlyViolationError, match="holds only 384 bytes"):
            provider.generate(PROMPT, model=ALIAS)
        assert server.request_count("/api/chat") == 0
        assert provider.generate("hi", model="llama3.2:3b").content


def test_local_only_still_sends_to_local_models(fake):
    provider = provider_for(fake, local_only=True)
    assert provider.generate(PROMPT).content
    assert fake.last_request("/api/chat").json["model"] == "llama3.2:3b"
    assert fake.forwarded_requests == []


def test_local_only_pins_localhost_to_the_checked_address(fake):
    if "127.0.0.1" not in privacy.system_resolve("localhost", fake.port):
        pytest.skip("this machine's hosts file does not map localhost to 127.0.0.1")
    url = fake.url.replace("127.0.0.1", "localhost")
    provider = OllamaProvider(base_url=url, local_only=True, environ={})
    assert provider.endpoint.host == "127.0.0.1"
    assert provider.endpoint.pinned_name == "localhost"
    provider.generate("hi", model="llama3.2:3b")
    assert fake.last_request("/api/chat").headers["Host"] == f"localhost:{fake.port}"


@pytest.mark.parametrize("first_local_only", [True, False])
def test_local_only_sees_a_model_recreated_from_a_cloud_model_under_the_same_name(first_local_only):
    # `ollama create notes-model` (FROM gpt-oss:120b-cloud) over a local model of that name: the
    # facts cached for the local one (process-wide, minutes) must not let the prompt through.
    with FakeOllama(["llama3.2:3b"]) as server:
        server.add_cloud_model(CLOUD)
        server.add_model(ALIAS)
        provider_for(server, local_only=first_local_only).generate("hi", model=ALIAS)
        server.remove_model(ALIAS)
        server.add_remote_alias(ALIAS, CLOUD)
        with pytest.raises(LocalOnlyViolationError, match=r"https://ollama\.com:443"):
            provider_for(server, local_only=True).generate(PROMPT, model=ALIAS)
        assert server.forwarded_requests == []
        assert not any(PROMPT.encode() in request.body for request in server.requests)


def test_in_v1_mode_a_remote_alias_is_never_the_default_and_local_only_refuses_it():
    # Ollama's /v1/models says nothing about remote models (openai/openai.go Model: id,
    # object, created, owned_by): the same server's /api/tags has to say it.
    with FakeOllama([]) as server:
        server.add_cloud_model(CLOUD)
        server.add_remote_alias(ALIAS, CLOUD)
        provider = provider_for(server, api="openai")
        assert provider.default_model not in (CLOUD, f"{ALIAS}:latest")
        with pytest.raises(LocalOnlyViolationError, match=r"https://ollama\.com:443"):
            provider_for(server, api="openai", local_only=True).generate(PROMPT, model=ALIAS)
        assert server.forwarded_requests == []
        assert not prompt_reached_the_server(server)


def test_local_only_reports_a_model_replaced_between_its_check_and_the_request():
    # One provider reused (a batch): its model list is cached for a few seconds, and no check
    # can close the gap between checking and sending. The server names the remote host in
    # every answer line (ChatResponse remote_host, v0.12+): that answer is refused, loudly.
    with FakeOllama(["llama3.2:3b"]) as server:
        server.add_cloud_model(CLOUD)
        server.add_model(ALIAS)
        provider = provider_for(server, local_only=True)
        provider.generate("hi", model=ALIAS)
        server.remove_model(ALIAS)
        server.add_remote_alias(ALIAS, CLOUD)
        with pytest.raises(LocalOnlyViolationError, match="left this machine") as caught:
            provider.generate(PROMPT, model=ALIAS)
        assert "https://ollama.com:443" in caught.value.message


@pytest.mark.parametrize("api", ["native", "openai"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_proxy_variables_never_carry_a_loopback_request_off_the_machine(monkeypatch, host, api):
    # requests reads HTTP(S)_PROXY / ALL_PROXY and on Linux bypasses them only for NO_PROXY:
    # a corporate proxy would receive every prompt. The "proxy" here is a second double.
    if host == "localhost" and "127.0.0.1" not in privacy.system_resolve("localhost", 80):
        pytest.skip("this machine's hosts file does not map localhost to 127.0.0.1")
    with FakeOllama(["llama3.2:3b"]) as server, FakeOllama(["llama3.2:3b"]) as proxy:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url)
            monkeypatch.setenv(name.lower(), proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        url = server.url.replace("127.0.0.1", host)
        provider = OllamaProvider(base_url=url, local_only=True, api=api, environ={})
        provider.generate(PROMPT, model="llama3.2:3b")
        assert proxy.request_count() == 0
        assert prompt_reached_the_server(server)


# -- without local-only --------------------------------------------------------------------------


def test_without_local_only_a_remote_model_is_used_with_one_warning_naming_the_host(fake, caplog):
    provider = provider_for(fake)
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        first = provider.generate(PROMPT, model=ALIAS)
        provider_for(fake).generate(PROMPT, model=ALIAS)  # Persona builds one per call
    warnings = [r.message for r in caplog.records if ALIAS in r.message]
    assert len(warnings) == 1
    assert "runs on https://ollama.com:443" in warnings[0]
    assert "PERSONA_OLLAMA_LOCAL_ONLY=1" in warnings[0]
    assert len([r for r in fake.forwarded_requests if r.path == "/api/chat"]) == 2
    assert first.raw_response["remote_model"] == "gpt-oss:120b"


def test_in_v1_mode_a_named_remote_alias_is_warned_about(fake, caplog):
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        provider_for(fake, api="openai").generate(PROMPT, model=ALIAS)
    assert any(
        ALIAS in r.message and "runs on https://ollama.com:443" in r.message for r in caplog.records
    )


@pytest.mark.parametrize(("version", "has_url"), [("0.33.0", True), ("0.12.0", False)])
def test_signed_out_cloud_model_says_ollama_signin(version, has_url):
    with FakeOllama(["llama3.2:3b"], version=version, signed_in=False) as server:
        server.add_cloud_model(CLOUD)
        with pytest.raises(CloudSignInRequiredError) as caught:
            provider_for(server).generate("hi", model=CLOUD)
    error = caught.value
    assert error.status_code == 401
    assert "`ollama signin`" in error.hint and "local model" in error.hint
    assert (error.signin_url or "").startswith("https://ollama.com/connect") is has_url
    if has_url:
        assert error.signin_url in error.hint
    assert "reverse proxy" not in str(error)


# -- the CLI -------------------------------------------------------------------------------------


def test_models_marks_remote_models_with_their_host(fake, cli_runner):
    result = cli_runner.invoke(main, ["models", "--host", fake.url])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "(remote: runs on https://ollama.com:443)" in lines[CLOUD]
    assert "(remote: runs on https://ollama.com:443)" in lines[f"{ALIAS}:latest"]
    assert "remote" not in lines["llama3.2:3b"] and lines["llama3.2:3b"].rstrip().endswith("*")
    rows = json.loads(cli_runner.invoke(main, ["models", "--json", "--host", fake.url]).stdout)
    remote = {row["name"]: row["remote_host"] for row in rows if row["remote"]}
    assert remote == {CLOUD: "https://ollama.com:443", f"{ALIAS}:latest": "https://ollama.com:443"}


def test_recommend_never_recommends_a_remote_model_and_says_why(fake, cli_runner):
    result = cli_runner.invoke(main, ["recommend", "--host", fake.url])
    assert result.exit_code == 0, result.output
    ranked = [line for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert ranked and not any("cloud" in line or ALIAS in line for line in ranked)
    assert f"Not recommended: {CLOUD} is installed but remote" in result.stdout


def test_doctor_default_is_local_and_remote_models_are_marked(fake, cli_runner):
    result = cli_runner.invoke(main, ["doctor", "--json", "--host", fake.url])
    report = json.loads(result.stdout)
    assert report["default_model"]["model"] == "llama3.2:3b"
    remote = {m["name"] for m in report["models"] if m["remote"]}
    assert remote == {CLOUD, f"{ALIAS}:latest"}
    text = cli_runner.invoke(main, ["doctor", "--host", fake.url]).stdout
    assert f"{CLOUD} (remote: https://ollama.com:443)" in text
    assert "The only installed chat models are remote" not in text


def test_doctor_warns_when_the_only_chat_models_are_remote(cli_runner):
    with FakeOllama([CLOUD, "nomic-embed-text:latest"]) as server:
        result = cli_runner.invoke(main, ["doctor", "--host", server.url])
    assert result.exit_code == 1
    assert "The only installed chat models are remote" in result.stdout
    assert "Default    gpt-oss" not in result.stdout
    assert "Next step  persona-ollama pull" in result.stdout


def test_a_fake_model_with_a_cloud_name_is_remote_whatever_else_it_says():
    with FakeOllama([FakeModel("qwen3:cloud", size=5_000_000_000)]) as server:
        (model,) = server.models
        (listed,) = requests.get(f"{server.url}/api/tags", timeout=5).json()["models"]

    assert model.is_remote and model.remote_model == "qwen3"
    assert (listed["remote_model"], listed["remote_host"]) == ("qwen3", "https://ollama.com:443")


def test_doctor_in_local_only_mode_asks_nothing_about_a_configured_cloud_model(cli_runner):
    # v0.18+ forwards /api/show of a cloud name to ollama.com: doctor must not ask, and must
    # not call a setup "Ready" that local-only mode will refuse.
    with FakeOllama(["llama3.2:3b"], version="0.18.0") as server:
        env = {"PERSONA_OLLAMA_LOCAL_ONLY": "1", "PERSONA_OLLAMA_MODEL": "kimi-k2:1t-cloud"}
        result = cli_runner.invoke(main, ["doctor", "--host", server.url], env=env)
        assert result.exit_code == 1
        assert "Ready" not in result.stdout
        assert "remote: https://ollama.com:443" in result.stdout
        assert "Local-only mode refuses 'kimi-k2:1t-cloud'" in result.stdout
        assert server.forwarded_requests == []


def test_doctor_marks_a_configured_remote_default_as_remote(fake, cli_runner):
    env = {"PERSONA_OLLAMA_MODEL": ALIAS}
    report = json.loads(
        cli_runner.invoke(main, ["doctor", "--json", "--host", fake.url], env=env).stdout
    )
    assert report["default_model"]["remote"] is True
    assert report["default_model"]["remote_host"] == "https://ollama.com:443"
    assert not report["ready"] and "remote model" in report["next_step"]
    result = cli_runner.invoke(main, ["doctor", "--host", fake.url], env=env)
    assert "(installed, remote: https://ollama.com:443)" in result.stdout
