"""Measurements that need a fresh interpreter: import cost, and cold hardware probe / selection.

Each runs ``python -I -c <code>`` from a temporary directory (so the installed package is
what loads, not whatever the current directory holds) and reads one JSON line back. The
interpreter's own start-up is outside the timed region.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

ENTRY_POINT_IMPORT = "from persona_ollama import OllamaProvider"
# Modules a provider's import must not pull in (docs/benchmarks.md, "Method", item 3).
HEAVY = ("requests", "urllib3", "psutil", "click", "pluggy", "persona_ollama.transport.http")
# Standard-library modules worth knowing about: each costs milliseconds on first import.
NOTABLE_STDLIB = ("asyncio", "dataclasses", "inspect", "json", "logging", "threading", "typing")

# What any host such as Persona has loaded before it loads provider entry points.
HOST_PRELUDE = "import dataclasses, logging, typing"

_IMPORT_CODE = """\
import sys, time
{prelude}
before = set(sys.modules)
start, cpu = time.perf_counter(), time.process_time()
{statement}
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
new = sorted(set(sys.modules) - before)
import json
print(json.dumps({{"seconds": elapsed, "cpu": cpu, "new": new}}))
"""

_WARM = """\
import json, sys, time
from statistics import median
out = {}
def warm(call, n=200):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return median(times)
"""

_PROBE_CODE = (
    _WARM
    + """\
start = time.perf_counter()
from persona_ollama.choosing import hardware
out["probe_import"] = time.perf_counter() - start
start = time.perf_counter()
profile = hardware.probe()
out["probe_first_call"] = time.perf_counter() - start
out["probe_cold"] = out["probe_import"] + out["probe_first_call"]
out["probe_warm"] = warm(hardware.probe)
out["gpus"] = len(profile.gpus)
from persona_ollama.choosing.catalogue import load_catalogue
from persona_ollama.backends.ollama import listed_model
from persona_ollama.choosing.selection import choose_default
sys.path.insert(0, sys.argv[1])
from bench.server import installed_models
installed = [listed_model(entry) for entry in installed_models()]
out["installed"] = len(installed)
start = time.perf_counter()
catalogue = load_catalogue()
out["catalogue_load"] = time.perf_counter() - start
budget = profile.memory_budget_bytes
start = time.perf_counter()
choice = choose_default(installed, budget, catalogue)
out["choose_first"] = time.perf_counter() - start
out["choose_warm"] = warm(lambda: choose_default(installed, budget, catalogue))
out["choice"] = choice.model
print(json.dumps(out))
"""
)

# A first `persona` command without --model: the provider is imported, then default_model
# loads requests, psutil and pluggy, lists the models, probes and chooses.
_DEFAULT_MODEL_CODE = (
    _WARM
    + """\
from persona_ollama import OllamaProvider
provider = OllamaProvider(base_url=sys.argv[1])
start = time.perf_counter()
out["choice"] = provider.default_model
out["default_model_first"] = time.perf_counter() - start
out["default_model_warm"] = warm(lambda: provider.default_model)
print(json.dumps(out))
"""
)


def _run(code: str, *args: str, flags: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_OLLAMA_")}
    with tempfile.TemporaryDirectory() as cwd:
        done = subprocess.run(
            [sys.executable, "-I", *flags, "-c", code, *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=120,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@dataclass
class ImportCost:
    statement: str
    prelude: str
    seconds: list[float]
    new_modules: list[str]
    slowest: list[tuple[str, float]] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        """CPU time (user + system) of the import: its wall time on an idle core."""
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else self.median

    @property
    def heavy(self) -> list[str]:
        return [name for name in HEAVY if name in self.new_modules]

    @property
    def stdlib(self) -> list[str]:
        return [name for name in NOTABLE_STDLIB if name in self.new_modules]


def import_cost(statement: str, repeats: int, prelude: str = "") -> ImportCost:
    """Median time of ``statement`` in ``repeats`` fresh interpreters, and what it loaded.

    ``prelude`` runs first, untimed: what the host has imported already.
    """
    code = _IMPORT_CODE.format(statement=statement, prelude=prelude)
    _run(code)  # compile any stale bytecode first
    seconds, cpu = [], []
    new: list[str] = []
    for _ in range(repeats):
        result, _ = _run(code)
        seconds.append(result["seconds"])
        cpu.append(result["cpu"])
        new = result["new"]
    result, stderr = _run(code, flags=("-X", "importtime"))
    slowest = _slowest(stderr, set(result["new"]))
    return ImportCost(statement, prelude, seconds, new, slowest, cpu)


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|(\s*)(\S+)")


def _slowest(stderr: str, loaded: set[str], count: int = 6) -> list[tuple[str, float]]:
    """The modules with the largest self time among those the statement loaded."""
    costs = []
    for match in _IMPORTTIME.finditer(stderr):
        name = match.group(3)
        if name in loaded:
            costs.append((name, int(match.group(1)) / 1e6))
    return sorted(costs, key=lambda item: -item[1])[:count]


def defaults_cost(url: str, repeats: int) -> dict[str, Any]:
    """Probe and selection timings, each a median over ``repeats`` fresh interpreters.

    Raises RuntimeError (with the child's last error line) when they fail, e.g. when
    hardware.py or selection.py are missing.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    merged = _median_of([_run(_PROBE_CODE, root)[0] for _ in range(repeats)])
    merged.update(_median_of([_run(_DEFAULT_MODEL_CODE, url)[0] for _ in range(repeats)]))
    return merged


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, float):
            merged[key] = statistics.median(run[key] for run in runs)
        else:
            merged[key] = value
    return merged


