"""`persona-ollama doctor`: is everything ready to generate, and if not, what to do next."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from ..errors import LocalOnlyViolationError, ModelNotPulledError, OllamaError
from ..settings import MODEL_VAR
from .app import common_options, echo, human_bytes, json_option, main, make_provider, print_json

if TYPE_CHECKING:
    from ..model_info import ModelInfo
    from ..provider import OllamaProvider

# Older servers ignore /api/chat's truncate field, so a long prompt may be cut silently
# (docs/reference/ollama-protocol.md, "Context and truncation").
MINIMUM_VERSION = (0, 12, 6)


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts = []
    for piece in text.split("-")[0].split(".")[:3]:
        if not piece.isdigit():
            return None
        parts.append(int(piece))
    return tuple(parts)


def collect(host: str | None) -> dict[str, Any]:
    """Everything doctor reports, as data (the --json output)."""
    from ..choosing.hardware import probe

    provider = make_provider(host)
    endpoint = provider.endpoint
    report: dict[str, Any] = {"server": provider.health(), "warnings": [], "next_step": None}
    report["server"]["source"] = endpoint.source
    warnings: list[str] = report["warnings"]
    if endpoint.bind_address_mapped:
        warnings.append(
            f"{endpoint.source} is a bind address ({endpoint.raw}); connecting to "
            f"{endpoint.host} instead. Set it to 127.0.0.1:{endpoint.port} to silence this."
        )
    if not endpoint.is_loopback and endpoint.scheme == "http":
        warnings.append(
            f"The server {endpoint} is not on this machine and is reached over plain http: "
            "prompts travel unencrypted. Use https through a reverse proxy."
        )
    profile = probe(server_is_local=endpoint.is_loopback)
    report["hardware"] = asdict(profile)
    if not endpoint.is_loopback:
        warnings.append(
            "The server is on another machine, so this machine's hardware says nothing about "
            "it: set PERSONA_OLLAMA_MEMORY_GB to the server's memory for model advice."
        )
    listed: list[ModelInfo] = []
    if report["server"]["reachable"]:
        listed = provider.installed_models()
        version = _version_tuple(report["server"]["version"])
        if version is not None and version < MINIMUM_VERSION:
            warnings.append(
                f"Ollama {report['server']['version']} is old: it may cut long prompts "
                "silently. Update to 0.12.6 or newer (https://ollama.com/download)."
            )
    report["models"] = [
        {
            "name": model.name,
            "size": model.size_bytes,
            "capabilities": list(model.capabilities) or None,  # None: the server does not say
            "remote": model.placement.remote,
            "remote_host": model.placement.host,
        }
        for model in listed
    ]
    report["loaded"] = loaded_section(provider, listed) if report["server"]["reachable"] else []
    warnings.extend(entry["warning"] for entry in report["loaded"] if entry["warning"])
    report["measured"] = measured_section(provider, listed)
    remote = [model for model in listed if model.placement.remote]
    if remote:
        warnings.append(
            "Remote models send prompts off this machine: "
            + ", ".join(f"{m.name} (to {m.placement.host_text})" for m in remote)
            + ". They are never chosen by default; set PERSONA_OLLAMA_LOCAL_ONLY=1 to refuse "
            "them even when named."
        )
        if not any(m.can_chat and not m.placement.remote for m in listed):
            warnings.append(
                "The only installed chat models are remote: pull a local one "
                "(`persona-ollama recommend` suggests one that fits)."
            )
    selection = provider.selection()
    configured = os.environ.get(MODEL_VAR)
    default: dict[str, Any] = {
        "model": provider.default_model,
        "installed": selection.installed,
        "reasons": list(selection.reasons),
        "warnings": list(selection.warnings),
        "source": MODEL_VAR if configured else "selection",
    }
    default.update(_speed_of(provider.default_model, selection))
    report["default_model"] = default
    if not report["server"]["reachable"]:
        report["next_step"] = report["server"]["hint"]
        # Which models the server has is unknown: no pull command for a server that does not
        # answer.
        default["installed"] = None
        if configured:
            default["reasons"] = ["Set by PERSONA_OLLAMA_MODEL."]
            default["warnings"] = []
        else:
            # The selection knew it had no list (choose_default's listed=False), so none of
            # its reasons says the server has no model; say what is known.
            default["reasons"].append(
                "The server did not answer, so which models it has is unknown; with none "
                f"installed, {provider.default_model} is the catalogue's best fit for this "
                "machine."
            )
    elif configured:
        # The selection's reasons are about a model that is not used: say why this one is.
        default["reasons"] = ["Set by PERSONA_OLLAMA_MODEL."]
        default["warnings"] = []
        try:
            info = provider.model_info(provider.default_model)
        except LocalOnlyViolationError as error:  # a cloud name: refused before any request
            from ..model_info import placement

            default["installed"] = False  # not asked: the question itself would be forwarded
            default["remote"], default["remote_host"] = True, placement(default["model"]).host
            warnings.append(error.message)
            report["next_step"] = "Set PERSONA_OLLAMA_MODEL to a local model."
        except ModelNotPulledError as error:
            default["installed"] = False
            report["next_step"] = error.hint or error.message
        except OllamaError as error:
            # Any other failure says nothing about whether the model is there; it is not Ready.
            default["installed"] = None
            warnings.append(error.message)
            report["next_step"] = error.hint or error.message
        else:
            default["installed"] = True
            if info.placement.remote:
                default["remote"], default["remote_host"] = True, info.placement.host
            report["next_step"] = _unusable(provider.default_model, info)
    elif not selection.installed and provider.api == "openai":
        # No pulling in /v1 mode: the server loads its models itself.
        report["next_step"] = (
            "Start the server with a chat model (it serves none), or set "
            "PERSONA_OLLAMA_MODEL to one it serves."
        )
    elif not selection.installed:
        report["next_step"] = f"persona-ollama pull {provider.default_model}"
    # Otherwise the selection chose it: an installed, local chat model (it skips the others).
    report["ready"] = report["next_step"] is None
    report["host"] = host_section()
    report["plugins"] = plugin_section()
    warnings.extend(
        f"{problem}. Update or uninstall the package that provides it."
        for problem in report["plugins"]["problems"]
    )
    return report


def loaded_section(provider: OllamaProvider, listed: list[ModelInfo]) -> list[dict[str, Any]]:
    """The models in the server's memory with the share of each in GPU memory (empty when the
    server does not say), and the partial-offload warning of any split between GPU and CPU."""
    from ..offload import partial_offload_warning

    loaded_models = getattr(provider.backend, "loaded_models", None)
    if loaded_models is None:
        return []
    try:
        loaded = loaded_models()
    except OllamaError:
        return []  # the rest of the report says what is wrong with the server
    return [
        {
            "name": model.name,
            "size": model.size_bytes,
            "gpu_bytes": model.gpu_bytes,
            "gpu_share": None if model.gpu_share is None else round(model.gpu_share, 3),
            "context_length": model.window,
            # What selection estimated for this model at this window, beside what it took.
            "estimated_bytes": _estimate(model.name, model.window, listed),
            "warning": partial_offload_warning(model, listed, server=str(provider.endpoint)),
        }
        for model in loaded
    ]


def _estimate(name: str, window: int | None, listed: list[ModelInfo]) -> int | None:
    """Selection's memory estimate of the installed model ``name`` at ``window``."""
    from ..choosing.catalogue import load_catalogue
    from ..choosing.selection import estimate_memory_bytes
    from ..errors import ConfigurationError
    from ..names import canonical

    entry = next((m for m in listed if canonical(m.name) == canonical(name)), None)
    if entry is None or window is None:
        return None
    try:
        return estimate_memory_bytes(entry, window, load_catalogue())
    except ConfigurationError:
        return None  # a bad catalogue file is reported where it is read


