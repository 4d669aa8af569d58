"""The clients under comparison, each able to make "the same request" two ways.

Every contender sends POST /api/chat for the same chat and reads the same NDJSON answer to
its ``done`` line: ``short()`` the short answer, ``stream()`` the long one. Both return the
answer text, so the harness can check that every contender read all of it.

The two floors are written the straightforward way a user would write them: a kept-alive
``http.client.HTTPConnection`` reading line by line, and ``requests.Session.post(stream=True)``
with ``iter_lines``. Both send the exact body persona-ollama sends (captured from the server).
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

PROMPT = "Write a one-line persona of a nurse who plans shifts on paper."
SHORT_MODEL = "bench-short:latest"
SHORT_MAX_TOKENS = 256


def stream_model(chunks: int) -> str:
    return f"bench-stream:{chunks}"


@dataclass
class Contender:
    name: str
    short: Callable[[], str]
    stream: Callable[[], str]
    close: Callable[[], None]


def _content(item: dict[str, Any]) -> str:
    message = item.get("message")
    return str(message.get("content") or "") if isinstance(message, dict) else ""


def raw_http(url: str, short_body: bytes, stream_body: bytes) -> Contender:
    """The floor: http.client, one kept-alive connection, readline per line + json.loads."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    headers = {"Content-Type": "application/json"}

    def chat(body: bytes) -> str:
        connection.request("POST", "/api/chat", body, headers)
        response = connection.getresponse()
        pieces: list[str] = []
        while True:
            line = response.readline()
            if not line:
                return "".join(pieces)
            pieces.append(_content(json.loads(line)))

    return Contender(
        "raw http.client (floor)",
        lambda: chat(short_body),
        lambda: chat(stream_body),
        connection.close,
    )


def requests_session(url: str, short_body: bytes, stream_body: bytes) -> Contender:
    """The floor of the HTTP stack persona-ollama uses: a bare requests.Session."""
    import requests

    session = requests.Session()
    endpoint = url + "/api/chat"
    headers = {"Content-Type": "application/json"}

    def chat(body: bytes) -> str:
        response = session.post(endpoint, data=body, headers=headers, stream=True)
        pieces = []
        for line in response.iter_lines():
            if line:
                pieces.append(_content(json.loads(line)))
        return "".join(pieces)

    return Contender(
        "requests.Session (floor)",
        lambda: chat(short_body),
        lambda: chat(stream_body),
        session.close,
    )


def official_ollama(url: str, short_body: bytes, stream_body: bytes) -> Contender | None:
    """The official client (``ollama`` on PyPI), streaming; None when it is not installed."""
    try:
        import ollama  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    client = ollama.Client(host=url)

    def chat(body: dict[str, Any]) -> str:
        parts = client.chat(
            model=body["model"], messages=body["messages"], options=body["options"], stream=True
        )
        return "".join(part["message"]["content"] or "" for part in parts)

    def close() -> None:
        inner = getattr(client, "_client", None)
        if inner is not None:
            inner.close()

    short, stream = json.loads(short_body), json.loads(stream_body)
    return Contender(
        f"ollama {ollama_version()} Client.chat(stream=True)",
        lambda: chat(short),
        lambda: chat(stream),
        close,
    )


def ollama_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ollama")
    except PackageNotFoundError:
        return None


def persona_provider(url: str, stream_chunks: int) -> Contender:
    """What Persona calls: OllamaProvider.generate (model facts cached after the first call)."""
    from persona_ollama import OllamaProvider

    provider = OllamaProvider(base_url=url)
    model = stream_model(stream_chunks)
    return Contender(
        "persona_ollama OllamaProvider.generate",
        lambda: provider.generate(PROMPT, model=SHORT_MODEL, max_tokens=SHORT_MAX_TOKENS).content,
        lambda: provider.generate(PROMPT, model=model, max_tokens=stream_chunks).content,
        provider.close,
    )


def persona_client(url: str, short_body: bytes, stream_body: bytes) -> Contender:
    """The backend alone (OllamaBackend.chat), to show what the provider adds on top."""
    from persona_ollama.backends.base import ChatRequest
    from persona_ollama.backends.ollama import OllamaBackend
    from persona_ollama.endpoint import resolve_endpoint

    backend = OllamaBackend(resolve_endpoint(url, {}))

    def request(body: bytes) -> ChatRequest:
        parsed = json.loads(body)
        options = dict(parsed.get("options") or {})
        return ChatRequest(
            model=parsed["model"],
            messages=tuple(parsed["messages"]),
            max_tokens=options.pop("num_predict", 4096),
            window=options.pop("num_ctx", None),
            options=options,
        )

    short, stream = request(short_body), request(stream_body)

    def chat(body: ChatRequest) -> str:
        return "".join(chunk.content for chunk in backend.chat(body))

    return Contender(
        "persona_ollama OllamaBackend.chat",
        lambda: chat(short),
        lambda: chat(stream),
        backend.close,
    )


def per_call_clients(url: str, short_body: bytes) -> dict[str, Callable[[], str]]:
    """Calls that build a new client each time, as a host that makes a provider per call does."""
    from persona_ollama import OllamaProvider

    calls: dict[str, Callable[[], str]] = {
        "persona_ollama: new OllamaProvider, then generate": lambda: (
            OllamaProvider(base_url=url)
            .generate(PROMPT, model=SHORT_MODEL, max_tokens=SHORT_MAX_TOKENS)
            .content
        ),
    }
    try:
        import ollama  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return calls
    short = json.loads(short_body)

    def official() -> str:
        client = ollama.Client(host=url)
        parts = client.chat(
            model=short["model"], messages=short["messages"], options=short["options"], stream=True
        )
        return "".join(part["message"]["content"] or "" for part in parts)

    calls[f"ollama {ollama_version()}: new Client, then chat"] = official
    return calls
