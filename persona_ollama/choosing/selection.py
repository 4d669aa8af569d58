"""Choose the default model and recommend models to pull, saying why.

Pure functions over plain data: installed models (from /api/tags), a memory budget in bytes
(from hardware.py, or None when unknown), the machine the speed model knows (speed.py, or None)
and the catalogue. A model *fits* when its weights, the KV cache at the planned context (the
window the provider sends for the reference job) and the runtime overhead leave the headroom
free (HEADROOM_*). Those that fit and whose reference job ends within the time budget are
ranked by quality for persona generation (the catalogue's formula; models without cited
figures, including those the catalogue does not know, after the scored ones, larger first);
those that would take longer follow, fastest first. Ties go to the smaller model, then to the
name, so the same inputs always give the same answer.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from ..errors import ConfigurationError
from ..model_info import ModelInfo, placement
from ..names import canonical
from ..settings import JOB_MINUTES_VAR, MEMORY_GB_VAR, env_float
from .catalogue import (
    Catalogue,
    ModelSpec,
    kv_bytes_rule_of_thumb,
    runtime_memory_bytes,
)
from .modelfacts import BYTES_PER_PARAMETER, ModelFacts, facts_from_server
from .speed import (
    REFERENCE_JOB,
    Machine,
    Measured,
    SpeedEstimate,
    format_duration,
    job_estimate,
    machine_for,
    with_measured,
)
from .units import GiB, format_gib

if TYPE_CHECKING:
    from .hardware import HardwareProfile

# The context memory is planned at: the window the provider sends for the reference job
# (three personas from a 20,000-token transcript), capped at each model's trained context.
PLANNED_CONTEXT = REFERENCE_JOB.window()
# Room left free beside the estimate: Ollama's own estimate differs from ours, the compute
# graph grows with the batch, and the GPU driver, other programs and fragmentation take their
# share. A model that spills a few layers to system RAM runs several times slower, so a model
# fits only when this much of the budget stays free: 10 %, at least 1 GiB.
HEADROOM_SHARE = 0.10
HEADROOM_MIN = 1 * GiB
# How long the reference job may take before faster models rank first: a laptop user waits
# a quarter of an hour for three personas. PERSONA_OLLAMA_JOB_MINUTES changes it.
DEFAULT_JOB_MINUTES = 15.0

# Without a GPU, each generated token reads every active weight from RAM: above this many
# active parameters (billions) a model writes only a few tokens a second, so on CPU-only
# machines such models rank after the ones that are usable.
CPU_FAST_ACTIVE_B = 15.0
# When the server's memory is unknown and nothing is installed, suggest a model that runs on
# most machines rather than the best one in the catalogue.
UNKNOWN_BUDGET = 8 << 30
# The provider's default when nothing is installed and no catalogue model fits: small enough
# for any laptop, so generate() can say `persona-ollama pull` it.
FALLBACK_MODEL = "llama3.2:3b"
# Names of embedding models, used only when the server does not list capabilities (< v0.30).


Model = Union[ModelInfo, ModelSpec]


def is_embedding_only(model: Model, catalogue: Catalogue | None = None) -> bool:
    """Capabilities first, then the catalogue's flag, then name patterns."""
    if isinstance(model, ModelSpec):
        return model.embedding
    if model.capabilities:
        return model.is_embedding
    spec = catalogue.get(model.name) if catalogue is not None else None
    return spec.embedding if spec is not None else model.is_embedding


def job_budget_seconds(environ: Mapping[str, str]) -> float:
    """The time budget of the reference job: PERSONA_OLLAMA_JOB_MINUTES, else 15 minutes.
    Raises ConfigurationError naming the variable for a value that is not a positive number."""
    minutes = env_float(environ, JOB_MINUTES_VAR, "30")
    seconds = 60 * (DEFAULT_JOB_MINUTES if minutes is None else minutes)
    if not math.isfinite(seconds):
        raise ConfigurationError(
            f"{JOB_MINUTES_VAR}={environ.get(JOB_MINUTES_VAR)!r} is too large.",
            hint=f"e.g. {JOB_MINUTES_VAR}=30",
        )
    return seconds


