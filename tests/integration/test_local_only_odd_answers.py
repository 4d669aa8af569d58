"""Local-only mode over real sockets, against answers that say a model runs elsewhere in a form
the plugin did not expect, or that hide where it runs: a remote field of the wrong type, a
stub's size that is not a whole number, and (in /v1 mode on Ollama) a proxy in front of the
server that lets /v1 through but answers 404 for the native model list. None of them may let a
prompt leave: the raw server records every generation request it gets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.errors import LocalOnlyViolationError
from persona_ollama.testing.hostile import HostileServer, Request, chat_line, done_line, respond

MODEL = "notes:latest"
PROMPT = "Describe a nurse named Ada Lovelace-Okafor."
V1_ANSWER = (
    'data: {"id":"x","object":"chat.completion.chunk","system_fingerprint":"fp_ollama",'
    '"choices":[{"index":0,"delta":{"role":"assistant","content":"ok"},"finish_reason":null}]}'
    "\n\n"
    'data: {"id":"x","object":"chat.completion.chunk","system_fingerprint":"fp_ollama",'
    '"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\ndata: [DONE]\n\n'
)


class Server:
    """An Ollama-like raw server: one model, listed with ``listed`` and shown with ``shown``
    added to its fields; /api/tags answers ``tags_status``; ``sent`` holds every prompt."""

    def __init__(
        self, listed: dict[str, Any], shown: dict[str, Any], tags_status: int = 200
    ) -> None:
        self.listed, self.shown, self.tags_status = listed, shown, tags_status
        self.sent: list[bytes] = []
        self.server = HostileServer(
            {
                "/api/tags": self._tags,
                "/api/show": self._show,
                "/api/version": lambda r, c: respond(c, b'{"version": "0.30.0"}'),
                "/v1/models": self._models,
                "/api/chat": self._chat,
                "/v1/chat/completions": self._chat,
            }
        )

    def _tags(self, request: Request, conn) -> bool:
        entry = {"name": MODEL, "model": MODEL, "size": 4 << 30, "digest": "d" * 64}
        body = {"models": [{**entry, **self.listed}]}
        if self.tags_status != 200:
            body = {"error": "404 page not found"}
        return respond(conn, json.dumps(body).encode(), status=self.tags_status)

    def _show(self, request: Request, conn) -> bool:
        body = {
            "details": {"family": "llama"},
            "model_info": {"llama.context_length": 8192},
            "capabilities": ["completion"],
            **self.shown,
        }
        return respond(conn, json.dumps(body).encode())

    def _models(self, request: Request, conn) -> bool:
        entry = {"id": MODEL, "object": "model", "owned_by": "library"}
        return respond(conn, json.dumps({"object": "list", "data": [entry]}).encode())

    def _chat(self, request: Request, conn) -> bool:
        self.sent.append(request.body)
        if request.path == "/api/chat":
            body = chat_line("ok") + done_line()
            return respond(conn, body, headers={"Content-Type": "application/x-ndjson"})
        return respond(conn, V1_ANSWER.encode(), headers={"Content-Type": "text/event-stream"})


def generate(served: Server, api: str) -> None:
    with served.server:
        provider = OllamaProvider(
            base_url=served.server.url,
            model=MODEL,
            api=api,
            local_only=True,
            retries=0,
            environ={},
        )
        try:
            provider.generate(PROMPT, max_tokens=4)
        finally:
            provider.close()


ODD_REMOTE = [
    pytest.param({"remote_host": ["https://ollama.com:443"]}, {}, id="listed-host-list"),
    pytest.param({"remote_host": {"url": "https://ollama.com"}}, {}, id="listed-host-object"),
    pytest.param({"remote_host": 443}, {}, id="listed-host-number"),
    pytest.param({"remote_model": ["gpt-oss:120b"]}, {}, id="listed-model-list"),
    pytest.param({}, {"remote_host": ["https://ollama.com:443"]}, id="shown-host-list"),
    pytest.param({"size": 1024.0}, {}, id="stub-size-float"),
    pytest.param({"size": "1024"}, {}, id="stub-size-text"),
]


@pytest.mark.parametrize("api", ["native", "openai"])
@pytest.mark.parametrize(("listed", "shown"), ODD_REMOTE)
def test_a_remote_field_or_size_in_an_unexpected_form_is_refused(api, listed, shown):
    served = Server(listed, shown)

    with pytest.raises(LocalOnlyViolationError):
        generate(served, api)

    assert served.sent == []


@pytest.mark.parametrize("status", [404, 405, 501])
def test_v1_on_ollama_whose_native_list_is_hidden_by_a_proxy_is_refused(status):
    """Ollama always serves /api/tags: a 404 there means something in front of it hides where
    models run (docs/privacy.md: the /v1 mode on Ollama refuses when the native list fails)."""
    served = Server({}, {}, tags_status=status)

    with pytest.raises(LocalOnlyViolationError, match="could not be established"):
        generate(served, "openai")

    assert served.sent == []


def test_a_plain_local_model_still_runs_in_both_modes():
    for api in ("native", "openai"):
        served = Server({}, {})
        generate(served, api)
        assert len(served.sent) == 1 and PROMPT.encode() in served.sent[0]


@pytest.mark.parametrize("from_line", [2, 3])
def test_an_answer_that_names_a_remote_host_only_after_its_first_line_is_refused(from_line):
    """Ollama names the remote host in every line of a forwarded answer; an answer (or a
    proxy's rewrite of one) that starts without it is refused as soon as a line says it."""
    served = Server({}, {})

    def chat(request: Request, conn) -> bool:
        served.sent.append(request.body)
        lines = [json.loads(chat_line("Hel")), json.loads(chat_line("lo")), json.loads(done_line())]
        for line in lines[from_line - 1 :]:
            line["remote_host"] = "https://ollama.com:443"
        body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        return respond(conn, body, headers={"Content-Type": "application/x-ndjson"})

    served.server.routes["/api/chat"] = chat
    with pytest.raises(LocalOnlyViolationError, match=r"ollama\.com"):
        generate(served, "native")
