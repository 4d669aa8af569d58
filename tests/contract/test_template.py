"""The repository is a template that works: docs/writing-a-provider.md's steps, applied.

The test takes a copy of the repository and applies the guide's marked steps in their order,
reading them from the guide itself (``<!-- docs-test: template=... -->`` blocks, parsed by
tests/docs/docs_harness.py), so that the guide and this test cannot tell different stories:
``copy`` copies the working tree, ``run`` runs each ``$`` command in the copy (``python`` is
this interpreter), ``write`` writes a whole file, ``replace`` applies a diff whose old lines must
be found exactly once. The guide's last steps install the copy into its own virtual environment,
run the copy's contract suite there against the double of the new kind of server, then lint
and type-check the copy; this test asserts that every command succeeded, that the suite
passed with a real number of tests, and prints how long it all took.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from persona_ollama.settings import BASE_URL_VAR, HOST_VAR, PREFIX

# The guide's steps on a copy: the Python-specific parts (the installed wheel) are in
# test_installed_plugin.py, so tox runs this once, on py311 (tests/conftest.py).
pytestmark = [pytest.mark.contract, pytest.mark.once]

REPO = Path(__file__).resolve().parents[2]
# The copy step's commands clone from the network: the test copies the working tree instead,
# the same files, without what a clone does not have.
COPY_IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".tox", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".coverage*"
)
COMMAND_TIMEOUT = 600  # seconds; the last step installs and runs a whole test suite
# The copy's contract suite has 13 tests, one of them for Ollama's API only: far more than a
# suite that collected nothing, or only the skipped one, would report.
MIN_PASSED = 10


def load_harness() -> Any:
    """tests/docs/docs_harness.py (pure functions, no server): how the docs are read."""
    path = REPO / "tests" / "docs" / "docs_harness.py"
    spec = importlib.util.spec_from_file_location("docs_harness_for_template", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def environment() -> dict[str, str]:
    """This process's environment without what would point the copy at something else."""
    drop = (HOST_VAR, BASE_URL_VAR, "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(PREFIX)}
    env.pop("COVERAGE_PROCESS_START", None)  # the copy measures nothing of ours
    env.update(PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    return env


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """One ``$ command`` of a run step, in the copy; ``python`` is this test's interpreter."""
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"the guide's command `{command}` failed in the copy:\n{result.stdout}\n{result.stderr}"
    )
    return result


def apply_steps(harness: Any, copy: Path) -> dict[str, str]:
    """Apply every template step of the guide to ``copy``; each command's output by command."""
    outputs: dict[str, str] = {}
    for block in harness.template_steps():
        action = block.options["template"]
        if action == "copy":
            shutil.copytree(REPO, copy, ignore=COPY_IGNORE)
        elif action == "run":
            for step in harness.console_steps(block):
                outputs[step.command] = run(step.command, copy).stdout
        elif action == "write":
            path = copy / block.options["path"]
            assert path.parent.is_dir(), f"{block.id}: {path.parent} does not exist in the copy"
            path.write_text(block.text, encoding="utf-8")
        else:
            path = copy / block.options["path"]
            assert path.is_file(), f"{block.id}: {path} does not exist in the copy"
            old, new = harness.diff_sides(block.text)
            text = harness.replace_once(path.read_text(encoding="utf-8"), old, new, block.id)
            path.write_text(text, encoding="utf-8")
    return outputs


def count(word: str, summary: str) -> int:
    found = re.search(rf"(\d+) {word}", summary)
    return int(found.group(1)) if found else 0


def test_the_guides_steps_turn_a_copy_into_a_plugin_that_passes_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    harness = load_harness()
    copy = tmp_path / "copy"

    outputs = apply_steps(harness, copy)

    (output,) = [out for command, out in outputs.items() if "pytest" in command.split()]
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(
            f"\ntemplate test: the guide's nine steps on a copy, checks included: {elapsed:.0f} s"
        )
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\d+ passed.* in [0-9.]+s", summary), output
    assert count("passed", summary) >= MIN_PASSED, output
    assert count("failed", summary) == 0 and count("error", summary) == 0, output
    # It ran against the new kind of server: its default API is not Ollama's.
    assert "Ollama's native API; the default API here is" in output, output
    assert not (copy / "persona_ollama").exists()