def measured_section(provider: OllamaProvider, listed: list[ModelInfo]) -> dict[str, Any]:
    """Installed model -> its measured speeds on this server (timings.py), where measured."""
    measured: dict[str, Any] = {}
    for model in listed:
        speeds = provider.measured(model)
        if speeds is not None:
            measured[model.name] = speeds.as_dict()
    return measured


def render_loaded(loaded: list[dict[str, Any]], measured: dict[str, Any]) -> None:
    """The Loaded line (models in memory, GPU share) and the Measured line, when there are any."""
    if loaded:
        shown = []
        for entry in loaded:
            share = entry["gpu_share"]
            where = "?" if share is None else f"{share:.0%} on the GPU"
            shown.append(f"{entry['name']} ({human_bytes(entry['size'])}, {where})")
        echo("Loaded     " + ", ".join(shown))
    if measured:
        speeds = [_measured(name, entry) for name, entry in measured.items()]
        echo("Measured   " + "; ".join(speeds))


def _measured(name: str, entry: dict[str, Any]) -> str:
    """One model's measured speeds, e.g. qwen3:8b 900 prompt / 40 answer tokens/s; a speed not
    measured (prompts too short to time, a server that states no prompt time) is said so."""
    prompt, answer = entry["prompt_tokens_per_second"], entry["answer_tokens_per_second"]
    if prompt is not None and answer is not None:
        return f"{name} {_rate(prompt)} prompt / {_rate(answer)} answer tokens/s"
    if answer is not None:
        return f"{name} {_rate(answer)} answer tokens/s (prompt speed not measured)"
    if prompt is not None:
        return f"{name} {_rate(prompt)} prompt tokens/s (answer speed not measured)"
    return f"{name} (no speed measured yet)"


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _speed_of(model: str, selection: Any) -> dict[str, Any]:
    """The speed model's figures for the default model, as the selection weighed it: decode
    tokens/s, the reference job's seconds, memory at the planned context (None: unknown)."""
    from ..names import canonical

    weighed = next(
        (c for c in selection.candidates if canonical(c.name) == canonical(model or "")), None
    )
    speed = None if weighed is None else weighed.speed
    return {
        "memory_bytes": None if weighed is None else weighed.memory_bytes,
        "decode_tps": None if speed is None else round(speed.decode_tps, 1),
        "job_seconds": None
        if weighed is None or weighed.job_seconds is None
        else round(weighed.job_seconds, 1),
        "speed_basis": None if speed is None else speed.basis,
    }


