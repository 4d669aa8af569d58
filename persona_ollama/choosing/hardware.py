"""What this machine can hold: memory, container limit, accelerators, and the model budget.

:func:`probe` gathers the facts once per process (psutil, cgroup files, the accelerator probes
registered through pluggy) and :func:`memory_budget`, a pure function, turns them into the
memory a model may use, with the reason in words. Missing tools, timeouts and odd outputs
never raise; they end up in ``HardwareProfile.notes``.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import psutil

from ..settings import MEMORY_GB_VAR, env_float
from .accelerators import metal_working_set as metal_working_set  # re-exported
from .hookspecs import GPU as GPU  # re-exported: plugins and docs import the hook types here
from .hookspecs import AcceleratorReport as AcceleratorReport
from .plugins import implementations
from .units import GiB, format_gib

log = logging.getLogger("persona_ollama")

# Seconds an accelerator tool (nvidia-smi, rocm-smi) may take. They answer in well under a
# second when the driver is healthy; a wedged driver can make them hang for minutes.
TOOL_TIMEOUT = 2.0

# CPU-only machines: a model may use 75 % of RAM, but always leave 4 GiB for the operating
# system, a browser and the research tools the user has open; never less than half of RAM.
CPU_SHARE = 0.75
CPU_RESERVE = 4 * GiB
CPU_MIN_SHARE = 0.5
# Inside a container limit, the model shares it only with the Ollama server and this
# process (no desktop), so a larger share is safe.
CONTAINER_SHARE = 0.85
# GPUs reporting less VRAM than this (display adapters, old cards) do not set the budget.
MIN_GPU_BYTES = 2 * GiB

REMOTE_REASON = (
    f"server is remote; set {MEMORY_GB_VAR} to the server's memory "
    "(its largest GPU's VRAM, or about 3/4 of its RAM without a GPU)"
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# cgroup v1 reports "no limit" as a huge page-aligned number near 2**63.
_UNLIMITED = 1 << 60


class Budget(NamedTuple):
    """The memory a model may use, why, and where the figure came from.

    ``source`` is one of "override", "unknown" (remote server), "unified", "gpu", "cpu".
    """

    bytes: int | None
    reason: str
    source: str


@dataclass(frozen=True)
class HardwareProfile:
    """The machine's facts and the memory budget derived from them."""

    total_memory_bytes: int
    available_memory_bytes: int
    cgroup_limit_bytes: int | None
    cpu_count: int
    architecture: str
    system: str
    gpus: tuple[GPU, ...]
    unified_memory: bool
    memory_budget_bytes: int | None
    budget_reason: str
    notes: tuple[str, ...]
    budget_source: str  # see Budget.source

    @property
    def cpu_only(self) -> bool:
        """True when models will run on the CPU of this machine (no GPU, no override)."""
        return self.budget_source == "cpu"


def memory_override_bytes(environ: Mapping[str, str]) -> int | None:
    """PERSONA_OLLAMA_MEMORY_GB in bytes (GiB, as RAM is sold), or None when unset.

    Raises ConfigurationError naming the variable when the value is not a positive number.
    """
    gigabytes = env_float(environ, MEMORY_GB_VAR, "24")
    return None if gigabytes is None else int(gigabytes * GiB)


def memory_budget(
    *,
    total_memory_bytes: int,
    cgroup_limit_bytes: int | None = None,
    gpus: Sequence[GPU] = (),
    unified_memory: bool = False,
    server_is_local: bool = True,
    available_memory_bytes: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> Budget:
    """The memory a model may use, in order of precedence: PERSONA_OLLAMA_MEMORY_GB; nothing
    for a remote server; Metal's share of unified memory; the largest GPU's VRAM; a share of
    RAM (bounded by the container limit) on CPU-only machines."""
    override = memory_override_bytes(os.environ if environ is None else environ)
    if override is not None:
        return Budget(override, f"{format_gib(override)}, set by {MEMORY_GB_VAR}", "override")
    if not server_is_local:
        return Budget(None, REMOTE_REASON, "unknown")
    if unified_memory:
        budget = metal_working_set(total_memory_bytes)
        share = budget / total_memory_bytes
        return Budget(
            budget,
            f"{format_gib(budget)}: unified memory, about {share:.0%} of "
            f"{format_gib(total_memory_bytes)} (Apple's recommendedMaxWorkingSetSize is "
            "roughly this; the rest stays with macOS and your apps)",
            "unified",
        )
    usable = [gpu for gpu in gpus if (gpu.memory_total_bytes or 0) >= MIN_GPU_BYTES]
    if usable:
        largest = max(usable, key=lambda gpu: (gpu.memory_total_bytes or 0, gpu.name))
        budget = largest.memory_total_bytes or 0
        more = f" (largest of {len(usable)} GPUs)" if len(usable) > 1 else ""
        return Budget(
            budget,
            f"{format_gib(budget)}: VRAM of {largest.name}{more}. Ollama can spill a bigger "
            "model into RAM, but it then runs several times slower",
            "gpu",
        )
    return _cpu_budget(total_memory_bytes, cgroup_limit_bytes, available_memory_bytes)


def _cpu_budget(total: int, cgroup_limit: int | None, available: int | None) -> Budget:
    share = max(total * CPU_MIN_SHARE, min(total * CPU_SHARE, total - CPU_RESERVE))
    budget = int(share)
    reason = (
        f"{format_gib(budget)}: no GPU found, so {share / total:.0%} of {format_gib(total)} RAM; "
        f"the other {format_gib(total - budget)} stays with the system and your other apps"
    )
    if cgroup_limit is not None and cgroup_limit * CONTAINER_SHARE < budget:
        budget = int(cgroup_limit * CONTAINER_SHARE)
        reason = (
            f"{format_gib(budget)}: no GPU found, and a container memory limit of "
            f"{format_gib(cgroup_limit)}, of which {CONTAINER_SHARE:.0%} is left for the model "
            "(the rest for the Ollama server and this process)"
        )
    if available is not None and available < budget:
        reason += f"; only {format_gib(available)} is free right now, so close other apps"
    return Budget(budget, reason, "cpu")


def cgroup_memory_limit(
    root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP
) -> int | None:
    """The tightest memory limit of this process's cgroup and its ancestors, v2 or v1.

    None when there is no limit, or on systems without cgroups.
    """
    candidates = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    try:
        lines = proc_self_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1], parts[2]
        if controllers == "":
            base, filename = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, filename = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        relative = Path(path.strip("/")) if path.strip("/") else None
        while relative is not None and relative != Path("."):
            candidates.append(base / relative / filename)
            relative = relative.parent
    limits = [limit for limit in map(_read_limit, candidates) if limit is not None]
    return min(limits) if limits else None


