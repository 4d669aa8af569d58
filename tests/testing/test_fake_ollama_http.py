"""FakeOllama: routing, errors, listings (docs/reference/ollama-protocol.md, "Routing and error
bodies", "Model list", "Model facts", "Loaded models", "Model names")."""

from __future__ import annotations

import http.client
import json
import re
import time

import pytest
import requests

from persona_ollama.testing import FakeModel, FakeOllama

RFC3339_NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
JSON_UTF8 = "application/json; charset=utf-8"


def raw_post(fake: FakeOllama, path: str, body: bytes) -> requests.Response:
    return requests.post(fake.url + path, data=body, timeout=5)


# --- / and /api/version ------------------------------------------------------------------------


def test_root_says_ollama_is_running_as_plain_text(fake_ollama: FakeOllama) -> None:
    response = requests.get(fake_ollama.url, timeout=5)

    assert response.status_code == 200
    assert response.text == "Ollama is running"
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("path", ["/", "/api/version", "/api/tags"])
def test_head_is_allowed_and_has_no_body(fake_ollama: FakeOllama, path: str) -> None:
    response = requests.head(fake_ollama.url + path, timeout=5)

    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["Content-Length"]) > 0


def test_version_reports_the_configured_version(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(version="0.12.3")

    response = requests.get(fake.url + "/api/version", timeout=5)

    assert response.json() == {"version": "0.12.3"}
    assert response.headers["Content-Type"] == JSON_UTF8


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


def test_query_strings_are_ignored_for_routing(fake_ollama: FakeOllama) -> None:
    response = requests.get(fake_ollama.url + "/api/version?x=1", timeout=5)

    assert response.status_code == 200
    assert fake_ollama.last_request().path == "/api/version"


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


def test_null_body_fails_later_validation(fake_ollama: FakeOllama) -> None:
    response = raw_post(fake_ollama, "/api/chat", b"null")

    assert (response.status_code, response.json()) == (400, {"error": "model is required"})


def test_trailing_data_after_the_first_json_value_is_ignored(fake_ollama: FakeOllama) -> None:
    response = raw_post(fake_ollama, "/api/show", b'{"model": "llama3.2:3b"} trailing')

    assert response.status_code == 200


def test_unknown_fields_are_ignored(fake_ollama: FakeOllama) -> None:
    response = requests.post(
        fake_ollama.url + "/api/show", json={"model": "llama3.2:3b", "colour": "blue"}, timeout=5
    )

    assert response.status_code == 200


def test_a_chunked_request_body_is_read(fake_ollama: FakeOllama) -> None:
    body = iter([b'{"model": ', b'"llama3.2:3b"}'])  # a generator makes requests send it chunked

    response = requests.post(fake_ollama.url + "/api/show", data=body, timeout=5)

    assert response.status_code == 200
    assert fake_ollama.last_request().json == {"model": "llama3.2:3b"}


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


def test_an_invalid_content_length_reads_as_an_empty_body(fake_ollama: FakeOllama) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake_ollama.port, timeout=5)
    connection.putrequest("POST", "/api/chat")
    connection.putheader("Content-Length", "lots")
    connection.endheaders()

    response = connection.getresponse()

    assert (response.status, json.loads(response.read())) == (
        400,
        {"error": "missing request body"},
    )
    connection.close()


# --- /api/tags ---------------------------------------------------------------------------------


def test_tags_lists_models_newest_first_with_every_documented_field(
    fake_ollama_factory,
) -> None:
    older = FakeModel("older:1b", modified_at=1_700_000_000.0)
    newer = FakeModel("newer:1b", modified_at=1_800_000_000.0)
    fake = fake_ollama_factory([older, newer])

    models = requests.get(fake.url + "/api/tags", timeout=5).json()["models"]

    assert [m["name"] for m in models] == ["newer:1b", "older:1b"]
    entry = models[0]
    assert list(entry) == [
        "name",
        "model",
        "modified_at",
        "size",
        "digest",
        "details",
        "capabilities",
    ]
    assert entry["model"] == entry["name"]
    assert HEX64.match(entry["digest"])
    assert RFC3339_NANO.match(entry["modified_at"])
    assert entry["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
        "context_length": 131072,
    }
    assert entry["capabilities"] == ["completion", "tools"]


