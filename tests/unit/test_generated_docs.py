"""The tables of docs/models-and-hardware.md that the code generates: the speed model against
published measurements, and the picks on four machines (the GPU ones through the real probe
and a stub nvidia-smi). A stale table fails; ``REGENERATE_DOCS=1`` rewrites it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from shared_helpers import linux_pc, write_tool

from persona_ollama.choosing import hardware, validation
from persona_ollama.choosing.catalogue import load_catalogue
from persona_ollama.choosing.hardware import HardwareProfile, memory_budget
from persona_ollama.choosing.selection import (
    PLANNED_CONTEXT,
    choose_default,
    headroom_bytes,
    plan_for,
)
from persona_ollama.choosing.speed import format_duration
from persona_ollama.choosing.units import GiB, format_gib

PAGE = Path(__file__).parents[2] / "docs" / "models-and-hardware.md"
RTX_4090 = "NVIDIA GeForce RTX 4090, 24564, 23000"  # name, MiB total, MiB free
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="a fake tool is a #! script")


def _section(name: str) -> tuple[str, str, str]:
    text = PAGE.read_text(encoding="utf-8")
    begin, end = f"<!-- generated: {name} -->\n", f"<!-- end: {name} -->"
    head, _, rest = text.partition(begin)
    body, _, tail = rest.partition(end)
    assert rest and tail is not None and end in rest, f"markers for {name} missing in {PAGE}"
    return head + begin, body, end + tail


def _check(name: str, expected: str) -> None:
    head, body, tail = _section(name)
    if os.environ.get("REGENERATE_DOCS") == "1":
        PAGE.write_text(head + expected + "\n" + tail, encoding="utf-8")
        return
    assert body == expected + "\n", (
        f"docs/models-and-hardware.md's {name} table is stale; run "
        f"REGENERATE_DOCS=1 pytest {Path(__file__).name} and review the diff"
    )


def test_the_validation_table_in_the_docs_is_current() -> None:
    _check("validation", validation.table())


def _cpu_profile(total: int, cores: int) -> HardwareProfile:
    budget = memory_budget(total_memory_bytes=total, environ={})
    return HardwareProfile(
        total_memory_bytes=total, available_memory_bytes=total, cgroup_limit_bytes=None,
        cpu_count=cores, architecture="x86_64", system="Linux", gpus=(), unified_memory=False,
        memory_budget_bytes=budget.bytes, budget_reason=budget.reason, notes=(),
        budget_source=budget.source,
    )  # fmt: skip


def _gpu_profile(directory: Path, line: str) -> HardwareProfile:
    write_tool(directory, "nvidia-smi", f"print({line!r})")
    return hardware.probe(environ={}, refresh=True)


def _row(machine: str, profile: HardwareProfile) -> str:
    catalogue = load_catalogue({})
    plan = plan_for(profile, {})
    choice = choose_default([], profile.memory_budget_bytes, catalogue, plan=plan)
    budget = profile.memory_budget_bytes
    assert budget is not None and choice.model is not None
    pick = next(c for c in choice.candidates if c.name == choice.model)
    assert pick.memory_bytes is not None and pick.speed is not None and pick.job_seconds
    # The headroom rule: no pick above it.
    assert pick.memory_bytes + headroom_bytes(budget) <= budget
    # On each of the four machines some model fits and finishes the reference job in time:
    # the pick is one of those, and no model that fits and finishes in time scores higher.
    assert not pick.over_time and pick.job_seconds <= plan.time_budget_s
    in_time = [c for c in choice.candidates if c.fits and not c.over_time and c.quality]
    assert all(c.quality <= (pick.quality or 0) for c in in_time)
    fitting = [c for c in choice.candidates if c.fits]
    runner_up = fitting[1].name if len(fitting) > 1 else "none"
    if pick.over_time:
        why = "no model that fits ends the job within 15 min: the fastest"
    else:
        within = sum(1 for c in fitting if not c.over_time)
        why = f"the best quality of the {within} that fit and end within 15 min"
    return (
        f"| {machine} | {format_gib(budget)} ({format_gib(headroom_bytes(budget))} kept free) | "
        f"`{pick.name}` | {format_gib(pick.memory_bytes)} | {pick.speed.decode_tps:.1f} | "
        f"{format_duration(pick.job_seconds)} | {why}; next: `{runner_up}` |"
    )


@posix_only
def test_the_four_machines_table_in_the_docs_is_current(tmp_path, monkeypatch) -> None:
    directory = linux_pc(tmp_path, monkeypatch)
    for name in ("PERSONA_OLLAMA_MEMORY_GB", "PERSONA_OLLAMA_CATALOGUE"):
        monkeypatch.delenv(name, raising=False)
    rows = [
        "| machine | budget | pick | memory at 32K | tokens/s | reference job | why |",
        "| --- | --- | --- | --: | --: | --: | --- |",
        _row("this machine: CPU only, 24 GB, 2 cores", _cpu_profile(24 * GiB, 2)),
        _row("8 GB laptop, 4 cores, no GPU", _cpu_profile(8 * GiB, 4)),
        _row("24 GB NVIDIA GPU (RTX 4090)", _gpu_profile(directory, RTX_4090)),
        _row("H200 (140.4 GiB)", _gpu_profile(directory, "NVIDIA H200, 143771, 143000")),
    ]  # fmt: skip
    hardware.clear_cache()
    assert PLANNED_CONTEXT == 32768  # the column's heading
    _check("machines", "\n".join(rows))