def _read_limit(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text.isdigit():  # "max" (v2) or unreadable content
        return None
    value = int(text)
    return value if 0 < value < _UNLIMITED else None


@dataclass(frozen=True)
class _Machine:
    total: int
    available: int
    cgroup_limit: int | None
    cpu_count: int
    architecture: str
    system: str
    accelerators: AcceleratorReport


@functools.lru_cache(maxsize=1)
def _machine() -> _Machine:
    memory = psutil.virtual_memory()
    system, architecture = platform.system(), platform.machine()
    return _Machine(
        total=int(memory.total),
        available=int(memory.available),
        cgroup_limit=cgroup_memory_limit() if system == "Linux" else None,
        cpu_count=os.cpu_count() or 1,
        architecture=architecture,
        system=system,
        accelerators=probe_accelerators(system, architecture, int(memory.total), TOOL_TIMEOUT),
    )


def probe_accelerators(
    system: str, machine: str, total_memory_bytes: int, timeout: float
) -> AcceleratorReport:
    """Every registered accelerator probe's findings, merged. Never raises."""
    gpus: list[GPU] = []
    notes: list[str] = []
    unified = False
    for impl in implementations("persona_ollama_probe_accelerators"):
        try:
            report = impl(
                system=system,
                machine=machine,
                total_memory_bytes=total_memory_bytes,
                timeout=timeout,
            )
        except Exception as error:  # a broken probe must not stop the others
            log.debug("accelerator probe %s failed", impl.plugin_name, exc_info=True)
            notes.append(f"{impl.plugin_name} failed: {type(error).__name__}: {error}")
            continue
        if report is None:
            continue
        if not isinstance(report, AcceleratorReport):
            notes.append(
                f"{impl.plugin_name} returned {type(report).__name__}, not an AcceleratorReport"
            )
            continue
        gpus.extend(report.gpus)
        notes.extend(report.notes)
        unified = unified or report.unified_memory
    return AcceleratorReport(tuple(gpus), tuple(notes), unified)


def probe(
    *,
    server_is_local: bool = True,
    environ: Mapping[str, str] | None = None,
    refresh: bool = False,
) -> HardwareProfile:
    """This machine's profile. Facts are gathered once per process (``refresh=True`` gathers
    them again); the budget is worked out on each call, since it depends on ``environ`` and on
    where the server is. Raises ConfigurationError only for a bad PERSONA_OLLAMA_MEMORY_GB."""
    if refresh:
        clear_cache()
    facts = _machine()
    report = facts.accelerators
    budget = memory_budget(
        total_memory_bytes=facts.total,
        cgroup_limit_bytes=facts.cgroup_limit,
        gpus=report.gpus,
        unified_memory=report.unified_memory,
        server_is_local=server_is_local,
        available_memory_bytes=facts.available,
        environ=environ,
    )
    return HardwareProfile(
        total_memory_bytes=facts.total,
        available_memory_bytes=facts.available,
        cgroup_limit_bytes=facts.cgroup_limit,
        cpu_count=facts.cpu_count,
        architecture=facts.architecture,
        system=facts.system,
        gpus=report.gpus,
        unified_memory=report.unified_memory,
        memory_budget_bytes=budget.bytes,
        budget_reason=budget.reason,
        notes=report.notes,
        budget_source=budget.source,
    )


def clear_cache() -> None:
    """Forget the gathered facts; the next :func:`probe` looks again."""
    _machine.cache_clear()