def headroom_bytes(budget_bytes: int) -> int:
    """The share of the budget a model must leave free (HEADROOM_*)."""
    return max(HEADROOM_MIN, int(budget_bytes * HEADROOM_SHARE))


def estimate_memory_bytes(
    model: Model, context_tokens: int = PLANNED_CONTEXT, catalogue: Catalogue | None = None
) -> int | None:
    """Bytes to run ``model`` with ``context_tokens`` of context (capped at its trained length):
    weights (the file size) + KV cache + overhead. The catalogue supplies the KV cache size
    per token where it knows the model; otherwise a rule of thumb by parameter count
    (``catalogue.KV_RULE_OF_THUMB``). None when neither size nor parameter count is known."""
    if isinstance(model, ModelSpec):
        return model.memory_at(context_tokens)
    spec = catalogue.get(model.name) if catalogue is not None else None
    if spec is not None:
        return spec.memory_at(context_tokens, weights_bytes=model.size_bytes)
    parameters = _parameters_b(model)
    if parameters is None:
        return None
    weights = model.size_bytes or int(parameters * 1e9 * BYTES_PER_PARAMETER)
    context = min(context_tokens, model.context_length or context_tokens)
    return runtime_memory_bytes(weights, kv_bytes_rule_of_thumb(parameters), context)


def _parameters_b(model: ModelInfo) -> float | None:
    if model.parameters_b is not None:
        return model.parameters_b
    return model.size_bytes / (1e9 * BYTES_PER_PARAMETER) if model.size_bytes else None


def fits(memory_bytes: int | None, budget_bytes: int | None) -> bool | None:
    """True when the model leaves the headroom of the budget free; None when the budget is
    unknown. A model of unknown size does not fit a known budget (better to say so than to
    pick it blindly)."""
    if budget_bytes is None:
        return None
    return memory_bytes is not None and memory_bytes + headroom_bytes(budget_bytes) <= budget_bytes


def model_facts(model: Model, catalogue: Catalogue | None = None) -> ModelFacts | None:
    """What the estimates rest on: the catalogue's facts (with the installed file's size when
    known), else what the server says (marked "estimated from the server")."""
    spec = (
        model if isinstance(model, ModelSpec) else catalogue.get(model.name) if catalogue else None
    )
    if spec is not None:
        facts = spec.facts
        if isinstance(model, ModelInfo) and model.size_bytes:
            facts = dataclasses.replace(facts, weights_bytes=model.size_bytes)
        return facts
    assert isinstance(model, ModelInfo)
    return facts_from_server(
        model.name,
        parameters_b=model.parameters_b,
        size_bytes=model.size_bytes,
        context_length=model.context_length,
        thinking=model.thinks,
    )


