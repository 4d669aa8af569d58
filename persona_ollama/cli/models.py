"""`persona-ollama models` and `recommend`: what is installed, what fits, what to pull."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .app import common_options, echo, human_bytes, json_option, main, make_provider, print_json

if TYPE_CHECKING:
    from ..model_info import ModelInfo
    from ..provider import OllamaProvider
    from ..timings import TimingStore

COLUMNS = ("NAME", "SIZE", "PARAMS", "QUANT", "CONTEXT", "FITS", "MEASURED", "DEFAULT")


def _fits_text(fits: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[fits]


def model_rows(provider: OllamaProvider, include_catalogue: bool) -> list[dict[str, Any]]:
    """One row per installed chat model (then per catalogue model not installed, if asked)."""
    from ..choosing.catalogue import load_catalogue
    from ..choosing.hardware import probe
    from ..choosing.selection import estimate_memory_bytes, fits
    from ..names import canonical

    catalogue = load_catalogue()
    profile = probe(server_is_local=provider.endpoint.is_loopback)
    budget = profile.memory_budget_bytes
    default = provider.default_model
    store = provider.timings() if provider.records_timings else None
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
                "measured": _measured(store, provider, model),
            }
        )
    if include_catalogue:
        # What could be pulled: what fits first, best first.
        ranked = sorted(
            catalogue, key=lambda s: (fits(s.memory_bytes, budget) is False, -s.quality, s.name)
        )
        for spec in ranked:
            if spec.embedding or canonical(spec.name) in seen:
                continue
            memory = spec.memory_bytes
            rows.append(
                {
                    "name": spec.name,
                    "installed": False,
                    "size_bytes": spec.download_bytes,
                    "parameters": f"{spec.parameters_b:g}B",
                    "quantization": spec.quantization,
                    "context_length": spec.context_length,
                    "memory_bytes": memory,
                    "fits": fits(memory, budget),
                    "default": canonical(spec.name) == canonical(default),
                    # A /v1 server cannot pull: it is started with its models.
                    "pull": f"persona-ollama pull {spec.name}"
                    if provider.api != "openai"
                    else None,
                    "remote": False,
                    "remote_host": None,
                    "measured": None,
                }
            )
    return rows


def _measured(store: TimingStore | None, provider: OllamaProvider, model: ModelInfo) -> Any:
    """The model's measured speeds on this server (timings.py), None when never measured."""
    if store is None:
        return None
    speeds = store.speeds(str(provider.endpoint), model.name, model.digest)
    return speeds.as_dict() if speeds is not None else None


def _measured_text(measured: dict[str, Any] | None) -> str:
    rate = measured and measured["answer_tokens_per_second"]
    return f"{rate:.0f} tok/s" if rate else "-"


def render_table(rows: list[dict[str, Any]]) -> None:
    """Print ``rows`` as an aligned table: models not installed dimmed with their pull
    command, models too large for this machine in red, remote ones with their host; the
    MEASURED column only once a model was measured on this server."""
    measured = any(row.get("measured") for row in rows)
    columns = COLUMNS if measured else tuple(c for c in COLUMNS if c != "MEASURED")
    cells: list[tuple[str, ...]] = [
        (
            row["name"],
            human_bytes(row["size_bytes"]),
            row["parameters"] or "?",
            row["quantization"] or "?",
            str(row["context_length"] or "?"),
            "-" if row.get("remote") else _fits_text(row["fits"]),
            _measured_text(row.get("measured")),
            "*" if row["default"] else "",
        )
        for row in rows
    ]
    if not measured:
        cells = [line[:6] + line[7:] for line in cells]
    widths = [max(len(c[i]) for c in [columns, *cells]) for i in range(len(columns))]
    echo("  ".join(h.ljust(w) for h, w in zip(columns, widths)).rstrip(), bold=True)
    for row, line in zip(rows, cells):
        text = "  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
        if row["pull"]:
            text += f"  ({row['pull']})"
        if row.get("remote"):
            text += f"  (remote: runs on {row['remote_host'] or 'a host the server does not name'})"
        echo(text, dim=not row["installed"], fg="red" if row["fits"] is False else None)


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
    from ..choosing.selection import recommend as recommend_models
    from ..errors import OllamaError

    provider = make_provider(host)
    known = True  # whether the server said which models it has
    try:
        installed = provider.installed_models()
    except OllamaError as error:
        installed, known = [], False
        # On stderr, so --json's standard output stays one JSON document.
        echo(f"(server not reachable, showing the catalogue only: {error.message})", err=True)
    profile = probe(server_is_local=provider.endpoint.is_loopback)
    picks = recommend_models(
        installed,
        profile.memory_budget_bytes,
        load_catalogue(),
        count,
        cpu_only=profile.cpu_only,
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
                    "reason": r.reason,
                }
                for r in picks
            ]
        )
        return
    budget = profile.memory_budget_bytes
    echo(f"Budget: {human_bytes(budget) if budget else 'unknown'} ({profile.budget_reason})")
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
