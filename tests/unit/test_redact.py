"""Redactor: every form a configured secret can be echoed in is scrubbed (a table of forms)."""

from __future__ import annotations

import base64
import json

import pytest

from persona_ollama.errors import OllamaResponseError
from persona_ollama.transport.redact import REDACTED, Redactor

TOKEN = "sk-live/abc+def=="
USER, PASSWORD = "alice", "p@ss:w/rd%"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor.for_request({"Authorization": f"Bearer {TOKEN}"}, (USER, PASSWORD))


@pytest.mark.parametrize(
    "echoed",
    [
        f"Bearer {TOKEN}",
        TOKEN,
        "sk-live%2Fabc%2Bdef%3D%3D",  # percent-encoded
        "sk-live%2fabc%2bdef%3d%3d",  # with lower-case hex
        "sk-live/abc%2Bdef%3D%3D",  # quote() keeps "/"
        PASSWORD,
        "p%40ss%3Aw%2Frd%25",
        base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),  # basic auth
    ],
)
def test_each_form_of_a_secret_is_scrubbed(redactor, echoed):
    text = redactor.text(f'{{"headers": "{echoed}", "x": 1}}')

    assert echoed not in text
    assert REDACTED in text


@pytest.mark.parametrize("quoted", [repr, lambda s: json.dumps(s)])
def test_a_secret_with_quotes_is_scrubbed_from_repr_and_json_quoting(quoted):
    secret = 'it\'s "quoted" \\ too'
    redactor = Redactor.for_request({"Authorization": f"Bearer {secret}"})

    text = redactor.text(f"The server sent a line that is not JSON: {quoted(secret)}")

    assert "quoted" not in text


def test_an_error_is_scrubbed_in_its_message_hint_server_text_and_args(redactor):
    error = OllamaResponseError(f"denied: {TOKEN}", hint=TOKEN, server_text=f"Bearer {TOKEN}")

    redactor.error(error)

    assert TOKEN not in str(error) + repr(error) + error.server_text + str(error.args)


def test_a_lone_user_name_counts_as_a_secret_and_short_values_are_left_alone():
    redactor = Redactor.for_request({}, ("tok-en-12345", ""))
    assert redactor.text("user tok-en-12345") == f"user {REDACTED}"
    assert Redactor.for_request({}, ("bob", "pw")).text("bob pw") == "bob pw"
    assert not Redactor([])


@pytest.mark.parametrize("size", range(4, len(TOKEN)))
@pytest.mark.parametrize("cut", ["{}... (str) where a list was expected", "'xx{}'", "tail {}"])
def test_the_start_of_a_secret_cut_short_is_scrubbed(redactor, size, cut):
    text = redactor.text("The server's answer: " + cut.format(TOKEN[:size]))

    assert TOKEN[:4] not in text
    assert REDACTED in text


def test_a_start_of_a_secret_not_at_a_cut_and_text_near_it_are_kept(redactor):
    text = f"said sk-l and 'sk-livestock' then '{TOKEN[:3]}'"

    assert redactor.text(text) == text
    assert redactor.text("x 'alic' y") == "x 'alic' y"  # a user name beside a password is no secret


def test_a_document_is_scrubbed_in_its_text_values_but_not_its_identifiers():
    redactor = Redactor.for_request({"Authorization": "Bearer llama"})
    document = {
        "models": [{"name": "llama3:8b", "model": "llama3:8b", "remote_host": "x/Bearer llama"}],
        "count": 3,
        "details": {"family": "llama"},
    }

    scrubbed = redactor.data(document)

    assert scrubbed["models"][0]["name"] == "llama3:8b"  # a short password cannot break a name
    assert scrubbed["models"][0]["remote_host"] == f"x/{REDACTED}"
    assert scrubbed["details"] == {"family": REDACTED}
    assert scrubbed["count"] == 3
    assert Redactor([]).data(document) is document
