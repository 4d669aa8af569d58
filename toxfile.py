"""tox loads this file by itself (an inline plugin: nothing to install), so plain `tox` tests on
every Python from 3.9 to 3.13 that pyenv has installed.

pyenv's shims answer only for the active versions: without this, `python3.9` fails on a pyenv
machine whose global version is 3.11 and tox skips py39 as a missing interpreter. Here, before tox
looks for interpreters, every installed 3.9-3.13 is added to PYENV_VERSION (after any versions the
user already named, so theirs still come first) and the shims go first on PATH. Machines without
pyenv are left alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

try:
    from tox.plugin import impl
except ImportError:  # imported by the unit tests, where tox is not installed

    def impl(function: Any) -> Any:
        return function


SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")


def pyenv_root(environ: dict[str, str] | os._Environ[str]) -> Path | None:
    """pyenv's root directory (PYENV_ROOT, else ~/.pyenv), or None when pyenv is not there."""
    root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    return root if (root / "versions").is_dir() else None


def newest_versions(root: Path, minors: tuple[str, ...] = SUPPORTED) -> list[str]:
    """The newest installed x.y.z of each minor version, in the order of ``minors``."""
    installed = [p.name for p in (root / "versions").iterdir() if p.is_dir()]
    found = []
    for minor in minors:
        pattern = re.compile(rf"^{re.escape(minor)}\.(\d+)$")
        patches = [int(m.group(1)) for name in installed if (m := pattern.match(name))]
        if patches:
            found.append(f"{minor}.{max(patches)}")
    return found


def pyenv_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The PYENV_VERSION and PATH that make every supported installed Python visible."""
    root = pyenv_root(environ)
    if root is None:
        return {}
    current = [v for v in environ.get("PYENV_VERSION", "").split(":") if v]
    wanted = current + [v for v in newest_versions(root) if v not in current]
    if not wanted:
        return {}
    shims = str(root / "shims")
    path = environ.get("PATH", "")
    if shims not in path.split(os.pathsep):
        path = os.pathsep.join([shims, path]) if path else shims
    return {"PYENV_VERSION": ":".join(wanted), "PATH": path}


@impl
def tox_add_option(parser: object) -> None:
    """Runs before tox looks for interpreters: make pyenv's Pythons visible to it."""
    os.environ.update(pyenv_environment(os.environ))
