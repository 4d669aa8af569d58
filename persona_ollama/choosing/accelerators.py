"""Built-in accelerator probes: NVIDIA (nvidia-smi), AMD (rocm-smi) and Apple silicon.

Each is a pluggy plugin like any third-party probe. A tool is run only when it is on PATH,
with a short timeout; whatever goes wrong becomes a note in the report, never an exception.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from .hookspecs import GPU, AcceleratorReport, hookimpl
from .units import GiB, MiB

# Apple silicon: the GPU may use about Metal's recommendedMaxWorkingSetSize, roughly 2/3 of
# RAM below 36 GiB and 3/4 above. Apple documents the property but not the rule, so this is
# an approximation of it, not a query.
METAL_SMALL_SHARE = 2 / 3
METAL_LARGE_SHARE = 3 / 4
METAL_LARGE_FROM = 36 * GiB
NVIDIA_ARGS = ("--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits")
ROCM_ARGS = ("--showproductname", "--showmeminfo", "vram", "--json")
# rocm-smi has renamed its product-name key between releases; the first one present wins.
ROCM_NAME_KEYS = ("card series", "card sku", "device name", "card model")


def metal_working_set(total_memory_bytes: int) -> int:
    """The share of unified memory Metal lets the GPU use (see METAL_* above)."""
    share = METAL_LARGE_SHARE if total_memory_bytes >= METAL_LARGE_FROM else METAL_SMALL_SHARE
    return int(total_memory_bytes * share)


class ToolFailed(Exception):
    """A tool was missing, hung, or failed; the message says which, for the probe's notes."""


def run_tool(tool: str, args: Sequence[str], timeout: float) -> str:
    """The tool's standard output; raises ToolFailed when it is not on PATH, does not answer
    within ``timeout`` seconds, cannot be run, or exits with an error."""
    path = shutil.which(tool)
    if path is None:
        raise ToolFailed(f"{tool} not found on PATH")
    try:
        completed = subprocess.run(
            [path, *args],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{tool} did not answer within {timeout:g} s") from None
    except OSError as error:
        raise ToolFailed(f"{tool} could not be run: {error}") from None
    if completed.returncode != 0:
        said = (completed.stderr or completed.stdout).strip().splitlines()
        detail = f": {said[0][:120]}" if said else ""
        raise ToolFailed(f"{tool} failed with exit status {completed.returncode}{detail}")
    return completed.stdout


def _unexpected(tool: str, text: str) -> str:
    return f"{tool} printed something unexpected: {text.strip()[:80]!r}"


def parse_nvidia_smi(text: str) -> AcceleratorReport:
    """GPUs from ``nvidia-smi --query-gpu=name,memory.total,memory.free`` CSV (MiB)."""
    gpus: list[GPU] = []
    notes: list[str] = []
    for line in filter(None, (line.strip() for line in text.splitlines())):
        fields = [field.strip() for field in line.rsplit(",", 2)]
        total = _mib(fields[1]) if len(fields) == 3 else None
        if len(fields) != 3 or not fields[0] or (total is None and "N/A" not in fields[1]):
            notes.append(_unexpected("nvidia-smi", line))
            continue
        gpus.append(GPU(fields[0], "nvidia", total, _mib(fields[2])))
        if total is None:
            notes.append(f"nvidia-smi does not report the memory of {fields[0]}")
    if not gpus and not notes:
        notes.append("nvidia-smi found no GPU")
    return AcceleratorReport(tuple(gpus), tuple(notes))


def _mib(text: str) -> int | None:
    try:
        value = float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None
    return int(value * MiB) if value >= 0 else None


def parse_rocm_smi(text: str) -> AcceleratorReport:
    """GPUs from ``rocm-smi --showproductname --showmeminfo vram --json`` (bytes)."""
    start = text.find("{")  # some versions print warnings before the JSON
    try:
        data = json.loads(text[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return AcceleratorReport(notes=(_unexpected("rocm-smi", text),))
    gpus = []
    for card, fields in sorted(data.items()):
        if not card.lower().startswith("card") or not isinstance(fields, dict):
            continue
        lowered = {str(key).lower(): value for key, value in fields.items()}
        name = next((str(lowered[k]) for k in ROCM_NAME_KEYS if lowered.get(k)), f"AMD {card}")
        total = _int(lowered.get("vram total memory (b)"))
        used = _int(lowered.get("vram total used memory (b)"))
        free = total - used if total is not None and used is not None else None
        gpus.append(GPU(name, "amd", total, free))
    notes = () if gpus else ("rocm-smi found no GPU",)
    return AcceleratorReport(tuple(gpus), notes)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _listed_by(
    tool: str, args: Sequence[str], parse: Callable[[str], AcceleratorReport], timeout: float
) -> AcceleratorReport:
    """The GPUs ``tool`` lists, read by ``parse``, or a note saying why it could not be asked."""
    try:
        return parse(run_tool(tool, args, timeout))
    except ToolFailed as failure:
        return AcceleratorReport(notes=(str(failure),))


class NvidiaProbe:
    """NVIDIA GPUs, through nvidia-smi."""

    @hookimpl
    def persona_ollama_probe_accelerators(self, timeout: float) -> AcceleratorReport:
        """The GPUs nvidia-smi lists, or a note saying why it could not be asked."""
        return _listed_by("nvidia-smi", NVIDIA_ARGS, parse_nvidia_smi, timeout)


class AmdProbe:
    """AMD GPUs, through rocm-smi (Linux)."""

    @hookimpl
    def persona_ollama_probe_accelerators(self, timeout: float) -> AcceleratorReport:
        """The GPUs rocm-smi lists, or a note saying why it could not be asked."""
        return _listed_by("rocm-smi", ROCM_ARGS, parse_rocm_smi, timeout)


class AppleSiliconProbe:
    """Apple silicon: the GPU shares RAM with the CPU (unified memory) through Metal."""

    @hookimpl
    def persona_ollama_probe_accelerators(
        self, system: str, machine: str, total_memory_bytes: int, timeout: float
    ) -> AcceleratorReport | None:
        """The Metal GPU with its share of unified memory; None on any other machine."""
        if system != "Darwin" or machine != "arm64":
            return None
        notes: tuple[str, ...] = ()
        try:
            chip = run_tool("sysctl", ("-n", "machdep.cpu.brand_string"), timeout).strip()
        except ToolFailed as failure:
            chip, notes = "", (str(failure),)
        gpu = GPU(f"{chip or 'Apple silicon'} GPU", "apple", metal_working_set(total_memory_bytes))
        return AcceleratorReport((gpu,), notes, unified_memory=True)


BUILTIN_PROBES: dict[str, object] = {
    "nvidia": NvidiaProbe(),
    "amd": AmdProbe(),
    "apple_silicon": AppleSiliconProbe(),
}
