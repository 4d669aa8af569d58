"""The speed model: the accelerator table, the CPU estimate, the reference job, and the check
against published llama.cpp measurements."""

from __future__ import annotations

import pytest

from persona_ollama.choosing import speed, validation
from persona_ollama.choosing.hardware import GPU, HardwareProfile
from persona_ollama.choosing.modelfacts import Architecture, ModelFacts, facts_from_server
from persona_ollama.choosing.units import GiB

DENSE_8B = ModelFacts(
    "dense", 8.0, 8.0, 5 * 10**9, 131072, Architecture(layers=32, kv_heads=8, head_dim=128)
)
MOE_30B = ModelFacts(
    "moe", 30.5, 3.3, 18 * 10**9, 40960, Architecture(layers=48, kv_heads=4, head_dim=128)
)


def _profile(source: str, gpus: tuple[GPU, ...] = (), cpus: int = 2) -> HardwareProfile:
    return HardwareProfile(
        total_memory_bytes=24 * GiB, available_memory_bytes=20 * GiB, cgroup_limit_bytes=None,
        cpu_count=cpus, architecture="x86_64", system="Linux", gpus=gpus,
        unified_memory=False, memory_budget_bytes=18 * GiB, budget_reason="", notes=(),
        budget_source=source,
    )  # fmt: skip


def test_at_least_six_published_measurements_are_within_tolerance() -> None:
    within = [m for m in validation.MEASUREMENTS if abs(m.error()) <= validation.TOLERANCE]
    assert len(within) >= validation.REQUIRED_WITHIN, validation.table()
    # Every source is a URL a reader can open.
    assert all(m.source.startswith("https://") for m in validation.MEASUREMENTS)


@pytest.mark.parametrize(
    ("reported", "label"),
    [
        ("NVIDIA H200", "NVIDIA H200"),
        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
        ("NVIDIA A100-PCIE-40GB", "NVIDIA A100 40GB"),
        ("NVIDIA L4", "NVIDIA L4"),
        ("NVIDIA L40S", "NVIDIA L40S"),
        ("NVIDIA GeForce RTX 4060 Ti", "NVIDIA GeForce RTX 4060 Ti"),
        ("NVIDIA GeForce RTX 4060", "NVIDIA GeForce RTX 4060"),
        ("AMD Radeon RX 7900 XTX", "AMD Radeon RX 7900 XTX"),
        ("AMD Instinct MI300X", "AMD Instinct MI300X"),
        ("Apple M2 Max GPU", "Apple M2 Max"),
        ("Apple M1 GPU", "Apple M1"),
        ("Apple M4 Pro GPU", "Apple M4 Pro"),
    ],
)
def test_the_table_matches_the_names_the_probe_reports(reported: str, label: str) -> None:
    row = speed.find_accelerator(reported)
    assert row is not None and row.label == label
    assert row.source.startswith("https://")


def test_an_unknown_gpu_gets_no_speed_claim() -> None:
    assert speed.find_accelerator("Matrox G200eW") is None
    profile = _profile("gpu", (GPU("Matrox G200eW", "other", 16 * GiB),))
    assert speed.machine_for(profile) is None
    assert speed.machine_for(_profile("unknown")) is None  # remote server
    # PERSONA_OLLAMA_MEMORY_GB describes memory by hand: whose hardware is not known.
    assert speed.machine_for(_profile("override")) is None


def test_cpu_estimate_grows_with_cores_up_to_the_memory_channels() -> None:
    two, eight, many = speed.cpu_machine(2), speed.cpu_machine(8), speed.cpu_machine(64)
    assert two.bandwidth_bytes_s < eight.bandwidth_bytes_s <= many.bandwidth_bytes_s
    assert many.bandwidth_bytes_s == eight.bandwidth_bytes_s  # capped: 8 x 9 GB/s > the cap
    assert speed.machine_for(_profile("cpu", cpus=2)) == two


