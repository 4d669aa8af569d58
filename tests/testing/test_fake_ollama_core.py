"""The double's core on its own: a double of another server from one face, and the package."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from persona_ollama.testing import (
    BUSY,
    LIBRARY,
    OLLAMA_NAMES,
    OUT_OF_MEMORY,
    PLAIN,
    RUNNER_STOPPED,
    Call,
    Face,
    FakeModel,
    FakeOllama,
    FakeServer,
    Route,
    count_tokens,
    stand_in,
)
from persona_ollama.testing.native import NativeFace
from persona_ollama.testing.profiles import Profile, Rule
from persona_ollama.testing.state import Settings
from persona_ollama.testing.wire import ApiError, Reply, Stream, json_reply, ndjson_stream


def health(call: Call) -> Reply:
    return json_reply({"status": "ok", "models": len(call.state.installed())})


def chat(call: Call) -> Stream:
    body = call.record.json or {}
    model = call.state.find(str(body.get("model", "")))
    if model is None:
        raise ApiError(404, "no such model")
    return ndjson_stream([{"text": "Hi"}, {"text": " there"}, {"text": "!"}, {"done": True}])


class AcmeFace(Face):
    """A minimal face of a made-up server: its own paths and error shape."""

    routes = (
        Route("GET", "/health", health),
        Route("POST", "/chat", chat, generation=True),
        Route("GET", "/models/{id}", health),
    )
    not_implemented = frozenset({"/embed"})

    def error(self, status: int, message: str) -> Reply:
        return json_reply({"problem": message}, status)


@pytest.fixture
def acme() -> Any:
    with FakeServer([AcmeFace()], ["llama3.2:3b"]) as fake:
        yield fake


def lines(response: requests.Response) -> list[Any]:
    return [line for line in response.iter_lines() if line]


def test_one_face_makes_a_double_of_another_server(acme: FakeServer) -> None:
    assert requests.get(acme.url + "/health", timeout=5).json() == {"status": "ok", "models": 1}
    assert requests.get(acme.url + "/models/x", timeout=5).status_code == 200
    response = requests.post(acme.url + "/chat", json={"model": "llama3.2:3b"}, timeout=5)
    assert response.status_code == 200
    assert len(lines(response)) == 4
    missing = requests.post(acme.url + "/chat", json={"model": "nope"}, timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"problem": "no such model"})
    # No Ollama path is served, and the face's own lists decide 404, 405 and 501.
    assert requests.get(acme.url + "/api/tags", timeout=5).status_code == 404
    assert requests.post(acme.url + "/health", timeout=5).status_code == 405
    unimplemented = requests.post(acme.url + "/embed", timeout=5)
    assert unimplemented.status_code == 501
    assert unimplemented.json() == {"problem": "FakeServer does not implement POST /embed"}


def test_the_core_scripts_and_records_a_custom_face(acme: FakeServer) -> None:
    acme.fail_next(status=429, error="slow down")
    refused = requests.post(acme.url + "/chat", json={"model": "llama3.2:3b"}, timeout=5)
    assert (refused.status_code, refused.json()) == (429, {"problem": "slow down"})
    # A rule without a path applies to the routes marked generation=True only.
    acme.fail_next()
    assert requests.get(acme.url + "/health", timeout=5).status_code == 200
    busy = requests.post(acme.url + "/chat", json={"model": "llama3.2:3b"}, timeout=5)
    assert busy.status_code == 503
    acme.drop_connection_mid_stream_next(after_chunks=1)
    dropped = requests.post(
        acme.url + "/chat", json={"model": "llama3.2:3b"}, stream=True, timeout=5
    )
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        lines(dropped)
    acme.end_stream_without_done_next()
    cut = requests.post(acme.url + "/chat", json={"model": "llama3.2:3b"}, timeout=5)
    assert len(lines(cut)) == 3
    assert [r.path for r in acme.requests] == ["/chat", "/health", "/chat", "/chat", "/chat"]
    assert [r.path for r in acme.generations] == ["/chat"] * 4
    assert acme.last_request("/chat").status == 200


def test_fake_ollama_takes_faces_too() -> None:
    with FakeOllama(faces=[AcmeFace()]) as fake:
        assert requests.get(fake.url + "/health", timeout=5).status_code == 200
        assert requests.get(fake.url + "/api/version", timeout=5).status_code == 404
        assert repr(fake).startswith("<FakeOllama http://127.0.0.1:")


def test_the_stand_in_serves_the_default_api_with_the_models_given() -> None:
    with stand_in(["qwen3:0.6b"]) as fake:
        listed = requests.get(fake.url + "/api/tags", timeout=5).json()["models"]
        requests.post(
            fake.url + "/api/chat", json={"model": "qwen3:0.6b", "stream": False}, timeout=5
        )
        requests.get(fake.url + "/api/version", timeout=5)

    assert [model["name"] for model in listed] == ["qwen3:0.6b"]
    assert [r.path for r in fake.generations] == ["/api/chat"]


@given(st.text())
def test_count_tokens_is_the_utf8_length_over_four_rounded_up(text: str) -> None:
    assert count_tokens(text) == math.ceil(len(text.encode("utf-8")) / 4)


def test_library_models_are_internally_consistent() -> None:
    for key, model in LIBRARY.items():
        assert OLLAMA_NAMES.key(model.name) == key
        assert OLLAMA_NAMES.display(model.name) == model.name  # listed as the server shows it
        assert model.digest and model.capabilities


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_the_package_imports_the_standard_library_only() -> None:
    modules = imported_after("import persona_ollama.testing")

    assert not {"requests", "psutil", "click", "pluggy"} & modules


def test_the_pytest_plugin_defers_the_server_until_a_fixture_runs() -> None:
    modules = imported_after("import persona_ollama.testing.pytest_plugin")

    assert "persona_ollama.testing.server" not in modules
    assert "http.server" not in modules


def test_the_core_imports_no_face_of_the_default_server() -> None:
    # scripts/new_provider.py copies the core and what it imports: Ollama's faces must not come.
    modules = imported_after("import persona_ollama.testing.server")

    assert "persona_ollama.testing.server" in modules
    faces = {"ollama_server", "native", "openai", "host_check"}
    assert not {f"persona_ollama.testing.{name}" for name in faces} & modules


def test_fake_ollama_is_still_importable_from_the_core_module() -> None:
    from persona_ollama.testing import ollama_server, server

    assert server.FakeOllama is ollama_server.FakeOllama is FakeOllama
    assert server.DOUBLE_HEADER == ollama_server.DOUBLE_HEADER == "X-Fake-Ollama"
    with pytest.raises(AttributeError, match="no attribute 'FakeNothing'"):
        _ = server.FakeNothing  # type: ignore[attr-defined]


def test_each_double_names_itself_in_a_header_of_its_own(acme: FakeServer) -> None:
    headers = requests.get(acme.url + "/health", timeout=5).headers
    assert headers["X-Fake-Server"] == "persona_ollama.testing"
    assert "X-Fake-Ollama" not in headers
    with FakeOllama() as fake:
        headers = requests.get(fake.url + "/api/version", timeout=5).headers
    assert headers["X-Fake-Ollama"] == "persona_ollama.testing"
    assert "X-Fake-Server" not in headers


# -- what the core asks its server: names, releases, known models ------------------------------


def test_the_core_takes_a_model_id_as_it_is_and_compares_it_exactly() -> None:
    """A Hub id and a local path are served as given (no tag added, case kept); another
    spelling is another model, as on servers that name a model by its id."""
    with FakeServer([AcmeFace()], ["Org/Model-7B", "/models/llama.gguf"]) as fake:
        assert {model.name for model in fake.models} == {"Org/Model-7B", "/models/llama.gguf"}
        found = requests.post(fake.url + "/chat", json={"model": "Org/Model-7B"}, timeout=5)
        other = requests.post(fake.url + "/chat", json={"model": "org/model-7b"}, timeout=5)
        path = requests.post(fake.url + "/chat", json={"model": "/models/llama.gguf"}, timeout=5)

    assert (found.status_code, other.status_code, path.status_code) == (200, 404, 200)


@pytest.mark.parametrize("name", ["", "   ", "tab\there", "line\nbreak", "x" * 4096])
def test_the_core_refuses_a_name_no_server_takes_when_it_is_installed(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid model name"):
        FakeServer([AcmeFace()], [name])


def test_ollamas_double_folds_the_registry_spellings_of_a_name_into_one_model() -> None:
    spellings = ["llama3.2:3b", "LLAMA3.2:3B", "library/llama3.2:3b"]
    spellings.append("registry.ollama.ai/library/llama3.2:3b")
    with FakeOllama(["llama3.2:3b", FakeModel("mine")]) as fake:
        names = {model.name for model in fake.models}
        shown = [
            requests.post(fake.url + "/api/show", json={"model": name}, timeout=5).status_code
            for name in [*spellings, "llama3.2:1b"]
        ]

    assert names == {"llama3.2:3b", "mine:latest"}  # Ollama's display form: always tagged
    assert shown == [200, 200, 200, 200, 404]
    with pytest.raises(ValueError, match="namespace/model:tag"):
        FakeOllama(["a/b/c/d"])


def test_a_name_the_servers_library_knows_installs_that_models_facts() -> None:
    known = FakeModel("acme-7b", context_length=16384, family="acme")
    with FakeServer([AcmeFace()], ["acme-7b", "other"], library=[known]) as fake:
        by_name = {model.name: model for model in fake.models}

    assert (by_name["acme-7b"].context_length, by_name["acme-7b"].family) == (16384, "acme")
    assert by_name["other"].context_length == FakeModel("x").context_length
    assert by_name["acme-7b"].digest != by_name["other"].digest  # each listed with its own


class Release(Profile):
    """A server whose 2.0 started refusing an over-long prompt, and whose busy text is its own."""

    rules = (Rule("refuses_overflow", (2, 0), "acme/server.py (v2.0)", "refused", "cut"),)

    @property
    def busy_text(self) -> str:
        return "Model is overloaded"


def test_a_profile_answers_by_its_own_rules_and_the_faults_send_its_texts() -> None:
    assert not Release("1.4.0").has("refuses_overflow")
    assert Release("2.0.0").has("refuses_overflow")
    assert Release("1.0.0").has("llama_server")  # a rule it does not list: always in effect
    with FakeServer([AcmeFace()], ["m"], settings=Settings(profile_type=Release)) as fake:
        fake.fail_next()
        fake.error_mid_stream_next(after_chunks=1)
        busy = requests.post(fake.url + "/chat", json={"model": "m"}, timeout=5)
        cut = lines(requests.post(fake.url + "/chat", json={"model": "m"}, timeout=5))

    assert (busy.status_code, busy.json()) == (503, {"problem": "Model is overloaded"})
    assert b"the model failed while answering: unexpected EOF" in cut[-1]
    assert "ollama" not in cut[-1].decode().lower()


def test_ollamas_double_sends_the_servers_own_fault_texts() -> None:
    with FakeOllama(["llama3.2:3b"]) as fake:
        fake.fail_next()
        fake.runner_stopped_next()
        fake.out_of_memory_next()
        body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}]}
        texts = [
            requests.post(fake.url + "/api/chat", json=body, timeout=5).json()["error"]
            for _ in range(3)
        ]

    assert texts == [BUSY, RUNNER_STOPPED, OUT_OF_MEMORY]


def test_a_double_of_ollamas_faces_follows_their_names_and_releases_without_being_told() -> None:
    with FakeServer([NativeFace()], ["llama3"], settings=Settings("0.11.11")) as fake:
        (model,) = fake.models
        shown = requests.post(fake.url + "/api/show", json={"model": "LLAMA3"}, timeout=5)
        (listed,) = requests.get(fake.url + "/api/tags", timeout=5).json()["models"]
        fake.fail_next()
        body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}
        busy = requests.post(fake.url + "/api/chat", json=body, timeout=5)

    assert model.name == "llama3:latest" and shown.status_code == 200  # Ollama's names
    assert "context_length" not in listed["details"]  # 0.11.11's /api/tags, by Ollama's rules
    assert busy.json() == {"error": BUSY}  # Ollama's texts


def test_faces_that_name_different_rules_for_one_server_are_refused() -> None:
    class Plain(AcmeFace):
        naming = PLAIN

    with pytest.raises(ValueError, match=r"different naming rules .* pass naming="):
        FakeServer([NativeFace(), Plain()])
    # Said outright, the double follows what it is told.
    with FakeServer([NativeFace(), Plain()], ["Org/Model"], naming=PLAIN) as fake:
        assert [model.name for model in fake.models] == ["Org/Model"]


def test_the_core_serves_any_name_the_client_may_send() -> None:
    """The kernel's neutral rules let a name of up to 1024 characters through; the double's
    plain naming serves it (and a path as long as Linux allows) rather than refuse it first."""
    from persona_ollama.backends.rules import MAX_NAME_LENGTH

    longest = "/models/" + "m" * (MAX_NAME_LENGTH - len("/models/"))
    with FakeServer([AcmeFace()], [longest, "/" + "p" * 4094]) as fake:
        reply = requests.post(fake.url + "/chat", json={"model": longest}, timeout=5)

    assert reply.status_code == 200


def test_faces_that_name_different_releases_are_refused_naming_the_setting_that_says_which() -> (
    None
):
    class Acme(Profile):
        @property
        def busy_text(self) -> str:
            return "acme is busy"

    class AcmeReleases(AcmeFace):
        profile_type = Acme

    # The advice is the argument the double takes: Settings(profile_type=...), not a keyword
    # of its own (FakeServer has no profile_type=).
    with pytest.raises(
        ValueError, match=r"different profile_type rules .* settings=Settings\(profile_type="
    ):
        FakeServer([NativeFace(), AcmeReleases()])
    settings = Settings(profile_type=Acme)
    with FakeServer([AcmeReleases(), NativeFace()], settings=settings) as fake:
        fake.fail_next(path="/health")
        busy = requests.get(fake.url + "/health", timeout=5)

    assert busy.json() == {"problem": "acme is busy"}  # the release rules it was told
