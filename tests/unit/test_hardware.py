"""hardware.py and the built-in probes: budgets as a table, probes against fake tools."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from shared_helpers import linux_pc, write_tool

from persona_ollama.choosing import hardware
from persona_ollama.choosing.accelerators import AppleSiliconProbe, parse_nvidia_smi, parse_rocm_smi
from persona_ollama.choosing.catalogue import GiB
from persona_ollama.choosing.hardware import (
    GPU,
    AcceleratorReport,
    cgroup_memory_limit,
    memory_budget,
    metal_working_set,
    probe,
)
from persona_ollama.errors import ConfigurationError

MiB = 1 << 20
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="fake tools are shebang scripts")


@pytest.fixture(autouse=True)
def _fresh_probe():
    """Each test probes afresh; no fake GPU leaks into later tests' profiles."""
    hardware.clear_cache()
    yield
    hardware.clear_cache()


# -- the budget, as a table ---------------------------------------------------------------

RTX_4090 = GPU("NVIDIA GeForce RTX 4090", "nvidia", 24564 * MiB, 23000 * MiB)


@pytest.mark.parametrize(
    ("facts", "expected_gib", "source", "says"),
    [
        pytest.param(
            {"total_memory_bytes": 64 * GiB}, 48, "cpu", "75% of 64.0 GiB RAM", id="cpu-64"
        ),
        pytest.param(
            {"total_memory_bytes": 8 * GiB},
            4,
            "cpu",
            "the other 4.0 GiB stays with the system",
            id="cpu-8-keeps-4-GiB-for-the-system",
        ),
        pytest.param(
            {"total_memory_bytes": 4 * GiB}, 2, "cpu", "50% of 4.0 GiB", id="cpu-4-never-below-half"
        ),
        pytest.param(
            {"total_memory_bytes": 64 * GiB, "cgroup_limit_bytes": 128 * GiB},
            48,
            "cpu",
            "75% of 64.0 GiB",
            id="loose-container-limit-is-ignored",
        ),
        pytest.param(
            {"total_memory_bytes": 64 * GiB, "cgroup_limit_bytes": 10 * GiB},
            8.5,
            "cpu",
            "container memory limit of 10.0 GiB",
            id="container-limit-85-percent",
        ),
        pytest.param(
            {"total_memory_bytes": 64 * GiB, "gpus": (RTX_4090,)},
            24564 / 1024,
            "gpu",
            "VRAM of NVIDIA GeForce RTX 4090",
            id="nvidia-vram",
        ),
        pytest.param(
            {
                "total_memory_bytes": 64 * GiB,
                "gpus": (GPU("small", "nvidia", 12 * GiB), GPU("big", "nvidia", 16 * GiB)),
            },
            16,
            "gpu",
            "VRAM of big (largest of 2 GPUs)",
            id="largest-of-several-gpus",
        ),
        pytest.param(
            {"total_memory_bytes": 32 * GiB, "gpus": (GPU("tiny", "intel", 512 * MiB),)},
            24,
            "cpu",
            "no GPU found",
            id="display-adapter-does-not-count",
        ),
        pytest.param(
            {"total_memory_bytes": 32 * GiB, "gpus": (GPU("GB10", "nvidia", None),)},
            24,
            "cpu",
            "no GPU found",
            id="gpu-without-memory-figure-does-not-count",
        ),
        pytest.param(
            {"total_memory_bytes": 16 * GiB, "unified_memory": True},
            16 * 2 / 3,
            "unified",
            "about 67% of 16.0 GiB",
            id="apple-16",
        ),
        pytest.param(
            {"total_memory_bytes": 128 * GiB, "unified_memory": True},
            96,
            "unified",
            "recommendedMaxWorkingSetSize",
            id="apple-128",
        ),
    ],
)
def test_budget_follows_the_documented_rule_for_each_kind_of_machine(
    facts, expected_gib, source, says
):
    budget = memory_budget(environ={}, **facts)
    assert budget.bytes == pytest.approx(expected_gib * GiB, abs=1)
    assert budget.source == source
    assert says in budget.reason


@pytest.mark.parametrize(
    ("total_gib", "share"),
    [(8, 2 / 3), (16, 2 / 3), (24, 2 / 3), (32, 2 / 3), (36, 3 / 4), (64, 3 / 4), (192, 3 / 4)],
)
def test_metal_working_set_is_two_thirds_below_36_gib_and_three_quarters_above(total_gib, share):
    assert metal_working_set(total_gib * GiB) == int(total_gib * GiB * share)


