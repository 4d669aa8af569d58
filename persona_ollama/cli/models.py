"""`persona-ollama models` and `recommend`: what is installed, what fits, what to pull."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .app import common_options, echo, human_bytes, json_option, main, make_provider, print_json

if TYPE_CHECKING:
    from ..model_info import ModelInfo
    from ..provider import OllamaProvider

COLUMNS = (
    "NAME",
    "SIZE",
    "PARAMS",
    "QUANT",
    "CONTEXT",
    "MEMORY",
    "FITS",
    "TOK/S",
    "JOB",
    "MEASURED",
    "DEFAULT",
)


def _fits_text(fits: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[fits]


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def model_rows(provider: OllamaProvider, include_catalogue: bool) -> list[dict[str, Any]]:
    """One row per installed chat model (then per catalogue model not installed, if asked)."""
    from ..choosing.catalogue import load_catalogue
    from ..choosing.hardware import probe
    from ..choosing.selection import PLANNED_CONTEXT, estimate_memory_bytes, fits, plan_for
    from ..names import canonical

    catalogue = load_catalogue()
    profile = probe(server_is_local=provider.endpoint.is_loopback)
    budget = profile.memory_budget_bytes
    machine = plan_for(profile).machine
    default = provider.default_model
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for model in provider.installed_models():
        if not model.can_chat:
            continue
        where = model.placement
        context = model.context_length
        if context is None and not where.remote:  # servers before v0.30 leave it out of /api/tags
            context = provider.model_info(model.name).context_length
        # A remote model uses no memory here: whether it "fits" means nothing.
        memory = None if where.remote else estimate_memory_bytes(model, catalogue=catalogue)
        seen.add(canonical(model.name))
        # A model of unknown size fits or not: unknown, not "no". A /v1 server loaded its
        # models itself, so this machine's budget says nothing about them.
        fit = None if memory is None or provider.api == "openai" else fits(memory, budget)
        rows.append(
            {
                "name": model.name,
                "installed": True,
                "size_bytes": model.size_bytes,
                "parameters": model.parameter_size,
                "quantization": model.quantization_level,
                "context_length": context,
                "memory_bytes": memory,
                "fits": fit,
                "default": canonical(model.name) == canonical(default),
                "pull": None,
                "remote": where.remote,
                "remote_host": where.host,
                **_speed(None if where.remote else model, catalogue, machine),
                "measured": _measured(provider, model),
                "size_estimated": False,
            }
        )
    if include_catalogue:
        # What could be pulled: what fits first, best first.
        ranked = sorted(
            catalogue,
            key=lambda s: (
                fits(s.memory_at(PLANNED_CONTEXT), budget) is False,
                s.quality is None,
                -(s.quality or 0),
                s.name,
            ),
        )
        for spec in ranked:
            if spec.embedding or canonical(spec.name) in seen:
                continue
            memory = spec.memory_at(PLANNED_CONTEXT)
            rows.append(
                {
                    "name": spec.name,
                    "installed": False,
                    "size_bytes": spec.download_bytes,
                    "parameters": f"{spec.parameters_b:g}B",
                    "quantization": spec.quantization,
                    # Unknown to the catalogue: null, not the window assumed for planning.
                    "context_length": spec.context_length if spec.context_known else None,
                    "memory_bytes": memory,
                    "fits": fits(memory, budget),
                    "default": canonical(spec.name) == canonical(default),
                    # A /v1 server cannot pull: it is started with its models.
                    "pull": f"persona-ollama pull {spec.name}"
                    if provider.api != "openai"
                    else None,
                    "remote": False,
                    "remote_host": None,
                    **_speed(spec, catalogue, machine),
                    "measured": None,
                    # Not in the catalogue: worked out from the parameters (shown with "~").
                    "size_estimated": spec.size_estimated,
                }
            )
    return rows


def _measured(provider: OllamaProvider, model: ModelInfo) -> Any:
    """The model's measured speeds on this server (timings.py), None when never measured."""
    speeds = provider.measured(model)
    return speeds.as_dict() if speeds is not None else None


