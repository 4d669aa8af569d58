"""The client against hostile servers written from raw sockets.

Every test states the bound it must meet: peak memory (tracemalloc, in this process; the
server sends from one small buffer, so its own memory is not counted), wall time, and the
pool's state afterwards (``connections_in_use() == 0``: no connection left checked out).
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from contextlib import contextmanager

import pytest

from persona_ollama import OllamaProvider
from persona_ollama.errors import (
    ConfigurationError,
    OllamaError,
    OllamaResponseError,
    OllamaTimeoutError,
)
from persona_ollama.testing.hostile import (
    HostileServer,
    chat_line,
    chunk,
    done_line,
    gzip_bomb,
    http_head,
    respond,
    send_repeated,
    silent,
)

MiB = 1024 * 1024
CHUNKED = {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}


@contextmanager
def peak_memory():
    """Yields a dict whose "peak" is the most Python memory allocated inside the block."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = {"peak": 0}
    try:
        yield result
    finally:
        result["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


@contextmanager
def within(seconds):
    """Fails unless the block takes less than ``seconds`` of wall time."""
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f} s, bound {seconds} s"


def provider_for(server, **kwargs):
    kwargs.setdefault("model", "m")
    return OllamaProvider(base_url=server.url, environ={}, retries=0, **kwargs)


def in_use(provider):
    return provider.backend.connections_in_use()


# -- memory ----------------------------------------------------------------------------


def test_one_100_mb_line_in_one_chunk_is_refused_before_it_is_buffered():
    filler = b"x" * (64 * 1024)

    def route(request, conn):
        conn.send(http_head(200, CHUNKED) + b"%x\r\n" % (100 * MiB) + b'{"a":"')
        return send_repeated(conn, filler, 100 * MiB)

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.model_info("m")  # facts fetched outside the measured block
        with peak_memory() as memory, pytest.raises(OllamaResponseError, match="longer than 1"):
            provider.generate("hi")
    assert memory["peak"] < 8 * MiB  # bound: 8 MiB (the line cap is 1 MiB)
    assert in_use(provider) == 0


def test_a_1_gb_body_without_chunked_encoding_stops_at_the_answer_budget():
    line = chat_line("x" * 60_000)

    def route(request, conn):
        head = {"Content-Type": "application/x-ndjson", "Content-Length": str(1024 * MiB)}
        conn.send(http_head(200, head))
        return send_repeated(conn, line, 1024 * MiB)

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.model_info("m")
        with peak_memory() as memory, pytest.raises(OllamaResponseError, match="larger than"):
            provider.generate("hi", max_tokens=256)  # budget: 1 MiB + 256 x 2 KiB = 1.5 MiB
    assert memory["peak"] < 16 * MiB  # bound: 16 MiB for a 1 GB body
    assert in_use(provider) == 0


@pytest.fixture(scope="module")
def bomb():
    return gzip_bomb(1024 * MiB)  # about 1 MB that inflates to 1 GiB of newlines


def test_a_gzip_bomb_is_inflated_piece_by_piece_up_to_the_budget(bomb):
    def route(request, conn):
        return respond(conn, [bomb], headers={"Content-Encoding": "gzip"})

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.model_info("m")
        with peak_memory() as memory, pytest.raises(OllamaResponseError, match="larger than"):
            provider.generate("hi")
    assert memory["peak"] < 24 * MiB  # bound: 24 MiB for a body inflating to 1 GiB
    assert in_use(provider) == 0


def test_a_gzip_bomb_on_a_json_endpoint_is_capped_too(bomb):
    def route(request, conn):
        head = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return respond(conn, bomb, headers=head, framing="length")

    with HostileServer({"/api/tags": route}) as server:
        provider = provider_for(server)
        with peak_memory() as memory, pytest.raises(OllamaResponseError, match="larger than"):
            provider.list_available_models()
    assert memory["peak"] < 48 * MiB  # bound: 48 MiB (the JSON body cap is 16 MiB)
    assert in_use(provider) == 0


