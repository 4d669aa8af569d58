"""The `persona-ollama` command: check the set-up, list and pull models, try a prompt.

Every command takes --host (else OLLAMA_BASE_URL / OLLAMA_HOST); those that print data take
--json for scripts. Errors become a message with its hint and exit code 1 (2 for a usage error,
130 when interrupted); with --json, that error is a JSON object on standard output instead.
--debug shows the traceback.
"""

from __future__ import annotations

# Importing a command module registers its command on `main`; `app` imports none of them.
from . import bench as bench
from . import doctor as doctor
from . import models as models
from . import persona as persona
from . import pull as pull
from . import run as run
from .app import main

__all__ = ["main"]