def plugin_section() -> dict[str, Any]:
    """Third-party plugins (entry-point group ``persona_ollama``): the ones loaded, with the
    distribution that provides each, and why any failed to load (such a plugin is skipped)."""
    from ..choosing import plugins as _plugins

    loaded = [
        {"name": name, "distribution": origin}
        for name, origin in _plugins.plugins()
        if not name.startswith(_plugins.BUILTIN_PREFIX)
    ]
    return {"loaded": loaded, "problems": list(_plugins.load_problems())}


def render_plugins(plugins: dict[str, Any]) -> None:
    """The Plugins line, only when a third-party plugin is installed (loaded or not)."""
    if not plugins["loaded"] and not plugins["problems"]:
        return
    names = ", ".join(
        f"{p['name']} ({p['distribution']})" if p["distribution"] else p["name"]
        for p in plugins["loaded"]
    )
    line = names or "none loaded"
    if plugins["problems"]:
        line += f"; {len(plugins['problems'])} failed to load (see the warnings)"
    echo(f"Plugins    {line}", fg="yellow" if plugins["problems"] else None)


def _unusable(model: str, info: ModelInfo) -> str | None:
    """Why ``model`` will not generate personas here, as the next step; None when it will.

    Ready means a local model that can chat will answer: an embedding-only model cannot write
    text, and a cloud model sends the data to ollama.com.
    """
    if not info.can_chat:
        return (
            f"{model} is an embedding model: it cannot write personas. Set "
            "PERSONA_OLLAMA_MODEL to a chat model (`persona-ollama models` lists the installed "
            "ones) or unset it to let the plugin choose."
        )
    if info.placement.remote:
        return (
            f"{model} is a remote model: it runs on {info.placement.host_text}, so prompts "
            "would leave this machine. Set PERSONA_OLLAMA_MODEL to a local model "
            "(`persona-ollama models` lists them)."
        )
    return None


def host_section() -> dict[str, Any]:
    """The host: is Persona installed here, its version, and which provider its
    `--provider ollama` resolves to (this plugin or its built-in one), with the next step.
    Read from metadata and source text: Persona is not imported."""
    from .._host import detect_host

    return detect_host().as_dict()