def test_cpu_budget_notes_when_less_memory_is_free_than_the_budget():
    budget = memory_budget(total_memory_bytes=32 * GiB, available_memory_bytes=6 * GiB, environ={})
    assert budget.bytes == 24 * GiB
    assert "only 6.0 GiB is free right now" in budget.reason


@pytest.mark.parametrize("local", [True, False])
def test_memory_override_beats_hardware_and_applies_to_remote_servers(local):
    budget = memory_budget(
        total_memory_bytes=8 * GiB,
        gpus=(RTX_4090,),
        server_is_local=local,
        environ={"PERSONA_OLLAMA_MEMORY_GB": " 64 "},
    )
    assert (budget.bytes, budget.source) == (64 * GiB, "override")
    assert "PERSONA_OLLAMA_MEMORY_GB" in budget.reason


def test_remote_server_without_override_has_no_budget_and_says_how_to_set_one():
    budget = memory_budget(
        total_memory_bytes=64 * GiB, gpus=(RTX_4090,), server_is_local=False, environ={}
    )
    assert budget.bytes is None
    assert budget.source == "unknown"
    assert budget.reason.startswith(
        "server is remote; set PERSONA_OLLAMA_MEMORY_GB to the server's memory"
    )


@pytest.mark.parametrize("value", ["lots", "0", "-8", "nan", "inf", "16GB"])
def test_bad_memory_override_raises_configuration_error_naming_the_variable(value):
    with pytest.raises(ConfigurationError) as caught:
        memory_budget(total_memory_bytes=8 * GiB, environ={"PERSONA_OLLAMA_MEMORY_GB": value})
    assert "PERSONA_OLLAMA_MEMORY_GB" in caught.value.message
    assert "PERSONA_OLLAMA_MEMORY_GB=24" in caught.value.hint


def test_blank_memory_override_is_ignored():
    budget = memory_budget(total_memory_bytes=8 * GiB, environ={"PERSONA_OLLAMA_MEMORY_GB": " "})
    assert budget.source == "cpu"


# -- cgroup limits ------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("files", "proc_self_cgroup", "expected"),
    [
        pytest.param({}, "0::/\n", None, id="no-cgroup-files"),
        pytest.param({"memory.max": "max\n"}, "0::/\n", None, id="v2-unlimited"),
        pytest.param({"memory.max": "4294967296\n"}, "0::/\n", 4 * GiB, id="v2-container-root"),
        pytest.param(
            {"memory.max": "max", "app/memory.max": "8589934592", "app/job/memory.max": "max"},
            "0::/app/job\n",
            8 * GiB,
            id="v2-limit-on-an-ancestor",
        ),
        pytest.param(
            {"memory/memory.limit_in_bytes": "9223372036854771712"},
            "4:memory:/\n",
            None,
            id="v1-unlimited-is-a-huge-number",
        ),
        pytest.param(
            {
                "memory/memory.limit_in_bytes": "9223372036854771712",
                "memory/docker/abc/memory.limit_in_bytes": "2147483648",
            },
            "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/\n",
            2 * GiB,
            id="v1-nested",
        ),
        pytest.param({"memory.max": "garbage"}, "odd line\n", None, id="unreadable-content"),
    ],
)
def test_cgroup_memory_limit_reads_v2_and_v1_and_ignores_no_limit(
    tmp_path, files, proc_self_cgroup, expected
):
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        write(root / relative, text)
    proc = write(tmp_path / "proc_self_cgroup", proc_self_cgroup)
    assert cgroup_memory_limit(root, proc) == expected


def test_cgroup_memory_limit_without_proc_file_reads_the_root_only(tmp_path):
    write(tmp_path / "memory.max", str(3 * GiB))
    assert cgroup_memory_limit(tmp_path, tmp_path / "missing") == 3 * GiB


# -- probe() on this machine --------------------------------------------------------------


def test_probe_reports_this_machines_real_memory_and_cpus():
    profile = probe(environ={})
    assert profile.total_memory_bytes == psutil.virtual_memory().total
    assert 0 < profile.available_memory_bytes <= profile.total_memory_bytes
    assert profile.cpu_count == (os.cpu_count() or 1)
    assert profile.architecture and profile.system
    assert profile.memory_budget_bytes is not None
    assert profile.budget_reason


