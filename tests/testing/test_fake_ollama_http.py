"""FakeOllama: routing, errors, listings (docs/reference/ollama-protocol.md, "Routing and error
bodies", "Model list", "Model facts", "Loaded models", "Model names")."""

from __future__ import annotations

import http.client
import json
import re

import pytest
import requests

from persona_ollama.testing import FakeOllama

RFC3339_NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
JSON_UTF8 = "application/json; charset=utf-8"


def raw_post(fake: FakeOllama, path: str, body: bytes) -> requests.Response:
    return requests.post(fake.url + path, data=body, timeout=5)


# --- / and /api/version ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/version", "/api/tags"])
def test_head_is_allowed_and_has_no_body(fake_ollama: FakeOllama, path: str) -> None:
    response = requests.head(fake_ollama.url + path, timeout=5)

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["Content-Length"]) > 0


def test_responses_have_a_date_but_no_python_server_header(fake_ollama: FakeOllama) -> None:
    response = requests.get(fake_ollama.url, timeout=5)

    assert "Date" in response.headers
    assert "Server" not in response.headers


# --- routing -----------------------------------------------------------------------------------


def test_unknown_path_is_a_plain_text_404(fake_ollama: FakeOllama) -> None:
    response = requests.get(fake_ollama.url + "/api/nope", timeout=5)

    assert response.status_code == 404
    assert response.text == "404 page not found"
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/chat"), ("POST", "/api/tags"), ("HEAD", "/api/ps"), ("DELETE", "/api/show")],
)
def test_known_path_with_the_wrong_method_is_a_405(
    fake_ollama: FakeOllama, method: str, path: str
) -> None:
    response = requests.request(method, fake_ollama.url + path, timeout=5)

    assert response.status_code == 405
    if method != "HEAD":
        assert response.text == "405 method not allowed"


def test_real_endpoints_the_double_lacks_answer_501_naming_them(fake_ollama: FakeOllama) -> None:
    response = requests.post(fake_ollama.url + "/api/embed", json={"model": "x"}, timeout=5)

    assert response.status_code == 501
    assert response.json() == {"error": "FakeOllama does not implement POST /api/embed"}


# --- request decoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "missing request body"),
        (b"  \n", "missing request body"),
        (b"{", "unexpected EOF"),
        (b'{"model": "x"', "unexpected EOF"),
        (b'{"model": "x', "unexpected EOF"),
        (b'{"model": }', "invalid character '}' looking for beginning of value"),
        (b"{model}", "invalid character 'm' looking for beginning of object key string"),
        (b'{"model" "x"}', "invalid character '\"' after object key"),
        (b'{"model": "x" "y"}', "invalid character '\"' after object key:value pair"),
        (b'{"messages": [1 2]}', "invalid character '2' after array element"),
        (b'{"model": "a\nb"}', "invalid character '\\n' in string literal"),
        (b'{"model": "\\q"}', "invalid character 'q' in string escape code"),
        (b"{'model': 1}", "invalid character '\\'' looking for beginning of object key string"),
        (b'{"model": NaN}', "invalid character 'N' looking for beginning of value"),
        (b'{"model": -}', "invalid character '}' in numeric literal"),
        (b'{"model": -', "unexpected EOF"),
        (b'{"model": "\\u12x4"}', "invalid character 'x' in \\u hexadecimal character escape"),
        (b'{"model": "\\u12', "unexpected EOF"),
        (b'{"a": [1, {}], "b": 1 2}', "invalid character '2' after object key:value pair"),
        (b'{"a": "x\\"]", "b": [1 2]}', "invalid character '2' after array element"),
        (
            b'{"model": true}',
            "json: cannot unmarshal bool into Go struct field ChatRequest.model of type string",
        ),
        (b"[1]", "json: cannot unmarshal array into Go value of type api.ChatRequest"),
        (b'"x"', "json: cannot unmarshal string into Go value of type api.ChatRequest"),
        (
            b'{"model": 1}',
            "json: cannot unmarshal number into Go struct field ChatRequest.model of type string",
        ),
        (
            b'{"model": "m", "stream": "yes"}',
            "json: cannot unmarshal string into Go struct field ChatRequest.stream of type bool",
        ),
        (
            b'{"model": "m", "options": []}',
            "json: cannot unmarshal array into Go struct field ChatRequest.options "
            "of type map[string]interface {}",
        ),
        (
            b'{"model": "m", "messages": {}}',
            "json: cannot unmarshal object into Go struct field ChatRequest.messages "
            "of type []api.Message",
        ),
        (
            b'{"model": "m", "messages": ["hi"]}',
            "json: cannot unmarshal string into Go struct field ChatRequest.messages "
            "of type api.Message",
        ),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": 5}]}',
            "json: cannot unmarshal number into Go struct field ChatRequest.messages.content "
            "of type string",
        ),
        (
            b'{"model": "m", "top_logprobs": 1.5}',
            "json: cannot unmarshal number 1.5 into Go struct field ChatRequest.top_logprobs "
            "of type int",
        ),
        (
            b'{"model": "m", "stream": true, "truncate": 1}',
            "json: cannot unmarshal number into Go struct field ChatRequest.truncate of type bool",
        ),
    ],
)
def test_bad_bodies_get_400_with_gos_decoder_message(
    fake_ollama: FakeOllama, body: bytes, error: str
) -> None:
    response = raw_post(fake_ollama, "/api/chat", body)

    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert response.headers["Content-Type"] == JSON_UTF8


def test_a_chunked_request_body_with_trailers_is_read(fake_ollama: FakeOllama) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake_ollama.port, timeout=5)
    connection.putrequest("POST", "/api/show")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    body = b'{"model": "llama3.2:3b"}'
    connection.send(b"%x;ext=1\r\n%s\r\n0\r\nX-Checksum: 1\r\n\r\n" % (len(body), body))

    response = connection.getresponse()

    assert response.status == 200
    assert json.loads(response.read())["details"]["family"] == "llama"
    connection.close()


# --- /api/tags ---------------------------------------------------------------------------------


# --- /api/show ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "llama3",
        "llama3:latest",
        "LLAMA3:Latest",
        "library/llama3",
        "registry.ollama.ai/library/llama3:latest",
        "https://registry.ollama.ai/library/llama3:latest",
    ],
)
def test_every_spelling_of_a_name_finds_the_same_model(fake_ollama_factory, spelling: str) -> None:
    fake = fake_ollama_factory(["llama3"])

    response = requests.post(fake.url + "/api/show", json={"model": spelling}, timeout=5)

    assert response.status_code == 200


@pytest.mark.parametrize(
    "name", ["a b", "m:", "/m", "a/b/c/d", "ns.x/m", "-m", "m:" + "t" * 81, "é"]
)
def test_malformed_names_are_400_invalid_model_name(fake_ollama: FakeOllama, name: str) -> None:
    response = requests.post(fake_ollama.url + "/api/show", json={"model": name}, timeout=5)

    assert (response.status_code, response.json()) == (400, {"error": "invalid model name"})


# --- /api/ps -----------------------------------------------------------------------------------


def _load(fake: FakeOllama, model: str, keep_alive: object) -> None:
    requests.post(
        fake.url + "/api/chat", json={"model": model, "keep_alive": keep_alive}, timeout=5
    )


def test_ps_before_v010_has_no_context_length(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], version="0.9.6")
    _load(fake, "llama3.2:3b", "5m")

    entry = requests.get(fake.url + "/api/ps", timeout=5).json()["models"][0]

    assert "context_length" not in entry