def test_sixty_8_mib_lines_are_not_accepted_as_an_answer():
    framed = chunk(chat_line("y" * (8 * MiB)))  # built before the measured block

    def route(request, conn):
        conn.send(http_head(200, CHUNKED))
        for _ in range(60):
            if not conn.send(framed):
                return False
        return conn.send(chunk(done_line()) + b"0\r\n\r\n")

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.model_info("m")
        with peak_memory() as memory, pytest.raises(OllamaResponseError):
            provider.generate("hi")
    assert memory["peak"] < 8 * MiB  # bound: 8 MiB, not 480 MiB
    assert in_use(provider) == 0


def test_a_long_genuine_answer_needs_only_a_few_mib():
    lines = [chat_line(f" word{i}") for i in range(4000)] + [done_line()]

    def route(request, conn):
        return respond(conn, lines)

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.generate("warm up")
        with peak_memory() as memory:
            answer = provider.generate("hi", max_tokens=4096)
    assert answer.content.count("word") == 4000
    assert memory["peak"] < 4 * MiB  # bound: 4 MiB for a 4,000-chunk streamed answer
    assert in_use(provider) == 0


# -- time ------------------------------------------------------------------------------


def test_deadline_covers_headers_that_never_come():
    with HostileServer({"/api/chat": silent}) as server:
        provider = provider_for(server, deadline=2)
        with within(3.5), pytest.raises(OllamaTimeoutError, match="deadline"):
            provider.generate("hi")  # bound: deadline 2 s + 1.5 s
        assert in_use(provider) == 0


def test_deadline_covers_headers_that_come_late():
    def late(request, conn):
        time.sleep(5)
        return respond(conn, [chat_line(), done_line()])

    with HostileServer({"/api/chat": late}) as server:
        provider = provider_for(server, deadline=2)
        with within(3.5), pytest.raises(OllamaTimeoutError, match="deadline"):
            provider.generate("hi")
        assert in_use(provider) == 0


def test_deadline_covers_a_line_dripped_byte_by_byte():
    def drip(request, conn):
        conn.send(http_head(200, CHUNKED))
        for byte in chat_line("z" * 1000):
            if not conn.send(chunk(bytes([byte]))):
                return False
            time.sleep(0.05)
        return False

    with HostileServer({"/api/chat": drip}) as server:
        provider = provider_for(server, deadline=2)
        with within(3.5), pytest.raises(OllamaTimeoutError, match="deadline"):
            provider.generate("hi")
        assert in_use(provider) == 0


def test_deadline_covers_headers_dripped_byte_by_byte():
    def drip(request, conn):
        head = http_head(200, {"Content-Type": "application/x-ndjson", "X-Pad": "p" * 400})
        for byte in head:
            if not conn.send(bytes([byte])):
                return False
            time.sleep(0.05)
        return False

    with HostileServer({"/api/chat": drip}) as server:
        provider = provider_for(server, deadline=2)
        provider.model_info("m")
        with within(3.0), pytest.raises(OllamaTimeoutError, match="deadline"):
            provider.generate("hi")  # bound: deadline 2 s + 1 s (each byte comes in 0.05 s)
        assert in_use(provider) == 0


def test_deadline_covers_the_model_facts_too():
    with HostileServer({"/api/show": silent}) as server:
        provider = provider_for(server, deadline=1.5)
        with within(3.0), pytest.raises(OllamaTimeoutError, match="deadline"):
            provider.generate("hi")


def test_deadline_covers_choosing_the_default_model_too():
    # No model named: the default is chosen from /api/tags first, and that is part of the
    # call, so a silent listing ends at the deadline, not after the read timeout.
    with HostileServer({"/api/tags": silent}) as server:
        provider = provider_for(server, model=None, deadline=1.5, timeout=6)
        with within(3.0), pytest.raises(OllamaTimeoutError, match="deadline"):
            provider.generate("hi")


def test_a_silent_server_fails_a_call_within_one_read_timeout():
    # No model given: the default model is chosen from /api/tags (silent), then /api/show.
    with HostileServer({"/api/tags": silent, "/api/show": silent}) as server:
        provider = OllamaProvider(base_url=server.url, environ={}, timeout=1.5, retries=0)
        with within(2.9), pytest.raises(OllamaTimeoutError) as caught:
            provider.generate("hi")  # bound: one read timeout (1.5 s), never two (3 s)
    assert "sent nothing for 1.5 s" in caught.value.message  # the timeout it waited, once


