"""Where the server is: an explicit URL, or the variables the backend declares -> Endpoint.

The backend declares its variables, default port, name in messages and special spellings
(:class:`~persona_ollama.backends.rules.AddressRules`); without one, the default API's backend
rules. Values are ``host[:port]`` or ``http(s)://[user:password@]host[:port][/path]``, with the
default scheme http; a bind address (``0.0.0.0``, ``[::]``, ``:port``) is turned into loopback
for connecting, and a value a lenient server would quietly accept or repair (an unknown scheme,
a bad port) is refused with a :class:`~persona_ollama.errors.ConfigurationError` that names the
setting and shows a good value.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from .backends.registry import declared
from .backends.rules import AddressRules
from .errors import ConfigurationError
from .settings import DEFAULT_API

# The default API's rules, used when a caller names none; its host and port stay importable.
DEFAULT_RULES = declared(DEFAULT_API).address
DEFAULT_HOST = DEFAULT_RULES.default_host
DEFAULT_PORT = DEFAULT_RULES.default_port

_SCHEME_PORTS = {"http": 80, "https": 443}
_SCHEME_NAME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# "http//host", "http:/host", "http:\\host": a URL whose "://" lost a character.
_BROKEN_SEPARATOR = re.compile(r"(?i)https?(?://|:/|:\\)")
_HOST_PUNCTUATION = frozenset("-._")
# RFC 3986 path characters, less "'" (it would be trimmed as a quote when re-read) and "@"
# (it would be read as the end of credentials).
_PATH_PUNCTUATION = frozenset("-._~/%!$&()*+,;=:")


@dataclass(frozen=True)
class Endpoint:
    """A parsed server address; ``str()`` and ``repr()`` never show credentials."""

    base_url: str
    scheme: str
    host: str
    port: int
    path_prefix: str
    auth: tuple[str, str] | None = field(repr=False)
    source: str
    raw: str
    bind_address_mapped: bool
    is_loopback: bool
    # Local-only mode connects to the loopback address this name was checked to resolve to
    # (privacy.check_server) and sends the name as the Host header.
    pinned_name: str | None = None

    @property
    def server_key(self) -> str:
        """The server this address names, one spelling for all of its spellings: the base
        URL with the host name in lower case (RFC 3986 3.2.2: its case is no part of it) and
        an IPv6 address in its compressed form (``[0:0::1]`` is ``[::1]``). What the process
        knows of a server is kept under it (server_state.py); the address shown and sent
        stays as written."""
        host = self.host.lower() if self.host.isascii() else self.host
        address = _ip(host)
        if isinstance(address, ipaddress.IPv6Address):
            # A mapped IPv4 address keeps its dotted quad (Python before 3.13 writes hex).
            mapped = address.ipv4_mapped
            host = str(address) if mapped is None else f"::ffff:{mapped}"
        netloc = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        return f"{self.scheme}://{netloc}{self.path_prefix}"

    def url(self, path: str) -> str:
        """``path`` (e.g. ``"/v1/models"``) joined onto the base URL, keeping any path prefix."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def __str__(self) -> str:
        return self.base_url


class _Invalid(Exception):
    """Internal: why a value was refused; turned into a ConfigurationError by parse_host."""


def parse_host(
    value: str, *, source: str = "argument", rules: AddressRules = DEFAULT_RULES
) -> Endpoint:
    """Parse ``value`` with the backend's ``rules``; ``source`` names the setting in errors.

    Raises ConfigurationError for anything that is not ``host[:port]`` or
    ``http(s)://[user:password@]host[:port][/path]``.
    """
    try:
        return _parse(value, source, rules)
    except _Invalid as invalid:
        raise _configuration_error(value, source, str(invalid), rules) from None


def resolve_endpoint(
    base_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    rules: AddressRules = DEFAULT_RULES,
) -> Endpoint:
    """The endpoint to use: ``base_url`` > the ``rules``' variables in order > the default.

    Empty or blank values count as unset. ``environ`` defaults to ``os.environ``.
    """
    if base_url is not None and _trim(base_url):
        return parse_host(base_url, source="argument", rules=rules)
    env = os.environ if environ is None else environ
    for name in rules.variables:
        value = env.get(name)
        if value is not None and _trim(value):
            return parse_host(value, source=name, rules=rules)
    host, port = rules.default_host, rules.default_port
    return _endpoint("http", host, port, "", None, "default", "", mapped=False)


def v1_endpoint(endpoint: Endpoint, *, v1: bool) -> Endpoint:
    """``endpoint`` with its path ending in one ``/v1`` (``v1=True``) or with that ``/v1`` cut.

    OpenAI-compatible servers give their address as ``http://host:8000/v1`` and users paste
    it with or without the suffix; both mean the same server.
    """
    prefix = endpoint.path_prefix
    if prefix.endswith("/v1") == v1:
        return endpoint
    root = endpoint.base_url[: len(endpoint.base_url) - len(prefix)]
    prefix = prefix + "/v1" if v1 else prefix[: -len("/v1")]
    return replace(endpoint, base_url=root + prefix, path_prefix=prefix)


