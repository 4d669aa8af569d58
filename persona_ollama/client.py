"""OllamaClient: the HTTP layer over Ollama's native API.

One pooled ``requests.Session`` per client, safe to share between threads. Failures of the
transport and of the server come out as the errors of :mod:`persona_ollama.errors`, each
with the server's own text and a hint.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

from . import __version__
from ._http_errors import (
    REASON_REFUSED,
    REASON_UNREACHABLE,
    error_from_pull_line,
    error_from_status,
    error_from_stream_line,
    not_running,
)
from .errors import ConfigurationError, OllamaError, OllamaResponseError, OllamaTimeoutError
from .ndjson import iter_ndjson

if TYPE_CHECKING:
    from .endpoint import Endpoint

log = logging.getLogger(__name__)

# A refused connection fails at once; a silent (firewalled or sleeping) host should not make
# every command hang, so connecting gets little time.
CONNECT_TIMEOUT = 2.0
# Reading gets a lot: loading a 70B model from disk before the first token can take minutes,
# and a read timeout that fires mid-load cancels the load on the server.
READ_TIMEOUT = 300.0
# is_configured() and doctor's health check must answer quickly even when the host is down.
PROBE_TIMEOUT = 1.0
# Matches Persona's batch concurrency and the scheduler's default queue comfortably.
POOL_SIZE = 32
RETRIES = 3
BACKOFF = 0.5  # seconds before the first retry, doubled for each next one
MAX_RETRY_AFTER = 30.0
MAX_JSON_BODY = 64 * 1024 * 1024  # a /api/tags listing is < 1 MiB even with hundreds of models
MAX_ERROR_BODY = 64 * 1024
# Reads allowed after a stream's last line to reach its end (one is enough for Ollama).
FINISH_READS = 4

_RETRY_STATUSES = frozenset({429, 503})


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


# A clean end without a done line and without an error is how Ollama aborts a generation
# that repeats one token more than 30 times (llm/server.go and llm/llama_server.go,
# "token repeat limit"; docs/reference/ollama-protocol.md, "Streaming"), not a crash.
_ENDED_QUIETLY = {
    "answer": "Ollama ends a stream this way when it stops a model that keeps repeating the "
    "same token: retry, change the prompt, or raise repeat_penalty or temperature. If every "
    "request ends like this, check the server log.",
}
_ENDED_QUIETLY_OTHER = "The server may have restarted mid-way; check its log and retry."


def _finish_body(chunks: Iterator[bytes]) -> None:
    """Read the end of a finished stream, so that its connection goes back to the pool.

    Stopping at the last line would leave the chunked terminator unread, and closing the
    response would then close the connection: a new TCP connection for every request. A
    server that keeps sending after its last line, or breaks the connection there, loses the
    connection instead (it is closed with the response); the answer is complete either way.
    """
    try:
        for _ in range(FINISH_READS):
            next(chunks)
    except StopIteration:
        return
    except (requests.exceptions.RequestException, OSError):
        log.debug("connection not reused: the stream did not end cleanly after its last line")


class OllamaClient:
    """A thin, thread-safe client for one Ollama server.

    ``timeout`` is the read timeout (seconds without a byte); ``retries`` applies to
    connection resets and to 429/503 "server busy" answers, never to other 4xx.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = READ_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        pool_size: int = POOL_SIZE,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
    ) -> None:
        if timeout <= 0 or connect_timeout <= 0:
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}.",
                hint="Pass e.g. timeout=300 (PERSONA_OLLAMA_TIMEOUT=300).",
            )
        if retries < 0 or pool_size < 1:
            raise ConfigurationError(
                f"retries must be >= 0 and pool_size >= 1 (got {retries!r}, {pool_size!r}).",
            )
        self.endpoint = endpoint
        self.timeout = (connect_timeout, timeout)
        self.retries = retries
        self.backoff = backoff
        self._session = requests.Session()
        # pool_block: threads beyond the pool wait for a connection instead of opening one
        # that is thrown away afterwards ("Connection pool is full" warnings).
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, pool_block=True)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers["User-Agent"] = f"persona-ollama/{__version__}"
        self._session.headers.update(headers or {})
        if endpoint.pinned_name:  # connect to the checked address; the name stays the Host
            name = endpoint.pinned_name
            self._session.headers["Host"] = f"{name}:{endpoint.port}"
        # Passed with every request too: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
        # override the session's setting, even verify=False or an explicit bundle.
        self._session.verify = verify
        self._verify = verify
        if endpoint.auth is not None and "Authorization" not in self._session.headers:
            # A bearer token (api_key) wins over user:password@ from the URL.
            self._session.auth = endpoint.auth
        # A loopback server never needs a proxy; HTTP(S)_PROXY from the environment would
        # otherwise send research data to a corporate proxy.
        self._session.trust_env = not endpoint.is_loopback
        self._closed = False
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._session.close()

    def __enter__(self) -> OllamaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        stream: bool = False,
        timeout: tuple[float, float] | None = None,
        retries: int | None = None,
        model: str | None = None,
    ) -> requests.Response:
        """Send one request, retrying resets and busy answers; return a 2xx response."""
        url = self.endpoint.url(path)
        data = None
        headers = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json"}
        attempts = 1 + (self.retries if retries is None else retries)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._session.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    stream=stream,
                    timeout=timeout or self.timeout,
                    allow_redirects=False,  # never replay a prompt to another address
                    verify=self._verify,
                )
            except requests.exceptions.ConnectTimeout:
                raise self._not_running("the connection timed out") from None
            except requests.exceptions.ReadTimeout:
                raise self._timeout(timeout or self.timeout) from None
            except requests.exceptions.SSLError as error:
                raise self._tls_error(error) from None
            except requests.exceptions.ConnectionError as error:
                reason = _transport_reason(error)
                if reason is not None:
                    raise self._not_running(reason) from None
                if last:
                    raise OllamaResponseError(
                        f"The connection to {self.endpoint} broke before an answer arrived "
                        f"({type(error).__name__}).",
                        hint="The server may have crashed or restarted; check its log.",
                        url=str(self.endpoint),
                    ) from error
                self._sleep(attempt, None)
                continue
            status = response.status_code
            if status < 300:
                return response
            if status in _RETRY_STATUSES and not last:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._sleep(attempt, retry_after)
                continue
            raise self._status_error(response, model=model)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2**attempt)
        if retry_after and retry_after.strip().replace(".", "", 1).isdigit():
            # Seconds; an HTTP-date keeps our own backoff.
            delay = min(float(retry_after), MAX_RETRY_AFTER)
        log.debug("retrying %s in %.2f s", self.endpoint, delay)
        if delay > 0:
            time.sleep(delay)

    def _status_error(self, response: requests.Response, *, model: str | None) -> OllamaError:
        if 300 <= response.status_code < 400:
            target = response.headers.get("Location", "?")
            response.close()
            return OllamaResponseError(
                f"The server at {self.endpoint} redirected to {target}; the request was not "
                "repeated there, so the prompt did not follow the redirect.",
                hint="Set OLLAMA_BASE_URL to the final address if you trust it.",
                status_code=response.status_code,
                url=str(self.endpoint),
            )
        try:
            raw = response.raw.read(MAX_ERROR_BODY, decode_content=True) or b""
        except (requests.exceptions.RequestException, OSError):
            raw = b""
        finally:
            response.close()
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return error_from_status(response.status_code, body, url=str(self.endpoint), model=model)

    def _not_running(self, reason: str) -> OllamaError:
        return not_running(
            str(self.endpoint), reason, bind_address_mapped=self.endpoint.bind_address_mapped
        )

    def _timeout(self, timeout: tuple[float, float]) -> OllamaTimeoutError:
        return OllamaTimeoutError(
            f"The Ollama server at {self.endpoint} sent nothing for {timeout[1]:g} s.",
            hint="Loading a large model can take minutes the first time: raise the timeout "
            "(timeout=600 or PERSONA_OLLAMA_TIMEOUT=600), or load it first with "
            "`ollama run <model> ''`.",
            url=str(self.endpoint),
        )

    def _tls_error(self, error: Exception) -> OllamaError:
        text = str(error)
        hint = (
            "Check the certificate, or point PERSONA_OLLAMA_CA_BUNDLE at your CA bundle "
            "(REQUESTS_CA_BUNDLE works too)."
        )
        if "WRONG_VERSION_NUMBER" in text.upper() or "wrong version number" in text:
            hint = "The server speaks plain HTTP: use http:// instead of https:// in the URL."
        return ConfigurationError(
            f"The TLS connection to {self.endpoint} failed.", hint=hint, url=str(self.endpoint)
        )

    def _json(self, response: requests.Response) -> Any:
        try:
            raw = response.raw.read(MAX_JSON_BODY + 1, decode_content=True)
        except requests.exceptions.RequestException as error:
            raise OllamaResponseError(
                f"The answer from {self.endpoint} was cut off ({type(error).__name__}).",
                url=str(self.endpoint),
            ) from error
        finally:
            response.close()
        if len(raw) > MAX_JSON_BODY:
            raise OllamaResponseError(
                f"The answer from {self.endpoint} is larger than {MAX_JSON_BODY} bytes; "
                "refusing to read it.",
                url=str(self.endpoint),
            )
        try:
            return json.loads(raw)
        except ValueError:
            snippet = raw[:200].decode("utf-8", "replace")
            raise OllamaResponseError(
                f"The server at {self.endpoint} answered with something that is not JSON: "
                f"{snippet!r}",
                hint="Check that the URL points at an Ollama server (`persona-ollama doctor`).",
                url=str(self.endpoint),
            ) from None

    def _get_json(self, path: str, *, timeout: tuple[float, float] | None = None) -> Any:
        return self._json(self._send("GET", path, stream=True, timeout=timeout))

    def _post_json(self, path: str, body: Mapping[str, Any], *, model: str | None = None) -> Any:
        return self._json(self._send("POST", path, body, stream=True, model=model))

    def _expect_dict(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise OllamaResponseError(
                f"{what} from {self.endpoint} is not a JSON object.", url=str(self.endpoint)
            )
        return value

    # -- API ---------------------------------------------------------------------------

    def version(self, *, timeout: float | None = None) -> str:
        """The server's version string (GET /api/version); no retries when probing."""
        limits = (timeout, timeout) if timeout else None
        if limits:
            response = self._send("GET", "/api/version", stream=True, timeout=limits, retries=0)
            data = self._json(response)
        else:
            data = self._get_json("/api/version")
        value = self._expect_dict(data, "/api/version").get("version")
        return str(value) if value is not None else "unknown"

    def tags(self) -> list[dict[str, Any]]:
        """Installed models, newest first (GET /api/tags)."""
        models = self._expect_dict(self._get_json("/api/tags"), "/api/tags").get("models") or []
        return [m for m in models if isinstance(m, dict)]

    def show(self, model: str) -> dict[str, Any]:
        """Facts about one installed model (POST /api/show)."""
        data = self._post_json("/api/show", {"model": model}, model=model)
        return self._expect_dict(data, "/api/show")

    def ps(self) -> list[dict[str, Any]]:
        """Models loaded in memory right now (GET /api/ps)."""
        models = self._expect_dict(self._get_json("/api/ps"), "/api/ps").get("models") or []
        return [m for m in models if isinstance(m, dict)]

    def chat(self, body: Mapping[str, Any]) -> Generator[dict[str, Any], None, None]:
        """Stream POST /api/chat: yield each chunk, the last one with ``done: true``.

        An ``{"error": ...}`` line, a malformed line, a dropped connection or a stream that
        ends without ``done`` raise; a partial answer is never passed off as complete.
        """
        model = body.get("model")
        response = self._send(
            "POST", "/api/chat", {**body, "stream": True}, stream=True, model=model
        )
        return self._stream(response, model=model, what="answer", on_error=error_from_stream_line)

    def pull(self, model: str) -> Generator[dict[str, Any], None, None]:
        """Stream POST /api/pull progress lines until ``{"status": "success"}``."""
        response = self._send("POST", "/api/pull", {"model": model, "stream": True}, stream=True)
        return self._stream(
            response, model=model, what="download", final="success", on_error=error_from_pull_line
        )

    def _stream(
        self,
        response: requests.Response,
        *,
        model: str | None,
        what: str,
        on_error: Callable[..., OllamaError],
        final: str | None = None,
        decode: Callable[[Iterator[bytes]], Iterator[dict[str, Any]]] = iter_ndjson,
    ) -> Generator[dict[str, Any], None, None]:
        """Yield ``decode``'s items (native-shaped: ``done``, ``error``) from ``response``;
        ``on_error`` maps an ``{"error": ...}`` item onto the exception to raise."""
        url = str(self.endpoint)
        chunks = response.iter_content(chunk_size=None)
        try:
            for item in decode(chunks):
                error = item.get("error")
                if error is not None:
                    raise on_error(str(error), url=url, model=model)
                if item.get("done") is True or (final and item.get("status") == final):
                    _finish_body(chunks)
                    yield item
                    return
                yield item
        except requests.exceptions.ConnectionError as error:
            # requests wraps a read timeout between chunks in a ConnectionError.
            if error.args and isinstance(error.args[0], urllib3.exceptions.ReadTimeoutError):
                raise self._timeout(self.timeout) from None
            raise self._cut_off(what, error) from None
        except requests.exceptions.ChunkedEncodingError as error:
            raise self._cut_off(what, error) from None
        finally:
            response.close()
        raise OllamaResponseError(
            f"The {what} from {url} ended before the server said it was done, without an "
            "error; the partial result was discarded.",
            hint=_ENDED_QUIETLY.get(what, _ENDED_QUIETLY_OTHER),
            url=url,
        )

    def _cut_off(self, what: str, error: Exception) -> OllamaResponseError:
        return OllamaResponseError(
            f"The connection to {self.endpoint} broke in the middle of the {what} "
            f"({type(error).__name__}); the partial result was discarded.",
            hint="The server may have crashed or restarted mid-way; check its log and retry.",
            url=str(self.endpoint),
        )