def test_doctor_fails_fast_once_the_probe_showed_the_server_silent(monkeypatch):
    from click.testing import CliRunner

    from persona_ollama.cli import main

    with HostileServer({"/api/version": silent, "/api/tags": silent}) as server:
        monkeypatch.delenv("PERSONA_OLLAMA_MODEL", raising=False)
        with within(8):  # bound: a few seconds, although the read timeout is 300 s
            result = CliRunner().invoke(main, ["doctor", "--host", server.url])
    assert result.exit_code == 1
    assert "not reachable" in result.output


def test_the_answer_returns_as_soon_as_the_done_line_is_parsed():
    def never_ends(request, conn):
        conn.send(http_head(200, CHUNKED) + chunk(chat_line("Hello")) + chunk(done_line()))
        return conn.hold()  # no terminating chunk, the connection stays open

    with HostileServer({"/api/chat": never_ends}) as server:
        provider = provider_for(server)
        provider.model_info("m")
        with within(0.5):  # bound: 0.5 s, with a read timeout of 300 s
            answer = provider.generate("hi")
    assert answer.content == "Hello"
    assert in_use(provider) == 0


def test_a_complete_body_gives_its_connection_back_for_reuse():
    with HostileServer({"/api/chat": lambda r, c: respond(c, [chat_line(), done_line()])}) as s:
        provider = provider_for(s)
        for _ in range(3):
            assert provider.generate("hi").content == "Hi"
    assert s.connections == 1


# -- streaming -------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["close", "length", "chunked"])
def test_tokens_arrive_as_the_bytes_do_whatever_the_framing(framing):
    lines = [chat_line(f"t{i} ") for i in range(5)] + [done_line()]
    sent = {}

    def route(request, conn):
        sent["conn"] = conn
        return respond(conn, lines, framing=framing, pause=0.3)

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.model_info("m")
        seen = []
        provider.generate("hi", on_token=lambda piece: seen.append(time.monotonic()))
    last_line_sent = sent["conn"].sent[-1]
    assert len(seen) == 5
    # bound: the first token is seen at least 1 s before the last line is even sent
    assert seen[0] < last_line_sent - 1.0


# -- connections -----------------------------------------------------------------------


def _valid(request, conn):
    return respond(conn, [chat_line(), done_line()])


@pytest.mark.parametrize(
    "failure",
    ["wrong-shape line", "on_token raises", "KeyboardInterrupt in on_token", "abandoned"],
)
def test_a_failed_stream_gives_its_connection_back(failure):
    bad = failure == "wrong-shape line"

    def route(request, conn):
        first = chat_line(5) if bad else chat_line("Hi")
        return respond(conn, [first, chat_line("more"), done_line()])

    def on_token(piece):
        if failure == "on_token raises":
            raise RuntimeError("callback bug")
        if failure == "KeyboardInterrupt in on_token":
            raise KeyboardInterrupt

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server, pool_size=2)
        provider.model_info("m")
        for _ in range(4):  # more failures than pooled connections
            if failure == "abandoned":
                stream = provider.stream("hi")
                next(stream)
                del stream
                gc.collect()
                continue
            with pytest.raises((OllamaError, RuntimeError, KeyboardInterrupt)):
                provider.generate("hi", on_token=on_token)
            assert in_use(provider) == 0
        assert in_use(provider) == 0
        server.routes["/api/chat"] = _valid
        with within(2):
            assert provider.generate("hi").content == "Hi"


def test_an_unread_stream_that_is_dropped_gives_its_connection_back():
    with HostileServer({"/api/chat": _valid}) as server:
        provider = provider_for(server, pool_size=1)
        provider.model_info("m")
        provider.stream("hi")  # never iterated, never closed
        gc.collect()
        assert in_use(provider) == 0
        with within(2):
            assert provider.generate("hi").content == "Hi"


def test_the_pool_waits_a_bounded_time_then_raises_a_typed_error():
    with HostileServer({"/api/chat": _valid}) as server:
        provider = provider_for(server, pool_size=1)
        provider.model_info("m")
        provider.backend.transport.pool_timeout = 1.0
        held = provider.stream("hi")  # holds the only connection
        with within(2.5), pytest.raises(OllamaTimeoutError, match="connections"):
            provider.generate("hi")  # bound: pool_timeout 1 s
        held.close()
        assert in_use(provider) == 0
        assert provider.generate("hi").content == "Hi"