@dataclass(frozen=True)
class Candidate:
    """One model weighed for the default, with everything the ranking used. ``speed`` and
    ``job_seconds`` are None when the machine is unknown (a remote server, a GPU not in the
    speed table); ``over_time`` when the reference job takes longer than the time budget."""

    name: str
    installed: bool
    memory_bytes: int | None
    fits: bool | None
    quality: int | None
    quality_reason: str
    slow_on_cpu: bool = False
    short_context: bool = False
    spec: ModelSpec | None = None
    parameters_b: float = 0.0
    speed: SpeedEstimate | None = None
    job_seconds: float | None = None
    over_time: bool = False
    estimated_from_server: bool = False
    window: int | None = None  # the planned context, capped at the model's trained one

    @property
    def rank_key(self) -> tuple[bool, float, bool, float, float, str]:
        """Usable before short-context or slow; among those within the time budget the best
        quality (models without a score after, larger first), among those over it the
        fastest; then smaller, and by name."""
        size = math.inf if self.memory_bytes is None else self.memory_bytes
        late = self.over_time or self.slow_on_cpu
        wait = (self.job_seconds or math.inf) if self.over_time else 0.0
        unscored = self.quality is None
        merit = -self.parameters_b if unscored else -float(self.quality or 0)
        return (self.short_context or late, wait, unscored, merit, size, self.name)

    def describe(self, budget_bytes: int | None, context_tokens: int) -> str:
        """One line: the memory it needs against the budget, its quality and why, and its
        speed and reference-job time here."""
        needs = (
            "size unknown"
            if self.memory_bytes is None
            else f"needs {format_gib(self.memory_bytes)}"
        )
        if budget_bytes is not None:
            needs += f" of {format_gib(budget_bytes)}"
            needs += f" ({format_gib(headroom_bytes(budget_bytes))} kept free)"
        score = "no score" if self.quality is None else f"quality {self.quality}"
        text = f"{self.name}: {needs} at {self.window or context_tokens} tokens; {score}"
        if self.quality_reason:
            text += f" ({self.quality_reason})"
        if self.spec is not None and self.spec.note:
            text += f"; {self.spec.note}"
        if self.spec is not None:
            text += _estimates(self.spec)
        if self.spec is not None and not self.spec.context_known:
            text += f"; its context length is not in the catalogue: {self.window} assumed"
        if self.speed is not None and self.job_seconds is not None:
            text += (
                f"; ~{self.speed.decode_tps:.1f} tokens/s, reference job "
                f"~{format_duration(self.job_seconds)}"
            )
            if self.speed.basis.startswith("measured"):
                text += f" ({self.speed.basis})"
            elif self.estimated_from_server:
                text += " (estimated from the server)"
        if self.over_time:
            text += "; slower than the time budget"
        if self.slow_on_cpu:
            text += "; fits, but without a GPU a model this large writes only a few tokens a second"
        if self.short_context:
            text += f"; its context is shorter than the planned {context_tokens} tokens"
        return text


def _estimates(spec: ModelSpec) -> str:
    """The catalogue facts this model lacks and how they were estimated, so that no estimate
    reads as a catalogue fact."""
    text = ""
    if spec.size_estimated:
        level = spec.quantization or "Q4_K_M (its quantisation is not known either)"
        text += (
            "; its download size is not in the catalogue: estimated from its parameters "
            f"at {level}, ~{format_gib(spec.download_bytes)}"
        )
    facts = spec.facts
    if facts.architecture is None and facts.kv_bytes_per_token is None:
        per_token = kv_bytes_rule_of_thumb(spec.parameters_b) // 1024
        text += (
            "; its architecture is not in the catalogue: KV cache estimated by a rule of thumb "
            f"for its size ({per_token} KiB per token)"
        )
    return text


@dataclass(frozen=True)
class Plan:
    """What the ranking knows beyond memory: the machine for the speed model (None: no
    speed claimed) and the reference job's time budget in seconds."""

    machine: Machine | None = None
    time_budget_s: float = DEFAULT_JOB_MINUTES * 60
    # Speeds measured on this server, by canonical model name: they replace the estimate.
    measured: Mapping[str, Measured] = field(default_factory=dict)


def plan_for(
    profile: HardwareProfile,
    environ: Mapping[str, str] | None = None,
    measured: Mapping[str, Measured] | None = None,
) -> Plan:
    """The plan for this machine: the speed model's machine for the probe's hardware, the
    time budget from PERSONA_OLLAMA_JOB_MINUTES (ConfigurationError for a bad value), and the
    speeds measured on this server (``measured``, by model name)."""
    env = os.environ if environ is None else environ
    by_name = {canonical(name): speeds for name, speeds in (measured or {}).items()}
    return Plan(machine_for(profile), job_budget_seconds(env), by_name)


