"""The servers the scale-out tests start do not outlive the test process, even one killed
with SIGKILL (a CI timeout runs no teardown), and even when a side thread started them again
(PR_SET_PDEATHSIG fires when the *thread* that started a child ends)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import llama_missing

pytestmark = [
    pytest.mark.scaleout,
    pytest.mark.skipif(llama_missing() is not None, reason=str(llama_missing())),
]

TESTS = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of a dead parent is reaped by init at once; one still listed is gone too.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def test_a_llama_server_started_again_from_a_thread_dies_with_the_tests(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        from pathlib import Path
        sys.path.insert(0, {str(TESTS)!r})
        from realserver.tiny_model import write_model
        from scaleout.conftest import LlamaMachine

        directory = Path({str(tmp_path)!r})
        machine = LlamaMachine(directory, "llama-1", write_model(directory / "tiny.gguf"))

        def again():
            machine.kill()
            machine.start()

        side = threading.Thread(target=again)
        side.start()
        side.join()
        time.sleep(0.5)  # the thread has ended: the server must still be up
        print(machine.process.pid, machine.answers(), flush=True)
        time.sleep(600)
        """
    )
    tests = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = tests.stdout.readline() if tests.stdout else ""
        assert line, "the script ended before it started the server"
        pid_text, answers = line.split()
        pid = int(pid_text)
        assert answers == "True"  # still up after the thread that started it ended
        tests.send_signal(signal.SIGKILL)
        tests.wait(timeout=10)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        leaked = alive(pid)
        if leaked:
            os.kill(pid, signal.SIGKILL)
        assert not leaked, "the llama server outlived the killed test process"
    finally:
        if tests.poll() is None:
            tests.kill()
            tests.wait(timeout=10)