def test_tags_with_no_models_is_an_empty_list(fake_ollama_factory) -> None:
    fake = fake_ollama_factory([])

    assert requests.get(fake.url + "/api/tags", timeout=5).json() == {"models": []}


def test_tags_before_v030_has_no_context_length_or_capabilities(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], version="0.29.1")

    entry = requests.get(fake.url + "/api/tags", timeout=5).json()["models"][0]

    assert "context_length" not in entry["details"]
    assert "capabilities" not in entry


def test_tags_shows_embedding_length_for_embedding_models_only(fake_ollama: FakeOllama) -> None:
    models = requests.get(fake_ollama.url + "/api/tags", timeout=5).json()["models"]
    details = {m["name"]: m["details"] for m in models}

    assert details["nomic-embed-text:latest"]["embedding_length"] == 768
    assert "embedding_length" not in details["llama3.2:3b"]


def test_unknown_context_length_is_left_out(fake_ollama_factory) -> None:
    fake = fake_ollama_factory([FakeModel("odd:1b", context_length=0)])

    tags = requests.get(fake.url + "/api/tags", timeout=5).json()
    show = requests.post(fake.url + "/api/show", json={"model": "odd:1b"}, timeout=5).json()

    assert "context_length" not in tags["models"][0]["details"]
    assert "llama.context_length" not in show["model_info"]


# --- /api/show ---------------------------------------------------------------------------------


def test_show_describes_the_model(fake_ollama_factory) -> None:
    model = FakeModel(
        "custom:7b",
        family="qwen2",
        parameter_size="7.6B",
        context_length=32768,
        parameters={"num_ctx": 8192, "temperature": 0.7, "stop": ["<|im_end|>", "<|x|>"]},
    )
    fake = fake_ollama_factory([model])

    show = requests.post(fake.url + "/api/show", json={"model": "custom:7b"}, timeout=5).json()

    assert show["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "qwen2",
        "families": ["qwen2"],
        "parameter_size": "7.6B",
        "quantization_level": "Q4_K_M",
    }
    info = show["model_info"]
    assert info["general.architecture"] == "qwen2"
    assert info["general.parameter_count"] == 7_600_000_000
    assert info["qwen2.context_length"] == 32768
    assert list(info) == sorted(info)
    assert show["parameters"].splitlines() == [
        "num_ctx".ljust(30) + " 8192",
        "temperature".ljust(30) + " 0.7",
        "stop".ljust(30) + ' "<|im_end|>"',
        "stop".ljust(30) + ' "<|x|>"',
    ]
    assert "FROM /root/.ollama/models/blobs/sha256-" + model.digest in show["modelfile"]
    assert "PARAMETER num_ctx 8192" in show["modelfile"]
    assert show["capabilities"] == ["completion", "tools"]
    assert RFC3339_NANO.match(show["modified_at"])
    assert show["template"]


def test_show_without_parameters_leaves_the_field_out(fake_ollama: FakeOllama) -> None:
    show = requests.post(fake_ollama.url + "/api/show", json={"model": "llama3.2:3b"}, timeout=5)

    assert "parameters" not in show.json()


def test_show_formats_parameter_values_like_go(fake_ollama_factory) -> None:
    model = FakeModel("m:1b", parameters={"use_mmap": False, "top_k": 40.0, "seed": 7})
    fake = fake_ollama_factory([model])

    show = requests.post(fake.url + "/api/show", json={"model": "m:1b"}, timeout=5).json()

    assert [line.split()[-1] for line in show["parameters"].splitlines()] == ["false", "40", "7"]


def test_show_accepts_the_deprecated_name_field(fake_ollama: FakeOllama) -> None:
    response = requests.post(fake_ollama.url + "/api/show", json={"name": "llama3.2:3b"}, timeout=5)

    assert response.status_code == 200


def test_show_without_a_model_is_400_model_is_required(fake_ollama: FakeOllama) -> None:
    response = requests.post(fake_ollama.url + "/api/show", json={}, timeout=5)

    assert (response.status_code, response.json()) == (400, {"error": "model is required"})