def _candidate(
    model: Model,
    catalogue: Catalogue,
    budget_bytes: int | None,
    context_tokens: int,
    cpu_only: bool,
    installed: bool,
    plan: Plan | None = None,
) -> Candidate:
    """``model`` scored for the selection: its memory at ``context_tokens``, whether that fits
    ``budget_bytes``, and its quality (the catalogue's, else estimated from size and
    quantization)."""
    spec = model if isinstance(model, ModelSpec) else catalogue.get(model.name)
    memory = estimate_memory_bytes(model, context_tokens, catalogue)
    if spec is not None:
        quality, why = spec.quality, spec.quality_reason
        active: float | None = spec.compute_parameters_b
        context = spec.context_length
    else:
        assert isinstance(model, ModelInfo)  # a ModelSpec is its own spec
        active = _parameters_b(model)
        # No cited figures, like a catalogue model without scores: ranked after scored
        # models, larger first (quality.py).
        quality = None
        size = model.parameter_size or "unknown size"
        why = (
            f"not in the catalogue, so no benchmark figures: ranked after scored models, by "
            f"size ({size}, {model.quantization_level or '?'})"
        )
        context = model.context_length or context_tokens
    facts = model_facts(model, catalogue)
    machine = plan.machine if plan is not None else None
    speed = job = None
    if facts is not None and machine is not None:
        speed, job = job_estimate(facts, machine)
    measured = plan.measured.get(canonical(model.name)) if plan is not None else None
    if measured is not None:
        # Measured beats estimated, also where nothing could be estimated (a remote server).
        estimated, speed = speed, with_measured(measured, speed)
        if speed is not None and speed is not estimated:
            thinking = facts.thinking if facts is not None else False
            job = REFERENCE_JOB.seconds(speed, thinking)
    return Candidate(
        name=model.name,
        installed=installed,
        memory_bytes=memory,
        fits=fits(memory, budget_bytes),
        quality=quality,
        quality_reason=why,
        # Without the speed model, the old rule: too many active parameters for a CPU.
        slow_on_cpu=machine is None and cpu_only and (active or 0) > CPU_FAST_ACTIVE_B,
        short_context=context < context_tokens,
        spec=spec,
        parameters_b=(facts.parameters_b if facts is not None else 0.0),
        speed=speed,
        job_seconds=job,
        over_time=job is not None and plan is not None and job > plan.time_budget_s,
        estimated_from_server=facts is not None and spec is None,
        window=min(context, context_tokens),
    )


@dataclass(frozen=True)
class Selection:
    """The default model, whether it is installed, and the reasons doctor prints."""

    model: str | None
    installed: bool
    reasons: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = ()


def _why(best: Candidate, plan: Plan | None) -> str:
    """What decided among the models that fit, when the speed model took part."""
    if plan is None or best.job_seconds is None:
        return ""
    limit = format_duration(plan.time_budget_s)
    if best.over_time:
        return f" (none finishes the reference job within {limit} here, so the fastest)"
    return f" (the best whose reference job ends within {limit})"


def _better_on_paper(candidate: Candidate, best: Candidate) -> bool:
    """A higher score than the pick (a scored model beats an unscored one)."""
    if candidate.quality is None:
        return False
    return best.quality is None or candidate.quality > best.quality


