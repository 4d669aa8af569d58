"""End-to-end fuzzing of the two transport promises that a misbehaving server tests most:
configured secrets never come back out of an error body that echoes the request's headers
(in any spelling, behind any status and framing), and local-only mode never sends a prompt
after a model listing that failed (a listing that fails between calls, served over a socket).

Counted with the other fuzz properties (conftest.py); tox's `fuzz` environment runs
PERSONA_OLLAMA_FUZZ_EXAMPLES/2 cases of each, the default suite a dozen.
"""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzzed_server_responses import _examples, fuzz, listing_lines, responses

from persona_ollama import OllamaProvider
from persona_ollama.errors import LocalOnlyViolationError, OllamaError
from persona_ollama.testing.hostile import HostileServer, chat_line, done_line, respond

ECHO_CASES = _examples(0.5, 12)
LISTING_CASES = _examples(0.5, 12)
TOKEN = "sk-fuzz/Token+value=="
USER, PASSWORD = "alice", "p@ss w%rd/x:y"


def _spellings(value: str) -> list[str]:
    return [value, quote(value, safe=""), quote(value), json.dumps(value)[1:-1]]


SECRETS = [
    *_spellings(TOKEN),
    *_spellings(PASSWORD),
    base64.b64encode(f"{USER}:{PASSWORD}".encode("latin-1")).decode(),
]


@st.composite
def echoes(draw):
    """A response (an error status, or a 200 page from a proxy) whose body repeats the
    request's headers in some spelling."""
    status = draw(st.sampled_from([200, 400, 401, 403, 404, 405, 500, 502, 503]))
    spelling = draw(st.sampled_from(["raw", "json", "percent", "nested", "html", "upper", "field"]))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    return status, spelling, framing


class Echoing:
    """Every route echoes the headers of the request, as the current case says."""

    def __init__(self) -> None:
        self.case = (500, "raw", "length")
        self.server = HostileServer(
            {
                path: self._echo
                for path in ("/api/chat", "/api/show", "/api/tags", "/v1/models", "/api/version")
            }
        )

    def _echo(self, request, conn) -> bool:
        status, spelling, framing = self.case
        dump = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
        text = {
            "raw": dump,
            "json": json.dumps(request.headers),
            "percent": quote(dump, safe=""),
            "nested": json.dumps({"error": {"message": dump}}),
            "html": f"<pre>{dump}</pre>",
            "upper": dump.upper(),
            "field": dump,
        }[spelling]
        body = json.dumps({"error": text}).encode() if spelling != "html" else text.encode()
        if spelling == "field":  # a wrong-typed field of a successful answer, shown cut short
            echoed = "x" * (len(request.path) * 3 % 50) + text
            body = json.dumps({"models": echoed, "data": echoed, "message": echoed}).encode()
        return respond(conn, body, status=status, framing=framing)


@pytest.fixture
def echoing():
    echo = Echoing()
    with echo.server:
        yield echo


@fuzz(ECHO_CASES)
@given(case=echoes(), api=st.sampled_from(["native", "openai"]), key=st.booleans())
def test_no_secret_comes_back_from_an_echoing_server(echoing, case, api, key, tally, caplog):
    tally()
    echoing.case = case
    caplog.set_level(logging.DEBUG)
    base = echoing.server.url
    if not key:
        base = base.replace("http://", f"http://{USER}:{quote(PASSWORD, safe='')}@")
    provider = OllamaProvider(
        base_url=base,
        model="m",
        api=api,
        api_key=TOKEN if key else None,
        retries=0,
        timeout=5,
        environ={},
    )
    texts = []
    try:
        provider.generate("hi", max_tokens=8)
    except OllamaError as error:
        texts += [str(error), repr(error), error.server_text or "", error.hint or ""]
    texts += [str(provider.health())]
    texts += [record.getMessage() for record in caplog.records]
    provider.close()
    caplog.clear()

    for text in texts:  # in any case, and no start of one (8 characters) either
        assert not [s for s in SECRETS if s[:8].lower() in text.lower()], text


class FlakyListing:
    """A server whose model list is, at each call, the current fuzzed response; the rest of
    the API is a plain local model. ``chats`` counts the prompts that reached it."""

    def __init__(self) -> None:
        self.case: dict = {}
        self.chats = 0
        listing = {"models": [{"name": "m:latest", "size": 4 << 30, "digest": "d"}]}
        self.good = json.dumps(listing).encode()
        self.server = HostileServer({"/api/tags": self._tags, "/api/chat": self._chat})

    def _tags(self, request, conn) -> bool:
        conn.send(self.case["wire"])
        return False

    def _chat(self, request, conn) -> bool:
        self.chats += 1
        body = chat_line("ok") + done_line()
        return respond(conn, body, headers={"Content-Type": "application/x-ndjson"})


@pytest.fixture
def flaky():
    listing = FlakyListing()
    with listing.server:
        yield listing


@fuzz(LISTING_CASES)
@given(case=responses(listing_lines(), "application/json"))
def test_local_only_never_sends_after_a_listing_that_failed(flaky, case, tally):
    tally()
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
    flaky.case = {"wire": head % len(flaky.good) + flaky.good}
    url = flaky.server.url
    first = OllamaProvider(base_url=url, model="m", local_only=True, retries=0, environ={})
    first.generate("hi", max_tokens=8)  # a good listing: the facts are cached, it was sent
    before = flaky.chats
    flaky.case = case  # the listing now fails, or answers anything

    second = OllamaProvider(base_url=url, model="m", local_only=True, retries=0, environ={})
    try:
        second.generate("hi", max_tokens=8)
    except LocalOnlyViolationError:
        assert flaky.chats == before  # refused: nothing was sent
    except OllamaError:
        assert flaky.chats == before
    else:
        assert case["status"] < 300  # sent only after a listing that was read
    first.close()
    second.close()