def test_show_missing_model_is_404_with_the_normalised_name(fake_ollama: FakeOllama) -> None:
    response = requests.post(fake_ollama.url + "/api/show", json={"model": "nope"}, timeout=5)

    assert (response.status_code, response.json()) == (
        404,
        {"error": "model 'nope:latest' not found"},
    )


def test_show_invalid_name_is_400(fake_ollama: FakeOllama) -> None:
    response = requests.post(fake_ollama.url + "/api/show", json={"model": "a b"}, timeout=5)

    assert (response.status_code, response.json()) == (400, {"error": "invalid model name"})


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


def test_namespaced_and_hosted_models_keep_their_prefix(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(["myuser/m", "hf.co/org/repo:Q4_K_M", "LIBRARY/x"])

    names = sorted(
        m["name"] for m in requests.get(fake.url + "/api/tags", timeout=5).json()["models"]
    )

    assert names == ["hf.co/org/repo:Q4_K_M", "myuser/m:latest", "x:latest"]


# --- /api/ps -----------------------------------------------------------------------------------


def test_ps_is_empty_until_a_model_runs(fake_ollama: FakeOllama) -> None:
    assert requests.get(fake_ollama.url + "/api/ps", timeout=5).json() == {"models": []}


def test_ps_shows_the_loaded_model_with_its_context_length(fake_ollama: FakeOllama) -> None:
    requests.post(
        fake_ollama.url + "/api/chat",
        json={
            "model": "llama3.2:3b",
            "messages": [{"role": "user", "content": "hi"}],
            "options": {"num_ctx": 8192},
            "stream": False,
        },
        timeout=5,
    )

    models = requests.get(fake_ollama.url + "/api/ps", timeout=5).json()["models"]

    assert len(models) == 1
    entry = models[0]
    assert list(entry) == [
        "name",
        "model",
        "size",
        "digest",
        "details",
        "expires_at",
        "size_vram",
        "context_length",
    ]
    assert entry["name"] == entry["model"] == "llama3.2:3b"
    assert entry["context_length"] == 8192
    assert entry["size_vram"] == entry["size"]
    assert HEX64.match(entry["digest"])
    assert RFC3339_NANO.match(entry["expires_at"])
    assert "context_length" not in entry["details"]
    assert fake_ollama.loaded_models == {"llama3.2:3b": 8192}


def _load(fake: FakeOllama, model: str, keep_alive: object) -> None:
    requests.post(
        fake.url + "/api/chat", json={"model": model, "keep_alive": keep_alive}, timeout=5
    )


def test_ps_sorts_by_expiry_and_shows_far_future_for_forever(fake_ollama: FakeOllama) -> None:
    _load(fake_ollama, "llama3.2:3b", "1m")
    _load(fake_ollama, "qwen3:8b", -1)

    models = requests.get(fake_ollama.url + "/api/ps", timeout=5).json()["models"]

    assert [m["name"] for m in models] == ["qwen3:8b", "llama3.2:3b"]
    assert int(models[0]["expires_at"][:4]) > 2200


def test_ps_drops_models_whose_keep_alive_expired(fake_ollama: FakeOllama) -> None:
    _load(fake_ollama, "llama3.2:3b", "1ms")
    time.sleep(0.01)

    models = requests.get(fake_ollama.url + "/api/ps", timeout=5).json()["models"]

    assert models == []


def test_ps_before_v010_has_no_context_length(fake_ollama_factory) -> None:
    fake = fake_ollama_factory(["llama3.2:3b"], version="0.9.6")
    _load(fake, "llama3.2:3b", "5m")

    entry = requests.get(fake.url + "/api/ps", timeout=5).json()["models"][0]

    assert "context_length" not in entry


def test_created_at_has_nine_fractional_digits_and_z(fake_ollama: FakeOllama) -> None:
    response = requests.post(
        fake_ollama.url + "/api/chat", json={"model": "llama3.2:3b"}, timeout=5
    )

    assert RFC3339_NANO_UTC.match(response.json()["created_at"])
