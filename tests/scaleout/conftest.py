"""The scale-out group: a real nginx, configured with the a1 block of docs/scaling.md, in front
of several servers in their own processes, which the tests kill and start again.

The servers are the repository's double (``python -m persona_ollama.testing``) for the
native API and llama-cpp-python's server for /v1. nginx runs on loopback from its own
prefix directory (``-p``, ``-c``, ``-e``; its pid file and temp files in that directory), so
no system-wide file is read or written. ``tox -e scaleout`` runs the group; .ci/run installs
nginx from Debian's packages when it is missing. Without nginx every test is skipped with
the reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SCALING = REPO / "docs" / "scaling.md"
START_TIMEOUT_S = 30.0


def nginx_binary() -> str | None:
    """nginx on PATH or in Debian's /usr/sbin (not on a normal user's PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if nginx_binary() is not None:
        return
    reason = (
        "nginx is not installed: .ci/run installs it (`apt-get install -y nginx`, Debian); "
        "by hand, install it and run `tox -e scaleout`"
    )
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(str(item.fspath)).parents]
    if ours and os.environ.get("SCALEOUT_REQUIRE_NGINX"):
        # .ci/run found or installed nginx: not finding it here is a failure, not a skip.
        raise pytest.UsageError(f"SCALEOUT_REQUIRE_NGINX is set, but {reason}")
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {START_TIMEOUT_S:g} s")


def die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Linux: the child gets SIGKILL when pytest dies (a CI timeout runs no teardown)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


def stop(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """Stop ``process`` by its PID: SIGKILL (a machine that dies) or SIGTERM."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# -- the docs' nginx block -------------------------------------------------------------------


def docs_nginx_block(marker: str = "upstream ollama_pool") -> str:
    """The ```nginx block of docs/scaling.md that holds ``marker``: the one a1 shows."""
    text = SCALING.read_text(encoding="utf-8")
    blocks = re.findall(r"^```nginx\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"docs/scaling.md has {len(found)} nginx blocks with {marker!r}"
    return found[0]


def render_nginx_block(block: str, upstreams: Sequence[str], port: int) -> str:
    """The docs' block with its ``server gpu-N:PORT;`` lines replaced by ``upstreams``
    (host:port) and its ``listen`` on a loopback port: nothing else is changed."""
    servers = re.findall(r"^([ \t]*)server [\w.-]+:\d+;[^\n]*\n", block, flags=re.MULTILINE)
    assert len(servers) >= 2, "the docs' upstream block lists no machines"
    indent = servers[0]
    lines = "".join(f"{indent}server {address};\n" for address in upstreams)
    rendered, count = re.subn(
        r"(?:^[ \t]*server [\w.-]+:\d+;[^\n]*\n)+", lines, block, count=1, flags=re.MULTILINE
    )
    assert count == 1
    rendered, count = re.subn(r"\blisten\s+\d+;", f"listen 127.0.0.1:{port};", rendered)
    assert count == 1, "the docs' server block has no `listen PORT;`"
    return rendered


def nginx_conf(prefix: Path, http_block: str) -> str:
    """A whole nginx.conf around ``http_block``: every file inside ``prefix``."""
    temp = {name: prefix / f"{name}_temp" for name in ("client_body", "proxy", "fastcgi")}
    temp.update({name: prefix / f"{name}_temp" for name in ("uwsgi", "scgi")})
    for directory in temp.values():
        directory.mkdir(exist_ok=True)
    # As root, nginx runs its worker as `nobody`, who cannot enter pytest's 0700 directories.
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\n"
        "events { worker_connections 512; }\n"
        "http {\n"
        "    log_format pool '$request_uri|$status|$upstream_addr|$upstream_status';\n"
        f"    access_log {prefix}/access.log pool;\n"
        + "".join(f"    {name}_temp_path {path};\n" for name, path in temp.items())
        + http_block
        + "}\n"
    )


@dataclass(frozen=True)
class Request:
    """One line of nginx's access log."""

    uri: str
    status: int
    #: the machines tried, in order ("a:1, b:2" when nginx moved the request)
    upstreams: str
    statuses: str


