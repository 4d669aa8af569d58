"""The real-server group: llama-cpp-python's server (the llama.cpp engine) on a loopback port,
serving a tiny random-weight model generated for the session (see tiny_model.py).

The server is installed by the ``realserver`` tox environment from a local wheel directory
(``../shared/wheels`` next to the clone); where it is not installed, every test here is
skipped with the reason. It is started once per session on a free 127.0.0.1 port and stopped
by its PID.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

MODEL_ALIAS = "tiny-llama"
# The server's context window, smaller than the 4,096 the model states in its metadata, so
# that an over-long prompt is cheap to build.
N_CTX = 512
START_TIMEOUT_S = 60.0
WHEELS = Path(__file__).resolve().parents[2].parent / "shared" / "wheels"


def _missing() -> str | None:
    for module, package in (("llama_cpp.server", "llama-cpp-python[server]"), ("gguf", "gguf")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # the parent package is absent
            found = False
        if not found:
            where = f" ({WHEELS} is absent)" if not WHEELS.is_dir() else ""
            return (
                f"{package} is not installed{where}: run `tox -e realserver`, which installs "
                "llama-cpp-python from ../shared/wheels next to the clone"
            )
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _missing()
    here = Path(__file__).parent
    for item in items:
        if reason and here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class LlamaServer:
    """A running llama-cpp-python server."""

    url: str
    model: str
    n_ctx: int
    pid: int
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(port: int) -> dict[str, str]:
    """This environment without the variables the server reads as settings (pydantic-settings
    maps e.g. API_KEY, N_CTX or MODEL onto its options), plus the loopback address: its
    __main__ lets HOST and PORT override the command line."""
    from llama_cpp.server.settings import Settings

    fields = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in fields}
    env.update(HOST="127.0.0.1", PORT=str(port))
    return env


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """Generate the model, start the server on a free loopback port, stop it by PID."""
    from .tiny_model import write_model

    directory = tmp_path_factory.mktemp("llama")
    model = write_model(directory / "tiny.gguf")
    port = _free_port()
    log = directory / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model", str(model),
        "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(N_CTX),
        "--n_threads", "1",
        "--n_threads_batch", "1",
        "--verbose", "False",
    ]  # fmt: skip
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=_server_env(port)
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text(errors='replace')}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/v1/models", timeout=2).ok:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer in {START_TIMEOUT_S:g} s")
            time.sleep(0.1)
        yield LlamaServer(url, MODEL_ALIAS, N_CTX, process.pid, log)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
