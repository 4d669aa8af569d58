"""The Host check of an Ollama server listening on loopback (:func:`host_is_local`).

server/routes.go allowedHostsMiddleware, the same from v0.11 to v0.33: a server on loopback
answers 403, empty, to a Host header it refuses (the core's ``FakeServer`` applies the check).
"""

from __future__ import annotations

import ipaddress
import socket

__all__ = [
    "host_is_local",
]


# The Host check --------------------------------------------------------------------------------
# Go's netip Addr.IsPrivate: RFC 1918 and RFC 4193 only (Python's is_private has many more).
_GO_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def _go_host(header: str) -> str:
    """net.SplitHostPort's host, or the whole value when it fails (a missing port included)."""
    if header.startswith("["):
        end = header.find("]")
        if end > 0 and header[end + 1 : end + 2] == ":":
            return header[1:end]
        return header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


def host_is_local(header: str) -> bool:
    """allowedHost and the IP checks of allowedHostsMiddleware, for a Host header value.

    isLocalIP (an address of one of the machine's interfaces) is not emulated."""
    host = _go_host(header).lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        mapped = getattr(address, "ipv4_mapped", None)  # netip unmaps before these checks
        plain = mapped or address
        private = any(plain.version == net.version and plain in net for net in _GO_PRIVATE)
        return plain.is_loopback or private or address.is_unspecified
    if host in ("", "localhost") or host == socket.gethostname().lower():
        return True
    return host.endswith((".localhost", ".local", ".internal"))