def _trim(value: str) -> str:
    # Servers' own parsers trim spaces, then quotes; the second strip forgives "' host '" too.
    return value.strip().strip("\"'").strip()


def _parse(value: str, source: str, rules: AddressRules) -> Endpoint:
    """``value`` read with ``rules`` (default scheme http, the rules' default port; a bind
    address mapped to loopback); raises _Invalid saying what is wrong."""
    text = _trim(value)
    if not text:
        raise _Invalid("it is empty")
    text = rules.special.get(text, text)
    default_host = rules.default_host

    separator = text.find("://")
    at = text.rfind("@")
    if 0 <= at < separator:
        raise _Invalid("credentials must come after the scheme, e.g. http://user:password@host")
    if separator < 0:
        if _BROKEN_SEPARATOR.match(text):
            raise _Invalid("the scheme separator is malformed; write http:// or https://")
        scheme, rest, default_port = "http", text, rules.default_port
    else:
        written, rest = text[:separator], text[separator + 3 :]
        scheme = written.lower()
        if scheme not in _SCHEME_PORTS:
            raise _Invalid(_scheme_problem(scheme))
        # Some servers pick port 80/443 only for a scheme written exactly "http"/"https"
        # (AddressRules.exact_scheme_port); their clients then lowercase the scheme.
        exact = written == scheme or not rules.exact_scheme_port
        default_port = _SCHEME_PORTS[scheme] if exact else rules.default_port

    auth: tuple[str, str] | None = None
    at = rest.rfind("@")  # the last one: an unencoded "@" in a password is forgiven
    if at >= 0:
        user, _, password = rest[:at].partition(":")
        if user or password:
            auth = (unquote(user), unquote(password))
            _check_latin1(auth)
        rest = rest[at + 1 :]
    if "?" in rest or "#" in rest:
        raise _Invalid(
            "a query string or fragment ('?' or '#') cannot be joined with API paths; "
            "give only scheme, host, port and path"
        )

    hostport, slash, path = rest.partition("/")
    host, port_text = _split_host_port(hostport, rules.default_port)
    port = default_port if port_text is None else _port(port_text)
    mapped = False
    if not host:
        if port_text is None:
            raise _Invalid("the host is missing")
        host, mapped = default_host, True  # ":1234" binds every interface
    elif ":" not in host:
        _check_host_name(host)
        host = _canonical_name(host)
    address = _ip(host)
    if address is not None and address.is_unspecified:
        host, mapped = ("::1" if address.version == 6 else default_host), True
    prefix = _path_prefix(slash + path)
    return _endpoint(scheme, host, port, prefix, auth, source, _mask(value), mapped=mapped)


def _scheme_problem(scheme: str) -> str:
    if not scheme:
        return "nothing comes before '://'"
    if _SCHEME_NAME.fullmatch(scheme):
        return f"unsupported scheme {scheme!r} (only http and https are supported)"
    return "the scheme is malformed (only http and https are supported)"


