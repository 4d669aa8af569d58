"""The repository is a template that works: docs/writing-a-provider.md's steps, applied.

The test reads the guide's marked steps (``<!-- docs-test: template=... -->`` blocks, parsed
by tests/docs/docs_harness.py), so that the guide and this test cannot tell different stories:
``generate`` runs scripts/new_provider.py here, into a temporary directory; ``run`` runs each
``$`` command in the new project (``python`` is this interpreter). The guide's steps install
the project into its own virtual environment, run its whole test suite (the contract suite
against the double of the Acme server among it), then lint and type-check it. The test asserts
that every command succeeded and that the suite passed with a real number of tests, and prints
the size of the skeleton's files and how long each step took: the figures the guide states.

The generator refuses a project that still names Ollama (it lists the lines and exits 1), so a
step that fails here is also a kernel or double module that came to name Ollama.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from persona_ollama.settings import BASE_URL_VAR, HOST_VAR, PREFIX

# Installs a project and runs a whole suite: tox runs it once, on py311 (tests/conftest.py).
pytestmark = [pytest.mark.contract, pytest.mark.once]

REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 900  # seconds; a step installs and runs a whole test suite
# The new project's suite: the kernel's unit tests, the backend's and the contract suite's (95
# tests on 4 December 2026); far more than a suite that collected nothing, or one file, would.
MIN_PASSED = 60
# The skeleton's files, whose sizes the guide states.
SKELETON = (
    "persona_acme/backends/acme.py",
    "persona_acme/backends/acme_rules.py",
    "persona_acme/testing/acme.py",
    "tests/unit/test_backend_acme.py",
)


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
    """This process's environment without what would point the project at something else."""
    drop = (HOST_VAR, BASE_URL_VAR, "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(PREFIX)}
    env.pop("COVERAGE_PROCESS_START", None)  # the project measures nothing of ours
    env.update(PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    return env


def execute(
    command: str, cwd: Path, target: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """One ``$ command``; ``python`` is this test's interpreter, and the generator's target
    directory (its last argument) is ``target``."""
    argv = shlex.split(command)
    if argv[0] == "python":
        argv[0] = sys.executable
    if target is not None:
        argv[-1] = str(target)
    return subprocess.run(
        argv,
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def generated(command: str, project: Path) -> str:
    """Run the generator, which must succeed: a project with no line naming Ollama."""
    result = execute(command, REPO, target=project)
    assert result.returncode == 0, f"the generator failed:\n{result.stdout}\n{result.stderr}"
    assert "still names" not in result.stderr, result.stderr
    return result.stdout


def count(word: str, summary: str) -> int:
    found = re.search(rf"(\d+) {word}", summary)
    return int(found.group(1)) if found else 0


def test_the_guides_steps_make_a_project_whose_suite_lint_and_types_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    harness = load_harness()
    project = tmp_path / "persona-acme"
    times: list[tuple[str, float]] = []
    outputs: dict[str, str] = {}

    for block in harness.template_steps():
        for step in harness.console_steps(block):
            started = time.monotonic()
            if block.options["template"] == "generate":
                outputs[step.command] = generated(step.command, project)
            else:
                result = execute(step.command, project)
                assert result.returncode == 0, (
                    f"the guide's command `{step.command}` failed in the new project:\n"
                    f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
                )
                outputs[step.command] = result.stdout
            times.append((step.command, time.monotonic() - started))

    (suite,) = [out for command, out in outputs.items() if "pytest" in command.split()]
    summary = suite.strip().splitlines()[-1]
    assert re.search(r"\d+ passed.* in [0-9.]+s", summary), suite
    assert count("passed", summary) >= MIN_PASSED, suite
    assert count("failed", summary) == 0 and count("error", summary) == 0, suite
    assert count("skipped", summary) == 0, suite
    # The contract suite and the backend's tests ran, against the Acme double.
    assert "tests/contract/test_installed_plugin.py" in suite, suite
    assert "tests/unit/test_backend_acme.py" in suite, suite
    assert not (project / "persona_ollama").exists()
    lines = {path: len((project / path).read_text().splitlines()) for path in SKELETON}
    with capsys.disabled():
        print(f"\ntemplate test: {outputs[times[0][0]]}")
        print(f"template test: the suite: {summary.strip('= ')}")
        print("template test: lines " + ", ".join(f"{p} {n}" for p, n in lines.items()))
        for command, seconds in times:
            print(f"template test: {seconds:6.1f} s  {command}")
