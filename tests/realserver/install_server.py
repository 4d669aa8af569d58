"""Install llama-cpp-python's server from a local wheel directory, if there is one.

Used by the ``realserver`` tox environment: ``python install_server.py WHEELS``. Without the
directory it installs nothing and exits 0, so that the tests skip with their reason instead
of pip compiling llama.cpp from source (about 20 minutes on two cores).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REQUIREMENT = "llama-cpp-python[server]==0.3.36"


def main(argv: list[str]) -> int:
    wheels = Path(argv[1]).resolve() if len(argv) > 1 else None
    if wheels is None or not wheels.is_dir():
        print(f"install_server: {wheels} is absent: the real-server tests will be skipped")
        return 0
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--find-links", str(wheels), "--only-binary", "llama-cpp-python", REQUIREMENT,
    ]  # fmt: skip
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