def test_a_batch_with_failures_finishes():
    import asyncio

    calls = {"n": 0}

    def route(request, conn):
        calls["n"] += 1
        first = chat_line(["list"]) if calls["n"] % 2 else chat_line("Hi")
        return respond(conn, [first, done_line()])

    async def batch(provider):
        tasks = [provider.generate_async("hi") for _ in range(12)]
        return await asyncio.gather(*tasks, return_exceptions=True)

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server, pool_size=2)
        provider.model_info("m")
        with within(10):
            results = asyncio.run(batch(provider))
    assert all(isinstance(r, (OllamaResponseError, object)) for r in results)
    assert any(isinstance(r, OllamaResponseError) for r in results)
    assert in_use(provider) == 0


# -- validation at the edge ------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([b'{"model":"m","message":"Hi","done":false}\n', done_line()], "message"),
        ([b'{"model":"m","message":["Hi"],"done":false}\n', done_line()], "message"),
        ([b'{"model":"m","message":null,"done":true}\n'], "message"),
        ([chat_line(5), done_line()], "message.content"),
        ([chat_line({"a": 1}), done_line()], "message.content"),
        ([chat_line("Hi", message={"content": "a", "thinking": 3}), done_line()], "thinking"),
        ([chat_line(), done_line(eval_count="12")], "eval_count"),
        ([chat_line(), done_line().replace(b'"eval_count": 2', b'"eval_count": 1e400')], "eval"),
        ([chat_line(), done_line(eval_duration="1s")], "eval_duration"),
        ([chat_line(), done_line(load_duration=[1])], "load_duration"),
        ([chat_line(), done_line(prompt_eval_count=-3)], "prompt_eval_count"),
        ([chat_line(), done_line(done_reason=7)], "done_reason"),
    ],
)
def test_a_wrong_shape_answer_raises_a_typed_error_naming_the_field(lines, field):
    with HostileServer({"/api/chat": lambda r, c: respond(c, lines)}) as server:
        provider = provider_for(server)
        with pytest.raises(OllamaResponseError, match=field.replace(".", r"\.")):
            provider.generate("hi")
        assert in_use(provider) == 0


def test_utf8_encoded_surrogates_are_refused():
    line = b'{"model":"m","message":{"role":"assistant","content":"\xed\xa0\x80"},"done":false}\n'
    server = HostileServer({"/api/chat": lambda r, c: respond(c, [line, done_line()])})
    with server, pytest.raises(OllamaResponseError, match="UTF-8"):
        provider_for(server).generate("hi")


def test_a_lone_surrogate_escape_is_refused():
    line = chat_line("a").replace(b'"a"', b'"\\ud800"')
    server = HostileServer({"/api/chat": lambda r, c: respond(c, [line, done_line()])})
    with server, pytest.raises(OllamaResponseError, match="surrogate"):
        provider_for(server).generate("hi")


def test_an_unknown_content_encoding_is_a_typed_error():
    def route(request, conn):
        return respond(conn, [chat_line(), done_line()], headers={"Content-Encoding": "br"})

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        with pytest.raises(OllamaResponseError, match="Content-Encoding"):
            provider.generate("hi")
        assert in_use(provider) == 0


def test_a_corrupt_gzip_body_is_a_typed_error():
    def route(request, conn):
        body = b"\x1f\x8b\x08\x00garbage" * 10
        return respond(conn, [body], headers={"Content-Encoding": "gzip"})

    server = HostileServer({"/api/chat": route})
    with server, pytest.raises(OllamaResponseError, match="corrupt"):
        provider_for(server).generate("hi")


def test_a_gzip_answer_within_budget_is_read():
    import gzip

    body = gzip.compress(chat_line("Hi") + done_line())

    def route(request, conn):
        return respond(conn, [body[:10], body[10:]], headers={"Content-Encoding": "gzip"})

    with HostileServer({"/api/chat": route}) as server:
        assert provider_for(server).generate("hi").content == "Hi"


