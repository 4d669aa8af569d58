"""A configured secret echoed into the fields of a *successful* answer (a model list whose
remote_host or family repeats the Authorization header, a chat line whose remote_host does)
does not come back out either: not in a local-only refusal, a warning, a log record,
``installed_models()``, or the CLI (`models`, `doctor`, text and JSON). Real sockets."""

from __future__ import annotations

import json
import logging

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.cli import main
from persona_ollama.errors import OllamaError
from persona_ollama.testing.hostile import HostileServer, Request, chat_line, done_line, respond

TOKEN = "sk-Q7vXw2LmZ9rTy4KpB8nHc3Jd6Fg"
MODEL = "m:latest"


def _auth(request: Request) -> str:
    return {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")


def echoing_server(where: str) -> HostileServer:
    """Ollama whose model list and description (``where`` = "listing") or chat lines
    (``where`` = "chat") carry the request's Authorization header in remote_host."""

    def tags(request: Request, conn) -> bool:
        entry = {"name": MODEL, "model": MODEL, "size": 4 << 30, "digest": "d" * 64}
        if where == "listing":
            entry["remote_host"] = "https://relay.example/" + _auth(request)
            entry["details"] = {"family": _auth(request), "parameter_size": "3B"}
        return respond(conn, json.dumps({"models": [entry]}).encode())

    def show(request: Request, conn) -> bool:
        body: dict = {"details": {"family": "llama"}, "capabilities": ["completion"]}
        if where == "listing":
            body["remote_host"] = "https://relay.example/" + _auth(request)
        return respond(conn, json.dumps(body).encode())

    def chat(request: Request, conn) -> bool:
        line = json.loads(chat_line("ok"))
        if where == "chat":
            line["remote_host"] = "https://relay.example/" + _auth(request)
        body = json.dumps(line).encode() + b"\n" + done_line()
        return respond(conn, body, headers={"Content-Type": "application/x-ndjson"})

    return HostileServer(
        {
            "/api/tags": tags,
            "/api/show": show,
            "/api/chat": chat,
            "/api/version": lambda request, conn: respond(conn, b'{"version": "0.30.0"}'),
        }
    )


@pytest.mark.parametrize("where", ["listing", "chat"])
@pytest.mark.parametrize("local_only", [True, False])
def test_a_secret_echoed_in_a_successful_answer_does_not_come_out(
    where, local_only, caplog, recwarn
):
    caplog.set_level(logging.DEBUG)
    texts = []
    with echoing_server(where) as server:
        provider = OllamaProvider(
            base_url=server.url, model=MODEL, api_key=TOKEN, local_only=local_only, environ={}
        )
        try:
            texts.append(provider.generate("hi", max_tokens=4).content)
        except OllamaError as error:
            texts += [str(error), repr(error), error.server_text or "", error.hint or ""]
        texts.append(repr(provider.installed_models()))
        provider.close()
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(warning.message) for warning in recwarn]

    assert any("relay.example" in text for text in texts)  # the echo did reach the texts
    for text in texts:
        assert TOKEN[:8] not in text, text


@pytest.mark.parametrize(
    "args", [["models"], ["models", "--json"], ["doctor"], ["doctor", "--json"]]
)
def test_the_cli_shows_no_secret_echoed_in_a_model_list(args, cli_runner):
    with echoing_server("listing") as server:
        env = {"OLLAMA_HOST": server.url, "PERSONA_OLLAMA_API_KEY": TOKEN}
        result = cli_runner.invoke(main, args, env=env)

    assert TOKEN[:8] not in result.output + result.stderr