def test_probe_gathers_facts_once_per_process_until_refreshed(monkeypatch):
    calls = []
    real = psutil.virtual_memory
    monkeypatch.setattr(hardware.psutil, "virtual_memory", lambda: calls.append(1) or real())
    probe(environ={})
    probe(environ={}, server_is_local=False)
    assert len(calls) == 1
    probe(environ={}, refresh=True)
    assert len(calls) == 2


def test_probe_for_a_remote_server_takes_the_budget_only_from_the_override():
    remote = probe(server_is_local=False, environ={})
    assert remote.memory_budget_bytes is None
    assert "server is remote" in remote.budget_reason
    assert not remote.cpu_only
    told = probe(server_is_local=False, environ={"PERSONA_OLLAMA_MEMORY_GB": "48"})
    assert told.memory_budget_bytes == 48 * GiB


def test_probe_raises_only_for_a_bad_memory_override():
    with pytest.raises(ConfigurationError):
        probe(environ={"PERSONA_OLLAMA_MEMORY_GB": "plenty"})


# -- fake accelerator tools on PATH -------------------------------------------------------


@pytest.fixture
def tool_dir(tmp_path, monkeypatch):
    """A PATH holding only the fake tools a test writes: no real nvidia-smi or rocm-smi."""
    return linux_pc(tmp_path, monkeypatch)


def test_probe_without_gpu_tools_notes_that_they_are_missing(tool_dir):
    profile = probe(environ={}, refresh=True)
    assert "nvidia-smi not found on PATH" in profile.notes
    assert "rocm-smi not found on PATH" in profile.notes
    assert profile.gpus == ()


@posix_only
def test_probe_reads_an_nvidia_card_and_budgets_its_vram(tool_dir):
    write_tool(tool_dir, "nvidia-smi", 'print("NVIDIA GeForce RTX 4090, 24564, 23000")')
    profile = probe(environ={}, refresh=True)
    assert profile.gpus == (RTX_4090,)
    assert profile.memory_budget_bytes == 24564 * MiB
    assert profile.budget_source == "gpu"
    assert not profile.cpu_only


@posix_only
@pytest.mark.parametrize(
    ("body", "note"),
    [
        pytest.param('print("%%% not csv at all")', "printed something unexpected", id="garbage"),
        pytest.param(
            "sys.stdout.buffer.write(bytes(range(256)))",
            "printed something unexpected",
            id="binary",
        ),
        pytest.param("pass", "nvidia-smi found no GPU", id="empty"),
        pytest.param(
            "print(\"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA "
            'driver."); sys.exit(9)',
            "failed with exit status 9: NVIDIA-SMI has failed",
            id="driver-not-loaded",
        ),
        pytest.param("time.sleep(30)", "did not answer within 0.1 s", id="hangs"),
    ],
)
def test_probe_never_raises_when_nvidia_smi_misbehaves(tool_dir, monkeypatch, body, note):
    # Only a tool that hangs waits this long: the others answer (or fail) well within it.
    monkeypatch.setattr(hardware, "TOOL_TIMEOUT", 0.1 if "sleep" in body else 10.0)
    write_tool(tool_dir, "nvidia-smi", body)
    profile = probe(environ={}, refresh=True)
    assert any(note in line for line in profile.notes), profile.notes
    assert profile.gpus == ()
    assert profile.budget_source == "cpu"


@posix_only
def test_probe_notes_a_tool_it_cannot_execute(tool_dir):
    (tool_dir / "nvidia-smi").write_text("#!/nonexistent/interpreter\n")
    (tool_dir / "nvidia-smi").chmod(0o755)
    profile = probe(environ={}, refresh=True)
    assert any(line.startswith("nvidia-smi could not be run") for line in profile.notes)


@posix_only
def test_probe_reads_amd_cards_from_rocm_smi(tool_dir):
    card = {
        "Card series": "Radeon RX 7900 XTX",
        "VRAM Total Memory (B)": str(24 * GiB),
        "VRAM Total Used Memory (B)": str(GiB),
    }
    output = "WARNING: AMD GPU device(s) is/are in a low-power state\n" + json.dumps(
        {"card0": card}
    )
    write_tool(tool_dir, "rocm-smi", f"print({output!r})")
    profile = probe(environ={}, refresh=True)
    assert profile.gpus == (GPU("Radeon RX 7900 XTX", "amd", 24 * GiB, 23 * GiB),)
    assert profile.memory_budget_bytes == 24 * GiB


