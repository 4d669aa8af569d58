"""Installing a FakeModel: the model a test hands the double is the one it serves, named and
given a digest by the server's naming, and a name the server refuses is refused whole."""

from __future__ import annotations

import requests

from persona_ollama.testing import FakeOllama

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