def test_decode_is_bound_by_bytes_read_so_few_active_parameters_write_faster() -> None:
    cpu = speed.cpu_machine(2)
    dense, moe = speed.estimate(DENSE_8B, cpu, 4096), speed.estimate(MOE_30B, cpu, 4096)
    assert moe.decode_tps > 2 * dense.decode_tps
    assert moe.prompt_tps > 2 * dense.prompt_tps
    # A fuller KV cache is read for every token: slower at a longer context.
    assert speed.estimate(DENSE_8B, cpu, 32768).decode_tps < dense.decode_tps
    # Loading reads the whole file, experts included.
    assert moe.load_s > dense.load_s


def test_reference_job_time_adds_load_prompt_and_answer() -> None:
    job = speed.REFERENCE_JOB
    estimate = speed.SpeedEstimate(decode_tps=10.0, prompt_tps=100.0, load_s=5.0, basis="x")
    assert job.prompt_tokens == 21_000
    assert job.seconds(estimate) == pytest.approx(5 + 21_000 / 100 + 3_600 / 10)
    assert job.seconds(estimate, thinking=True) == pytest.approx(5 + 210 + 5_600 / 10)
    assert job.seconds(estimate, loaded=True) == pytest.approx(210 + 360)
    # The window the provider sends for it: the ladder rung above prompt + answer.
    assert job.window() == 32768


def test_a_model_the_catalogue_does_not_know_is_estimated_from_the_server() -> None:
    facts = facts_from_server("x:8b", parameters_b=8.0, size_bytes=5 * 10**9, context_length=None)
    assert facts is not None and facts.basis == "estimated from the server"
    assert facts.kv_source == "a rule of thumb for its size"
    result = speed.estimate(facts, speed.cpu_machine(4), 4096)
    assert "estimated from the server" in result.basis
    assert facts_from_server("x", parameters_b=None, size_bytes=None, context_length=None) is None


def test_sliding_window_layers_hold_at_most_their_window() -> None:
    full = Architecture(layers=24, kv_heads=8, head_dim=64)
    mixed = Architecture(layers=24, kv_heads=8, head_dim=64, sliding_window=128, global_layers=12)
    assert full.kv_bytes(32768) == 24 * 2 * 8 * 64 * 2 * 32768
    assert mixed.kv_bytes(32768) == (12 * 32768 + 12 * 128) * 2 * 8 * 64 * 2
    assert mixed.kv_bytes(100) == full.kv_bytes(100)


@pytest.mark.parametrize(("seconds", "text"), [(45, "45 s"), (600, "10 min"), (9000, "2.5 h")])
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert speed.format_duration(seconds) == text


def test_the_first_token_waits_for_the_load_and_the_prompt() -> None:
    estimate = speed.SpeedEstimate(decode_tps=10.0, prompt_tps=50.0, load_s=4.0, basis="x")
    assert speed.first_token_seconds(estimate, 20_000) == pytest.approx(4 + 400)
    assert speed.first_token_seconds(estimate, 20_000, loaded=True) == pytest.approx(400)
    # On a 2-core CPU a 20,000-token prompt to a dense 8B takes longer than a flat 300 s.
    slow = speed.estimate(DENSE_8B, speed.cpu_machine(2), 20_000)
    assert speed.first_token_seconds(slow, 20_000, loaded=True) > 300


@pytest.mark.parametrize(
    "reported",
    [
        # nvidia-smi's names for the laptop parts: narrower memory buses than the desktop
        # cards of the same number (the RTX 4090 Laptop GPU has 576 GB/s, the desktop card
        # 1008), so the desktop row would promise up to 75 % too much speed.
        "NVIDIA GeForce RTX 4090 Laptop GPU",
        "NVIDIA GeForce RTX 4060 Laptop GPU",
        "NVIDIA GeForce RTX 3060 Laptop GPU",
        "NVIDIA GeForce RTX 4080 Laptop GPU",
        "NVIDIA GeForce RTX 3060 Mobile / Max-Q",
    ],
)
def test_a_laptop_gpu_does_not_get_the_desktop_cards_figures(reported: str) -> None:
    assert speed.find_accelerator(reported) is None
    profile = _profile("gpu", (GPU(reported, "nvidia", 8 * GiB),))
    assert speed.machine_for(profile) is None
