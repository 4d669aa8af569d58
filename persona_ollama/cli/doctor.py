"""`persona-ollama doctor`: is everything ready to generate, and if not, what to do next."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import click

from ..errors import OllamaError
from ..names import is_cloud
from . import common_options, echo, human_bytes, json_option, main, make_provider, print_json

# Older servers lack /api/chat's truncate field (so a long prompt may be cut silently) and
# report no context length in /api/tags.
MINIMUM_VERSION = (0, 12, 0)


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
    from ..hardware import probe

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
    installed: list[dict[str, Any]] = []
    if report["server"]["reachable"]:
        installed = provider.installed_tags()
        version = _version_tuple(report["server"]["version"])
        if version is not None and version < MINIMUM_VERSION:
            warnings.append(
                f"Ollama {report['server']['version']} is old: it may cut long prompts "
                "silently. Update to 0.12 or newer (https://ollama.com/download)."
            )
    report["models"] = [
        {"name": m.get("name"), "size": m.get("size"), "capabilities": m.get("capabilities")}
        for m in installed
    ]
    cloud = [str(m.get("name")) for m in installed if is_cloud(str(m.get("name", "")))]
    if cloud:
        warnings.append(
            "Cloud models send prompts to ollama.com: " + ", ".join(cloud) + ". Set "
            "PERSONA_OLLAMA_LOCAL_ONLY=1 to refuse them."
        )
    selection = provider.selection()
    configured = os.environ.get("PERSONA_OLLAMA_MODEL")
    default: dict[str, Any] = {
        "model": provider.default_model,
        "installed": selection.installed,
        "reasons": list(selection.reasons),
        "warnings": list(selection.warnings),
        "source": "PERSONA_OLLAMA_MODEL" if configured else "selection",
    }
    report["default_model"] = default
    if not report["server"]["reachable"]:
        report["next_step"] = report["server"]["hint"]
    elif configured:
        # The selection's reasons are about a model that is not used: say why this one is.
        default["reasons"] = ["Set by PERSONA_OLLAMA_MODEL."]
        default["warnings"] = []
        try:
            provider.model_info(provider.default_model)
        except OllamaError as error:
            default["installed"] = False
            report["next_step"] = error.hint
        else:
            default["installed"] = True
    elif not selection.installed and provider.api == "openai":
        # No pulling in /v1 mode: the server loads its models itself.
        report["next_step"] = (
            "Start the server with a model (it serves none that fits), or set "
            "PERSONA_OLLAMA_MODEL to one it serves."
        )
    elif not selection.installed:
        report["next_step"] = f"ollama pull {provider.default_model}"
    report["ready"] = report["next_step"] is None
    return report


def _v1(server: dict[str, Any]) -> bool:
    """Whether the server answered in /v1 mode: its version is then the kind of server
    (:meth:`OpenAIClient.version`), e.g. "llama.cpp server (OpenAI-compatible API)"."""
    return "OpenAI-compatible" in str(server.get("version") or "")


def render(report: dict[str, Any]) -> None:
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
        names = ", ".join(str(m["name"]) for m in report["models"]) or "none"
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
    default = report["default_model"]
    have = "served" if _v1(server) else "installed"
    state = have if default["installed"] else f"not {have}"
    echo(f"Default    {default['model']} ({state})")
    for reason in default["reasons"]:
        echo(f"           - {reason}", dim=True)
    for warning in [*default["warnings"], *report["warnings"]]:
        echo(f"Warning    {warning}", fg="yellow")
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