def _measured_text(measured: dict[str, Any] | None) -> str:
    rate = measured and measured["answer_tokens_per_second"]
    return f"{rate:.0f} tok/s" if rate else "-"


def _speed(model: Any, catalogue: Any, machine: Any) -> dict[str, Any]:
    """The speed model's figures for a row: decode tokens/s, the reference job's seconds and
    where the facts came from (None when the machine or the model's size is unknown)."""
    from ..choosing.modelfacts import BASIS_SERVER
    from ..choosing.selection import model_facts
    from ..choosing.speed import job_estimate

    facts = None if model is None or machine is None else model_facts(model, catalogue)
    if facts is None:
        return {
            "decode_tps": None,
            "prompt_tps": None,
            "job_seconds": None,
            "speed_basis": None,
            "estimated_from_server": None,
        }
    speed, seconds = job_estimate(facts, machine)
    return {
        "decode_tps": round(speed.decode_tps, 1),
        "prompt_tps": round(speed.prompt_tps, 1),
        "job_seconds": round(seconds, 1),
        "speed_basis": speed.basis,
        "estimated_from_server": facts.basis == BASIS_SERVER,
    }


def render_table(rows: list[dict[str, Any]]) -> None:
    """Print ``rows`` as an aligned table: models not installed dimmed with their pull
    command, models too large for this machine in red, remote ones with their host.
    SIZE starts with "~" when the catalogue does not know it (estimated from the parameters).
    MEMORY is the estimate at the planned context; TOK/S and JOB the speed model's decode
    speed and reference-job time (docs/models-and-hardware.md), "?" when it cannot say;
    MEASURED the answer speed measured on this server, a column only once a model was."""
    from ..choosing.speed import format_duration

    measured = any(row.get("measured") for row in rows)
    columns = COLUMNS if measured else tuple(c for c in COLUMNS if c != "MEASURED")
    cells: list[tuple[str, ...]] = [
        (
            row["name"],
            ("~" if row.get("size_estimated") else "") + human_bytes(row["size_bytes"]),
            row["parameters"] or "?",
            row["quantization"] or "?",
            str(row["context_length"] or "?"),
            "-" if row.get("remote") else human_bytes(row["memory_bytes"]),
            "-" if row.get("remote") else _fits_text(row["fits"]),
            "-" if row.get("remote") else _number(row.get("decode_tps")),
            "-"
            if row.get("remote")
            else (format_duration(row["job_seconds"]) if row.get("job_seconds") else "?"),
            _measured_text(row.get("measured")),
            "*" if row["default"] else "",
        )
        for row in rows
    ]
    if not measured:
        gone = COLUMNS.index("MEASURED")
        cells = [line[:gone] + line[gone + 1 :] for line in cells]
    widths = [max(len(c[i]) for c in [columns, *cells]) for i in range(len(columns))]
    echo("  ".join(h.ljust(w) for h, w in zip(columns, widths)).rstrip(), bold=True)
    for row, line in zip(rows, cells):
        text = "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
        if row["pull"]:
            text += f"  ({row['pull']})"
        if row.get("remote"):
            text += f"  (remote: runs on {row['remote_host'] or 'a host the server does not name'})"
        elif row.get("estimated_from_server"):
            text += "  (not in the catalogue: speed estimated from the server)"
        echo(text, dim=not row["installed"], fg="red" if row["fits"] is False else None)
    if any(not row.get("remote") and row.get("decode_tps") is None for row in rows):
        echo(
            "TOK/S and JOB ?: no speed estimate for this hardware "
            "(docs/models-and-hardware.md); `persona-ollama bench` measures it.",
            dim=True,
        )


@main.command()
@click.option(
    "--all", "include_catalogue", is_flag=True, help="Add catalogue models not installed."
)
@json_option
@common_options
def models(include_catalogue: bool, as_json: bool, host: str | None) -> None:
    """List installed chat models: size, parameters, quantisation, context, fit, measured
    answer speed, default (*).

    A model that runs off this machine (a cloud model, or an alias of one) is marked
    "(remote: runs on HOST)"; it is never the default.

    \b
    Examples:
      persona-ollama models
      persona-ollama models --all          also what you could pull, with the command
      persona-ollama models --json
    """
    provider = make_provider(host)
    rows = model_rows(provider, include_catalogue)
    if as_json:
        print_json(rows)
        return
    if not rows:
        echo("No chat model is installed. `persona-ollama recommend` suggests one to pull.")
        return
    render_table(rows)


