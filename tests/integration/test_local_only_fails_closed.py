"""Local-only mode fails closed, over real sockets: when the server cannot say where a model
runs (its listing fails or is malformed), the prompt is not sent; placement facts are never
older than the provider's own listing; remote fields only in /api/show are seen; and a model
replaced between the check and the send has its answer refused in /v1 mode as in native."""

from __future__ import annotations

import dataclasses
import json

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.errors import LocalOnlyViolationError, OllamaNotRunningError
from persona_ollama.testing import FakeModel, FakeOllama
from persona_ollama.testing.native import NativeFace
from persona_ollama.testing.openai import OpenAIFace
from persona_ollama.testing.wire import json_reply

MODEL = "notes:latest"
CLOUD = "gpt-oss:120b-cloud"


def provider_for(fake: FakeOllama, api: str) -> OllamaProvider:
    provider = OllamaProvider(base_url=fake.url, model=MODEL, api=api, local_only=True, environ={})
    provider.backend.transport.backoff = 0
    return provider


def replace_with_cloud_alias(fake: FakeOllama) -> None:
    """`ollama create notes FROM gpt-oss:120b-cloud` over the local model of that name."""
    fake.remove_model(MODEL)
    fake.add_remote_alias(MODEL, fake.add_cloud_model(CLOUD))


@pytest.mark.parametrize("failure", ["500", "403", "malformed"])
def test_a_listing_that_fails_once_after_a_model_was_replaced_refuses(api, failure):
    with FakeOllama([FakeModel(MODEL)]) as fake:
        provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)  # facts cached
        replace_with_cloud_alias(fake)
        listing = "/api/tags" if api == "native" else "/v1/models"
        if failure == "malformed":
            fake.malformed_json_next(path=listing)
            fake.malformed_json_next(path="/api/tags")
        else:
            fake.fail_next(3, status=int(failure), error="denied", path="/api/tags")
            if api == "openai":
                fake.fail_next(3, status=int(failure), error="denied", path=listing)

        with pytest.raises(LocalOnlyViolationError, match="could not be established"):
            provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)

        assert fake.forwarded_requests == []
        assert len(fake.generations) == 1  # the first call's only


def test_a_listing_that_fails_refuses_even_a_model_that_is_local(api):
    with FakeOllama([FakeModel(MODEL)]) as fake:
        fake.fail_next(3, status=500, error="boom", path="/api/tags")
        with pytest.raises(LocalOnlyViolationError) as raised:
            provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)

    assert "PERSONA_OLLAMA_LOCAL_ONLY" in (raised.value.hint or "")
    assert "doctor" in (raised.value.hint or "")
    assert fake.generations == []


def test_a_description_that_fails_refuses(api):
    with FakeOllama([FakeModel(MODEL)]) as fake:
        fake.fail_next(3, status=500, error="boom", path="/api/show")
        with pytest.raises(LocalOnlyViolationError, match="could not be established"):
            provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)

    assert fake.generations == []


def test_a_server_that_is_down_is_reported_as_down_not_as_a_local_only_refusal(api):
    with FakeOllama() as fake:
        url = fake.url
    provider = OllamaProvider(base_url=url, model=MODEL, api=api, local_only=True, environ={})
    with pytest.raises(OllamaNotRunningError):
        provider.generate("Describe a nurse.", max_tokens=16)


def test_cached_facts_older_than_the_listing_are_not_trusted(api):
    # The listing is fine but a server can list a remote alias without its remote fields;
    # the cached (local) facts must not decide: the model is described again.
    with FakeOllama([FakeModel(MODEL)], faces=_without_remote_in_listing()) as fake:
        provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)
        replace_with_cloud_alias(fake)

        with pytest.raises(LocalOnlyViolationError, match=r"ollama\.com"):
            provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)

        assert fake.forwarded_requests == []


def test_remote_fields_only_in_api_show_are_seen(api):
    with FakeOllama([FakeModel(MODEL)], faces=_without_remote_in_listing()) as fake:
        replace_with_cloud_alias(fake)

        with pytest.raises(LocalOnlyViolationError, match=r"ollama\.com"):
            provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)

        assert fake.forwarded_requests == []


def test_a_model_replaced_between_the_check_and_the_send_is_refused_in_both_apis(api):
    with FakeOllama([FakeModel(MODEL)]) as fake:
        provider = provider_for(fake, api)
        provider.backend  # noqa: B018 - opened now, so that its preparation can be wrapped
        preparation = provider._preparation
        prepare = preparation.prepare

        def prepare_then_replace(call, **deadline):
            prepared = prepare(call, **deadline)
            replace_with_cloud_alias(fake)  # after every check, before the request
            return prepared

        preparation.prepare = prepare_then_replace
        pieces: list[str] = []
        with pytest.raises(LocalOnlyViolationError, match="discarded"):
            provider.generate("Describe a nurse.", max_tokens=16, on_token=pieces.append)

    assert len(fake.forwarded_requests) == 1  # the prompt did leave: that is what is reported
    assert pieces == []  # and nothing of the forwarded answer was passed on


def test_a_stub_is_refused_by_its_size_alone_in_both_apis(api):
    # Neither the list nor the description names a remote host: the few hundred bytes the
    # server holds for the model say it has no weights there.
    faces = _without_remote_in_listing(show_too=True, real_sizes=False)
    with FakeOllama([FakeModel(MODEL)], faces=faces) as fake:
        replace_with_cloud_alias(fake)

        with pytest.raises(LocalOnlyViolationError, match="bytes for it"):
            provider_for(fake, api).generate("Describe a nurse.", max_tokens=16)

        assert fake.forwarded_requests == []


def test_v1_answer_is_discarded_when_the_model_cannot_be_placed_after_sending():
    with FakeOllama([FakeModel(MODEL)]) as fake:
        provider = provider_for(fake, "openai")
        provider.backend  # noqa: B018 - opened now, so that its preparation can be wrapped
        preparation = provider._preparation
        prepare = preparation.prepare

        def prepare_then_break_the_listing(call, **deadline):
            prepared = prepare(call, **deadline)
            fake.fail_next(3, status=500, error="boom", path="/api/tags")
            return prepared

        preparation.prepare = prepare_then_break_the_listing
        pieces: list[str] = []
        with pytest.raises(LocalOnlyViolationError, match="discarded the answer") as raised:
            provider.generate("Describe a nurse.", max_tokens=16, on_token=pieces.append)

    assert "may have left" in raised.value.message
    assert pieces == []


def _without_remote_in_listing(*, show_too: bool = False, real_sizes: bool = True):
    """The double's faces, but /api/tags (and /api/show with ``show_too``) leaves out
    remote_host/remote_model, as a server may that puts them in /api/show only;
    ``real_sizes`` lists every model with the size of real weights."""
    native = NativeFace()
    routes = []
    for route in native.routes:
        if route.path == "/api/tags" or (show_too and route.path == "/api/show"):
            handler = route.handle

            def stripped(call, handler=handler):
                reply = handler(call)
                body = json.loads(reply.body)
                for model in body.get("models", [body]):
                    for key in ("remote_host", "remote_model"):
                        model.pop(key, None)
                    if real_sizes and "size" in model:
                        model["size"] = 5_000_000_000
                return json_reply(body, status=reply.status)

            route = dataclasses.replace(route, handle=stripped)
        routes.append(route)

    class ListingWithoutRemoteFields(NativeFace):
        pass

    ListingWithoutRemoteFields.routes = tuple(routes)
    return [ListingWithoutRemoteFields(), OpenAIFace()]
