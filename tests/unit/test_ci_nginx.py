""".ci/install-nginx, which .ci/run calls before tox: the scaleout environment needs nginx, and
CI must not skip those tests because an install failed quietly. Run with a PATH of stand-in
commands (apt-get, id, nginx), so nothing is installed and no network is used."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "install-nginx"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def stand_in(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def run(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{folder}:/usr/bin:/bin",
        "NGINX_SBIN": str(folder / "no-such-nginx"),
        "CALLS": str(folder / "calls"),
        "POLICY_RC_D": str(folder / "policy-rc.d"),
    }
    return subprocess.run(
        [str(BASH), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    stand_in(tmp_path, "id", "echo 0")  # as root, as in CI
    return tmp_path


def calls(folder: Path) -> list[str]:
    log = folder / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_an_apt_that_fails_fails_the_run_saying_why(folder):
    stand_in(folder, "apt-get", 'echo "apt-get $*" >> "$CALLS"; echo "E: no network" >&2; exit 100')

    done = run(folder)

    assert done.returncode != 0
    assert "could not install nginx" in done.stderr
    assert "scaleout" in done.stderr
    assert calls(folder)  # it was tried


def test_nginx_that_is_installed_is_not_installed_again(folder):
    stand_in(folder, "apt-get", 'echo "apt-get $*" >> "$CALLS"; exit 100')
    stand_in(folder, "nginx", "exit 0")

    done = run(folder)

    assert done.returncode == 0, done.stderr
    assert calls(folder) == []


def test_a_missing_nginx_is_installed_and_found_after(folder):
    # The stand-in apt-get "installs" nginx: a second run does nothing more.
    body = 'echo "apt-get $*" >> "$CALLS"\n'
    nginx = folder / "nginx"
    body += f'case "$*" in *install*) printf "#!/bin/sh\\n" > {nginx}; chmod +x {nginx};; esac'
    stand_in(folder, "apt-get", body)

    assert run(folder).returncode == 0
    assert [line.split()[1] for line in calls(folder)] == ["update", "install"]
    assert run(folder).returncode == 0
    assert len(calls(folder)) == 2


def test_without_apt_or_root_it_says_the_tests_will_skip(folder):
    stand_in(folder, "id", "echo 1000")

    done = run(folder)

    assert done.returncode == 0
    assert "will be skipped" in done.stderr
    assert calls(folder) == []


def test_the_package_may_not_start_a_system_nginx_during_the_install(folder):
    # Debian's policy-rc.d answers 101 ("not allowed") while apt-get runs, then is removed:
    # the package's own nginx on port 80 is never started; the tests start their own.
    policy = folder / "policy-rc.d"
    nginx = folder / "nginx"
    body = f'echo "apt-get $* policy=$(sh {policy}; echo $?)" >> "$CALLS"\n'
    body += f'case "$*" in *install*) printf "#!/bin/sh\\n" > {nginx}; chmod +x {nginx};; esac'
    stand_in(folder, "apt-get", body)

    assert run(folder).returncode == 0
    assert [line.split()[-1] for line in calls(folder)] == ["policy=101", "policy=101"]
    assert not policy.exists()


def test_a_policy_the_machine_already_has_is_left_alone(folder):
    policy = folder / "policy-rc.d"
    stand_in(folder, "policy-rc.d", "exit 0")
    nginx = folder / "nginx"
    body = f'case "$*" in *install*) printf "#!/bin/sh\\n" > {nginx}; chmod +x {nginx};; esac'
    stand_in(folder, "apt-get", body)

    assert run(folder).returncode == 0
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