def render_host(host: dict[str, Any]) -> None:
    """The Persona line, then what to do when `--provider ollama` does not mean this plugin."""
    from .._host import PLUGIN, HostInfo

    resolution = host["provider_for_ollama"]
    info = HostInfo(host["installed"], host["version"], resolution, host["factory"], host["python"])
    echo(f"Persona    {info.describe()}", fg="green" if resolution == PLUGIN else "yellow")
    if resolution != PLUGIN:
        echo(f"           - {info.next_step}")


def _v1(server: dict[str, Any]) -> bool:
    """Whether the version names the server rather than being an Ollama release: in /v1 mode
    it is the kind of server (:meth:`OpenAIBackend.version`, e.g. "llama.cpp server
    (OpenAI-compatible API)"), and a backend for another server (docs/writing-a-provider.md)
    names its own ("Acme 2.1.0")."""
    version = str(server.get("version") or "")
    return not (version[:1].isdigit() or version in ("", "unknown"))


def render(report: dict[str, Any]) -> None:
    """Print the report of :func:`collect` for a person: server, models, hardware, plugins,
    default model, warnings, the host, then "Ready" or the one next step."""
    server = report["server"]
    if server["reachable"]:
        echo(f"Server     {server['url']}  ", nl=False)
        # In /v1 mode the version is the kind of server ("llama.cpp server (OpenAI-...)").
        label = server["version"] if _v1(server) else f"Ollama {server['version']}"
        echo(f"reachable ({label}, {server['latency_ms']} ms)", fg="green")
    else:
        echo(f"Server     {server['url']}  ", nl=False)
        echo(f"not reachable: {server['error']}", fg="red")
    if server["reachable"]:
        names = ", ".join(
            str(m["name"]) + (f" (remote: {m['remote_host'] or '?'})" if m.get("remote") else "")
            for m in report["models"]
        )
        names = names or "none"
        have = "served" if _v1(server) else "installed"
        echo(f"Models     {len(report['models'])} {have}: {names}")
    hw = report["hardware"]
    gpus = ", ".join(f"{g['name']} ({human_bytes(g['memory_total_bytes'])})" for g in hw["gpus"])
    echo(
        f"Hardware   {human_bytes(hw['total_memory_bytes'])} RAM "
        f"({human_bytes(hw['available_memory_bytes'])} free), {hw['cpu_count']} CPUs "
        f"{hw['architecture']}, " + (gpus or "no GPU found")
    )
    echo(f"Budget     {hw['budget_reason']}")
    render_loaded(report.get("loaded", []), report.get("measured", {}))
    render_plugins(report["plugins"])
    default = report["default_model"]
    have = "served" if _v1(server) else "installed"
    state = {True: have, False: f"not {have}"}.get(
        default["installed"], "unknown: the server did not answer"
    )
    if default.get("remote"):
        state += f", remote: {default.get('remote_host') or '?'}"
    echo(f"Default    {default['model']} ({state})")
    if default.get("job_seconds") is not None:
        from ..choosing.speed import format_duration

        echo(
            f"Speed      ~{default['decode_tps']} tokens/s, reference job "
            f"~{format_duration(default['job_seconds'])}, "
            f"{human_bytes(default['memory_bytes'])} at the planned context "
            "(docs/models-and-hardware.md)"
        )
    for reason in default["reasons"]:
        echo(f"           - {reason}", dim=True)
    for warning in [*default["warnings"], *report["warnings"]]:
        echo(f"Warning    {warning}", fg="yellow")
    render_host(report["host"])
    if report["ready"]:
        echo(f"Ready: generation with {report['default_model']['model']} will work.", fg="green")
    else:
        echo(f"Next step  {report['next_step']}", fg="red", bold=True)


@main.command()
@json_option
@common_options
def doctor(as_json: bool, host: str | None) -> None:
    """Check the server, models, hardware and default model; say what to do next.

    Exits 0 when generation will work, 1 when it will not.

    \b
    Examples:
      persona-ollama doctor
      persona-ollama doctor --host gpu-box:11434 --json
    """
    report = collect(host)
    if as_json:
        print_json(report)
    else:
        render(report)
    if not report["ready"]:
        raise click.exceptions.Exit(1)
