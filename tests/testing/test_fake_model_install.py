"""Installing a FakeModel: the model a test hands the double is the one it serves, named and
given a digest by the server's naming, and a name the server refuses is refused whole."""

from __future__ import annotations

import pytest
import requests

from persona_ollama.testing import FakeModel, FakeOllama

CHAT = {"messages": [{"role": "user", "content": "hi"}], "stream": False}

# The digests /api/tags listed for these models before the double asked its server for names
# (main at ee767c6, 4 December 2026): a test that kept one as an expected value still passes.
DIGESTS = {
    "llama3.2:3b": "11f01a4883f387fae190caf57aa6361adb7e4ff6a8de94fdbf3dd2690b2ac229",
    "mine:latest": "f3d4e8f6e8b7d2f54ae64345bf0fedfd1827ce7eaeeaa5dc9be85daaf6ef121e",
    "gpt-oss:120b-cloud": "ad07061cb350964efba1a5d86dfe54e8056ab4fcc678f09ffd83884204a20b9d",
}


def test_ollamas_double_lists_the_digests_it_always_listed() -> None:
    with FakeOllama(["llama3.2:3b", "mine", "gpt-oss:120b-cloud"]) as fake:
        listed = requests.get(fake.url + "/api/tags", timeout=5).json()["models"]

    assert {model["name"]: model["digest"] for model in listed} == DIGESTS


def test_the_model_a_test_installs_is_the_one_the_double_serves() -> None:
    """As before the server named its models: the object is installed, not a copy, so what a
    test changes on it afterwards is what the server answers with."""
    given = FakeModel("llama3", reply="first")
    cloud = FakeModel("qwen3:cloud")
    with FakeOllama([given]) as fake:
        added = fake.add_model(cloud)
        given.reply = "changed after install"
        answer = requests.post(fake.url + "/api/chat", json={"model": "llama3", **CHAT}, timeout=5)
        served = {model.name: model for model in fake.models}

    assert answer.json()["message"]["content"] == "changed after install"
    assert served["llama3:latest"] is given and given.name == "llama3:latest" and given.digest
    assert added is cloud and cloud.is_remote and cloud.remote_model == "qwen3"


def test_a_model_whose_name_the_server_refuses_is_left_as_it_was() -> None:
    model = FakeModel("a/b/c/d")
    with FakeOllama([]) as fake:
        with pytest.raises(ValueError, match="not a valid model name"):
            fake.add_model(model)
        assert fake.models == []

    assert (model.name, model.digest) == ("a/b/c/d", "")


def test_a_remote_alias_of_a_name_the_server_refuses_is_refused() -> None:
    with FakeOllama([]) as fake:
        with pytest.raises(ValueError, match="'bad name' is not a valid model name"):
            fake.add_remote_alias("notes", "bad name")
        assert fake.models == []


def test_a_remote_alias_of_a_cloud_model_built_by_the_test_is_remote() -> None:
    with FakeOllama([]) as fake:
        alias = fake.add_remote_alias("notes", FakeModel("gpt-oss:120b-cloud"))
        (listed,) = requests.get(fake.url + "/api/tags", timeout=5).json()["models"]

    assert alias.is_remote and alias.remote_model == "gpt-oss:120b"
    assert (listed["name"], listed["remote_host"]) == ("notes:latest", "https://ollama.com:443")
