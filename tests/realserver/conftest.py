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


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the server gets SIGTERM when pytest dies, even by SIGTERM or SIGKILL, which run
    no fixture teardown (a CI timeout would otherwise leave it running)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _answers_as_ours(url: str, alias: str) -> bool:
    """Whether the server at ``url`` serves ``alias``: the free port was free when we asked,
    not necessarily when the server bound it, and another process may answer there."""
    with contextlib.suppress(requests.RequestException, ValueError):
        response = requests.get(f"{url}/v1/models", timeout=2)
        served = [e.get("id") for e in response.json().get("data") or () if isinstance(e, dict)]
        return response.ok and alias in served
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server by its PID (terminate() does nothing to one that already exited)."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _start(model: Path, log: Path, alias: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on a free loopback port; another port if that one was taken."""
    for _ in range(3):
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model", str(model),
            "--model_alias", alias,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(N_CTX),
            "--n_threads", "1",
            "--n_threads_batch", "1",
            "--verbose", "False",
        ]  # fmt: skip
        with open(log, "wb") as output:
            process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=_server_env(port),
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while process.poll() is None:
                # Ours only if it is still running after answering with our alias.
                if _answers_as_ours(url, alias) and process.poll() is None:
                    return process, url
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llama_cpp.server did not answer in {START_TIMEOUT_S:g} s")
                time.sleep(0.1)
        except BaseException:
            _stop(process)
            raise
        text = log.read_text(errors="replace")
        if "address already in use" not in text.lower():
            raise RuntimeError(f"llama_cpp.server exited: {text}")
    raise RuntimeError("llama_cpp.server found no free port in three tries")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """Generate the model, start the server on a free loopback port, stop it by PID."""
    from .tiny_model import write_model

    directory = tmp_path_factory.mktemp("llama")
    model = write_model(directory / "tiny.gguf")
    log = directory / "server.log"
    # The alias names this session's server, so that no other one on the port passes for it.
    alias = f"{MODEL_ALIAS}-{os.getpid()}"
    process, url = _start(model, log, alias)
    try:
        yield LlamaServer(url, alias, N_CTX, process.pid, log)
    finally:
        _stop(process)
