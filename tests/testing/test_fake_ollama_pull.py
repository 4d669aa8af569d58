"""FakeOllama's /api/pull against docs/reference/ollama-protocol.md, "Pulling models"."""

from __future__ import annotations

from typing import Any

import requests
from shared_helpers import json_lines

from persona_ollama.testing import PULL_NOT_FOUND, FakeModel, FakeOllama


def pull(fake: FakeOllama, **body: Any) -> requests.Response:
    return requests.post(fake.url + "/api/pull", json=body, timeout=5)


def installed(fake: FakeOllama) -> list[str]:
    return [m["name"] for m in requests.get(fake.url + "/api/tags", timeout=5).json()["models"]]


def test_pull_streams_progress_then_success_and_installs_the_model(fake_ollama: FakeOllama) -> None:
    response = pull(fake_ollama, model="gemma3:4b")

    assert response.headers["Content-Type"] == "application/x-ndjson"
    progress = json_lines(response)
    assert progress[0] == {"status": "pulling manifest"}
    assert [p["status"] for p in progress[-3:]] == [
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    layers = progress[1:-3]
    assert all(
        p["status"] == "pulling " + p["digest"][len("sha256:") : len("sha256:") + 12]
        for p in layers
    )
    assert all(len(p["digest"]) == len("sha256:") + 64 for p in layers)
    assert "completed" not in layers[0]  # zero completed is left out
    by_digest: dict[str, list[int]] = {}
    for p in layers:
        by_digest.setdefault(p["digest"], []).append(p.get("completed", 0))
    assert all(done == sorted(done) and done[-1] > 0 for done in by_digest.values())
    totals = {p["digest"]: p["total"] for p in layers}
    assert sum(totals.values()) == 3_338_801_804
    assert installed(fake_ollama)[0] == "gemma3:4b"


def test_pull_without_streaming_returns_success_only(fake_ollama: FakeOllama) -> None:
    response = pull(fake_ollama, model="llama3.2:1b", stream=False)

    assert (response.status_code, response.json()) == (200, {"status": "success"})
    assert response.headers["Content-Type"] == "application/json"
    assert "llama3.2:1b" in installed(fake_ollama)


def test_pull_of_an_unknown_model_ends_the_stream_with_an_error(fake_ollama: FakeOllama) -> None:
    response = pull(fake_ollama, model="nope:1b")

    assert response.status_code == 200
    assert json_lines(response) == [{"status": "pulling manifest"}, {"error": PULL_NOT_FOUND}]
    assert PULL_NOT_FOUND == "pull model manifest: file does not exist"


def test_registered_pullable_models_can_be_pulled(fake_ollama: FakeOllama) -> None:
    fake_ollama.pullable(FakeModel("acme/persona-writer:7b", size=4_000_000_000))

    progress = json_lines(pull(fake_ollama, model="acme/persona-writer:7b"))

    assert progress[-1] == {"status": "success"}
    assert "acme/persona-writer:7b" in installed(fake_ollama)
    assert (
        next(m for m in fake_ollama.models if m.name == "acme/persona-writer:7b").size
        == 4_000_000_000
    )


def test_a_pull_failing_half_way_leaves_the_model_uninstalled(fake_ollama: FakeOllama) -> None:
    fake_ollama.error_mid_stream_next("max retries exceeded: EOF", after_chunks=3, path="/api/pull")

    progress = json_lines(pull(fake_ollama, model="gemma3:4b"))

    assert len(progress) == 4
    assert progress[-1] == {"error": "max retries exceeded: EOF"}
    assert "gemma3:4b" not in installed(fake_ollama)
