"""Where a model runs (facts.placement), local-only's address check, and the cloud 401/403."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona_ollama.backends.ollama import described_model, listed_model
from persona_ollama.backends.ollama_errors import error_from_status
from persona_ollama.backends.ollama_rules import CLOUD_HOST
from persona_ollama.choosing.catalogue import load_catalogue
from persona_ollama.choosing.selection import choose_default, recommend
from persona_ollama.endpoint import parse_host
from persona_ollama.errors import (
    CloudSignInRequiredError,
    LocalOnlyViolationError,
    OllamaAuthenticationError,
)
from persona_ollama.model_info import placement
from persona_ollama.privacy import check_server

URL = "http://127.0.0.1:11434"

# -- placement -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields", "remote", "host"),
    [
        ("llama3.2:3b", {"size": 2_019_393_189}, False, None),
        ("gpt-oss:120b-cloud", {}, True, CLOUD_HOST),
        ("qwen3:cloud", {"size": 5_000_000_000}, True, CLOUD_HOST),
        ("notes-model", {"remote_host": "https://ollama.com:443"}, True, "https://ollama.com:443"),
        ("notes-model", {"remote_model": "gpt-oss:120b"}, True, None),  # host left out
        ("lab-model", {"remote_host": "http://gpu-box:11434"}, True, "http://gpu-box:11434"),
        ("tiny-stub", {"size": 384}, True, None),
        ("tiny-stub", {"size": 0}, False, None),  # unknown, not a stub
        ("llama3.2:3b", {"remote_host": "  ", "remote_model": ""}, False, None),
        ("cloudy:latest", {}, False, None),  # "cloud" only as a whole tag or a "-cloud" end
    ],
)
def test_placement_reads_every_clue(name, fields, remote, host):
    where = placement(name, **fields)
    assert where.remote is remote
    assert where.host == host
    if remote:
        assert where.evidence


def test_the_server_s_host_beats_the_name():
    where = placement("x-cloud:1b-cloud", remote_host="http://gpu-box:11434")
    assert where.host == "http://gpu-box:11434"


def test_the_listing_and_the_description_share_the_placement():
    entry = {
        "name": "notes-model:latest",
        "remote_model": "gpt-oss:120b",
        "remote_host": CLOUD_HOST,
        "size": 384,
        "digest": "d" * 64,
        "details": {"parameter_size": "116.8B"},
    }
    installed = listed_model(entry)
    info = described_model("notes-model", {"details": {}}, installed)
    assert installed.placement == info.placement
    assert info.digest == "d" * 64
    assert info.placement.remote_model == "gpt-oss:120b"
    assert info.size_bytes == 384


@given(
    base=st.from_regex(r"[a-z][a-z0-9.]{0,12}", fullmatch=True),
    size=st.text(alphabet="0123456789b", min_size=1, max_size=5),
)
def test_any_cloud_tag_is_remote(base, size):
    assert placement(f"{base}:cloud").remote
    assert placement(f"{base}:{size}-cloud").remote
    assert placement(f"{base}:{size}-cloud", size=10**10).host == CLOUD_HOST


@given(host=st.text(min_size=1).filter(str.strip), name=st.text(min_size=1))
def test_any_remote_host_is_remote(host, name):
    assert placement(name, remote_host=host).remote


def test_selection_skips_remote_models_however_large_and_says_why():
    stub = {
        "name": "deepseek-v3.1:671b-cloud",
        "size": 412,
        "details": {"parameter_size": "671.0B", "quantization_level": "FP8"},
        "remote_host": CLOUD_HOST,
        "remote_model": "deepseek-v3.1:671b",
    }
    alias = {**stub, "name": "notes-model:latest"}
    local = {"name": "llama3.2:1b", "size": 1_321_098_329, "details": {"parameter_size": "1.2B"}}
    installed = [listed_model(e) for e in (stub, alias, local)]
    catalogue = load_catalogue({})
    selection = choose_default(installed, None, catalogue)  # even with the budget unknown
    assert selection.model == "llama3.2:1b"
    assert any("notes-model:latest: skipped, it runs on" in r for r in selection.reasons)
    only_remote = choose_default(installed[:2], 16 << 30, catalogue)
    assert only_remote.model is not None and not only_remote.installed
    assert not placement(only_remote.model).remote
    assert all(not placement(r.spec.name).remote for r in recommend(installed, None, catalogue))


# -- local-only trusts addresses -----------------------------------------------------------------


def resolver(answers):
    calls = []

    def resolve(host, port):
        calls.append(host)
        answer = answers[host]
        if isinstance(answer, Exception):
            raise answer
        return answer

    resolve.calls = calls
    return resolve


def never(host, port):
    raise AssertionError(f"{host} must not be looked up")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:11434", "http://[::1]:11434", "http://127.0.0.2:8080", "[::1]"]
)
def test_literal_loopback_addresses_pass_without_a_lookup(url):
    endpoint = parse_host(url)
    assert check_server(endpoint, local_only=True, resolve=never) is endpoint


def test_localhost_passes_when_it_resolves_to_loopback_and_is_pinned():
    resolve = resolver({"localhost": ["::1", "127.0.0.1"]})
    pinned = check_server(parse_host("http://localhost:11434"), local_only=True, resolve=resolve)
    assert pinned.host == "127.0.0.1"  # Ollama's default listens on IPv4 loopback
    assert pinned.base_url == "http://127.0.0.1:11434"
    assert pinned.pinned_name == "localhost"
    assert resolve.calls == ["localhost"]


def test_an_ipv6_only_localhost_is_pinned_to_its_address():
    resolve = resolver({"localhost": ["::1"]})
    pinned = check_server(parse_host("localhost:11434/ollama"), local_only=True, resolve=resolve)
    assert pinned.base_url == "http://[::1]:11434/ollama"


@pytest.mark.parametrize("name", ["anything.localhost", "localhost.", "evil.localhost."])
def test_a_localhost_spelling_that_resolves_elsewhere_is_refused(name):
    # The absolute-name dot is dropped (endpoint.py): the plain name is what is resolved.
    resolve = resolver({name.rstrip("."): ["127.0.0.1", "203.0.113.9"]})
    with pytest.raises(LocalOnlyViolationError) as caught:
        check_server(parse_host(f"http://{name}:11434"), local_only=True, resolve=resolve)
    assert "203.0.113.9" in caught.value.message
    assert "127.0.0.1:11434" in caught.value.hint


def test_a_name_that_does_not_resolve_is_refused_and_says_why():
    resolve = resolver({"anything.localhost": OSError(-2, "Name or service not known")})
    with pytest.raises(LocalOnlyViolationError, match="does not resolve"):
        check_server(parse_host("anything.localhost:11434"), local_only=True, resolve=resolve)


def test_a_name_that_resolves_to_nothing_is_refused():
    resolve = resolver({"localhost": []})
    with pytest.raises(LocalOnlyViolationError, match="no address"):
        check_server(parse_host("localhost"), local_only=True, resolve=resolve)


def test_an_https_name_cannot_be_pinned_so_it_is_refused():
    resolve = resolver({"localhost": ["127.0.0.1"]})
    with pytest.raises(LocalOnlyViolationError, match="cannot be"):
        check_server(parse_host("https://localhost:8443"), local_only=True, resolve=resolve)


def test_other_names_are_refused_without_a_lookup():
    with pytest.raises(LocalOnlyViolationError, match="not on this machine"):
        check_server(parse_host("gpu-box:11434"), local_only=True, resolve=never)


def test_without_local_only_nothing_is_refused_and_only_a_loopback_name_is_looked_up():
    # Looked up once, for the warning about a local-looking name that leads elsewhere
    # (test_privacy.py); the endpoint is never changed or refused.
    resolve = resolver({"anything.localhost": ["203.0.113.9"]})
    endpoint = parse_host("anything.localhost:11434")
    assert check_server(endpoint, local_only=False, resolve=resolve) is endpoint
    assert resolve.calls == ["anything.localhost"]
    remote = parse_host("gpu-box.example:11434")
    assert check_server(remote, local_only=False, resolve=never) is remote


# -- the server's refusals -----------------------------------------------------------------------


def test_signed_out_401_with_a_signin_url():
    link = "https://ollama.com/connect?name=lab&key=abc"
    body = json.dumps({"error": "unauthorized", "signin_url": link})
    error = error_from_status(401, body, url=URL, model="gpt-oss:120b-cloud")
    assert isinstance(error, CloudSignInRequiredError)
    assert isinstance(error, OllamaAuthenticationError)
    assert error.signin_url == link
    assert "`ollama signin`" in error.hint and link in error.hint
    assert "pick a local model" in error.hint
    assert "'gpt-oss:120b-cloud'" in error.message


def test_signed_out_401_of_0_12_0_carries_a_public_key_instead():
    body = json.dumps({"error": "unauthorized", "public_key": "ssh-ed25519 AAAA"})
    error = error_from_status(401, body, url=URL, model="notes-model")
    assert isinstance(error, CloudSignInRequiredError)
    assert error.signin_url is None
    assert "ssh-ed25519" not in str(error)


@pytest.mark.parametrize("body", ['{"error": "unauthorized"}', "Unauthorized", ""])
def test_a_plain_401_is_still_a_proxy_problem(body):
    error = error_from_status(401, body, url=URL)
    assert not isinstance(error, CloudSignInRequiredError)
    assert "reverse proxy" in (error.hint or "")


def test_a_bare_unauthorized_for_a_cloud_name_is_the_sign_in_problem():
    # v0.18+ server/cloud_proxy.go writeCloudUnauthorized sends no link when it cannot build one.
    error = error_from_status(401, '{"error": "unauthorized"}', url=URL, model="qwen3:cloud")
    assert isinstance(error, CloudSignInRequiredError)
    assert error.signin_url is None
    assert "reverse proxy" not in str(error)


def test_cloud_disabled_on_the_server_is_a_403_with_a_local_hint():
    body = json.dumps({"error": "ollama cloud is disabled: remote model is unavailable"})
    error = error_from_status(403, body, url=URL, model="gpt-oss:120b-cloud")
    assert isinstance(error, OllamaAuthenticationError)
    assert "cloud models are turned off" in error.message
    assert error.hint == "Pick a local model (`persona-ollama models`)."