def test_retry_after_in_unicode_digits_keeps_our_backoff():
    calls = {"n": 0}

    def route(request, conn):
        calls["n"] += 1
        if calls["n"] == 1:
            return respond(conn, b"busy", status=503, headers={"Retry-After": "\u00b2"})
        return respond(conn, [chat_line(), done_line()])

    with HostileServer({"/api/chat": route}) as server:
        provider = OllamaProvider(base_url=server.url, model="m", environ={}, retries=1)
        provider.backend.transport.backoff = 0
        assert provider.generate("hi").content == "Hi"


def test_an_unclosed_think_holding_the_whole_answer_is_warned_about():
    lines = [chat_line("<think>all of it"), chat_line(" is reasoning"), done_line()]
    with HostileServer({"/api/chat": lambda r, c: respond(c, lines)}) as server:
        answer = provider_for(server).generate("hi")
    assert answer.content == ""
    assert any("empty" in w for w in answer.raw_response["warnings"])


def test_garbage_v1_events_do_not_end_as_a_silent_empty_answer():
    events = [
        b'data: {"garbage": true}\n\n',
        b'data: {"choices": "nope"}\n\n',
        b"data: [DONE]\n\n",
    ]
    models = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "x"}]}

    def route(request, conn):
        return respond(conn, events, headers={"Content-Type": "text/event-stream"})

    from persona_ollama.testing.hostile import json_route

    routes = {"/v1/chat/completions": route, "/v1/models": json_route(models)}
    with HostileServer(routes) as server:
        provider = provider_for(server, api="openai")
        try:
            answer = provider.generate("hi")
        except OllamaResponseError:
            return  # raising is acceptable too
    assert any("empty" in w for w in answer.raw_response["warnings"])


# -- secrets and configuration ---------------------------------------------------------


@pytest.mark.parametrize("key", ["sk-secret-123\n", "sk-secret\x1b[2J123", "sk-secr\u00e9t\u20ac"])
def test_a_bad_api_key_is_refused_at_construction_and_never_shown(key):
    with pytest.raises(ConfigurationError) as caught:
        OllamaProvider(base_url="http://127.0.0.1:1", api_key=key, environ={})
    assert "secret" not in str(caught.value)


def test_the_bearer_token_beats_a_netrc_entry(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with HostileServer({"/api/chat": _valid}) as server:
        provider = provider_for(server, api_key="sk-token")
        provider.backend.transport._session.trust_env = True  # as for a remote server
        provider.generate("hi")
    assert {r.headers.get("authorization") for r in server.requests} == {"Bearer sk-token"}


def test_a_missing_or_malformed_ca_bundle_is_refused_at_construction(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        OllamaProvider(base_url="https://gpu-box", verify=str(tmp_path / "nope.pem"), environ={})
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="cannot be loaded"):
        OllamaProvider(environ={"PERSONA_OLLAMA_CA_BUNDLE": str(bad)})


# -- caller mistakes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prompt": "caf\udce9"}, "surrogate"),
        ({"prompt": "hi", "format": {"type": "object", "enum": {1, 2}}}, "JSON"),
        ({"prompt": "hi", "temperature": float("nan")}, "finite"),
        ({"prompt": "hi", "options": {"top_p": float("inf")}}, "JSON"),
    ],
)
def test_caller_mistakes_are_clear_errors_before_sending(kwargs, match):
    with HostileServer({"/api/chat": _valid}) as server:
        provider = provider_for(server)
        with pytest.raises(ConfigurationError, match=match):
            provider.generate(**kwargs)
        assert all(r.path != "/api/chat" for r in server.requests)
        assert in_use(provider) == 0


# -- the terminal ----------------------------------------------------------------------


def test_the_cli_shows_server_text_with_escape_sequences_escaped():
    from click.testing import CliRunner

    from persona_ollama.cli import main

    evil = "boom \x1b]0;owned\x07\x1b[2J"

    def route(request, conn):
        return respond(conn, json.dumps({"error": evil}).encode(), status=500, framing="length")

    def answer(request, conn):
        return respond(conn, [chat_line("\x1b[31mred"), done_line()])

    with HostileServer({"/api/chat": route}) as server:
        result = CliRunner().invoke(main, ["run", "hi", "-m", "m", "--host", server.url])
        server.routes["/api/chat"] = answer
        ran = CliRunner().invoke(main, ["run", "hi", "-m", "m", "--host", server.url])
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\\x1b" in result.output
    assert "\x1b" not in ran.output and "\\x1b[31mred" in ran.output


