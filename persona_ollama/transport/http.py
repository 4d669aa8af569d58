"""The HTTP layer every backend sends through: one pooled session, retries, timeouts and
deadlines, bounded reading of JSON documents and of streams.

One :class:`Transport` per backend, safe to share between threads. It knows no server's
API: the backend gives it the words for failures (:class:`Wording`: what a refused
connection, an HTTP error status or a silent server means on that server), and a decoder for
its stream format. Failures of the transport come out as the errors of
:mod:`persona_ollama.errors`, each with the server's own text and a hint.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import itertools
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import requests
import urllib3
from requests.adapters import HTTPAdapter

from .. import __version__
from ..errors import (
    REASON_REFUSED,
    REASON_UNREACHABLE,
    ConfigurationError,
    ConnectionBrokenError,
    ServerError,
    ServerResponseError,
    ServerTimeoutError,
    wrong_shape,
)
from ..privacy import on_this_machine
from ..settings import CA_BUNDLE_VAR, TIMEOUT_VAR, check_ca_bundle, check_secret
from ..terminal import printable
from .body import BodyReader
from .ndjson import loads_strict
from .redact import Redactor

if TYPE_CHECKING:
    from ..endpoint import Endpoint

log = logging.getLogger(__name__)

# A refused connection fails at once; a silent (firewalled or sleeping) host should not make
# every command hang, so connecting gets little time.
CONNECT_TIMEOUT = 2.0
# Reading gets a lot: loading a 70B model from disk before the first token can take minutes,
# and a read timeout that fires mid-load cancels the load on the server.
READ_TIMEOUT = 300.0
# The calls that load no model (model lists, descriptions, the version, what is loaded) are
# answered in milliseconds, even by a server busy loading a model: one that sends nothing for
# this long is not going to, and a call that only wanted the model list should not wait the
# whole read timeout (docs/configuration.md).
QUICK_READ_TIMEOUT = 20.0
# health() (doctor's liveness check) must answer quickly even when the host is down.
PROBE_TIMEOUT = 1.0
# Matches Persona's batch concurrency and the scheduler's default queue comfortably.
POOL_SIZE = 32
RETRIES = 3
BACKOFF = 0.5  # seconds before the first retry, doubled for each next one
MAX_RETRY_AFTER = 30.0
MAX_JSON_BODY = 16 * 1024 * 1024  # a model listing is < 1 MiB even with hundreds of models
MAX_ERROR_BODY = 64 * 1024
# The byte budget of one streamed answer (decoded): ANSWER_BASE_BYTES plus
# ANSWER_BYTES_PER_TOKEN for every token the answer may hold. An NDJSON line per token is about
# 150 bytes and an OpenAI-compatible event about 400, so this is ten times what a real server
# sends (9 MiB for max_tokens=4096), and a hostile one cannot fill memory.
ANSWER_BASE_BYTES = 1024 * 1024
ANSWER_BYTES_PER_TOKEN = 2048
# How long a call waits for one of the pool_size connections when all are in use, before it
# raises the timeout error (a deadline shortens it).
POOL_TIMEOUT = 600.0
# After a request got no byte for a whole read timeout, the next requests of the same client
# within this many seconds fail at once instead of waiting again: one call (a default model
# chosen from the model listing, then the model's facts) or one CLI command never waits twice
# for a silent server.
SILENT_MEMORY = 10.0

_RETRY_STATUSES = frozenset({429, 503})
# Retry-After in seconds: ASCII digits only ("²".isdigit() is true, float("²") fails).
_SECONDS = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")


def answer_budget(max_tokens: int) -> int:
    """The byte budget of a streamed answer of at most ``max_tokens`` tokens."""
    if not isinstance(max_tokens, int) or max_tokens <= 0:
        max_tokens = 4096
    return ANSWER_BASE_BYTES + ANSWER_BYTES_PER_TOKEN * max_tokens


_NOTHING: Any = object()  # a stream without a first item
_WATCHED = threading.local()  # the connections the current thread's request took


class _Watched(urllib3.HTTPConnectionPool):
    """A pool that records the connection each request takes (for _Watchdog); mixed in
    before either pool class. Mixed in, not copied: a zero-argument super() in a method
    borrowed by another class fails, and urllib3 then reported every https request as a
    full pool."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        taken = getattr(_WATCHED, "taken", None)
        if taken is not None:
            taken.append(conn)
        return conn