def _ranked(candidates: Iterable[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda candidate: candidate.rank_key)


def choose_default(
    installed: Sequence[ModelInfo],
    profile_budget_bytes: int | None,
    catalogue: Catalogue,
    *,
    context_tokens: int = PLANNED_CONTEXT,
    cpu_only: bool = False,
    server: str | None = None,
    plan: Plan | None = None,
    listed: bool = True,
) -> Selection:
    """The best installed chat model that fits the budget; else the smallest installed chat
    model (with a warning); else the best catalogue model that fits, to be pulled.

    ``listed``: ``installed`` is the server's listing. When it is not (the server did not
    answer), which models it has is unknown, so no reason or warning says it has none: the
    catalogue's pick stands, and an OpenAI-compatible server's default is unknown.

    ``plan`` gives the machine for the speed model and the time budget: models whose
    reference job would take longer rank after those within it, fastest first. Without a
    machine, ``cpu_only`` (``HardwareProfile.cpu_only``) ranks models with more than
    CPU_FAST_ACTIVE_B billion active parameters after the others. ``server`` names an
    OpenAI-compatible server ("the llama.cpp server"): its models are already loaded, so no
    memory check applies and nothing is suggested for pulling.
    """
    if server is not None:
        return (
            _choose_served(installed, catalogue, server) if listed else Selection(None, False, ())
        )
    budget = profile_budget_bytes
    if budget is None:
        reasons = [
            "The server's memory is unknown, so installed models are ranked by quality alone "
            f"(set {MEMORY_GB_VAR} to check that they fit)."
        ]
    else:
        reasons = [
            f"Budget {format_gib(budget)} for the weights, the KV cache of a context of "
            f"{context_tokens} tokens and runtime overhead."
        ]
    chat: list[Candidate] = []
    # A catalogue name that an installed remote model holds is not suggested either: until
    # pulled over, using that name sends the prompt where the remote model runs.
    remote = frozenset(canonical(m.name) for m in installed if m.placement.remote)
    for model in installed:
        if is_embedding_only(model, catalogue):
            reasons.append(f"{model.name}: skipped, embedding-only (it cannot write text).")
            continue
        where = model.placement
        if where.remote:  # never chosen: only a caller who names it sends data there
            reasons.append(
                f"{model.name}: skipped, it runs on {where.host_text}, not this server "
                f"({where.evidence}); name it explicitly to use it."
            )
            continue
        chat.append(_candidate(model, catalogue, budget, context_tokens, cpu_only, True, plan))
    ranked = _ranked(chat)
    usable = [candidate for candidate in ranked if candidate.fits is not False]
    reasons.extend(
        f"{candidate.describe(budget, context_tokens)}: "
        f"{'too big' if candidate.memory_bytes is not None else 'may not fit'}, skipped."
        for candidate in ranked
        if candidate.fits is False
    )
    if usable:
        best = usable[0]
        reasons.extend(  # better on paper, but slow here or too short for the planned context
            f"{candidate.describe(budget, context_tokens)}: ranked lower."
            for candidate in usable[1:]
            if _better_on_paper(candidate, best)
        )
        reasons.append(
            f"Chose {best.describe(budget, context_tokens)}; "
            f"the best of {len(usable)} installed chat model(s) that fit{_why(best, plan)}."
        )
        return Selection(best.name, True, tuple(reasons), (), tuple(ranked))
    if chat:
        smallest = min(chat, key=lambda c: (c.memory_bytes or math.inf, c.name))
        pulls = _catalogue_candidates(catalogue, budget, context_tokens, cpu_only, remote, plan)
        pick = next((c for c in pulls if c.fits is not False), None)
        advice = f" `persona-ollama pull {pick.name}` gets one that fits." if pick else ""
        warning = (
            f"No installed model fits {format_gib(budget or 0)}; using the smallest, "
            f"{smallest.describe(budget, context_tokens)}. It may swap or fail to load.{advice}"
        )
        return Selection(smallest.name, True, tuple(reasons), (warning,), tuple(ranked))
    if any(model.placement.remote for model in installed):
        reasons.append(
            "Every installed chat model runs off this machine, so none counts as installed here."
        )
    return _pull_suggestion(
        catalogue, budget, context_tokens, cpu_only, reasons, remote, plan, listed=listed
    )


def _choose_served(served: Sequence[ModelInfo], catalogue: Catalogue, server: str) -> Selection:
    """The best chat model an OpenAI-compatible server serves, by quality alone: it loaded
    them itself, so the memory budget of this machine says nothing about them."""
    # Ollama's /v1 serves remote models too (its /api/tags says which): never chosen.
    remote = [model for model in served if model.placement.remote]
    skipped = tuple(
        f"{model.name}: skipped, it runs on {model.placement.host_text}, not this server "
        f"({model.placement.evidence}); name it explicitly to use it."
        for model in remote
    )
    chat = [
        _candidate(model, catalogue, None, PLANNED_CONTEXT, False, True)
        for model in served
        if not is_embedding_only(model, catalogue) and not model.placement.remote
    ]
    if not chat:
        reason = f"The {server} serves no chat model: start it with one (it cannot pull)."
        if remote:
            reason = f"The {server} serves no chat model that runs on it: start it with one."
        return Selection(None, False, (*skipped, reason), (), ())
    ranked = sorted(chat, key=lambda c: (c.quality is None, -(c.quality or 0), c.name))
    best = ranked[0]
    reasons = (
        f"The {server} loaded its models itself, so they are ranked by quality alone.",
        *skipped,
        f"Chose {best.name}, the best of {len(ranked)} chat model(s) it serves.",
    )
    return Selection(best.name, True, reasons, (), tuple(ranked))


def _catalogue_candidates(
    catalogue: Catalogue,
    budget: int | None,
    context_tokens: int,
    cpu_only: bool,
    taken: frozenset[str] = frozenset(),
    plan: Plan | None = None,
) -> list[Candidate]:
    """Catalogue chat models, ranked; ``taken``: canonical names that an installed remote
    model holds (a suggestion of that name would be the remote model until pulled over)."""
    return _ranked(
        _candidate(spec, catalogue, budget, context_tokens, cpu_only, False, plan)
        for spec in catalogue
        if not spec.embedding
        and not spec.cloud_only  # nothing to pull: it runs only on ollama.com
        and not placement(spec.name).remote
        and canonical(spec.name) not in taken
    )


def _pull_suggestion(
    catalogue: Catalogue,
    budget: int | None,
    context_tokens: int,
    cpu_only: bool,
    reasons: list[str],
    taken: frozenset[str] = frozenset(),
    plan: Plan | None = None,
    *,
    listed: bool = True,
) -> Selection:
    """The best catalogue model that fits, to be pulled; ``listed``: whether "no chat model is
    installed" is known (see choose_default)."""
    assumed = UNKNOWN_BUDGET if budget is None else budget
    if budget is None:
        reasons.append(
            f"Nothing to choose from: suggesting a model that runs in {format_gib(assumed)}, "
            "which most machines have."
        )
    candidates = _catalogue_candidates(catalogue, assumed, context_tokens, cpu_only, taken, plan)
    best = next((c for c in candidates if c.fits), None)
    if best is None:
        warning = (
            f"No chat model is installed, and none in the catalogue fits {format_gib(assumed)}"
        )
        if candidates:
            smallest = min(candidates, key=lambda c: (c.memory_bytes or math.inf, c.name))
            warning += f"; the smallest, {smallest.describe(assumed, context_tokens)}"
        warnings = (warning + ".",) if listed else ()
        return Selection(None, False, tuple(reasons), warnings, tuple(candidates))
    if listed:
        reasons.append(
            f"No chat model is installed; the best in the catalogue that fits is "
            f"{best.describe(assumed, context_tokens)}{_why(best, plan)}. "
            f"Run `persona-ollama pull {best.name}`."
        )
    return Selection(best.name, False, tuple(reasons), (), tuple(candidates))


@dataclass(frozen=True)
class Recommendation:
    """A catalogue model worth having on this machine. ``fits`` is None when the budget is
    unknown."""

    spec: ModelSpec
    installed: bool
    fits: bool | None
    memory_bytes: int
    reason: str
    speed: SpeedEstimate | None = None
    job_seconds: float | None = None


def recommend(
    installed: Sequence[ModelInfo],
    budget_bytes: int | None,
    catalogue: Catalogue,
    n: int = 5,
    *,
    context_tokens: int = PLANNED_CONTEXT,
    cpu_only: bool = False,
    plan: Plan | None = None,
) -> list[Recommendation]:
    """The ``n`` best catalogue chat models that fit the budget (all of them, when the budget
    is unknown), best first, each saying whether it is installed."""
    have = {catalogue.get(model.name) for model in installed if not model.placement.remote}
    candidates = _catalogue_candidates(catalogue, budget_bytes, context_tokens, cpu_only, plan=plan)
    recommendations = []
    for candidate in candidates:
        if candidate.fits is False or candidate.spec is None:
            continue
        spec = candidate.spec
        recommendations.append(
            Recommendation(
                spec=spec,
                installed=spec in have,
                fits=candidate.fits,
                memory_bytes=candidate.memory_bytes or spec.memory_bytes,
                reason=candidate.describe(budget_bytes, context_tokens),
                speed=candidate.speed,
                job_seconds=candidate.job_seconds,
            )
        )
    return recommendations[:n]