# -- start-up with Persona installed (issue 15) --------------------------------------------

# What Persona has done before it loads provider entry points: imported its provider package
# (ProviderPluginRegistry imports the built-in providers first). Untimed: the host's own cost.
PERSONA_PRELUDE = "import sys; sys.path.insert(0, {root!r}); import persona.core.providers"
PERSONA_PACKAGE_IMPORT = "import persona.core.providers"


def _script(name: str) -> str:
    """The console script next to this interpreter (the venv's bin/)."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


def process_wall(argv: list[str], repeats: int, env: dict[str, str]) -> tuple[float, float, str]:
    """Median wall time of a whole process (interpreter start-up included), the median CPU
    time (user + system) it used, and its stdout. CPU time hardly moves when other processes
    share the machine; wall time does."""
    import resource

    walls, cpus = [], []
    output = ""
    with tempfile.TemporaryDirectory() as cwd:
        subprocess.run(argv, capture_output=True, cwd=cwd, env=env, timeout=60, check=False)
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False
            )
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-200:]}")
            output = done.stdout
    return statistics.median(walls), statistics.median(cpus), output


_CLI_MODULES = """\
import sys, io, contextlib, json
sys.path.insert(0, {root!r})
from persona_ollama.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(["--help"])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def persona_startup(root: str, repeats: int) -> dict[str, Any]:
    """Start-up figures next to the Persona-shaped stand-in built under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERSONA_OLLAMA_")}
    with_persona = {**env, "PYTHONPATH": root}
    out: dict[str, Any] = {}
    bare = process_wall([sys.executable, "-c", "pass"], repeats, env)
    out["python_bare"], out["python_bare_cpu"] = bare[:2]
    cli = _script("persona-ollama")
    wall, cpu, text = process_wall([cli, "--help"], repeats, with_persona)
    if "Usage" not in text:
        raise RuntimeError("persona-ollama --help printed no usage")
    out["help_with_persona"], out["help_with_persona_cpu"] = wall, cpu
    out["help_without_persona"], out["help_without_persona_cpu"], _ = process_wall(
        [cli, "--help"], repeats, env
    )
    modules, _ = _run(_CLI_MODULES.format(root=root))
    out["cli_persona_modules"] = [
        m for m in modules if m == "persona" or m.startswith(("persona.", "persona_sdk"))
    ]
    package = import_cost(
        PERSONA_PACKAGE_IMPORT, repeats, f"import sys; sys.path.insert(0, {root!r})"
    )
    out["persona_package_import"] = package.median
    out["persona_package_import_cpu"] = package.cpu_median
    entry = import_cost(ENTRY_POINT_IMPORT, repeats, PERSONA_PRELUDE.format(root=root))
    out["entry_point_after_persona"] = entry.median
    out["entry_point_after_persona_cpu"] = entry.cpu_median
    out["entry_point_modules"] = entry.new_modules
    out["entry_point_heavy"] = entry.heavy
    return out