class _Pool(_Watched):
    pass


# OpenSSL's reason in an SSLError's text, e.g. "certificate verify failed: self-signed
# certificate in certificate chain (_ssl.c:1006)".
_VERIFY_FAILED = re.compile(r"certificate verify failed: ([^()\\]{1,160}?)\.? \(_ssl")
# How the TLS pool marks a handshake that timed out (see _TLSPool._validate_conn).
_HANDSHAKE_STALLED = "the TLS handshake did not finish"


class _TLSPool(_Watched, urllib3.HTTPSConnectionPool):
    def _validate_conn(self, conn: Any) -> None:
        """Connect and shake hands, within the connect timeout. A handshake that times out is
        a connect timeout: urllib3 reports it as a read timeout, which read as a server silent
        for the whole read timeout (20 or 300 s) when it had waited the connect timeout."""
        try:
            super()._validate_conn(conn)
        except socket.timeout as error:
            raise urllib3.exceptions.ConnectTimeoutError(
                conn, f"{_HANDSHAKE_STALLED} within {conn.timeout:g} s"
            ) from error


class _Watchdog:
    """Shuts down the connection of a request still waiting for its headers at the deadline.

    The socket timeout bounds each wait; this bounds them all, so a server that sends its
    status line and headers a byte at a time cannot hold a call past its deadline. It only
    runs while the headers are awaited: after that, every read of the body is bounded.
    """

    def __init__(self, delay: float) -> None:
        self.taken: list[Any] = []
        _WATCHED.taken = self.taken
        self._timer = threading.Timer(delay, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @classmethod
    def start(cls, deadline: float | None) -> _Watchdog | None:
        if deadline is None:
            return None
        return cls(max(0.0, deadline - time.monotonic()))

    def _fire(self) -> None:
        for conn in list(self.taken):
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._timer.cancel()
        _WATCHED.taken = None


class _Session(requests.Session):
    """A session that never follows redirects: with allow_redirects=False, requests still
    reads the whole body of a 3xx answer to prepare the next request (a 1 GB redirect body
    would be held in memory); here the redirect is only reported, unread."""

    def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return iter(())


class _KeepHeaders(requests.auth.AuthBase):
    """Credentials already in the headers: set as the session's auth, so that requests does
    not look up ~/.netrc, whose entry for the host would replace the bearer token."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


# By errno, which says what the socket met: urllib3 wraps every failed connect in a
# NewConnectionError, whether the port refused it or no route led to the host.
_UNREACHABLE = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, 10051, 10065}
)
_REFUSED = frozenset({errno.ECONNREFUSED, 10061})


def _transport_reason(error: BaseException) -> str | None:
    """If ``error`` means nothing answers at the address, a short reason; else None."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else current.__context__
    for link in chain:  # the socket's errno first: it is the most precise
        if isinstance(link, OSError) and link.errno in _UNREACHABLE:
            return REASON_UNREACHABLE
        if isinstance(link, OSError) and link.errno in _REFUSED:
            return REASON_REFUSED
    for link in chain:
        name = type(link).__name__
        if name in ("NameResolutionError", "gaierror"):
            return "the host name does not resolve"
        if name in ("ConnectTimeoutError", "ConnectTimeout"):
            return "the connection timed out"
        if name in ("NewConnectionError", "ConnectionRefusedError"):
            return REASON_REFUSED
    return None


def _environment_credentials(url: str) -> list[tuple[str, str]]:
    """The (user, password) pairs requests adds to a request for ``url`` from the environment:
    its ~/.netrc (or $NETRC) entry, and the credentials in the proxy URL it would take."""
    found = []
    netrc = requests.utils.get_netrc_auth(url)
    if netrc:
        found.append((str(netrc[0]), str(netrc[1])))
    for proxy in requests.utils.get_environ_proxies(url).values():
        if "@" in str(proxy):
            found.append(requests.utils.get_auth_from_url(str(proxy)))
    return found


T = TypeVar("T")


class Wording(Protocol):
    """What failures mean on one kind of server: the backend's words for the transport."""

    @property
    def label(self) -> str:
        """How messages name the server, e.g. "llama.cpp server"."""

    def status_error(
        self, status: int, body: str, *, model: str | None, deadline: float | None
    ) -> ServerError:
        """The error for an HTTP error ``status`` with the server's ``body`` text; a request it
        makes to say more (the models a server has) is bounded by ``deadline``, the failed
        request's."""

    def not_running(self, reason: str) -> ServerError:
        """The error when no connection could be made (``reason``: refused, unreachable...)."""

    def silent(self, seconds: float) -> ServerTimeoutError:
        """The error when the server sent nothing for ``seconds``."""


class Transport:
    """Pooled, thread-safe HTTP to one server, in the words of its backend.

    ``timeout`` is the read timeout (seconds without a byte); ``retries`` applies to
    connection resets and to 429/503 "server busy" answers, never to other 4xx;
    ``pool_timeout`` is how long a call waits for a free pooled connection.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        wording: Wording,
        *,
        timeout: float = READ_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        pool_size: int = POOL_SIZE,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        pool_timeout: float = POOL_TIMEOUT,
    ) -> None:
        """Check the settings and set up the pooled session; nothing is sent yet.

        The transport keeps no deadline: each request is given its own (``deadline=``, a
        time.monotonic() instant or None) by the caller, and it bounds every wait of that
        request and of the reading of its answer.

        Raises ConfigurationError for a bad timeout, retry count, pool size, header value
        (never shown) or CA bundle.
        """
        if not timeout > 0 or not connect_timeout > 0 or not pool_timeout > 0:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}.",
                hint=f"Pass e.g. timeout=300 ({TIMEOUT_VAR}=300).",
            )
        if retries < 0 or pool_size < 1:
            raise ConfigurationError(
                f"retries must be >= 0 and pool_size >= 1 (got {retries!r}, {pool_size!r}).",
            )
        for name, value in (headers or {}).items():
            check_secret(value, f"the {name} header")
        if isinstance(verify, str):
            check_ca_bundle(verify)
        self.endpoint = endpoint
        self.wording = wording
        self.timeout = (connect_timeout, timeout)
        self.pool_timeout = pool_timeout
        self.pool_size = pool_size
        # One slot per pooled connection, held from the request until its response is closed:
        # urllib3's blocking pool would wait forever, this waits pool_timeout at most.
        self._slots = threading.BoundedSemaphore(pool_size)
        self._silent_at: float | None = None
        self._silent_for = timeout
        self.retries = retries
        self.backoff = backoff
        self._session = _Session()
        # pool_block: threads beyond the pool wait for a connection instead of opening one
        # that is thrown away afterwards ("Connection pool is full" warnings).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, pool_block=True)
        # Pools that tell a deadline's watchdog which connection a request got.
        adapter.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = f"persona-ollama/{__version__}"
        self._session.headers.update(headers or {})
        if endpoint.pinned_name:  # connect to the checked address; the name stays the Host
            name = endpoint.pinned_name.rstrip(".")
            self._session.headers["Host"] = f"{name}:{endpoint.port}"
        elif endpoint.host.endswith("."):  # "gpu.example.": some servers' Host checks refuse it
            self._session.headers["Host"] = f"{endpoint.host.rstrip('.')}:{endpoint.port}"
        # Passed with every request too: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
        # override the session's setting, even verify=False or an explicit bundle.
        self._session.verify = verify
        self._verify = verify
        if "Authorization" in self._session.headers:
            # A bearer token (api_key) wins over user:password@ from the URL, and over netrc.
            self._session.auth = _KeepHeaders()
        elif endpoint.auth is not None:
            self._session.auth = endpoint.auth
        # A server on this machine never needs a proxy; HTTP(S)_PROXY from the environment
        # would otherwise send research data to a corporate proxy.
        self._session.trust_env = not on_this_machine(endpoint)
        # Every configured secret, scrubbed from whatever the server sends back (redact.py);
        # with the environment read, also what requests takes from ~/.netrc and a proxy URL.
        found = _environment_credentials(str(endpoint)) if self._session.trust_env else []
        self.redactor = Redactor.for_request(headers or {}, endpoint.auth, also=found)
        if verify is True and not self._session.trust_env and endpoint.scheme == "https":
            # requests reads REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE only while it reads the
            # environment, off here for the proxies' sake: a CA bundle named there still counts.
            # Only for https: loading a bundle costs tens of milliseconds, and plain http
            # never reads it.
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                self._session.verify = self._verify = check_ca_bundle(bundle)
        self._closed = False
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------

    @property
    def quick(self) -> tuple[float, float]:
        """The (connect, read) timeouts of a call that loads no model (QUICK_READ_TIMEOUT)."""
        return (self.timeout[0], min(self.timeout[1], QUICK_READ_TIMEOUT))

    def close(self) -> None:
        """Close the session and its pooled connections; closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._session.close()

    def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
        retries: int | None = None,
        model: str | None = None,
        deadline: float | None = None,
    ) -> requests.Response:
        """Send one request, retrying resets and busy answers; return a 2xx response.

        ``deadline`` (a time.monotonic() instant; None: none) bounds every wait: the pool,
        the connection, retries, the headers. The response holds one of the pool's slots
        until :meth:`_close` closes it.
        """
        url = self.endpoint.url(path)
        data = None
        headers = None
        if body is not None:
            data = _encode(body)
            headers = {"Content-Type": "application/json"}
        self._check_silent()
        attempts = 1 + (self.retries if retries is None else retries)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            limits = self._limits(timeout or self.timeout, deadline)
            self._acquire(deadline)
            watchdog = _Watchdog.start(deadline)
            try:
                response = self._session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    stream=stream,
                    timeout=limits,
                    allow_redirects=False,  # never replay a prompt to another address
                    verify=self._verify,
                )
            except BaseException as error:
                if watchdog is not None:
                    watchdog.stop()
                self._slots.release()
                if not isinstance(error, requests.exceptions.RequestException):
                    raise
                failure = self._request_error(error, limits, last, deadline)
                if failure is None:
                    self._sleep(attempt, None, deadline)
                    continue
                raise failure from None
            if watchdog is not None:
                watchdog.stop()
            response.__dict__["_persona_slot"] = True
            response.__dict__["_persona_read_timeout"] = limits[1]  # for reading its body
            self._silent_at = None
            status = response.status_code
            if status < 300:
                return response
            if status in _RETRY_STATUSES and not last:
                retry_after = response.headers.get("Retry-After")
                self.release(response)
                self._sleep(attempt, retry_after, deadline)
                continue
            raise self._status_error(response, model=model, deadline=deadline)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_error(
        self,
        error: requests.exceptions.RequestException,
        limits: tuple[float, float],
        last: bool,
        deadline: float | None,
    ) -> ServerError | None:
        """The error to raise for a failed request; None when it is worth another try."""
        if _past(deadline):  # the watchdog cut the connection, or a wait ran out
            return self._deadline_error()
        if isinstance(error, requests.exceptions.ConnectTimeout):
            if _past(deadline):
                return self._deadline_error()
            if _HANDSHAKE_STALLED in str(error):
                return ServerTimeoutError(
                    f"{self.endpoint} accepted the connection, but {_HANDSHAKE_STALLED} "
                    f"within {limits[0]:g} s.",
                    hint="Check that the server speaks https on this port, and that nothing in "
                    "between (a proxy, a firewall) holds the connection.",
                    url=str(self.endpoint),
                )
            return self.wording.not_running("the connection timed out")
        if isinstance(error, requests.exceptions.ReadTimeout):
            return self._timed_out(limits, deadline)
        if isinstance(error, requests.exceptions.SSLError):
            return self._tls_error(error)
        if isinstance(error, requests.exceptions.ConnectionError):
            reason = _transport_reason(error)
            if reason is not None:
                return self.wording.not_running(reason)
            if last:
                return ServerResponseError(
                    f"The connection to {self.endpoint} broke before an answer arrived "
                    f"({type(error).__name__}).",
                    hint="The server may have crashed or restarted; check its log.",
                    url=str(self.endpoint),
                )
            return None
        return ServerResponseError(
            f"The request to {self.endpoint} failed ({type(error).__name__}).",
            hint="Check the server address (`persona-ollama doctor`).",
            url=str(self.endpoint),
        )

    def _limits(self, timeout: tuple[float, float], deadline: float | None) -> tuple[float, float]:
        """(connect, read) timeouts, shortened to what is left of the call's deadline."""
        if deadline is None:
            return timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._deadline_error()
        return (min(timeout[0], remaining), min(timeout[1], remaining))

    def _acquire(self, deadline: float | None) -> None:
        """Take a pool slot, waiting pool_timeout (or until the deadline) at most."""
        if self._slots.acquire(blocking=False):
            return
        wait = self.pool_timeout
        if deadline is not None:
            wait = max(0.0, min(wait, deadline - time.monotonic()))
        if not self._slots.acquire(timeout=wait):
            raise ServerTimeoutError(
                f"All {self.pool_size} connections to {self.endpoint} stayed in use for "
                f"{wait:g} s; the request was not sent.",
                hint="Too many calls at once for the pool: raise pool_size, or run fewer "
                "generations concurrently.",
                url=str(self.endpoint),
            )

    def release(self, response: requests.Response) -> None:
        """Close ``response`` and give its pool slot back (once, whatever the path)."""
        try:
            response.close()
        finally:
            if response.__dict__.pop("_persona_slot", False):
                self._slots.release()

    def connections_in_use(self) -> int:
        """How many pool slots are held by requests or responses not yet closed."""
        return self.pool_size - self._slots._value

    def _check_silent(self) -> None:
        silent = self._silent_at
        if silent is not None and time.monotonic() - silent < SILENT_MEMORY:
            raise ServerTimeoutError(
                f"The {self.wording.label} at {self.endpoint} sent nothing for "
                f"{self._silent_for:g} s "
                "to the previous request, a moment ago; not waiting for it again.",
                hint="Check the server (`persona-ollama doctor`): it accepts connections but "
                "does not answer. If it is loading a large model, raise the timeout "
                f"({TIMEOUT_VAR}=600).",
                url=str(self.endpoint),
            )

    def _timed_out(self, limits: tuple[float, float], deadline: float | None) -> ServerTimeoutError:
        """The error for a read that timed out: the deadline's, or the read timeout's."""
        if _past(deadline):
            return self._deadline_error()
        self._silent_at = time.monotonic()
        self._silent_for = limits[1]
        return self.wording.silent(limits[1])

    def _deadline_error(self) -> ServerTimeoutError:
        return ServerTimeoutError(
            f"No complete answer from {self.endpoint} within the deadline; the partial "
            "answer, if any, was discarded.",
            hint="Raise deadline=, lower max_tokens, or use a faster model.",
            url=str(self.endpoint),
        )

    def _sleep(self, attempt: int, retry_after: str | None, deadline: float | None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after and _SECONDS.fullmatch(retry_after.strip()):
            # Seconds; an HTTP-date (or anything else) keeps our own backoff.
            delay = min(float(retry_after), MAX_RETRY_AFTER)
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - time.monotonic()))
        log.debug("retrying %s in %.2f s", self.endpoint, delay)
        if delay > 0:
            time.sleep(delay)

    def _status_error(
        self, response: requests.Response, *, model: str | None, deadline: float | None
    ) -> ServerError:
        if 300 <= response.status_code < 400:
            target = printable(self.redactor.text(response.headers.get("Location", "?"))[:500])
            self.release(response)
            return ServerResponseError(
                f"The server at {self.endpoint} redirected to {target}; the request was not "
                "repeated there, so the prompt did not follow the redirect.",
                hint=_use_final_address(self.endpoint.source),
                status_code=response.status_code,
                url=str(self.endpoint),
            )
        try:
            reader = self._reader(response, MAX_ERROR_BODY + 1, what="error", deadline=deadline)
            raw = reader.read_upto(MAX_ERROR_BODY)
        except (OSError, ValueError, http.client.HTTPException, ServerError):
            raw = b""
        finally:
            self.release(response)
        body = self.redactor.text(raw.decode("utf-8", "replace"))
        error = self.wording.status_error(
            response.status_code, body, model=model, deadline=deadline
        )
        return self.redactor.error(error)

    def _tls_error(self, error: Exception) -> ServerError:
        text = str(error)
        hint = (
            f"Check the certificate, or point {CA_BUNDLE_VAR} at your CA bundle "
            "(REQUESTS_CA_BUNDLE works too)."
        )
        if "WRONG_VERSION_NUMBER" in text.upper() or "wrong version number" in text:
            hint = "The server speaks plain HTTP: use http:// instead of https:// in the URL."
        # What OpenSSL found wrong with the certificate, e.g. "Hostname mismatch, certificate
        # is not valid for 'gpu-box'": without it "Check the certificate" leaves a guess.
        found = _VERIFY_FAILED.search(text)
        why = (
            f": the certificate failed verification ({printable(found.group(1))})" if found else ""
        )
        if found and "mismatch" in found.group(1):
            hint = (
                "Use a host name the certificate was issued for in the URL, or issue the "
                "certificate for the name (or address) you connect to."
            )
        return ConfigurationError(
            f"The TLS connection to {self.endpoint} failed{why}.",
            hint=hint,
            url=str(self.endpoint),
        )

    def _reader(
        self, response: requests.Response, limit: int | None, what: str, deadline: float | None
    ) -> BodyReader:
        return BodyReader(
            response,
            limit=limit,
            deadline=deadline,
            read_timeout=response.__dict__.get("_persona_read_timeout", self.timeout[1]),
            url=str(self.endpoint),
            what=what,
        )

    def json(self, response: requests.Response, *, deadline: float | None = None) -> Any:
        """The JSON document of ``response`` (at most MAX_JSON_BODY bytes, read by
        ``deadline``), released after reading; a body cut off, too large or not JSON raises
        ServerResponseError."""
        try:
            raw = self._reader(response, MAX_JSON_BODY, what="answer", deadline=deadline).read_all()
        except socket.timeout:
            raise self._timed_out(self.timeout, deadline) from None
        except (OSError, ValueError, http.client.HTTPException) as error:
            raise ServerResponseError(
                f"The answer from {self.endpoint} was cut off ({type(error).__name__}).",
                url=str(self.endpoint),
            ) from None
        finally:
            self.release(response)
        try:
            return self.redactor.data(loads_strict(raw))
        except ServerResponseError as error:
            error.url = str(self.endpoint)
            raise self.redactor.error(error) from None
        except ValueError:
            snippet = self.redactor.text(raw[:200].decode("utf-8", "replace"))
            raise ServerResponseError(
                f"The server at {self.endpoint} answered with something that is not JSON: "
                f"{snippet!r}",
                hint=f"Check that the URL points at the {self.wording.label} "
                "(`persona-ollama doctor`).",
                url=str(self.endpoint),
            ) from None

    def get_json(
        self,
        path: str,
        *,
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """GET ``path`` and return its JSON document (see :meth:`json`); a GET loads no
        model, so it waits :attr:`quick` unless told otherwise."""
        response = self.send(
            "GET", path, stream=True, timeout=timeout or self.quick, deadline=deadline
        )
        return self.json(response, deadline=deadline)

    def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        model: str | None = None,
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """POST ``body`` to ``path`` and return the JSON answer; ``model`` names the model
        in the errors of a failed status; ``timeout`` (e.g. :attr:`quick`) replaces the
        read timeout; ``deadline`` bounds the request and the reading of its answer."""
        response = self.send(
            "POST", path, body, stream=True, model=model, timeout=timeout, deadline=deadline
        )
        return self.json(response, deadline=deadline)

    def expect_list(self, document: dict[str, Any], field: str, what: str) -> list[Any]:
        """``document[field]`` as a list: absent or null is empty, anything else is an error
        naming the field (validated at the edge, never a TypeError later)."""
        value = document.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            error = wrong_shape(f"{what} {field}", "a list", value, str(self.endpoint))
            raise self.redactor.error(error)
        return value

    def expect_dict(self, value: Any, what: str) -> dict[str, Any]:
        """``value`` as a JSON object; anything else is an error naming ``what``."""
        if not isinstance(value, dict):
            raise ServerResponseError(
                f"{what} from {self.endpoint} is not a JSON object.", url=str(self.endpoint)
            )
        return value

    def stream(
        self,
        response: requests.Response,
        *,
        what: str,
        decode: Callable[[Iterator[bytes]], Iterator[T]],
        is_final: Callable[[T], bool],
        ended_quietly: str = "The server may have restarted mid-way; check its log and retry.",
        limit: int | None = None,
        salvage: Callable[[], T | None] | None = None,
        deadline: float | None = None,
    ) -> Generator[T, None, None]:
        """Yield ``decode``'s items from ``response`` up to and including the one
        ``is_final`` accepts; ``limit`` caps the decoded bytes of the whole body, and
        ``deadline`` (the request's) bounds each read.
        ``salvage``, asked when the connection breaks, gives the final item when what was
        read is already complete (a /v1 answer whose finish reason came before ``[DONE]``),
        or None: then the break raises.

        ``decode`` raises the server's own errors (an error line, a malformed event). A
        timeout, a broken connection, or a stream that ends before its final item (then
        ``ended_quietly`` is the hint) raise an ServerError: a partial result is never
        passed off as complete. The response (and its pool slot) is released however the
        stream ends: exhausted, raised, closed early, or dropped unread.
        """
        items = self._items(
            response, what, decode, is_final, ended_quietly, limit, deadline, salvage
        )
        # Started at once (to its first yield), so that closing it, or dropping it unread,
        # runs its `finally` and releases the response.
        next(items)
        return items

    def _items(
        self,
        response: requests.Response,
        what: str,
        decode: Callable[[Iterator[bytes]], Iterator[T]],
        is_final: Callable[[T], bool],
        ended_quietly: str,
        limit: int | None,
        deadline: float | None,
        salvage: Callable[[], T | None] | None,
    ) -> Generator[T, None, None]:
        """The body of :meth:`stream`, after one priming yield that :meth:`stream` takes.

        A request sent with a longer read timeout than the client's (the wait for a long
        prompt's first byte) keeps it until the first item, then each read waits the client's.
        """
        url = str(self.endpoint)
        first_wait = response.__dict__.get("_persona_read_timeout", self.timeout[1])
        waiting = (self.timeout[0], first_wait)
        broken: Exception | None = None
        late: ServerTimeoutError | None = None
        try:
            reader = BodyReader(
                response,
                limit=limit,
                deadline=deadline,
                read_timeout=first_wait,
                url=url,
                what=what,
            )
            yield cast(T, None)  # the priming step: nothing is read before the first next()
            items = decode(reader.pieces())
            if first_wait > self.timeout[1]:
                first = next(items, _NOTHING)
                reader.settle(self.timeout[1])
                waiting = self.timeout
                if first is not _NOTHING:
                    items = itertools.chain((first,), items)
            for item in items:
                if is_final(item):
                    reader.finish()
                    self.release(response)
                    yield item
                    return
                yield item
        except socket.timeout:
            late = self._timed_out(waiting, deadline)
        except requests.exceptions.ConnectionError as error:
            # requests wraps a read timeout between chunks in a ConnectionError.
            if error.args and isinstance(error.args[0], urllib3.exceptions.ReadTimeoutError):
                late = self._timed_out(waiting, deadline)
            else:
                broken = error
        except (
            requests.exceptions.ChunkedEncodingError,
            http.client.HTTPException,
            OSError,
        ) as error:
            broken = error
        except ServerError as error:  # the server's own error line, in the decoder's words
            self.redactor.error(error)
            raise
        finally:
            self.release(response)
        if broken is not None or late is not None:
            # A whole answer (a /v1 finish reason came) whose closing marker was lost, or
            # came too late for the read timeout or the deadline, is kept.
            final = salvage() if salvage is not None else None
            if final is None:
                raise late or self._cut_off(what, cast(Exception, broken))
            yield final
            return
        raise ServerResponseError(
            f"The {what} from {url} ended before the server said it was done, without an "
            "error; the partial result was discarded.",
            hint=ended_quietly,
            url=url,
        )

    def _cut_off(self, what: str, error: Exception) -> ConnectionBrokenError:
        return ConnectionBrokenError(
            f"The connection to {self.endpoint} broke in the middle of the {what} "
            f"({type(error).__name__}); the partial result was discarded.",
            hint="The server may have crashed or restarted mid-way; check its log and retry.",
            url=str(self.endpoint),
        )


def _past(deadline: float | None) -> bool:
    """Whether ``deadline`` (a time.monotonic() instant, None: none) has come."""
    return deadline is not None and time.monotonic() >= deadline - 0.01


def _encode(body: Mapping[str, Any]) -> bytes:
    """The JSON of a request body; text that is not valid Unicode, NaN or a value JSON cannot
    hold is a ConfigurationError here, before anything is sent."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except UnicodeEncodeError as error:
        raise ConfigurationError(
            "The request holds text that is not valid Unicode (a lone surrogate, "
            f"{error.object[error.start : error.end]!r}); it was not sent.",
            hint="Clean the text first, e.g. text.encode('utf-8', 'replace').decode('utf-8'); "
            "such text often comes from decoding bytes with errors='surrogateescape'.",
        ) from None
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"The request cannot be sent as JSON: {error}.",
            hint="Options, format and messages must hold only JSON values: text, finite "
            "numbers, true/false, null, lists and dicts (no sets, bytes or NaN).",
        ) from None


def _use_final_address(source: str) -> str:
    """The hint after a redirect: put the final address where this one came from
    (Endpoint.source: the base_url argument, the default, or the variable that named it)."""
    if source in ("argument", "default"):
        return "Pass the final address as base_url if you trust it."
    return f"Set {source} to the final address if you trust it."
