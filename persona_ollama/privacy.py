"""Where prompts may go: local-only refusals and once-per-process warnings.

People choose a local provider so that research data stays on their machine. In local-only
mode anything that would take a prompt off it is refused before a byte is sent; otherwise
the same destinations are logged once per process (not once per provider: Persona builds
one per call).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable

from . import names
from .errors import LocalOnlyViolationError
from .settings import HOST_VAR, LOCAL_ONLY_VAR

if TYPE_CHECKING:
    from .endpoint import Endpoint
    from .model_info import Placement

Resolver = Callable[[str, int], Sequence[str]]


def warn_once(key: str, message: str) -> None:
    """Log ``message`` at WARNING the first time ``key`` is seen in this process (a warning
    about no one server; one about a server goes to its state's ``warnings``)."""
    from .server_state import SERVERS  # on the first warning, not with the entry point

    SERVERS.warnings.warn_once(key, message)


def reset_warnings() -> None:
    """Forget which warnings were given, about any server or none (for tests and
    long-running hosts)."""
    from .server_state import SERVERS

    SERVERS.forget_warnings()


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver (hosts file, then DNS) gives for ``host``."""
    import socket  # only local-only mode with a host name needs it: not on the import path

    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def on_this_machine(endpoint: Endpoint) -> bool:
    """True for a server on this machine: loopback (by address or a loopback name), or the
    machine's own host name. Such a server is never reached through a proxy."""
    if endpoint.is_loopback:
        return True
    import socket  # a system call, no lookup: uname's node name

    own = socket.gethostname().lower().rstrip(".")
    return bool(own) and (endpoint.pinned_name or endpoint.host).lower().rstrip(".") == own


def _loopback_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_server(
    endpoint: Endpoint, *, local_only: bool, resolve: Resolver | None = None
) -> Endpoint:
    """The endpoint to connect to; in local-only mode, refuse one that is not on this machine.

    Local-only trusts addresses, not spellings: a literal loopback address passes as it is;
    a name that claims loopback (``localhost``, ``*.localhost``, ``localhost.``) passes only
    if every address it resolves to is loopback, and the connection is then pinned to one of
    those addresses (the name is kept as the Host header), so a second resolver answer cannot
    redirect it. Any other name is refused without being looked up.
    """
    if not local_only:
        if endpoint.is_loopback and not _loopback_address(endpoint.host):
            _warn_if_elsewhere(endpoint, resolve or system_resolve)
        return endpoint
    if not endpoint.is_loopback:
        raise LocalOnlyViolationError(
            f"Local-only mode refuses the server at {endpoint}: it is not on this "
            "machine, so prompts would leave it.",
            hint=f"Point {HOST_VAR} at 127.0.0.1, or allow remote servers by unsetting "
            f"{LOCAL_ONLY_VAR} (local_only=False).",
            url=str(endpoint),
        )
    if _loopback_address(endpoint.host):
        return endpoint  # a literal address: nothing to resolve
    return _pin(endpoint, resolve or system_resolve)


def _warn_if_elsewhere(endpoint: Endpoint, resolve: Resolver) -> None:
    """Warn once per name when a loopback-looking name (``*.localhost``) resolves to an
    address that is not loopback: it is connected to directly, never through a proxy,
    and it is not this machine. (Local-only mode refuses it instead: see _pin.)"""
    from .server_state import SERVERS

    name = endpoint.host
    if not SERVERS.warnings.first(f"resolved:{name}"):
        return
    try:
        addresses = list(resolve(name, endpoint.port))
    except (OSError, UnicodeError):
        return  # connecting will say that the name does not resolve
    elsewhere = sorted({a for a in addresses if not _loopback_address(a)})
    if elsewhere:
        warn_once(
            f"elsewhere:{name}",
            f"The server name {name!r} looks like this machine but resolves to "
            f"{', '.join(elsewhere)}: prompts go there, directly. Use 127.0.0.1, or set "
            f"{LOCAL_ONLY_VAR}=1 to refuse such names.",
        )


def _pin(endpoint: Endpoint, resolve: Resolver) -> Endpoint:
    """``endpoint`` connecting to the loopback address its name resolves to, the name kept
    for the Host header; raises LocalOnlyViolationError when the name does not resolve, could
    lead elsewhere, or is https (its certificate is for the name)."""
    name = endpoint.host
    hint = (
        f"Use the address itself, e.g. {HOST_VAR}=127.0.0.1:{endpoint.port}, or unset "
        f"{LOCAL_ONLY_VAR} (local_only=False)."
    )
    try:
        addresses = list(resolve(name, endpoint.port))
    except (OSError, UnicodeError) as error:
        raise LocalOnlyViolationError(
            f"Local-only mode refuses the server at {endpoint}: the name {name!r} does not "
            f"resolve ({error}), so it cannot be checked to lead to this machine.",
            hint=hint,
            url=str(endpoint),
        ) from None
    elsewhere = sorted({a for a in addresses if not _loopback_address(a)})
    if not addresses or elsewhere:
        where = ", ".join(elsewhere) if elsewhere else "no address"
        raise LocalOnlyViolationError(
            f"Local-only mode refuses the server at {endpoint}: the name {name!r} resolves "
            f"to {where}, not only to this machine, so prompts could leave it.",
            hint=hint,
            url=str(endpoint),
        )
    if endpoint.scheme == "https":
        # The certificate is checked against the name, so the connection cannot be pinned to
        # the checked address without turning that check off.
        raise LocalOnlyViolationError(
            f"Local-only mode refuses the server at {endpoint}: an https name cannot be "
            "pinned to the loopback address it was checked to resolve to.",
            hint=f"Use https://127.0.0.1:{endpoint.port} (a certificate for that address), "
            "or plain http on loopback.",
            url=str(endpoint),
        )
    # A server listening on loopback by default listens on 127.0.0.1 more often than on ::1,
    # so an IPv4 answer goes first.
    address = sorted(addresses, key=lambda a: ":" in a)[0].split("%", 1)[0]
    netloc = f"[{address}]:{endpoint.port}" if ":" in address else f"{address}:{endpoint.port}"
    return dataclasses.replace(
        endpoint,
        host=address,
        base_url=f"{endpoint.scheme}://{netloc}{endpoint.path_prefix}",
        pinned_name=name,
    )


def cannot_tell(model: str, why: str, url: str, *, sent: bool = False) -> LocalOnlyViolationError:
    """Local-only mode's refusal when the server cannot say whether ``model`` runs on it;
    ``sent``: asked again after the request went, so the answer is what is refused."""
    hint = (
        "Retry once the server answers its model list (`persona-ollama doctor` checks it), "
        f"or unset {LOCAL_ONLY_VAR} (local_only=False) to skip the check."
    )
    if sent:
        return LocalOnlyViolationError(
            f"Local-only mode discarded the answer of '{model}': once the request was sent, "
            f"where the model runs could no longer be established ({why}), so the prompt may "
            "have left this machine.",
            hint=hint,
            url=url,
        )
    return LocalOnlyViolationError(
        f"Local-only mode refuses '{model}': where it runs could not be established ({why}), "
        "so it could run elsewhere and the prompt was not sent.",
        hint=hint,
        url=url,
    )


def forwarded_after_check(
    model: str, host: str, url: str, *, label: str
) -> LocalOnlyViolationError:
    """Local-only mode's refusal of an answer the server forwarded although the checks
    before sending found the model local: it was replaced in between. ``label``: how the
    backend names its server (its ``label``)."""
    return LocalOnlyViolationError(
        f"The {label} forwarded '{model}' to {host} although local-only mode had "
        "checked it: the model was replaced between that check and the request, so the "
        "prompt has left this machine. The answer was discarded.",
        hint="See what replaced it (`persona-ollama models` marks remote models) and remove "
        f"or rename it on the {label}.",
        url=url,
    )


def check_destination(
    model: str, where: Placement, endpoint: Endpoint, *, local_only: bool, label: str
) -> None:
    """Refuse (local-only) or warn once about a model or server that takes data elsewhere.

    ``where`` is the model's placement (facts.placement): a remote model is refused whatever
    its name, naming the host the server forwards to; in local-only mode, so is a model whose
    placement the server could not tell (fail closed). ``label``: how the backend names its
    server, for the messages.
    """
    if local_only and not where.known:
        raise cannot_tell(model, where.evidence, str(endpoint))
    if where.remote:
        if local_only:
            raise LocalOnlyViolationError(
                f"Local-only mode refuses '{model}': it runs on {where.host_text}, not on "
                f"the {label} ({where.evidence}), so the prompt would leave this machine.",
                hint="Pick a model that runs locally (`persona-ollama models` marks remote "
                f"ones), or unset {LOCAL_ONLY_VAR} (local_only=False) to allow it.",
                url=str(endpoint),
            )
        warn_once(
            f"remote:{names.canonical(model)}",
            f"'{model}' runs on {where.host_text} ({where.evidence}): the {label} sends its "
            f"prompts there, off this machine. Set {LOCAL_ONLY_VAR}=1 to refuse "
            "such models.",
        )
    if not endpoint.is_loopback and endpoint.scheme == "http":
        warn_once(
            f"http:{endpoint}",
            f"Prompts go to {endpoint} over plain http, unencrypted and off this machine. "
            f"Use https through a reverse proxy, or {LOCAL_ONLY_VAR}=1 to refuse "
            "remote servers.",
        )