@main.command()
@click.option("-n", "--count", type=click.IntRange(min=1), default=5, show_default=True)
@json_option
@common_options
def recommend(count: int, as_json: bool, host: str | None) -> None:
    """The best catalogue models for this machine, installed or not, with reasons.

    \b
    Examples:
      persona-ollama recommend
      PERSONA_OLLAMA_MEMORY_GB=64 persona-ollama recommend --host gpu-box -n 3
    """
    from ..choosing.catalogue import load_catalogue
    from ..choosing.hardware import probe
    from ..choosing.selection import plan_for
    from ..choosing.selection import recommend as recommend_models
    from ..choosing.speed import REFERENCE_JOB
    from ..errors import OllamaError

    provider = make_provider(host)
    known = True  # whether the server said which models it has
    try:
        installed = provider.installed_models()
    except OllamaError as error:
        installed, known = [], False
        # On stderr, so --json's standard output stays one JSON document.
        echo(f"(no model list from the server, so the catalogue only: {error.message})", err=True)
        if error.hint:  # the fix (`ollama serve`, drop /api, http://) as every command gives it
            echo(f"Hint: {error.hint}", err=True, fg="yellow")
    profile = probe(server_is_local=provider.endpoint.is_loopback)
    plan = plan_for(profile, measured=provider.measured_speeds(installed))
    catalogue = load_catalogue()
    picks = recommend_models(
        installed,
        profile.memory_budget_bytes,
        catalogue,
        count,
        cpu_only=profile.cpu_only,
        plan=plan,
    )
    if as_json:
        print_json(
            [
                {
                    "name": r.spec.name,
                    "installed": r.installed if known else None,  # unknown, not missing
                    "fits": r.fits,
                    "memory_bytes": r.memory_bytes,
                    "download_bytes": r.spec.download_bytes,
                    "quality": r.spec.quality,
                    "quality_basis": r.spec.quality_reason,
                    "decode_tps": None if r.speed is None else round(r.speed.decode_tps, 1),
                    "prompt_tps": None if r.speed is None else round(r.speed.prompt_tps, 1),
                    "job_seconds": None if r.job_seconds is None else round(r.job_seconds, 1),
                    "catalogue_as_of": catalogue.as_of,
                    "reason": r.reason,
                }
                for r in picks
            ]
        )
        return
    budget = profile.memory_budget_bytes
    echo(f"Budget: {human_bytes(budget) if budget else 'unknown'} ({profile.budget_reason})")
    echo(f"Catalogue: as of {catalogue.as_of or 'unknown'}")
    job = REFERENCE_JOB
    if plan.machine is None:
        echo("Speed: unknown for this server's hardware, so models are ranked by quality.")
    else:
        echo(
            f"Speed: {plan.machine.basis}. Reference job: {job.personas} personas from a "
            f"{job.transcript_tokens:,}-token transcript, budget "
            f"{plan.time_budget_s / 60:g} min (PERSONA_OLLAMA_JOB_MINUTES)."
        )
    if not picks:
        echo("No catalogue model fits this budget.", fg="red")
        return
    for rank, pick in enumerate(picks, 1):
        state = "installed" if pick.installed else f"persona-ollama pull {pick.spec.name}"
        if provider.api == "openai" and not pick.installed:
            state = "not served"
        echo(f"{rank}. {pick.spec.name}  ", nl=False, bold=True)
        echo(f"[{state}]", fg="green" if pick.installed else "cyan")
        echo(f"   {pick.reason}", dim=True)
    for model in installed:
        where = model.placement
        if where.remote:
            echo(
                f"Not recommended: {model.name} is installed but remote (runs on "
                f"{where.host_text}); prompts sent to it leave this machine.",
                fg="yellow",
            )
