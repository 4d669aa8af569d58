"""How fast a model runs here: decode and prompt tokens a second, load time, and the time of
the reference job.

The model (docs/models-and-hardware.md, "The speed model"):

- **Decode** (writing the answer) reads every active weight, and the KV cache filled so far,
  once per token, so it is bounded by memory bandwidth: ``tokens/s = 1 / (bytes read per
  token / (DECODE_EFFICIENCY x bandwidth) + PER_TOKEN_OVERHEAD_S)``.
- **Prompt processing** is bounded by compute: about 2 x active parameters FLOPs per token,
  at the accelerator's dense FP16 tensor throughput, at most PROMPT_FLOPS_CAP (or, where that
  figure is unknown, PROMPT_PER_DECODE times the decode speed).
- **Loading** reads the weights from disk at LOAD_BYTES_PER_S.

Bandwidth and TFLOPS come from :data:`ACCELERATORS`, keyed by the name the hardware probe
reports, each row with its source; a CPU-only machine uses :func:`cpu_machine`. The
efficiency factors are calibrated against llama.cpp's published measurements, and a test
(tests/unit/test_speed.py) checks the model against them and writes the table in the docs.

The API other modules call: :func:`machine_for` (a :class:`Machine` from a hardware profile),
:func:`estimate` (a :class:`SpeedEstimate` for one model at one context),
:func:`first_token_seconds` (load + prompt time of one request), :func:`job_estimate` and
:data:`REFERENCE_JOB` with :meth:`ReferenceJob.seconds`. The model facts come from
``ModelSpec.facts`` or ``selection.model_facts`` (which also covers models the catalogue does
not know, from the server's facts). A measured speed replaces an estimate by building a
:class:`SpeedEstimate` from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..context import ladder_size
from .modelfacts import ModelFacts

if TYPE_CHECKING:
    from .hardware import HardwareProfile

GB = 1e9  # bandwidths are published in decimal gigabytes a second
TFLOPS = 1e12

# Share of the published bandwidth llama.cpp's decode reaches, and a fixed cost per token
# (kernel launches, sampling). Calibrated on llama.cpp's own scoreboards for consumer GPUs
# and Apple M-series (the validation table in docs/models-and-hardware.md).
DECODE_EFFICIENCY = 0.65
PER_TOKEN_OVERHEAD_S = 0.0005
# Prompt processing at batch 512 reaches about the dense FP16 tensor throughput on GeForce
# cards (llama.cpp's scoreboard: 14,771 tokens/s on an RTX 4090 is 199 TFLOPS for a 6.74B
# model, 5,175 on an RTX 3090 70 TFLOPS), but no more than an H100 reaches there (11,263
# tokens/s: 152 TFLOPS), however large the card's figure.
PROMPT_FLOPS_CAP = 150 * 1e12
# Where an accelerator's TFLOPS are not in the table: prompt tokens/s as a multiple of the
# decode speed (llama.cpp's Apple scoreboard: pp512/tg128 is 8.7 on an M4 Pro and 10.7 on
# an M4 Max; discrete GPUs are far higher, so this is the cautious end).
PROMPT_PER_DECODE = 8.0
# A cold load reads the file from disk: an assumed NVMe SSD at 2 GB/s (a SATA SSD gives about
# 0.5; a second load from the page cache is much faster). An assumption, not a measurement.
LOAD_BYTES_PER_S = 2 * GB

# CPU-only: llama.cpp's decode bandwidth per thread and prompt FLOPs per thread, from two
# published llama-bench runs with 2 threads (Llama 3.2 3B Q4_K_M, 1.87 GiB): an Intel
# i3-1315U wrote 11.05 tokens/s and read the prompt at 28.67 tokens/s
# (https://github.com/geerlingguy/sbc-reviews/issues/107); an Intel i5-4278U 7.68 and 17.70
# (https://github.com/geerlingguy/ai-benchmarks/issues/53). Per thread: 11.1 and 7.7 GB/s,
# 92 and 57 GFLOPS; the figures below lie between them.
CPU_BYTES_PER_S_PER_CORE = 9 * GB
CPU_FLOPS_PER_CORE = 70e9
# More threads stop helping once the memory channels are full: two channels of DDR5-4800 carry
# 76.8 GB/s (JEDEC JESD79-5), of which CPU_DECODE_SHARE is reached.
CPU_BANDWIDTH_CAP = 0.8 * 76.8 * GB


@dataclass(frozen=True)
class Accelerator:
    """One row of the table: the names that match it (lower case, all must appear in the
    probe's name), its memory bandwidth (GB/s), dense (not sparse) FP16 tensor TFLOPS with
    FP32 accumulate, the rate GeForce data sheets list beside the doubled FP16-accumulate one
    (None: not in a source cited here), and the source of both."""

    label: str
    match: tuple[str, ...]
    bandwidth_gbs: float
    tflops: float | None
    source: str


_NV = "https://www.nvidia.com/en-us/"
_AMD = "https://www.amd.com/en/products/"
_APPLE = "https://en.wikipedia.org/wiki/Apple_"
# Most specific first: the first row whose words all appear in the probe's name wins.
ACCELERATORS: tuple[Accelerator, ...] = (
    Accelerator("NVIDIA H200", ("h200",), 4800, 989, _NV + "data-center/h200/"),
    Accelerator("NVIDIA H100 PCIe", ("h100", "pcie"), 2000, 756, _NV + "data-center/h100/"),
    Accelerator("NVIDIA H100 NVL", ("h100", "nvl"), 3900, 835, _NV + "data-center/h100/"),
    Accelerator("NVIDIA H100 SXM", ("h100",), 3350, 989, _NV + "data-center/h100/"),
    Accelerator("NVIDIA A100 40GB", ("a100", "40gb"), 1555, 312, _NV + "data-center/a100/"),
    Accelerator("NVIDIA A100 80GB PCIe", ("a100", "pcie"), 1935, 312, _NV + "data-center/a100/"),
    Accelerator("NVIDIA A100 80GB SXM", ("a100",), 2039, 312, _NV + "data-center/a100/"),
    Accelerator("NVIDIA L40S", ("l40s",), 864, 362, _NV + "data-center/l40s/"),
    Accelerator("NVIDIA L4", ("l4",), 300, 121, _NV + "data-center/l4/"),
    Accelerator(
        "NVIDIA GeForce RTX 5090", ("rtx", "5090"), 1792, None,
        _NV + "geforce/graphics-cards/50-series/rtx-5090/",
    ),
    Accelerator(
        "NVIDIA GeForce RTX 5080", ("rtx", "5080"), 960, None,
        _NV + "geforce/graphics-cards/50-series/rtx-5080/",
    ),
    Accelerator(
        "NVIDIA GeForce RTX 4090", ("rtx", "4090"), 1008, 165.2,
        "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf",
    ),
    Accelerator(
        "NVIDIA GeForce RTX 4080", ("rtx", "4080"), 716.8, None,
        _NV + "geforce/graphics-cards/40-series/rtx-4080-family/",
    ),
    Accelerator(
        "NVIDIA GeForce RTX 4060 Ti", ("rtx", "4060", "ti"), 288, None,
        _NV + "geforce/graphics-cards/40-series/rtx-4060-4060ti/",
    ),
    Accelerator(
        "NVIDIA GeForce RTX 4060", ("rtx", "4060"), 272, None,
        _NV + "geforce/graphics-cards/40-series/rtx-4060-4060ti/",
    ),
    Accelerator(
        "NVIDIA GeForce RTX 3090", ("rtx", "3090"), 936, 71,
        "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf",
    ),
    Accelerator(
        "NVIDIA GeForce RTX 3060", ("rtx", "3060"), 360, None,
        _NV + "geforce/graphics-cards/30-series/rtx-3060-3060ti/",
    ),
    Accelerator(
        "AMD Instinct MI300X", ("mi300x",), 5300, 1307.4,
        _AMD + "accelerators/instinct/mi300/mi300x.html",
    ),
    Accelerator(
        "AMD Radeon RX 7900 XTX", ("7900", "xtx"), 960, 122.8,
        _AMD + "graphics/amd-radeon-rx-7900xtx",
    ),
    # Apple: the probe reports the chip ("Apple M3 Max GPU"). Where one name covers a binned
    # variant with less bandwidth (M3 Max: 300 or 400 GB/s; M4 Max: 410 or 546), the lower
    # figure. No TFLOPS (Apple does not publish them): prompt speed follows PROMPT_PER_DECODE.
    Accelerator("Apple M1 Ultra", ("m1", "ultra"), 800, None, _APPLE + "M1"),
    Accelerator("Apple M1 Max", ("m1", "max"), 400, None, _APPLE + "M1"),
    Accelerator("Apple M1 Pro", ("m1", "pro"), 200, None, _APPLE + "M1"),
    Accelerator("Apple M1", ("m1",), 68.25, None, _APPLE + "M1"),
    Accelerator("Apple M2 Ultra", ("m2", "ultra"), 800, None, _APPLE + "M2"),
    Accelerator("Apple M2 Max", ("m2", "max"), 400, None, _APPLE + "M2"),
    Accelerator("Apple M2 Pro", ("m2", "pro"), 200, None, _APPLE + "M2"),
    Accelerator("Apple M2", ("m2",), 100, None, _APPLE + "M2"),
    Accelerator("Apple M3 Ultra", ("m3", "ultra"), 819, None, _APPLE + "M3"),
    Accelerator("Apple M3 Max", ("m3", "max"), 300, None, _APPLE + "M3"),
    Accelerator("Apple M3 Pro", ("m3", "pro"), 150, None, _APPLE + "M3"),
    Accelerator("Apple M3", ("m3",), 100, None, _APPLE + "M3"),
    Accelerator("Apple M4 Max", ("m4", "max"), 410, None, _APPLE + "M4"),
    Accelerator("Apple M4 Pro", ("m4", "pro"), 273, None, _APPLE + "M4"),
    Accelerator("Apple M4", ("m4",), 120, None, _APPLE + "M4"),
)  # fmt: skip


# nvidia-smi names a laptop GPU "NVIDIA GeForce RTX 4060 Laptop GPU" (older ones "Mobile" or
# "Max-Q"); the table holds desktop and data-centre figures only.
LAPTOP_WORDS = frozenset({"laptop", "mobile"})


def find_accelerator(name: str) -> Accelerator | None:
    """The table's row for a probe-reported name ("NVIDIA GeForce RTX 4090"), or None.

    A laptop part ("... Laptop GPU", "Mobile", "Max-Q") matches no row: it shares its number
    with a desktop card but has a narrower memory bus, so the desktop's figures would promise
    too much speed (LAPTOP_WORDS)."""
    words = name.lower().replace("-", " ").replace("_", " ").split()
    text = " ".join(words)
    if LAPTOP_WORDS.intersection(words) or "max q" in text:
        return None
    for row in ACCELERATORS:
        if all(part in words or (len(part) > 3 and part in text) for part in row.match):
            return row
    return None


@dataclass(frozen=True)
class Machine:
    """What runs the model, for the speed model: effective-rate inputs and the words that say
    where they came from."""

    label: str
    bandwidth_bytes_s: float
    flops: float | None
    basis: str


def cpu_machine(cpu_count: int) -> Machine:
    """A CPU-only machine with ``cpu_count`` cores (see CPU_* for the derivation)."""
    cores = max(1, cpu_count)
    bandwidth = min(cores * CPU_BYTES_PER_S_PER_CORE, CPU_BANDWIDTH_CAP)
    return Machine(
        label=f"CPU, {cores} core{'s' if cores != 1 else ''}",
        bandwidth_bytes_s=bandwidth / DECODE_EFFICIENCY,  # already an effective figure
        flops=cores * CPU_FLOPS_PER_CORE,
        basis=(
            f"CPU estimate: {bandwidth / GB:.0f} GB/s and {cores * CPU_FLOPS_PER_CORE / 1e9:.0f} "
            "GFLOPS from llama.cpp measurements per core"
        ),
    )


def accelerator_machine(row: Accelerator) -> Machine:
    """A machine whose model runs on the accelerator of ``row``."""
    return Machine(
        label=row.label,
        bandwidth_bytes_s=row.bandwidth_gbs * GB,
        flops=None if row.tflops is None else row.tflops * TFLOPS,
        basis=f"{row.label}: {row.bandwidth_gbs:g} GB/s ({row.source})",
    )


def machine_for(profile: HardwareProfile) -> Machine | None:
    """The machine models run on, from the probe: the GPU that sets the budget, else the CPU.
    None (no speed is claimed) when the server is remote, when PERSONA_OLLAMA_MEMORY_GB
    describes the memory by hand (the hardware it belongs to is not known: often a server
    elsewhere, or Ollama in a container of its own), or when the GPU is not in the table."""
    if profile.budget_source in ("unknown", "override"):
        return None
    gpus = [gpu for gpu in profile.gpus if gpu.memory_total_bytes]
    if profile.budget_source == "cpu" or not gpus:
        return cpu_machine(profile.cpu_count)
    largest = max(gpus, key=lambda gpu: (gpu.memory_total_bytes or 0, gpu.name))
    row = find_accelerator(largest.name)
    return None if row is None else accelerator_machine(row)


@dataclass(frozen=True)
class SpeedEstimate:
    """Decode and prompt tokens a second, the cold load time, and what they rest on."""

    decode_tps: float
    prompt_tps: float
    load_s: float
    basis: str


def estimate(model: ModelFacts, machine: Machine, context_tokens: int) -> SpeedEstimate:
    """Speeds of ``model`` on ``machine`` with ``context_tokens`` already in the KV cache
    (decode reads all of it for every token it writes)."""
    read = model.bytes_read_per_token + model.kv_bytes(context_tokens)
    per_token = read / (DECODE_EFFICIENCY * machine.bandwidth_bytes_s) + PER_TOKEN_OVERHEAD_S
    decode = 1 / per_token
    if machine.flops is not None:
        flops = min(machine.flops, PROMPT_FLOPS_CAP)
        prompt = flops / (2 * model.active_parameters_b * 1e9)
    else:
        prompt = decode * PROMPT_PER_DECODE
    basis = f"{machine.basis}; model facts: {model.basis}, KV cache from {model.kv_source}"
    return SpeedEstimate(decode, prompt, model.weights_bytes / LOAD_BYTES_PER_S, basis)


@dataclass(frozen=True)
class ReferenceJob:
    """The job whose time `recommend`, `doctor` and `models` show: three personas from a
    20,000-token interview transcript, in one request."""

    transcript_tokens: int = 20_000
    instruction_tokens: int = 1_000  # the persona template and instructions
    personas: int = 3
    tokens_per_persona: int = 1_200  # one persona as JSON
    thinking_tokens: int = 2_000  # a thinking model reasons before it answers

    @property
    def prompt_tokens(self) -> int:
        """Tokens the server reads before it writes."""
        return self.transcript_tokens + self.instruction_tokens

    def answer_tokens(self, thinking: bool = False) -> int:
        """Tokens written: the personas, and the reasoning of a thinking model."""
        return self.personas * self.tokens_per_persona + (self.thinking_tokens if thinking else 0)

    def window(self, thinking: bool = False) -> int:
        """The ``num_ctx`` the provider sends for it: the ladder rung that holds it."""
        return ladder_size(self.prompt_tokens + self.answer_tokens(thinking))

    def seconds(self, speed: SpeedEstimate, thinking: bool = False, loaded: bool = False) -> float:
        """Expected wall time: load (unless ``loaded``), read the prompt, write the answer."""
        load = 0.0 if loaded else speed.load_s
        return (
            load
            + self.prompt_tokens / speed.prompt_tps
            + self.answer_tokens(thinking) / speed.decode_tps
        )


REFERENCE_JOB = ReferenceJob()


def job_estimate(model: ModelFacts, machine: Machine) -> tuple[SpeedEstimate, float]:
    """The speeds of ``model`` during the reference job (decode at the KV cache's average
    fill while answering) and the job's seconds."""
    job = REFERENCE_JOB
    average_fill = job.prompt_tokens + job.answer_tokens(model.thinking) // 2
    speed = estimate(model, machine, average_fill)
    return speed, job.seconds(speed, model.thinking)


@dataclass(frozen=True)
class Measured:
    """What a model's own runs on this server measured (the server's timings of past
    answers, timings.py): any of the three may be unknown."""

    prompt_tps: float | None
    decode_tps: float | None
    load_s: float | None
    runs: int


def with_measured(measured: Measured, estimate: SpeedEstimate | None) -> SpeedEstimate | None:
    """Measured beats estimated: ``estimate`` with every measured speed put in its place,
    and a basis that says which are measured. Without an estimate, only a measurement of
    both speeds stands on its own (a load time not measured then counts as none)."""
    decode = measured.decode_tps or (estimate.decode_tps if estimate is not None else None)
    prompt = measured.prompt_tps or (estimate.prompt_tps if estimate is not None else None)
    if decode is None or prompt is None:
        return estimate
    load = measured.load_s
    if load is None:
        load = estimate.load_s if estimate is not None else 0.0
    kept = [
        name
        for name, value in (("prompt", measured.prompt_tps), ("answer", measured.decode_tps))
        if not value
    ]
    basis = f"measured on this server over {measured.runs} run(s)"
    if kept:
        basis += f" ({' and '.join(kept)} speed estimated)"
    return SpeedEstimate(decode, prompt, load, basis)


def first_token_seconds(speed: SpeedEstimate, prompt_tokens: int, loaded: bool = False) -> float:
    """Expected wait before the first answer token: load (unless ``loaded``) and read the
    prompt. For a wait that grows with the hardware (the first-byte timeout)."""
    return (0.0 if loaded else speed.load_s) + prompt_tokens / speed.prompt_tps


def format_duration(seconds: float) -> str:
    """``'45 s'``, ``'12 min'``, ``'2.5 h'``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
