"""toxfile.py: plain `tox` finds every installed Python on a pyenv machine, and a run ends with
a test suite's summary."""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from types import ModuleType

from shared_helpers import load_module

REPO = Path(__file__).resolve().parents[2]


def toxfile() -> ModuleType:
    return load_module("toxfile_under_test", REPO / "toxfile.py")


def fake_pyenv(root: Path, versions: list[str]) -> Path:
    for version in versions:
        (root / "versions" / version / "bin").mkdir(parents=True)
    (root / "shims").mkdir()
    return root


def test_every_supported_minor_is_made_visible_newest_patch_first_choice(tmp_path: Path) -> None:
    root = fake_pyenv(
        tmp_path, ["2.7.18", "3.8.18", "3.9.2", "3.9.18", "3.10.13", "3.11.7", "3.13.0"]
    )
    env = toxfile().pyenv_environment({"PYENV_ROOT": str(root), "PATH": "/usr/bin"})
    assert env["PYENV_VERSION"] == "3.9.18:3.10.13:3.11.7:3.13.0"
    assert env["PATH"] == os.pathsep.join([str(root / "shims"), "/usr/bin"])


def test_the_users_versions_stay_first_and_are_not_repeated(tmp_path: Path) -> None:
    root = fake_pyenv(tmp_path, ["3.9.18", "3.11.7", "3.12.1"])
    shims = str(root / "shims")
    env = toxfile().pyenv_environment(
        {"PYENV_ROOT": str(root), "PYENV_VERSION": "3.12.1", "PATH": shims}
    )
    assert env["PYENV_VERSION"] == "3.12.1:3.9.18:3.11.7"
    assert env["PATH"] == shims  # already there: not added twice


def test_a_machine_without_pyenv_is_left_alone(tmp_path: Path) -> None:
    assert toxfile().pyenv_environment({"PYENV_ROOT": str(tmp_path / "none")}) == {}


def test_a_run_ends_with_a_test_suite_not_the_live_tests() -> None:
    config = configparser.ConfigParser()
    config.read(REPO / "tox.ini")
    envs = [name.strip() for name in config["tox"]["env_list"].split(",")]
    assert envs[-1].startswith("py3"), envs
    assert envs.index("live") < min(envs.index(n) for n in envs if n.startswith("py3"))
