"""Published llama.cpp measurements the speed model is checked against.

Each row is one ``llama-bench`` result (tg128: tokens a second writing 128 tokens after an
empty prompt; pp512: tokens a second reading a 512-token prompt) with its source.
tests/unit/test_speed.py requires at least :data:`REQUIRED_WITHIN` decode figures within
:data:`TOLERANCE` of :func:`speed.estimate`, and docs/models-and-hardware.md shows
:func:`table` (tests/unit/test_generated_docs.py writes it), so neither can go stale. Rows
outside the tolerance stay in the table: they show where the model is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import speed
from .modelfacts import Architecture, ModelFacts
from .units import GiB

TOLERANCE = 0.35
REQUIRED_WITHIN = 6

# The models llama-bench reports: "llama 7B Q4_0, 3.56 GiB, 6.74 B" (Llama 2 7B: 32 layers,
# 32 KV heads of 128, https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json)
# and "llama 3B Q4_K - Medium, 1.87 GiB, 3.21 B" (Llama 3.2 3B: 28 layers, 8 KV heads of 128,
# https://huggingface.co/meta-llama/Llama-3.2-3B/blob/main/config.json).
LLAMA2_7B_Q4_0 = ModelFacts(
    name="llama 7B Q4_0",
    parameters_b=6.74,
    active_parameters_b=6.74,
    weights_bytes=int(3.56 * GiB),
    context_length=4096,
    architecture=Architecture(layers=32, kv_heads=32, head_dim=128),
)
LLAMA32_3B_Q4_K_M = ModelFacts(
    name="llama 3B Q4_K_M",
    parameters_b=3.21,
    active_parameters_b=3.21,
    weights_bytes=int(1.87 * GiB),
    context_length=131072,
    architecture=Architecture(layers=28, kv_heads=8, head_dim=128),
)
CUDA = "https://github.com/ggml-org/llama.cpp/discussions/15013"
METAL = "https://github.com/ggml-org/llama.cpp/discussions/4167"
TG128_CONTEXT = 64  # the KV cache holds 0..128 tokens while tg128 runs


@dataclass(frozen=True)
class Measurement:
    """One published decode speed: the hardware (a probe-style name, or a CPU core count),
    the model, tokens a second, and where it was published."""

    hardware: str
    model: ModelFacts
    measured_tps: float
    source: str
    measured_pp512: float | None = None  # the same run's prompt speed, where published
    cores: int = 0  # CPU-only runs: the threads used
    bandwidth_gbs: float | None = None  # a binned variant whose bandwidth differs from the table

    def machine(self) -> speed.Machine:
        """The speed model's machine for this row."""
        if self.cores:
            return speed.cpu_machine(self.cores)
        row = speed.find_accelerator(self.hardware)
        if row is None:
            raise LookupError(f"{self.hardware} is not in speed.ACCELERATORS")
        machine = speed.accelerator_machine(row)
        if self.bandwidth_gbs is None:
            return machine
        return speed.Machine(
            machine.label, self.bandwidth_gbs * speed.GB, machine.flops, machine.basis
        )

    def predicted_tps(self) -> float:
        """The speed model's decode tokens a second for this row."""
        return speed.estimate(self.model, self.machine(), TG128_CONTEXT).decode_tps

    def error(self) -> float:
        """(predicted - measured) / measured."""
        return self.predicted_tps() / self.measured_tps - 1

    def predicted_pp512(self) -> float:
        """The speed model's prompt tokens a second for this row."""
        return speed.estimate(self.model, self.machine(), TG128_CONTEXT).prompt_tps


MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement("NVIDIA GeForce RTX 5090", LLAMA2_7B_Q4_0, 300.4, CUDA, 14970),
    Measurement("NVIDIA GeForce RTX 4090", LLAMA2_7B_Q4_0, 189.0, CUDA, 14771),
    Measurement("NVIDIA GeForce RTX 5080", LLAMA2_7B_Q4_0, 184.7, CUDA, 9488),
    Measurement("NVIDIA GeForce RTX 3090", LLAMA2_7B_Q4_0, 158.2, CUDA, 5175),
    Measurement("NVIDIA GeForce RTX 3060", LLAMA2_7B_Q4_0, 75.6, CUDA, 2138),
    Measurement("NVIDIA H100 80GB HBM3", LLAMA2_7B_Q4_0, 280.7, CUDA, 11263),
    Measurement("NVIDIA A100-SXM4-80GB", LLAMA2_7B_Q4_0, 200.9, CUDA, 5286),
    Measurement("Apple M4 Pro GPU (20 cores)", LLAMA2_7B_Q4_0, 50.7, METAL, 440),
    Measurement(
        "Apple M4 Max GPU (40 cores)", LLAMA2_7B_Q4_0, 83.1, METAL, 886, bandwidth_gbs=546
    ),
    Measurement("Apple M1 Ultra GPU (64 cores)", LLAMA2_7B_Q4_0, 83.7, METAL, 1030),
    Measurement("Apple M2 Ultra GPU (76 cores)", LLAMA2_7B_Q4_0, 94.3, METAL, 1238),
    Measurement("Apple M3 Ultra GPU (80 cores)", LLAMA2_7B_Q4_0, 92.1, METAL, 1471),
    Measurement(
        "Intel Core i3-1315U, 2 threads", LLAMA32_3B_Q4_K_M, 11.05,
        "https://github.com/geerlingguy/sbc-reviews/issues/107", 28.67, cores=2,
    ),
    Measurement(
        "Intel Core i5-4278U, 2 threads", LLAMA32_3B_Q4_K_M, 7.68,
        "https://github.com/geerlingguy/ai-benchmarks/issues/53", 17.70, cores=2,
    ),
)  # fmt: skip


def table() -> str:
    """The validation table in Markdown, as docs/models-and-hardware.md shows it."""
    lines = [
        "| hardware | model | tg128 measured | estimate | error | within ±35 % "
        "| pp512 measured | estimate | error | source |",
        "| --- | --- | --: | --: | --: | --- | --: | --: | --: | --- |",
    ]
    for row in MEASUREMENTS:
        error = row.error()
        prompt = "| | |"
        if row.measured_pp512 is not None:
            estimate = row.predicted_pp512()
            prompt = (
                f"{row.measured_pp512:g} | {estimate:.0f} | "
                f"{estimate / row.measured_pp512 - 1:+.0%} |"
            )
        lines.append(
            f"| {row.hardware} | {row.model.name} | {row.measured_tps:.1f} | "
            f"{row.predicted_tps():.1f} | {error:+.0%} | "
            f"{'yes' if abs(error) <= TOLERANCE else 'no'} | {prompt} {row.source} |"
        )
    within = sum(abs(row.error()) <= TOLERANCE for row in MEASUREMENTS)
    lines.append("")
    prompts = [row for row in MEASUREMENTS if row.measured_pp512 is not None]
    prompts_within = sum(
        abs(row.predicted_pp512() / (row.measured_pp512 or 1) - 1) <= TOLERANCE for row in prompts
    )
    lines.append(
        f"Decode: {within} of {len(MEASUREMENTS)} within ±{TOLERANCE:.0%} (the test requires "
        f"at least {REQUIRED_WITHIN}). Prompt: {prompts_within} of {len(prompts)} within "
        f"±{TOLERANCE:.0%} (shown, not required)."
    )
    return "\n".join(lines)
