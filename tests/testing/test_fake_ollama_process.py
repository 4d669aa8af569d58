"""FakeOllama as a separate process (``python -m persona_ollama.testing``) and its public face."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

import persona_ollama.testing as testing
from persona_ollama.testing.__main__ import main


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "persona_ollama.testing", "--port", "0", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_module_prints_its_url_first_and_stops_when_stdin_closes() -> None:
    with spawn("--models", "qwen3:0.6b,custom:1b", "--version", "0.20.0") as process:
        assert process.stdin is not None
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        models = requests.get(url + "/api/tags", timeout=5).json()["models"]
        version = requests.get(url + "/api/version", timeout=5).json()

        process.stdin.close()

        assert process.wait(timeout=10) == 0
    assert url.startswith("http://127.0.0.1:")
    assert sorted(m["name"] for m in models) == ["custom:1b", "qwen3:0.6b"]
    assert version == {"version": "0.20.0"}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_module_stops_cleanly_on_sigterm() -> None:
    with spawn() as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert requests.get(url, timeout=5).text == "Ollama is running"

        process.send_signal(signal.SIGTERM)

        assert process.wait(timeout=10) == 0


def test_main_in_process_applies_the_latency_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    fake_stdin, fake_stdout = os.fdopen(stdin_read), os.fdopen(stdout_write, "w")
    monkeypatch.setattr(sys, "stdin", fake_stdin)
    monkeypatch.setattr(sys, "stdout", fake_stdout)
    seen: dict[str, object] = {}

    def client() -> None:
        with os.fdopen(stdout_read) as output:
            url = output.readline().strip()
            seen["chat"] = requests.post(
                url + "/api/chat",
                json={"model": "llama3.2:3b", "messages": [{"role": "user", "content": "x"}]},
                timeout=5,
            ).status_code
            seen["pull"] = requests.post(
                url + "/api/pull", json={"model": "tiny:1b"}, timeout=5
            ).status_code
        os.write(stdin_write, b"ignored\n")
        os.close(stdin_write)  # like a parent process going away

    thread = threading.Thread(target=client)
    thread.start()
    code = main(
        [
            "--first-byte",
            "0.01",
            "--between-chunks",
            "0.001",
            "--pull-delay",
            "0.001",
            "--chunk-size",
            "8",
        ]
    )
    thread.join(10)
    fake_stdout.close()
    fake_stdin.close()

    assert code == 0
    assert seen == {"chat": 200, "pull": 200}


def test_main_returns_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(self: threading.Event, timeout: float | None = None) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Event, "wait", interrupt)
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)  # not a pipe: serve until a signal

        assert main(["--models", ""]) == 0


def test_the_package_exports_its_public_names_lazily() -> None:
    assert sorted(testing.__all__) == sorted(testing._LAZY)
    assert set(testing.__all__) <= set(dir(testing))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = testing.Nope


def test_package_ships_the_pytest_plugin_entry_point() -> None:
    pyproject = Path(__file__).parents[2] / "pyproject.toml"

    assert 'persona_ollama = "persona_ollama.testing.pytest_plugin"' in pyproject.read_text()


def test_factory_fixture_stops_every_server_it_started(fake_ollama_factory) -> None:
    first = fake_ollama_factory([])
    second = fake_ollama_factory(["qwen3:0.6b"], default_num_ctx=8192)

    assert requests.get(first.url + "/api/tags", timeout=5).json() == {"models": []}
    assert [m.name for m in second.models] == ["qwen3:0.6b"]


def test_the_demo_serves_catalogue_facts_logs_requests_and_names_itself() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "persona_ollama.testing", "--log", *("--models", "llama3.2:3b")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with process:
        assert process.stdout is not None and process.stdin is not None
        url = process.stdout.readline().strip()
        tags = requests.get(url + "/api/tags", timeout=5)
        pulled = requests.post(url + "/api/pull", json={"model": "qwen2.5:7b"}, timeout=5)
        chat = requests.post(
            url + "/api/chat",
            json={
                "model": "qwen2.5:7b",  # pulled above
                "messages": [{"role": "user", "content": "Two personas, please"}],
                "format": "json",
                "stream": False,
                "options": {"num_ctx": 8192},
            },
            headers={"User-Agent": "demo-test/1"},
            timeout=5,
        )
        after = requests.get(url + "/api/tags", timeout=5).json()["models"]
        process.stdin.close()
        assert process.wait(timeout=10) == 0
        log = process.stderr.read() if process.stderr else ""
    llama = next(m for m in tags.json()["models"] if m["name"] == "llama3.2:3b")
    # The catalogue's facts (persona_ollama/choosing/data/models.json), not the double's defaults.
    assert llama["details"]["parameter_size"] == "3.2B"
    assert llama["details"]["context_length"] == 131072
    assert pulled.status_code == 200
    qwen = next(m for m in after if m["name"] == "qwen2.5:7b")
    assert qwen["details"]["parameter_size"] == "7.6B"  # not the double's default 3.2B
    assert qwen["details"]["context_length"] == 32768
    assert qwen["size"] == 4_683_087_332
    personas = json.loads(chat.json()["message"]["content"])["personas"]
    assert [p["id"] for p in personas] == ["compliance-bound-researcher", "evidence-first-lead"]
    assert tags.headers["X-Fake-Ollama"] == "persona_ollama.testing"
    line = next(line for line in log.splitlines() if line.startswith("POST /api/chat"))
    assert "agent=demo-test/1" in line
    assert "model=qwen2.5:7b" in line
    assert "num_ctx=8192" in line


def test_the_demo_answers_with_a_reply_file(tmp_path: Path) -> None:
    from persona_ollama.testing.demo import demo_server

    reply = tmp_path / "reply.json"
    reply.write_text('{"personas": []}', encoding="utf-8")
    with demo_server(["llama3.2:3b"], reply_file=reply) as fake:
        answer = requests.post(
            fake.url + "/api/chat",
            json={"model": "llama3.2:3b", "messages": [{"role": "user", "content": "x"}]},
            timeout=5,
        )
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert "".join(line["message"]["content"] for line in lines) == '{"personas": []}'


def test_the_demo_on_a_busy_port_says_so_without_a_traceback(capsys) -> None:
    """Port 11434 taken (a real Ollama, or the demo started twice) is the likeliest failure."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "--port 0" in err
    assert "Traceback" not in err


def test_the_demo_with_a_missing_reply_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--reply", str(tmp_path / "missing.json")])
    assert stopped.value.code == 2
    assert "--reply" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--models", "qwen3:8b,bad name"],
        ["--remote-alias", "a/b/c/d=gpt-oss:120b-cloud"],
        ["--remote-alias", "notes=bad name"],
    ],
)
def test_the_demo_with_a_model_name_the_server_refuses_is_a_usage_error(args, capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--port", "0", *args])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "is not a valid model name" in err and "Traceback" not in err