def _split_host_port(hostport: str, default_port: int) -> tuple[str, str | None]:
    """``host`` and the port text (None when no port is written); IPv6 checked here."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _Invalid("'[' is not closed by ']'")
        host, after = hostport[1:end], hostport[end + 1 :]
        _check_ipv6(host)
        if not after:
            return host, None
        if not after.startswith(":"):
            raise _Invalid(f"unexpected {after!r} after the IPv6 address")
        return host, after[1:]
    if hostport.count(":") > 1:  # a bare IPv6 address, which cannot carry a port
        _check_ipv6(hostport, bare_port=default_port)
        return hostport, None
    host, colon, port_text = hostport.partition(":")
    return host, (port_text if colon else None)


def _check_ipv6(host: str, *, bare_port: int | None = None) -> None:
    """Refuse ``host`` unless it is an IPv6 address; ``bare_port`` (the default port) is
    given for an address written without brackets, for the example in the message."""
    if "%" in host:
        raise _Invalid("IPv6 zone identifiers ('%') are not supported")
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        if bare_port is not None:
            raise _Invalid(
                f"{host!r} is not an IPv6 address; an IPv6 address with a port needs "
                f"brackets, e.g. [fe80::1]:{bare_port}"
            ) from None
        raise _Invalid(f"[{host}] is not an IPv6 address") from None


def _check_latin1(auth: tuple[str, str]) -> None:
    """HTTP basic auth carries the user name and password in Latin-1 (as requests sends
    them); anything else cannot be sent. The value itself is never shown."""
    for part, what in zip(auth, ("user name", "password")):
        try:
            part.encode("latin-1")
        except UnicodeEncodeError:
            raise _Invalid(
                f"the {what} holds a character outside Latin-1, which HTTP basic auth cannot "
                "carry (é is fine, € or 密 are not); change it on the proxy, or use an API key "
                "(PERSONA_OLLAMA_API_KEY) instead"
            ) from None


# Names that mean this machine by convention (RFC 6761, and the hosts files of Linux
# distributions); in local-only mode they are still resolved and checked (privacy.py).
_LOOPBACK_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6"}
    | {"ip6-localhost", "ip6-loopback"}
)
_NUMERIC = re.compile(r"[0-9][0-9a-fA-FxX.]*")


def _canonical_name(host: str) -> str:
    """``host`` as the system would connect to it: an IPv4 address in a short or trailing-dot
    spelling (``127.1``, ``0x7f.1``, ``127.0.0.1.``) becomes its dotted quad, and a localhost
    name loses its trailing dot (``localhost.``: hosts files and servers' Host checks know
    only the plain name)."""
    bare = host[:-1] if host.endswith(".") else host
    if _NUMERIC.fullmatch(bare):
        import socket  # only for such spellings: not on the import path

        try:
            return socket.inet_ntoa(socket.inet_aton(bare))
        except OSError:
            return host
    lowered = bare.lower()
    if bare != host and (lowered in _LOOPBACK_NAMES or lowered.endswith(".localhost")):
        return bare
    return host


def _check_host_name(host: str) -> None:
    for char in host:
        if char.isspace():
            raise _Invalid(f"the host {host!r} contains whitespace")
        if not (char.isalnum() or char in _HOST_PUNCTUATION):
            raise _Invalid(f"the host {host!r} contains {char!r}")
    if host.isascii() and host.isdigit():
        raise _Invalid(f"{host!r} looks like a port; write :{host} or 127.0.0.1:{host}")


def _port(text: str) -> int:
    # Lenient parsers fall back to the scheme's default port here; silently talking to port 80
    # instead of the one the user meant is the worse surprise, so refuse.
    if not text:
        raise _Invalid("the port after ':' is empty")
    if not (text.isascii() and text.isdigit()):
        raise _Invalid(f"the port {text!r} is not a number")
    digits = text.lstrip("0") or "0"
    # The length test comes first: int() refuses strings of thousands of digits.
    if len(digits) > 5 or not 1 <= int(digits) <= 65535:
        raise _Invalid(f"the port {text} is outside 1-65535")
    return int(digits)


def _path_prefix(path: str) -> str:
    for char in path:
        if char.isspace():
            raise _Invalid(f"the path {path!r} contains whitespace")
        if not (char.isalnum() or char in _PATH_PUNCTUATION):
            raise _Invalid(f"the path {path!r} contains {char!r}")
    return path.rstrip("/")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_loopback(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    address = _ip(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


def _endpoint(
    scheme: str,
    host: str,
    port: int,
    prefix: str,
    auth: tuple[str, str] | None,
    source: str,
    raw: str,
    *,
    mapped: bool,
) -> Endpoint:
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Endpoint(
        base_url=f"{scheme}://{netloc}{prefix}",
        scheme=scheme,
        host=host,
        port=port,
        path_prefix=prefix,
        auth=auth,
        source=source,
        raw=raw,
        bind_address_mapped=mapped,
        is_loopback=_is_loopback(host),
    )


def _mask(value: str) -> str:
    """``value`` with the password (or a lone user name, often a token) replaced by ***.

    Finds credentials exactly as ``_parse`` does, so whatever it would read as a
    password is hidden, even in values it refuses.
    """
    at = value.rfind("@")
    if at < 0:
        return value
    separator = value.find("://")
    start = separator + 3 if 0 <= separator < at else 0
    user, colon, _ = value[start:at].partition(":")
    hidden = f"{user}:***" if colon else "***"
    return f"{value[:start]}{hidden}{value[at:]}"


def _configuration_error(
    value: str, source: str, reason: str, rules: AddressRules
) -> ConfigurationError:
    local = f"{rules.default_host}:{rules.default_port}"
    first, last = rules.variables[0], rules.variables[-1]
    leave_out = f"{', '.join(rules.variables)} or the default {rules.default_url}"
    if source == "--host":  # the CLI's option: the message follows click's "Invalid value for"
        return ConfigurationError(
            f"{_mask(value)!r} is not a valid {rules.label} address: {reason}. Expected host, "
            f"host:port or http(s)://host:port/path, e.g. --host {local} or "
            f"--host {rules.remote_example}.",
            hint=f"Correct --host, or leave it out to use {leave_out}.",
        )
    if source == "argument":
        shown = f"base_url={_mask(value)!r}"
        example = f"base_url='http://{local}' or base_url='{rules.remote_example}'"
        hint = f"Correct the base_url argument, or leave it out to use {leave_out}."
    else:
        shown = f"{source}={_mask(value)!r}"
        example = f"{last}={local} or {first}=http://gpu-box:{rules.default_port}"
        hint = f"Correct {source} in your environment"
        if source in rules.variables:
            # What takes over when this variable is unset: the ones after it, then the default.
            after = rules.variables[rules.variables.index(source) + 1 :]
            hint += (
                f", or unset it to use {' or '.join((*after, f'the default {rules.default_url}'))}"
            )
        hint += "."
    return ConfigurationError(
        f"{shown} is not a valid {rules.label} address: {reason}. Expected host, host:port or "
        f"http(s)://host:port/path, e.g. {example}.",
        hint=hint,
    )


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_RULES",
    "Endpoint",
    "parse_host",
    "resolve_endpoint",
    "v1_endpoint",
]
