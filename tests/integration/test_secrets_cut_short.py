"""A configured secret that a server echoes where the plugin shows only the start of a value
(the 57 characters of a wrong-typed field, the 200 of a line or body that is not JSON) must
not come out either, not even its first characters. Real sockets: a raw loopback server puts
the echoed Authorization header at every offset around each cut."""

from __future__ import annotations

import base64
import json

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import OllamaError
from persona_ollama.testing.hostile import HostileServer, Request, respond

TOKEN = "sk-Q7vXw2LmZ9rTy4KpB8nHc3Jd6Fg"
LISTING = {"models": [{"name": "m:latest", "size": 4 << 30, "digest": "d" * 64}]}


def _leaks(text: str) -> list[str]:
    """The starts of the token (4 characters or more) that ``text`` shows."""
    return [TOKEN[:k] for k in range(4, len(TOKEN) + 1) if TOKEN[:k] in text]


class Echo:
    """Routes that echo the request's Authorization header after ``pad`` characters, in the
    place the current ``shape`` says."""

    def __init__(self) -> None:
        self.pad = 0
        self.shape = "tags-field"
        routes = {path: self._route for path in ("/api/tags", "/v1/models", "/api/chat")}
        routes["/api/show"] = lambda request, conn: respond(conn, b'{"details": {}}')
        self.server = HostileServer(routes)

    def _route(self, request: Request, conn) -> bool:
        auth = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
        echoed = "x" * self.pad + auth + " and the rest of the headers"
        if request.path == "/api/chat":
            if self.shape == "chat-line":
                return respond(conn, echoed.encode() + b"\n")
            return respond(conn, json.dumps({"message": {"content": [echoed]}}).encode() + b"\n")
        if request.path == "/api/tags" and self.shape in ("chat-line", "chat-field"):
            return respond(conn, json.dumps(LISTING).encode())
        if self.shape == "not-json":
            return respond(conn, echoed.encode(), headers={"Content-Type": "text/html"})
        field = "models" if request.path == "/api/tags" else "data"
        return respond(conn, json.dumps({field: echoed}).encode())


@pytest.fixture(scope="module")
def echo():
    served = Echo()
    with served.server:
        yield served


# Each shape with the offsets that put the cut inside "Bearer TOKEN": a wrong-typed field is
# shown as its first 57 characters of repr() (a quote, then 56), a line or body that is not JSON
# as its first 200 bytes.
CUTS = {
    "tags-field": range(56 - len("Bearer ") - len(TOKEN), 56 - len("Bearer ") + 1, 3),
    "chat-field": range(55 - len("Bearer ") - len(TOKEN), 55 - len("Bearer ") + 1, 3),
    "chat-line": range(200 - len("Bearer ") - len(TOKEN), 200 - len("Bearer ") + 1, 3),
    "not-json": range(200 - len("Bearer ") - len(TOKEN), 200 - len("Bearer ") + 1, 3),
}
CASES = [(shape, pad) for shape, pads in CUTS.items() for pad in pads]


@pytest.mark.parametrize("api", ["native", "openai"])
@pytest.mark.parametrize(("shape", "pad"), CASES)
def test_no_start_of_a_secret_shows_where_a_value_is_cut_short(echo, shape, pad, api):
    echo.shape, echo.pad = shape, pad
    provider = OllamaProvider(
        base_url=echo.server.url, model="m", api=api, api_key=TOKEN, retries=0, environ={}
    )
    texts = []
    try:
        for call in (provider.installed_models, lambda: provider.generate("hi", max_tokens=4)):
            try:
                call()
            except OllamaError as error:
                texts += [str(error), repr(error), error.server_text or ""]
    finally:
        provider.close()

    assert texts  # the echo did make the calls fail
    for text in texts:
        assert not _leaks(text), text


@pytest.mark.parametrize("args", [["models"], ["models", "--json"], ["doctor", "--json"]])
def test_the_cli_shows_no_start_of_a_secret_cut_short_in_a_wrong_typed_list(echo, cli_runner, args):
    echo.shape, echo.pad = "tags-field", 56 - len("Bearer ") - 10
    env = {"OLLAMA_HOST": echo.server.url, "PERSONA_OLLAMA_API_KEY": TOKEN}

    result = cli_runner.invoke(main, args, env=env)

    assert "where a list was expected" in result.output + result.stderr
    assert not _leaks(result.output + result.stderr)


@pytest.mark.parametrize("case", [str.upper, str.lower])
@pytest.mark.parametrize("api", ["native", "openai"])
def test_a_secret_echoed_in_another_case_is_scrubbed(case, api, cli_runner):
    """A gateway's error page that shows the headers upper-cased (or lower-cased) still shows
    the token, and basic auth's base64 with the user and password, to anyone who reads it."""

    def shout(request: Request, conn) -> bool:
        echoed = case(json.dumps(dict(request.headers.items())))
        return respond(conn, json.dumps({"error": echoed}).encode(), status=401)

    paths = ("/api/tags", "/api/show", "/api/chat", "/v1/models", "/v1/chat/completions")
    with HostileServer(dict.fromkeys(paths, shout)) as server:
        for auth, key in ((TOKEN, TOKEN), ("alice:" + TOKEN, None)):
            base = server.url.replace("http://", f"http://{auth}@") if key is None else server.url
            provider = OllamaProvider(
                base_url=base, model="m", api=api, api_key=key, retries=0, environ={}
            )
            with pytest.raises(OllamaError) as raised:
                provider.generate("hi", max_tokens=4)
            provider.close()
            basic = base64.b64encode(f"alice:{TOKEN}".encode()).decode()
            result = cli_runner.invoke(main, ["doctor", "--json"], env={"OLLAMA_HOST": base})
            assert "[redacted]" in str(raised.value)  # the echo did reach the message
            for text in (str(raised.value), raised.value.server_text or "", result.output):
                for secret in (TOKEN, basic):
                    assert case(secret)[4:] not in case(text), text


@pytest.mark.parametrize("variant", ["unpadded", "urlsafe"])
def test_basic_auth_echoed_in_another_base64_alphabet_or_unpadded_is_scrubbed(variant):
    """A gateway that decodes and re-encodes the header (URL-safe alphabet, no padding)."""
    password = "pa>ss?w~rd"  # its base64 holds "+" or "/" and ends in padding

    def echo(request: Request, conn) -> bool:
        value = {k.lower(): v for k, v in request.headers.items()}["authorization"].split()[1]
        raw = base64.b64decode(value)
        shown = base64.urlsafe_b64encode(raw) if variant == "urlsafe" else base64.b64encode(raw)
        body = {"error": "denied: " + shown.decode().rstrip("=")}
        return respond(conn, json.dumps(body).encode(), status=401)

    with HostileServer({"/api/tags": echo, "/api/show": echo, "/api/chat": echo}) as server:
        base = server.url.replace("http://", "http://alice:pa%3Ess%3Fw~rd@")
        provider = OllamaProvider(base_url=base, model="m", retries=0, environ={})
        with pytest.raises(OllamaError) as raised:
            provider.generate("hi", max_tokens=4)
        provider.close()

    encoded = base64.b64encode(f"alice:{password}".encode()).decode()
    assert set(encoded) & set("+/") and encoded.endswith("=")  # the case is the hard one
    for form in (
        encoded.rstrip("="),
        base64.urlsafe_b64encode(f"alice:{password}".encode()).decode().rstrip("="),
    ):
        assert form[4:] not in str(raised.value)
    assert "[redacted]" in str(raised.value)