# -- parsers ------------------------------------------------------------------------------


def nvidia(name: str, total_mib: int | None, free_mib: int | None) -> GPU:
    return GPU(name, "nvidia", total_mib and total_mib * MiB, free_mib and free_mib * MiB)


@pytest.mark.parametrize(
    ("text", "gpus", "notes"),
    [
        ("A100-SXM4-80GB, 81920, 80000\n", (nvidia("A100-SXM4-80GB", 81920, 80000),), ()),
        (
            "RTX 3060, 12288, 11000\nRTX 3090, 24576, 24000\n",
            (nvidia("RTX 3060", 12288, 11000), nvidia("RTX 3090", 24576, 24000)),
            (),
        ),
        ("NVIDIA, Inc. Card, 8192, 100\n", (nvidia("NVIDIA, Inc. Card", 8192, 100),), ()),
        (
            "NVIDIA GB10, [N/A], [N/A]\n",
            (nvidia("NVIDIA GB10", None, None),),
            ("nvidia-smi does not report the memory of NVIDIA GB10",),
        ),
        ("Tesla, lots, 1\n", (), ("nvidia-smi printed something unexpected: 'Tesla, lots, 1'",)),
        (", 100, 100\n", (), ("nvidia-smi printed something unexpected: ', 100, 100'",)),
        ("Card, -1, 0\n", (), ("nvidia-smi printed something unexpected: 'Card, -1, 0'",)),
    ],
)
def test_parse_nvidia_smi_table(text, gpus, notes):
    assert parse_nvidia_smi(text) == AcceleratorReport(gpus, notes)


@pytest.mark.parametrize(
    ("text", "gpus", "notes"),
    [
        (
            '{"card0": {"Card Series": "Instinct MI300X", "VRAM Total Memory (B)": "206158430208",'
            ' "VRAM Total Used Memory (B)": "0"}, "system": {"Driver version": "6.7"}}',
            (GPU("Instinct MI300X", "amd", 192 * GiB, 192 * GiB),),
            (),
        ),
        (
            '{"card1": {"Card model": "0x744c"}}',
            (GPU("0x744c", "amd", None, None),),
            (),
        ),
        ('{"card0": {}}', (GPU("AMD card0", "amd", None, None),), ()),
        ("{}", (), ("rocm-smi found no GPU",)),
        ("ERROR: no ROCm", (), ("rocm-smi printed something unexpected: 'ERROR: no ROCm'",)),
        ("{broken", (), ("rocm-smi printed something unexpected: '{broken'",)),
    ],
)
def test_parse_rocm_smi_table(text, gpus, notes):
    assert parse_rocm_smi(text) == AcceleratorReport(gpus, notes)


@given(st.text())
def test_parsers_never_raise_on_any_output(text):
    assert isinstance(parse_nvidia_smi(text), AcceleratorReport)
    assert isinstance(parse_rocm_smi(text), AcceleratorReport)


# -- Apple silicon ------------------------------------------------------------------------


@posix_only
def test_apple_silicon_probe_reports_unified_memory_and_the_chip(tool_dir):
    write_tool(tool_dir, "sysctl", 'print("Apple M1 Pro")')
    report = AppleSiliconProbe().persona_ollama_probe_accelerators(
        system="Darwin", machine="arm64", total_memory_bytes=16 * GiB, timeout=1.0
    )
    assert report == AcceleratorReport(
        (GPU("Apple M1 Pro GPU", "apple", int(16 * GiB * 2 / 3)),), (), unified_memory=True
    )


def test_apple_silicon_probe_without_sysctl_still_reports_unified_memory(tool_dir):
    report = AppleSiliconProbe().persona_ollama_probe_accelerators(
        system="Darwin", machine="arm64", total_memory_bytes=128 * GiB, timeout=1.0
    )
    assert report is not None and report.unified_memory
    assert report.gpus == (GPU("Apple silicon GPU", "apple", 96 * GiB),)
    assert report.notes == ("sysctl not found on PATH",)


@pytest.mark.parametrize(("system", "machine"), [("Darwin", "x86_64"), ("Linux", "arm64")])
def test_apple_silicon_probe_does_not_apply_elsewhere(system, machine):
    probe_ = AppleSiliconProbe()
    assert probe_.persona_ollama_probe_accelerators(system, machine, 16 * GiB, 1.0) is None
