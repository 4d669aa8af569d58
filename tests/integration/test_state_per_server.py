"""What the process knows of a server is that server's alone, and every provider for it shares it.

Two doubles on two ports serve a model of the same name with different facts, windows and
releases: nothing learnt of one is used for the other. Two providers for one server (Persona
builds one per command) share its facts, windows and release: the second asks nothing the
first already learnt.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from persona_ollama import OllamaProvider
from persona_ollama.server_state import SERVERS
from persona_ollama.testing import FakeModel, FakeOllama

MODEL = "llama3.2:3b"
# About 2,000 and 5,000 tokens by the client's estimate: with max_tokens=1000, rungs 4096 and
# 8192 of the ladder.
SMALL, MEDIUM = "ab " * 2000, "ab " * 5000


@pytest.fixture
def two_servers() -> Iterator[tuple[FakeOllama, FakeOllama]]:
    """A current server with a long-context model, and one before 0.12.6 (it cuts long
    prompts) whose model of the same name has a short context."""
    long_context = FakeModel(MODEL, context_length=131072, size=2_000_000_000)
    short_context = FakeModel(MODEL, context_length=16384, size=2_000_000_000)
    with contextlib.ExitStack() as stack:
        current = stack.enter_context(FakeOllama([long_context], version="0.33.0"))
        old = stack.enter_context(FakeOllama([short_context], version="0.12.5"))
        yield current, old


def provider(fake: FakeOllama) -> OllamaProvider:
    return OllamaProvider(base_url=fake.url, model=MODEL, environ={})


def windows_sent(fake: FakeOllama) -> list[int]:
    return [r.num_ctx or 0 for r in fake.requests if r.path == "/api/chat"]


def asked(fake: FakeOllama, path: str) -> int:
    return sum(1 for r in fake.requests if r.path == path)


def test_two_servers_with_a_model_of_one_name_never_share_what_is_known_of_it(
    two_servers: tuple[FakeOllama, FakeOllama], caplog: pytest.LogCaptureFixture
) -> None:
    current, old = two_servers
    # Someone else loaded a large window on the current server.
    requests.post(
        current.url + "/api/chat",
        json={"model": MODEL, "messages": [], "options": {"num_ctx": 16384}},
        timeout=5,
    )
    on_current, on_old = provider(current), provider(old)

    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        on_current.generate(SMALL, max_tokens=1000)
        on_old.generate(SMALL, max_tokens=1000)

    # Facts: each server's own context length for the same name.
    assert on_current.model_info(MODEL).context_length == 131072
    assert on_old.model_info(MODEL).context_length == 16384
    # Windows: the current server's loaded (and sent) 16384, which the old server's model
    # could hold, is not the old server's.
    assert windows_sent(current)[-1] == 16384
    assert windows_sent(old) == [4096]
    # Releases: each asked of its own server, and only the old one is warned about.
    current_state = SERVERS.state(str(on_current.endpoint))
    old_state = SERVERS.state(str(on_old.endpoint))
    assert current_state is not old_state
    assert (current_state.release, old_state.release) == ((0, 33, 0), (0, 12, 5))
    cuts = [r.getMessage() for r in caplog.records if "silently cuts a prompt" in r.getMessage()]
    assert len(cuts) == 1 and old.url in cuts[0] and current.url not in cuts[0]


def test_two_providers_for_one_server_share_its_facts_windows_and_release(
    two_servers: tuple[FakeOllama, FakeOllama], caplog: pytest.LogCaptureFixture
) -> None:
    _, old = two_servers
    first = provider(old)
    with caplog.at_level(logging.WARNING, logger="persona_ollama"):
        first.generate(SMALL, max_tokens=1000)
        shown, versions = asked(old, "/api/show"), asked(old, "/api/version")
        second = provider(old)  # a new provider, as Persona builds one per command
        second.generate(MEDIUM, max_tokens=1000)
        third = provider(old)
        third.generate("ab " * 100, max_tokens=1000)

    assert SERVERS.state(str(second.endpoint)) is SERVERS.state(str(first.endpoint))
    # Nothing the first provider learnt is asked again: the facts and the release are shared.
    assert (asked(old, "/api/show"), asked(old, "/api/version")) == (shown, versions) == (1, 1)
    # The window the second one grew to is reused by the third for its smaller prompt.
    assert windows_sent(old) == [4096, 8192, 8192]
    assert old.loads == 2
    # Warned about once in the process, not once per provider.
    assert len([r for r in caplog.records if "silently cuts a prompt" in r.getMessage()]) == 1


def test_a_cleared_registry_starts_every_server_afresh(
    two_servers: tuple[FakeOllama, FakeOllama],
) -> None:
    current, _ = two_servers
    provider(current).generate(SMALL, max_tokens=1000)
    SERVERS.clear()
    provider(current).generate(SMALL, max_tokens=1000)
    assert asked(current, "/api/show") == 2
    assert asked(current, "/api/version") == 2


def test_concurrent_providers_for_one_server_agree_on_one_window(
    two_servers: tuple[FakeOllama, FakeOllama],
) -> None:
    current, _ = two_servers
    current.load_time = 0.2

    def call(prompt: str) -> None:
        provider(current).generate(prompt, max_tokens=1000)  # a provider per call, as Persona

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(call, [SMALL, MEDIUM] * 8))

    # One load, plus at most one for the larger window a later call needed: the providers
    # plan against one shared record of the server's windows.
    assert current.loads <= 2
    assert windows_sent(current)[-8:] == [8192] * 8


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("http://localhost:{port}", "HTTP://LOCALHOST:{port}/"),
        ("http://[::1]:{port}", "http://[0:0:0:0:0:0:0:1]:{port}"),
    ],
)
def test_two_spellings_of_one_server_share_its_state(first: str, second: str) -> None:
    """A host name's case and an IPv6 address's spelling do not make another server: the
    second provider asks nothing the first already learnt (before, each spelling had a state
    of its own: facts asked again, warnings given twice, windows not shared)."""
    family = "::1" if "::1" in first or "0:0:0" in first else "127.0.0.1"
    model = FakeModel(MODEL, context_length=131072, size=2_000_000_000)
    with FakeOllama([model], host=family) as fake:
        one = OllamaProvider(base_url=first.format(port=fake.port), model=MODEL, environ={})
        two = OllamaProvider(base_url=second.format(port=fake.port), model=MODEL, environ={})
        assert one.generate("hi").content
        shows = asked(fake, "/api/show")
        assert two.generate("hi").content
        assert asked(fake, "/api/show") == shows
        assert one._state is two._state


def test_a_server_restarted_with_another_release_is_judged_by_it_once_its_facts_expire(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The release was asked once per process and trusted forever, unlike the models' facts
    (asked again after their ttl): a server downgraded to a release that silently cuts
    long prompts was still taken for one that refuses them, and no warning came."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    url = f"http://127.0.0.1:{port}"
    model = FakeModel(MODEL, context_length=131072, size=2_000_000_000)
    with FakeOllama([model], version="0.33.0", port=port):
        first = OllamaProvider(base_url=url, model=MODEL, environ={})
        first.generate("hi")
    state = first._state
    assert state.release == (0, 33, 0)
    state.facts.ttl = 0.2  # the facts' ttl (600 s) made short: the restart comes after it
    time.sleep(0.3)
    restarted = FakeOllama([model], version="0.12.5", port=port)
    with restarted, caplog.at_level(logging.WARNING, logger="persona_ollama"):
        OllamaProvider(base_url=url, model=MODEL, environ={}).generate("hi")
    assert asked(restarted, "/api/version") == 1
    assert state.release == (0, 12, 5)
    assert [r for r in caplog.records if "silently cuts a prompt" in r.getMessage()]


def test_speeds_measured_under_one_spelling_of_a_server_are_read_under_another() -> None:
    """The measured speeds are keyed by the server as the registry keys it: a host name's
    case made another server, whose models had no measurement."""
    model = FakeModel(MODEL, context_length=131072, size=2_000_000_000)
    with FakeOllama([model]) as fake:
        lower = OllamaProvider(base_url=f"http://localhost:{fake.port}", model=MODEL, environ={})
        lower.generate("Say hello at some length, please.")
        facts = lower.model_info(MODEL)
        assert lower.measured(facts) is not None
        upper = OllamaProvider(base_url=f"http://LOCALHOST:{fake.port}", model=MODEL, environ={})
        assert upper.measured(facts) == lower.measured(facts)
