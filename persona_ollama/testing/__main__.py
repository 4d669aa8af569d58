"""``python -m persona_ollama.testing``: run a FakeOllama as its own process (benchmarks, demos).

It serves the demo configuration (persona_ollama/testing/demo.py): catalogue facts for every
catalogue model it serves or pulls, personas as JSON to a request for JSON. The first line on
stdout is the URL; ``--log`` writes one line per request to stderr. The server runs until
SIGINT/SIGTERM, or, when stdin is a pipe, until the pipe closes, so a parent that dies takes
the double with it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .demo import DEMO_MODELS, demo_server
from .state import RecordedRequest


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.reply is not None and not args.reply.is_file():
        parser.error(f"--reply: {args.reply} is not a readable file")
    models = [name for name in args.models.split(",") if name.strip()]
    try:
        fake = demo_server(
            models,
            reply_file=args.reply,
            host=args.host,
            port=args.port,
            version=args.version,
            default_num_ctx=args.default_num_ctx,
            chunk_size=args.chunk_size,
            parallel=args.parallel,
            load_time=args.load_time,
            vram_gib=args.vram_gib,
            signed_in=not args.signed_out,
        )
        for alias in args.remote_alias:
            name, _, source = alias.partition("=")
            fake.add_remote_alias(name, source or "gpt-oss:120b-cloud")
    except ValueError as error:  # a model name the server would refuse
        parser.error(str(error))
    if args.log:
        fake.on_request(_log)
    if args.first_byte or args.between_chunks:
        fake.latency(args.first_byte, args.between_chunks)
    if args.pull_delay:
        fake.latency(between_chunks=args.pull_delay, path="/api/pull")
    try:
        fake.start()
    except OSError as error:  # the port is taken: by Ollama itself, or a demo already running
        print(
            f"error: cannot listen on {args.host}:{args.port}: {error.strerror or error}. "
            "Is Ollama, or another demo server, using it? --port 0 picks a free port.",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting: stop as quietly as while serving
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while stopping
            fake.stop()
        return 0
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()
    try:
        print(fake.url, flush=True)
        print(
            "FakeOllama from persona_ollama.testing: a test double of the Ollama server, "
            "not Ollama. Its answers are canned; see docs/try-without-ollama.md.",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()  # a signal handler or the stdin watcher sets it; Ctrl-C interrupts it
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop an interactive demo
    finally:
        signal.signal(signal.SIGTERM, previous)
        fake.stop()
    return 0


def log_line(request: RecordedRequest) -> str:
    """One line about one request: who called (user agent), what, with which model and
    context size, and the status the double answered with."""
    body = request.json if isinstance(request.json, dict) else {}
    options = body.get("options")
    if not isinstance(options, dict):
        options = {}
    model = body.get("model") or body.get("name") or "-"
    requested = options.get("num_ctx", "-")
    used = request.num_ctx if request.num_ctx is not None else "-"
    agent = request.headers.get("User-Agent") or "-"
    return (
        f"{request.method} {request.path} {request.status or '-'} agent={agent} "
        f"model={model} num_ctx={requested} (ran with {used})"
    )


def _log(request: RecordedRequest) -> None:
    print(log_line(request), file=sys.stderr, flush=True)


def _wait_for_eof(stop: threading.Event) -> None:
    # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader holds its lock,
    # and the interpreter aborts at exit when it cannot take that lock.
    while os.read(sys.stdin.fileno(), 4096):
        continue  # whatever the parent writes is ignored; only end-of-file matters
    stop.set()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m persona_ollama.testing",
        description="Serve a fake Ollama API on loopback; prints its URL first.",
    )
    add: Any = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    add("--models", default=",".join(DEMO_MODELS), help="comma-separated installed models")
    add("--log", action="store_true", help="one line per request on stderr")
    add(
        "--reply",
        type=Path,
        default=None,
        metavar="FILE",
        help="answer every generation with this file's text (default: personas as JSON to a "
        "request for JSON, else a greeting)",
    )
    add("--version", default="0.33.0", help="version to report (default: %(default)s)")
    add(
        "--default-num-ctx",
        type=int,
        default=None,
        help="OLLAMA_CONTEXT_LENGTH (default: the release's, 4096 with no GPU)",
    )
    add(
        "--vram-gib",
        type=float,
        default=0.0,
        help="GPU memory the server sees: the default context and /api/ps size_vram (default: 0)",
    )
    add("--chunk-size", type=int, default=None, help="characters per chunk (default: words)")
    add("--parallel", type=int, default=None, help="generations at once (OLLAMA_NUM_PARALLEL)")
    add("--load-time", type=float, default=0.0, help="seconds a model (re)load takes")
    add("--first-byte", type=float, default=0.0, help="seconds before each generation answers")
    add("--between-chunks", type=float, default=0.0, help="seconds between streamed chunks")
    add(
        "--remote-alias",
        action="append",
        default=[],
        metavar="NAME=CLOUD_MODEL",
        help="install a local alias of a cloud model (repeatable), "
        "e.g. notes-model=gpt-oss:120b-cloud",
    )
    add("--signed-out", action="store_true", help="answer 401 to cloud models (not signed in)")
    add("--pull-delay", type=float, default=0.0, help="seconds between /api/pull progress lines")
    return parser


if __name__ == "__main__":  # pragma: no cover - run as a subprocess by the tests
    sys.exit(main())