def test_the_cli_never_prints_a_traceback_or_a_secret(monkeypatch):
    from click.testing import CliRunner

    import persona_ollama.cli.run as run_module
    from persona_ollama.cli import main

    def broken(*args, **kwargs):
        raise RuntimeError("header value 'Bearer sk-very-secret' rejected")

    monkeypatch.setattr(run_module, "make_provider", broken)
    result = CliRunner().invoke(main, ["run", "hi"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "sk-very-secret" not in result.output
    assert "--debug" in result.output
    debug = CliRunner().invoke(main, ["--debug", "run", "hi"])
    assert isinstance(debug.exception, RuntimeError)  # --debug lets the traceback through


def test_the_cli_refuses_a_key_with_a_newline_without_showing_it(monkeypatch):
    from click.testing import CliRunner

    from persona_ollama.cli import main

    monkeypatch.setenv("PERSONA_OLLAMA_API_KEY", "sk-abc\ndef")
    result = CliRunner().invoke(main, ["run", "hi", "--host", "http://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "sk-abc" not in result.output and "control character" in result.output


def test_a_redirect_with_a_huge_body_is_reported_unread_and_escaped():
    filler = b"r" * (64 * 1024)

    def route(request, conn):
        head = {"Location": "http://evil/\x1b[2J", "Content-Length": str(1024 * MiB)}
        conn.send(http_head(301, head, reason="Moved"))
        return send_repeated(conn, filler, 1024 * MiB)

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.model_info("m")
        with peak_memory() as memory, pytest.raises(OllamaResponseError) as caught:
            provider.generate("hi")
    assert memory["peak"] < 4 * MiB  # bound: 4 MiB, although requests reads 3xx bodies whole
    assert "\x1b" not in caught.value.message and "\\x1b[2J" in caught.value.message
    assert in_use(provider) == 0


def test_an_endless_v1_event_stream_stops_at_the_answer_budget():
    from persona_ollama.testing.hostile import json_route

    event = b'data: {"choices":[{"index":0,"delta":{"content":"' + b"v" * 30_000 + b'"}}]}\n\n'
    models = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "x"}]}

    def route(request, conn):
        head = {"Content-Type": "text/event-stream", "Connection": "close"}
        conn.send(http_head(200, head))
        return send_repeated(conn, event, 1024 * MiB)

    routes = {"/v1/chat/completions": route, "/v1/models": json_route(models)}
    with HostileServer(routes) as server:
        provider = provider_for(server, api="openai")
        provider.model_info("m")
        with peak_memory() as memory, pytest.raises(OllamaResponseError, match="larger than"):
            provider.generate("hi", max_tokens=256)
    assert memory["peak"] < 16 * MiB  # bound: 16 MiB for a 1 GB event stream
    assert in_use(provider) == 0


@pytest.mark.parametrize("after", ["junk", "reset", "more lines"])
def test_whatever_follows_the_done_line_the_answer_is_complete(after):
    def route(request, conn):
        conn.send(http_head(200, CHUNKED) + chunk(chat_line("Hello")) + chunk(done_line()))
        if after == "junk":
            conn.send(b"zz\r\nnot a chunk\r\n")
        elif after == "more lines":
            for _ in range(1000):
                if not conn.send(chunk(chat_line("extra"))):
                    break
        return False  # the server hangs up (without the terminating chunk)

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        provider.model_info("m")
        with within(1.0):
            assert provider.generate("hi").content == "Hello"
        assert in_use(provider) == 0
        server.routes["/api/chat"] = _valid
        assert provider.generate("hi").content == "Hi"  # a new connection, no cross-talk


@pytest.mark.parametrize(
    "framing",
    [b"zz\r\n", b"5\r\nab", b"-1\r\n", b"1" * 2000 + b"\r\n", b"3;ext=1\r\nabc\r\n0\r\n\r\n"],
)
def test_broken_chunked_framing_is_a_typed_error(framing):
    def route(request, conn):
        conn.send(http_head(200, CHUNKED) + chunk(chat_line("Hello")) + framing)
        return False

    with HostileServer({"/api/chat": route}) as server:
        provider = provider_for(server)
        with pytest.raises(OllamaResponseError):
            provider.generate("hi")
        assert in_use(provider) == 0
