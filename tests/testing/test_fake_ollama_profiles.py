"""FakeOllama's per-release wire rules (wire.py), each on both sides of its change."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from persona_ollama.testing import PROFILES, FakeModel, FakeOllama, Profile
from persona_ollama.testing.wire import RULES


def chat(fake: FakeOllama, **body: Any) -> requests.Response:
    body = {"model": "llama3.2:3b", "messages": [{"role": "user", "content": "hi"}], **body}
    return requests.post(f"{fake.url}/api/chat", json=body, timeout=10)


def test_every_rule_names_its_source_and_has_a_profile_on_each_side() -> None:
    for rule in RULES:
        assert ".go" in rule.source and "(v0." in rule.source, rule.name
        sides = {Profile(version).has(rule.name) for version in PROFILES}
        if rule.since <= (0, 30, 0):  # 0.32.6's /v1 change is tested in the /v1 tests
            assert sides == {True, False}, rule.name


@pytest.mark.parametrize("version", PROFILES)
def test_version_endpoint_reports_the_release(fake_ollama_factory, version) -> None:
    fake = fake_ollama_factory(version=version)
    assert requests.get(f"{fake.url}/api/version", timeout=5).json() == {"version": version}


@pytest.mark.parametrize(
    ("version", "vram_gib", "expected"),
    [
        ("0.11.11", 80, 4096),  # before 0.15.5: 4096 whatever the GPU
        ("0.24.0", 0, 4096),
        ("0.24.0", 24, 32768),
        ("0.33.0-rc2", 48, 262144),
    ],
)
def test_default_context_follows_release_and_vram(
    fake_ollama_factory, version, vram_gib, expected
) -> None:
    fake = fake_ollama_factory(
        [FakeModel("llama3.2:3b", context_length=1 << 20)], version=version, vram_gib=vram_gib
    )
    assert chat(fake, stream=False).status_code == 200
    assert fake.last_request().num_ctx == expected


def test_ollama_context_length_wins_over_the_vram_tier(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(default_num_ctx=8192, vram_gib=48)
    chat(fake, stream=False)
    assert fake.last_request().num_ctx == 8192


# A parser that holds text back drains it into the done line from 0.13.3 (olmo3; gemma4 and
# lfm2 later); llama-server's final chunk brings text from 0.30.
@pytest.mark.parametrize(
    ("version", "in_done"), [("0.12.6", False), ("0.24.0", True), ("0.30.0", True)]
)
def test_done_line_can_carry_the_last_piece_from_0_13_3(
    fake_ollama_factory, version, in_done
) -> None:
    fake = fake_ollama_factory(version=version)
    fake.reply_with("one two three", last_in_done=True)

    chunks = [json.loads(line) for line in chat(fake).text.splitlines()]

    assert chunks[-1]["done"] is True
    assert (chunks[-1]["message"]["content"] == " three") is in_done
    assert "".join(c["message"]["content"] for c in chunks) == "one two three"


@pytest.mark.parametrize(("version", "listed"), [("0.24.0", False), ("0.30.0", True)])
def test_tags_list_context_length_and_capabilities_from_0_30(
    fake_ollama_factory, version, listed
) -> None:
    fake = fake_ollama_factory(version=version)
    entry = requests.get(f"{fake.url}/api/tags", timeout=5).json()["models"][0]
    assert ("context_length" in entry["details"]) is listed
    assert ("capabilities" in entry) is listed


@pytest.mark.parametrize(
    ("version", "text"),
    [
        ("0.11.11", 'model "nope:1b" not found, try pulling it first'),
        ("0.12.6", "model 'nope:1b' not found"),
    ],
)
def test_chat_404_text_follows_the_release(fake_ollama_factory, version, text) -> None:
    fake = fake_ollama_factory(version=version)
    response = chat(fake, model="nope:1b")
    assert (response.status_code, response.json()["error"]) == (404, text)


def test_show_lists_tensors_as_every_release_does(fake_ollama) -> None:
    show = requests.post(f"{fake_ollama.url}/api/show", json={"model": "llama3.2:3b"}, timeout=5)
    tensors = show.json()["tensors"]
    assert tensors and all({"name", "type", "shape"} <= set(t) for t in tensors)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost:11434", True),
        ("127.0.0.1", True),
        ("[::1]:11434", True),
        ("192.168.1.20:11434", True),
        ("gpu-box.local", True),
        ("ollama.internal:8080", True),
        ("ollama.example.com", False),
        ("example.com:443", False),
        # Go's netip IsPrivate is RFC 1918 and fc00::/7 only: link-local and documentation
        # addresses are refused (unless an interface has them: isLocalIP, not emulated).
        ("169.254.10.1:11434", False),
        ("192.0.2.7:11434", False),
        ("[fd00::1]:11434", True),
        # Without a port net.SplitHostPort fails, and "[::1]" is no address or local name.
        ("[::1]", False),
    ],
)
def test_loopback_server_refuses_a_public_host_header(fake_ollama, host, allowed) -> None:
    # server/routes.go allowedHostsMiddleware: 403 with an empty body.
    response = requests.get(f"{fake_ollama.url}/api/version", headers={"Host": host}, timeout=5)
    assert (response.status_code, response.text == "") == ((200, False) if allowed else (403, True))