class Nginx:
    """nginx on a loopback port, from its own prefix directory, with the docs' a1 block."""

    def __init__(self, prefix: Path, upstreams: Sequence[str]) -> None:
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        block = render_nginx_block(docs_nginx_block(), upstreams, self.port)
        self.config = prefix / "nginx.conf"
        self.config.write_text(nginx_conf(prefix, block), encoding="utf-8")
        log = prefix / "error.log"
        binary = nginx_binary()
        assert binary is not None
        command = [binary, "-p", str(prefix), "-c", str(self.config), "-e", str(log)]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port(self.port, self.process, "nginx", log)
        except BaseException:
            stop(self.process)
            raise

    def access_log(self) -> list[Request]:
        """One entry per request nginx answered, oldest first."""
        path = self.prefix / "access.log"
        if not path.exists():
            return []
        entries = []
        for line in path.read_text().splitlines():
            uri, status, upstreams, statuses = line.split("|")
            entries.append(Request(uri, int(status), upstreams, statuses))
        return entries

    def error_log(self) -> str:
        return (self.prefix / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        stop(self.process)


# -- the double, one process per machine ----------------------------------------------------


class Machine:
    """``python -m persona_ollama.testing`` on a fixed loopback port: one GPU machine that a
    test can kill (SIGKILL, as a crash or a power cut) and start again on the same port."""

    def __init__(self, directory: Path, name: str, arguments: Sequence[str]) -> None:
        self.name = name
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.arguments = list(arguments)
        self.directory = directory
        self.logs: list[Path] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = self.directory / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        command = [
            sys.executable, "-m", "persona_ollama.testing",
            "--port", str(self.port), "--log", *self.arguments,
        ]  # fmt: skip
        self._spawn(command, log, "wb")
        for _ in range(3):
            try:
                wait_for_port(self.port, self.process, f"the double {self.name}", log)
                return
            except RuntimeError:
                # The port of a killed double can linger a moment: start once more.
                if "cannot listen" not in log.read_text(errors="replace"):
                    raise
                time.sleep(0.3)
                self._spawn(command, log, "ab")
        raise RuntimeError(f"the double {self.name} could not listen on {self.port}")

    def _spawn(self, command: list[str], log: Path, mode: str) -> None:
        with open(log, mode) as output:
            self.process = subprocess.Popen(
                command,
                # The double stops when this pipe closes, as it does when pytest dies. Not
                # PR_SET_PDEATHSIG: that fires when the *thread* that started it ends, and
                # the tests start machines again from a side thread.
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=output,
            )

    def kill(self) -> None:
        assert self.process is not None
        stop(self.process, kill=True)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    def completed(self, path: str = "/api/chat") -> int:
        """Generations this machine answered to the end, over all its lives: the double logs
        a request once its answer is over, so a killed one's cut answers are not counted."""
        # Not anchored to a line's start: print() writes the text and its newline apart, so
        # the lines of two requests that end together can interleave.
        entry = f"POST {path} 200 "
        return sum(log.read_text(errors="replace").count(entry) for log in self.logs)

    def answers(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"http://{self.address}/api/version", timeout=2).ok
        return False


def completed(machines: Sequence[Machine], expected: int, path: str = "/api/chat") -> int:
    """The generations ``machines`` answered to the end, read once ``expected`` are logged or
    after 5 s: a double logs a request just after its last byte, which the client may have
    read first."""
    deadline = time.monotonic() + 5.0
    while True:
        count = sum(machine.completed(path) for machine in machines)
        if count >= expected or time.monotonic() > deadline:
            time.sleep(0.2)  # and a moment more, for any answer logged twice
            return sum(machine.completed(path) for machine in machines)
        time.sleep(0.05)


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[list[Machine]]:
    """Every Machine a test starts (append to it), stopped at the end."""
    started: list[Machine] = []
    yield started
    for machine in started:
        machine.stop()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[list[Nginx]]:
    """The nginx a test starts (append to it), stopped at the end."""
    started: list[Nginx] = []
    yield started
    for nginx in started:
        nginx.stop()


# -- llama-cpp-python's server, for /v1 ------------------------------------------------------

LLAMA_ALIAS = "tiny-llama"
LLAMA_N_CTX = 512


def llama_missing() -> str | None:
    """Why the /v1 machines cannot run here, or None."""
    import importlib.util

    for module in ("llama_cpp.server", "gguf"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:
            found = False
        if not found:
            wheels = REPO.parent / "shared" / "wheels"
            where = "" if wheels.is_dir() else f" ({wheels} is absent)"
            return (
                f"{module} is not installed{where}: `tox -e scaleout` installs llama-cpp-python "
                "from ../shared/wheels next to the clone"
            )
    return None


# One thread that starts every llama server and lives until the tests end (never shut down).
_SPAWNER = ThreadPoolExecutor(1, thread_name_prefix="scaleout-spawner")


class LlamaMachine(Machine):
    """llama-cpp-python's server with a tiny generated model (tests/realserver/tiny_model.py),
    on a fixed loopback port, answering concurrent requests one after another."""

    def __init__(self, directory: Path, name: str, model: Path) -> None:
        self.model = model
        super().__init__(directory, name, [])

    def start(self) -> None:
        from llama_cpp.server.settings import Settings

        log = self.directory / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model), "--model_alias", LLAMA_ALIAS,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(LLAMA_N_CTX), "--n_threads", "1", "--n_threads_batch", "1",
            "--interrupt_requests", "False", "--verbose", "False",
        ]  # fmt: skip
        # Its settings come from the environment too (HOST, PORT, MODEL ...): only ours count.
        fields = {name.upper() for name in Settings.model_fields}
        env = {key: value for key, value in os.environ.items() if key.upper() not in fields}
        env.update(HOST="127.0.0.1", PORT=str(self.port))
        with open(log, "wb") as output:
            # Started from one thread that lives as long as the tests: PR_SET_PDEATHSIG
            # kills it when that thread ends, and the tests start servers again from side
            # threads that end at once (llama_cpp.server, unlike the double, does not stop
            # when its stdin closes).
            self.process = _SPAWNER.submit(
                subprocess.Popen,
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=die_with_parent,
            ).result()
        try:
            wait_for_port(self.port, self.process, f"llama_cpp.server {self.name}", log)
        except BaseException:
            stop(self.process, kill=True)
            raise

    def answers(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"http://{self.address}/v1/models", timeout=2).ok
        return False
