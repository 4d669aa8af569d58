"""Helpers several test files share: Ollama's NDJSON answers, written for a mock and read back;
free loopback ports; a module loaded from a file; a Linux PC with stub tools on its PATH;
llama-cpp-python's server as a hostile server whose routes can be slowed or silenced.

Import them like transport_doubles (``from shared_helpers import ndjson``): tests/ is on the path.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from persona_ollama.testing.hostile import HostileServer, Request, respond
from persona_ollama.thinking import ThinkSplitter


def ndjson(*objects: object) -> str:
    """The objects as NDJSON text: one JSON document a line, each line ended."""
    return "".join(json.dumps(o) + "\n" for o in objects)


def chat_piece(text: str) -> dict[str, object]:
    """One line of a native /api/chat stream from model ``m`` that carries ``text``."""
    return {"model": "m", "message": {"role": "assistant", "content": text}, "done": False}


def chat_done(**fields: object) -> dict[str, object]:
    """The last line of a native /api/chat stream from model ``m`` with ``fields`` (its counts)."""
    return {
        "model": "m",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "stop",
        **fields,
    }


def json_lines(response: requests.Response) -> list[dict[str, Any]]:
    """The JSON documents of a streamed NDJSON response, blank lines skipped."""
    return [json.loads(line) for line in response.iter_lines() if line]


# The variables that choose a server or a model: a test that names its own clears them.
ADDRESS_VARIABLES = ("OLLAMA_HOST", "OLLAMA_BASE_URL", "PERSONA_OLLAMA_MODEL")


def clear_environment(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset :data:`ADDRESS_VARIABLES` and ``names`` for the test (absent ones are fine)."""
    for name in (*ADDRESS_VARIABLES, *names):
        monkeypatch.delenv(name, raising=False)


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_url() -> str:
    """An http:// URL on a loopback port nothing listens on (see :func:`free_port`)."""
    return f"http://127.0.0.1:{free_port()}"


def feed_all(pieces: list[str]) -> tuple[str, str]:
    """The answer and the thought a :class:`ThinkSplitter` makes of ``pieces``, fed in order."""
    splitter = ThinkSplitter()
    answer, thought = "", ""
    for piece in pieces:
        a, t = splitter.feed(piece)
        answer, thought = answer + a, thought + t
    a, t = splitter.finish()
    return answer + a, thought + t


def load_module(name: str, path: Path) -> ModuleType:
    """The Python file at ``path`` imported as ``name``, without putting its folder on
    sys.path for the rest of the session."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def linux_pc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Linux x86_64 PC, wherever the tests run (on a Mac the Apple silicon probe would set
    the budget), whose PATH is only the folder returned: empty until the test writes tools."""
    from persona_ollama.choosing import hardware  # only the tests that probe load the catalogue

    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.setattr(hardware.platform, "system", lambda: "Linux")
    monkeypatch.setattr(hardware.platform, "machine", lambda: "x86_64")
    return directory


def write_tool(directory: Path, name: str, body: str) -> None:
    """An executable ``name`` in ``directory`` that runs ``body`` (Python, with ``sys`` and
    ``time`` imported) with this interpreter."""
    script = directory / name
    script.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    script.chmod(0o755)


# llama-cpp-python's streamed answer: no usage event, so the provider counts the answer with
# the server's tokenizer (/extras/tokenize/count).
LLAMA_CPP_PYTHON_ANSWER = (
    'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,'
    '"delta":{"role":"assistant","content":"Hello there"},"finish_reason":null}]}\n\n'
    'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},'
    '"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)


def llama_cpp_python(
    silent: str | None = None, *, first_byte: float = 0.0, count_after: float = 0.0
) -> HostileServer:
    """llama-cpp-python's server serving model ``m``: its answer waits ``first_byte`` seconds,
    its tokenizer ``count_after``; the ``silent`` route accepts the request and never answers."""

    def models(request: Request, conn: Any) -> bool:
        entry = {"id": "m", "object": "model", "owned_by": "me", "permissions": []}
        return respond(conn, json.dumps({"object": "list", "data": [entry]}).encode())

    def chat(request: Request, conn: Any) -> bool:
        time.sleep(first_byte)
        body = LLAMA_CPP_PYTHON_ANSWER.encode()
        return respond(conn, body, headers={"Content-Type": "text/event-stream"})

    def count(request: Request, conn: Any) -> bool:
        time.sleep(count_after)
        return respond(conn, json.dumps({"count": 3 if request.json()["input"] else 1}).encode())

    routes = {"/v1/models": models, "/v1/chat/completions": chat, "/extras/tokenize/count": count}
    if silent in routes:
        routes[silent] = lambda request, conn: conn.hold()
    return HostileServer(routes)
