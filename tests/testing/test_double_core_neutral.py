"""The double's core with a face of another server: it follows that server's profile and
naming, never a release number or a name rule of the default server's."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from persona_ollama.testing import Call, Face, FakeModel, FakeServer, Route
from persona_ollama.testing.generation import GenerationRequest, run
from persona_ollama.testing.profiles import REFUSES_OVERFLOW, Profile, Rule
from persona_ollama.testing.state import Settings
from persona_ollama.testing.wire import Reply, json_reply


def generate(call: Call) -> Reply:
    """A one-call generation endpoint: ``{"model", "options", "prompt", "truncate"}`` in, the
    answer's text out."""
    body: dict[str, Any] = call.record.json or {}
    model = call.state.find(str(body["model"]))
    assert model is not None
    messages = [{"role": "user", "content": body.get("prompt", "hi")}]
    request = GenerationRequest(
        "chat",
        body["model"],
        model,
        messages,
        body,
        body.get("options"),
        truncate=body.get("truncate", True),
    )
    return json_reply({"text": "".join(run(call.state, request, call.record).content)})


class GenerateFace(Face):
    routes = (Route("POST", "/generate", generate, generation=True),)


@pytest.mark.parametrize("version", ["0.3.5", "2.1.0"])
def test_a_servers_own_version_number_does_not_switch_the_schedulers_reload_rule(
    version: str,
) -> None:
    """Two windows over the model's trained context are one runner on a profile without
    release rules, whatever its version (0.3.5: a version like LM Studio's, below the release
    of the default server where that rule changed)."""
    model = FakeModel("m", context_length=8192)
    with FakeServer([GenerateFace()], [model], settings=Settings(version=version)) as fake:
        for num_ctx in (100_000, 200_000):
            body = {"model": "m", "options": {"num_ctx": num_ctx}}
            assert requests.post(fake.url + "/generate", json=body, timeout=5).status_code == 200

        assert fake.loads == 1


def test_the_core_serves_an_id_with_a_space_as_the_kernel_sends_it() -> None:
    """A local path with a space is a model id a server started on it lists (vLLM's
    ``--served-model-name`` defaults to ``--model``, a name or a path:
    https://docs.vllm.ai/en/v0.8.5/serving/engine_args.html), and the kernel's neutral name
    rules send it."""
    from persona_ollama.backends.rules import AnyName
    from persona_ollama.names import check_name

    path = "/models/My Model/llama.gguf"
    sent = check_name(path, AnyName())
    with FakeServer([GenerateFace()], [path]) as fake:
        answer = requests.post(fake.url + "/generate", json={"model": sent}, timeout=5)
        (listed,) = fake.models

    assert (answer.status_code, listed.name) == (200, path)


class Acme2(Profile):
    """A server whose 2.0 started refusing a prompt over the window instead of cutting it."""

    rules = (Rule(REFUSES_OVERFLOW, (2, 0), "acme/server.py (v2.0)", "refused", "cut"),)


@pytest.mark.parametrize(("version", "status"), [(None, 400), ("2.0.0", 400), ("1.4.0", 200)])
def test_a_profile_with_rules_of_its_own_answers_as_its_newest_release_unless_told(
    version: str | None, status: int
) -> None:
    """The core's default release is no server's number: without one, every rule of the
    server's profile is in effect, as with the base profile."""
    settings = (
        Settings(profile_type=Acme2) if version is None else Settings(version, profile_type=Acme2)
    )
    body = {"model": "m", "prompt": "word " * 400, "truncate": False, "options": {"num_ctx": 64}}
    with FakeServer([GenerateFace()], ["m"], settings=settings) as fake:
        answer = requests.post(fake.url + "/generate", json=body, timeout=5)

    assert answer.status_code == status
