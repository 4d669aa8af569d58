"""Property: in local-only mode no request carrying prompt text reaches a remote model.

Over real sockets against the double, for every server version that matters (before remote
fields existed, the first with them, the first that forwards cloud names without a stub, the
newest), in both APIs (native and /v1), whatever mix of local models, cloud stubs and local
aliases of them is installed (an alias may carry a name that looks local, even a catalogue one),
and whichever model the caller names (or none), however it spells it.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from persona_ollama import OllamaProvider
from persona_ollama.choosing import hardware
from persona_ollama.errors import LocalOnlyViolationError, ModelNotPulledError
from persona_ollama.server_state import SERVERS
from persona_ollama.testing import FakeModel, FakeOllama
from persona_ollama.testing.ollama_models import remote_alias
from persona_ollama.testing.ollama_names import cloud_stub

VERSIONS = ["0.11.4", "0.12.0", "0.18.0", "0.33.0"]

local_names = st.from_regex(r"[a-z][a-z0-9]{2,7}:[1-9]b", fullmatch=True)
cloud_names = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{2,7}:[1-9]{1,3}b-cloud", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9]{2,7}:cloud", fullmatch=True),
)
alias_names = st.one_of(
    st.from_regex(r"[a-z]{3,8}-notes:latest", fullmatch=True),
    st.sampled_from(["mistral-small:24b", "qwen2.5:14b", "llama3.1:8b"]),  # catalogue names
)
prompts = st.from_regex(r"[A-Za-z][A-Za-z0-9 ]{8,60}", fullmatch=True)


@pytest.fixture(scope="module", params=VERSIONS)
def server(request):
    with FakeOllama([], version=request.param) as fake:
        yield fake


@st.composite
def installations(draw):
    """(models to install, the name the caller asks for or None)."""
    local = draw(st.lists(local_names, max_size=3, unique=True))
    clouds = draw(st.lists(cloud_names, max_size=2, unique=True))
    aliases = draw(st.lists(alias_names, max_size=2, unique=True))
    models: list[FakeModel] = [FakeModel(name) for name in local]
    stubs = [cloud_stub(name) for name in clouds]
    models += stubs
    source = stubs[0] if stubs else cloud_stub("gpt-oss:120b-cloud")
    models += [remote_alias(name, source) for name in aliases]
    uninstalled_cloud = draw(cloud_names)  # v0.18+ forwards it by name alone
    target = draw(st.sampled_from([None, uninstalled_cloud, *(m.name for m in models)]))
    if target is not None:  # the same model, spelled as the server would also accept it
        spell = draw(st.sampled_from([str, str.upper, lambda n: f"registry.ollama.ai/library/{n}"]))
        target = spell(target)
    return models, target


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(installed=installations(), prompt=prompts, api=st.sampled_from(["native", "openai"]))
def test_local_only_never_lets_prompt_text_reach_a_remote_model(server, installed, prompt, api):
    models, target = installed
    # Before v0.12 no remote models existed; the double's stubs there are known by their size,
    # which only the native listing gives.
    assume(api == "native" or server.version != "0.11.4")
    SERVERS.clear()  # what is known of the server and the warnings given
    hardware.clear_cache()
    server.reset()
    for model in models:
        server.add_model(model)
    try:
        provider = OllamaProvider(
            base_url=server.url,
            local_only=True,
            api=api,
            environ={"PERSONA_OLLAMA_MEMORY_GB": "16"},
        )
        marker = f"ZQX {prompt}"
        try:
            provider.generate(marker, model=target)
            sent = True
        except (LocalOnlyViolationError, ModelNotPulledError):
            sent = False
        remote = {m.name for m in models if m.is_remote}
        assert server.forwarded_requests == []
        for request in server.requests:
            if marker.encode() in request.body:
                assert request.path in ("/api/chat", "/v1/chat/completions")
                chosen = server._state.find(request.json["model"])
                assert chosen is not None and not chosen.is_remote
                assert chosen.name not in remote
        # Not vacuous: a local model the caller names does get the prompt.
        local = {m.name.lower() for m in models if not m.is_remote}
        if target is not None and target.lower().split("library/")[-1] in local:
            assert sent
    finally:
        for model in models:
            server.remove_model(model.name)
