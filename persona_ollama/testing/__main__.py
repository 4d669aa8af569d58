"""``python -m persona_ollama.testing``: run a FakeOllama as its own process (benchmarks, demos).

The first line on stdout is the URL. The server runs until SIGINT/SIGTERM, or, when stdin is a
pipe, until the pipe closes, so a parent that dies takes the double with it.
"""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .fake_server import FakeOllama
from .models import DEFAULT_MODELS


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    models = [name for name in args.models.split(",") if name.strip()]
    fake = FakeOllama(
        models,
        host=args.host,
        port=args.port,
        version=args.version,
        default_num_ctx=args.default_num_ctx,
        chunk_size=args.chunk_size,
        parallel=args.parallel,
        load_time=args.load_time,
    )
    if args.first_byte or args.between_chunks:
        fake.latency(args.first_byte, args.between_chunks)
    if args.pull_delay:
        fake.latency(between_chunks=args.pull_delay, path="/api/pull")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode):
        threading.Thread(target=_wait_for_eof, args=(stop,), daemon=True).start()
    try:
        with fake:
            print(fake.url, flush=True)
            stop.wait()  # a signal handler or the stdin watcher sets it; Ctrl-C interrupts it
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop an interactive demo
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


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
    add("--models", default=",".join(DEFAULT_MODELS), help="comma-separated installed models")
    add("--version", default="0.33.0", help="version to report (default: %(default)s)")
    add("--default-num-ctx", type=int, default=4096, help="server num_ctx default")
    add("--chunk-size", type=int, default=None, help="characters per chunk (default: words)")
    add("--parallel", type=int, default=None, help="generations at once (OLLAMA_NUM_PARALLEL)")
    add("--load-time", type=float, default=0.0, help="seconds a model (re)load takes")
    add("--first-byte", type=float, default=0.0, help="seconds before each generation answers")
    add("--between-chunks", type=float, default=0.0, help="seconds between streamed chunks")
    add("--pull-delay", type=float, default=0.0, help="seconds between /api/pull progress lines")
    return parser


if __name__ == "__main__":  # pragma: no cover - run as a subprocess by the tests
    sys.exit(main())
