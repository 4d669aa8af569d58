"""The wire rules: how the real Ollama server spells what it sends, release by release.

Everything here was read in the server's Go source (file, function and tag are cited next to each
rule); the faces (native.py, openai.py) and the engine ask these rules instead of spelling bytes
themselves. docs/reference/ollama-protocol.md describes each behaviour in prose.

- **Go details.** Ollama is a Go program: its JSON is encoded by ``encoding/json`` (compact,
  ``<>&`` escaped), its decoder errors are Go's, ``keep_alive`` strings are parsed by
  ``time.ParseDuration`` and times are RFC 3339 with nanoseconds. A client that works against the
  double should work against the server, so the double reproduces these details, not Python's.
- **Model names** as the server parses them ("Model names"). The double implements the grammar on
  its own rather than reusing ``persona_ollama.names``: a test double that shares the client's
  parser would agree with the client's bugs.
- **Version profiles.** ``FakeOllama(version=...)`` emulates one Ollama release. Where the real
  server's wire behaviour changed between releases, the change is one :class:`Rule`: the first
  release that has the newer behaviour, and where in the server's Go source (file, function,
  tag) it was read. The faces ask ``profile.has(RULE)``; everything not listed is the same on
  every release the double emulates. :data:`PROFILES` names one release on each side of every
  change, for tests parametrised over versions (``@pytest.mark.parametrize("version", PROFILES)``).
- **Responses**: what a face answers with (a whole body, a stream of JSON documents, or an
  ApiError), the core's response type.
- **Request checks**, with the server's status codes and texts ("Routing and error bodies",
  "Chat requests", "Context and truncation"): each raises ApiError with what the server answers.
- **The Host check** of a server listening on loopback.

A double of another server keeps the response types and writes its own rules next to its face.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable, Union

if TYPE_CHECKING:
    from .models import FakeModel

__all__ = [
    "CHAT_FIELDS",
    "CHAT_NOT_FOUND_PLAIN",
    "DONE_CARRIES_CONTENT",
    "GENERATE_FIELDS",
    "JSON_UTF8",
    "LLAMA_SERVER",
    "PROFILES",
    "PROMPT_EVAL_SKIPS_CACHE",
    "PROMPT_TOO_LONG",
    "PULL_FIELDS",
    "REFUSES_OVERFLOW",
    "RULES",
    "SHIFT_OFF_REFUSES",
    "SHOW_FIELDS",
    "STREAM_ERROR_STATUS",
    "TAGS_CONTEXT_LENGTH",
    "V1_OWN_FINISH_CHUNK",
    "VRAM_DEFAULT_CONTEXT",
    "ApiError",
    "DecodeError",
    "ModelName",
    "Profile",
    "Reply",
    "Response",
    "Rule",
    "RunnerError",
    "Stream",
    "check_format",
    "decode_json",
    "decode_request",
    "go_float",
    "go_json",
    "go_quote",
    "host_is_local",
    "json_reply",
    "local_rfc3339",
    "ndjson_stream",
    "parse_duration",
    "parse_keep_alive",
    "parse_model_name",
    "parse_name",
    "parse_think",
    "resolve_options",
    "rfc3339",
    "runner_error_reply",
    "syntax_message",
    "text_reply",
    "version_tuple",
]


# Go encoding and decoding ---------------------------------------------------------------------
class DecodeError(ValueError):
    """A request body that Go's JSON decoder would reject; ``str()`` is Go's message."""


def go_json(value: Any) -> bytes:
    """Encode like Go's ``json.Marshal``: compact, UTF-8, with ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # The characters only occur inside strings, so a plain replacement is safe.
    for char, escape in _HTML_ESCAPES:
        text = text.replace(char, escape)
    return text.encode("utf-8")


_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def go_float(value: float) -> str:
    """A float64 as Go's ``%v``/``%#v`` prints it: the shortest digits, in exponent form from
    1e+06 on and below 1e-04 (strconv 'g' with the shortest precision); ``1048576`` becomes
    ``1.048576e+06``. /api/show's ``parameters`` prints Modelfile numbers this way."""
    from decimal import Decimal

    if value == 0:
        return "0"
    number = Decimal(repr(float(value))).normalize()
    sign, digits, _ = number.as_tuple()
    exponent = number.adjusted()
    if -4 <= exponent < 6:
        return format(number, "f")
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def go_quote(text: str) -> str:
    """Go's ``%q``: a double-quoted string with Go escapes."""
    return json.dumps(text, ensure_ascii=False)


def decode_json(body: bytes) -> Any:
    """Decode a request body the way ``gin``'s ``ShouldBindJSON`` does, or raise DecodeError.

    Only the first JSON value counts (Go's decoder stops there), and a body that is empty or only
    whitespace is io.EOF, which the handlers report as ``missing request body``.
    """
    text = body.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise DecodeError("missing request body")
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise DecodeError(syntax_message(exc.msg, exc.doc, exc.pos)) from None
    except _NonFinite as exc:
        raise DecodeError(
            f"invalid character {_quote_char(str(exc).lstrip('-')[0])} "
            "looking for beginning of value"
        ) from None
    return value


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    # Python accepts NaN and Infinity; Go's decoder does not.
    raise _NonFinite(name)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_HEX = frozenset("0123456789abcdefABCDEF")

_CONTEXTS = (
    ("Expecting value", "looking for beginning of value"),
    ("Expecting property name", "looking for beginning of object key string"),
    ("Expecting ':' delimiter", "after object key"),
    ("Invalid control character", "in string literal"),
    ("Invalid \\escape", "in string escape code"),
    ("Invalid \\uXXXX escape", "in \\u hexadecimal character escape"),
)


def syntax_message(msg: str, doc: str, pos: int) -> str:
    """Go's decoder message for the error Python's json reports as ``msg`` at ``pos``."""
    if pos >= len(doc.rstrip(" \t\r\n")) or msg.startswith("Unterminated string"):
        return "unexpected EOF"
    char = doc[pos]
    if msg.startswith("Invalid \\escape"):  # Python points at the backslash, Go after it
        char = doc[pos + 1]
    elif msg.startswith("Invalid \\u"):
        start = doc.rfind("\\u", 0, pos + 2) + 2
        bad = [c for c in doc[start : start + 4] if c not in _HEX]
        if not bad:  # the four digits run past the end of the body
            return "unexpected EOF"
        char = bad[0]
    elif msg.startswith("Illegal trailing comma"):  # Python 3.13+ points at the comma
        rest = doc[pos + 1 :].lstrip(" \t\r\n")
        if not rest:
            return "unexpected EOF"
        char = rest[0]
        msg = "Expecting value" if msg.endswith("array") else "Expecting property name"
    if msg == "Expecting value" and char == "-":  # a minus sign without digits
        following = doc[pos + 1 : pos + 2]
        if not following:
            return "unexpected EOF"
        return f"invalid character {_quote_char(following)} in numeric literal"
    if msg == "Expecting ',' delimiter":
        inside = _innermost_container(doc, pos)
        where = "after object key:value pair" if inside == "{" else "after array element"
        return f"invalid character {_quote_char(char)} {where}"
    for prefix, where in _CONTEXTS:
        if msg.startswith(prefix):
            return f"invalid character {_quote_char(char)} {where}"
    return f"invalid character {_quote_char(char)} looking for beginning of value"


def _innermost_container(doc: str, pos: int) -> str:
    stack: list[str] = []
    in_string = escaped = False
    for char in doc[:pos]:
        if in_string:
            escaped = not escaped and char == "\\"
            in_string = escaped or char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _quote_char(char: str) -> str:
    # Go's quoteChar: '\'' for a quote, "'\"'" for a double quote, Go escapes otherwise.
    if char == "'":
        return "'\\''"
    if char == '"':
        return "'\"'"
    return "'" + json.dumps(char, ensure_ascii=False)[1:-1] + "'"


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_NUMBER = re.compile(r"(\d*)(?:\.(\d*))?")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``"5m"``, ``"1h30m"``, ``"-1m"``); ValueError like Go's."""
    rest = text
    sign = 1.0
    if rest[:1] in ("-", "+"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    total = 0.0
    while rest:
        number = _DURATION_NUMBER.match(rest)
        assert number is not None  # the pattern matches the empty string
        whole, fraction = number.group(1), number.group(2)
        if not whole and not fraction:
            raise ValueError(f"time: invalid duration {go_quote(text)}")
        rest = rest[number.end() :]
        unit_end = 0
        while unit_end < len(rest) and not (rest[unit_end] == "." or rest[unit_end].isdigit()):
            unit_end += 1
        unit, rest = rest[:unit_end], rest[unit_end:]
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        total += float(f"{whole or 0}.{fraction or 0}") * _DURATION_UNITS[unit]
    return sign * total


def rfc3339(unix_ns: int, utc_offset_s: int | None = None) -> str:
    """RFC 3339 with nine fractional digits; ``Z`` when ``utc_offset_s`` is None or 0.

    Go's ``RFC3339Nano`` trims trailing zeros. The double keeps the last digit non-zero instead,
    so that every timestamp has nine digits: the form Python < 3.11's ``fromisoformat`` rejects,
    which is exactly what a client's parser has to cope with.
    """
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    nanos = nanos if nanos % 10 else nanos + 1
    zone = timezone(timedelta(seconds=utc_offset_s or 0))
    stamp = datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%dT%H:%M:%S")
    if not utc_offset_s:
        return f"{stamp}.{nanos:09d}Z"
    sign = "+" if utc_offset_s > 0 else "-"
    off_h, off_m = divmod(abs(utc_offset_s) // 60, 60)
    return f"{stamp}.{nanos:09d}{sign}{off_h:02d}:{off_m:02d}"


def local_rfc3339(unix_ns: int) -> str:
    """RFC 3339 in the machine's local zone, like Go's ``time.Time`` from a file's mtime."""
    offset = datetime.fromtimestamp(unix_ns // 1_000_000_000).astimezone().utcoffset()
    return rfc3339(unix_ns, int(offset.total_seconds()) if offset else None)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.12.0-rc1"`` -> ``(0, 12, 0)``, for comparing server versions."""
    parts = re.findall(r"\d+", version.split("-", 1)[0])
    return tuple(int(part) for part in parts) or (0,)


# Model names -----------------------------------------------------------------------------------
DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
_MISSING = "!MISSING!"  # a part that is present but empty, e.g. "/m"; never valid


@dataclass(frozen=True)
class ModelName:
    """``host/namespace/model:tag`` with the defaults filled in."""

    host: str
    namespace: str
    model: str
    tag: str

    @property
    def display(self) -> str:
        """The shortest form (Go ``DisplayShortest``): default host and namespace dropped."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        else:
            prefix = ""
        return f"{prefix}{self.model}:{self.tag}"

    @property
    def full(self) -> str:
        """``registry.ollama.ai/library/llama3:latest``: the form capability errors quote."""
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def key(self) -> str:
        """What lookups compare: the full name, case-folded (lookup is case-insensitive)."""
        return self.full.lower()

    @property
    def is_valid(self) -> bool:
        return (
            _valid_part(self.host, 350, extra=".:-_")
            and _valid_part(self.namespace, 80, extra="-_")
            and _valid_part(self.model, 80, extra=".-_")
            and _valid_part(self.tag, 80, extra=".-_")
        )


def parse_name(raw: str) -> ModelName:
    """Split ``raw`` like Go's ``model.ParseName``; check ``.is_valid`` before trusting it."""
    rest, tag = raw, ""
    if rest.rfind(":") > rest.rfind("/"):
        rest, tag = _cut_last(rest, ":")
    if "/" not in rest:
        return ModelName(DEFAULT_HOST, DEFAULT_NAMESPACE, rest, tag or DEFAULT_TAG)
    rest, model = _cut_last(rest, "/")
    if "/" not in rest:
        return ModelName(DEFAULT_HOST, rest or DEFAULT_NAMESPACE, model, tag or DEFAULT_TAG)
    host, namespace = _cut_last(rest, "/")
    host = host.split("://", 1)[-1]  # a scheme ("https://") is allowed and dropped
    return ModelName(host, namespace, model, tag or DEFAULT_TAG)


def _cut_last(text: str, sep: str) -> tuple[str, str]:
    before, _, after = text.rpartition(sep)
    return before or _MISSING, after or _MISSING


def _valid_part(part: str, max_len: int, *, extra: str) -> bool:
    if not 1 <= len(part) <= max_len:
        return False
    if not (part[0].isascii() and (part[0].isalnum() or part[0] == "_")):
        return False
    return all(char.isascii() and (char.isalnum() or char in extra) for char in part[1:])


# Version profiles ------------------------------------------------------------------------------
# The releases the conformance tests run on: the last 0.11, the first that refuses an
# over-long prompt, the last before the llama-server runner, the first with it, the newest.
PROFILES = ("0.11.11", "0.12.6", "0.24.0", "0.30.0", "0.33.0-rc2")


@dataclass(frozen=True)
class Rule:
    """One change of wire behaviour: in effect from ``since`` on."""

    name: str
    since: tuple[int, ...]
    source: str  # file and function in the Ollama source, and the tag read
    newer: str  # the behaviour from ``since`` on
    older: str  # the behaviour before


CHAT_NOT_FOUND_PLAIN = "chat_not_found_plain"
REFUSES_OVERFLOW = "refuses_overflow"
STREAM_ERROR_STATUS = "stream_error_status"
VRAM_DEFAULT_CONTEXT = "vram_default_context"
TAGS_CONTEXT_LENGTH = "tags_context_length"
LLAMA_SERVER = "llama_server"
DONE_CARRIES_CONTENT = "done_carries_content"
PROMPT_EVAL_SKIPS_CACHE = "prompt_eval_skips_cache"
SHIFT_OFF_REFUSES = "shift_off_refuses"
V1_OWN_FINISH_CHUNK = "v1_own_finish_chunk"

RULES = (
    Rule(
        CHAT_NOT_FOUND_PLAIN,
        (0, 12, 0),
        "server/routes.go ChatHandler, GetModel before scheduling (v0.12.0; v0.11.11: "
        "handleScheduleError)",
        "/api/chat for a missing model: 404 `model 'x' not found`",
        '404 `model "x" not found, try pulling it first`',
    ),
    Rule(
        REFUSES_OVERFLOW,
        (0, 12, 6),
        "runner/ollamarunner/runner.go and runner/llamarunner/runner.go NewSequence, "
        "errorInputTooLong (v0.12.6); server/prompt.go chatPrompt's truncate argument",
        "truncate=false and a prompt over num_ctx: 400 `the input length exceeds the context "
        "length`",
        "truncate is ignored: chatPrompt drops old messages, then the runner keeps num_ctx "
        "tokens (the first num_keep and the end) and answers 200",
    ),
    Rule(
        STREAM_ERROR_STATUS,
        (0, 12, 6),
        "server/routes.go streamResponse (v0.12.6: c.Writer.Written check)",
        'an error from the runner before any output: its status, `{"error": ...}`, '
        "Content-Type application/json",
        '200 application/x-ndjson whose only line is `{"error": ...}`',
    ),
    Rule(
        VRAM_DEFAULT_CONTEXT,
        (0, 15, 5),
        "server/routes.go Serve, `vram-based default context` (v0.15.5); envconfig "
        "ContextLength default 0",
        "default num_ctx: OLLAMA_CONTEXT_LENGTH, else 4096 / 32768 (>= 23 GiB VRAM) / "
        "262144 (>= 47 GiB)",
        "default num_ctx: OLLAMA_CONTEXT_LENGTH, else 4096",
    ),
    Rule(
        TAGS_CONTEXT_LENGTH,
        (0, 30, 0),
        "api/types.go ListModelResponse.Capabilities and ModelDetails.ContextLength (v0.30.0)",
        "/api/tags entries carry details.context_length and capabilities",
        "they carry neither (/api/show is the only source)",
    ),
    Rule(
        LLAMA_SERVER,
        (0, 30, 0),
        "llm/llama_server.go Completion and Chat, statusErrorMessage; the out-of-memory "
        "startup check (v0.30.0)",
        "overflow: 400 whose error is llama-server's JSON body (exceed_context_size_error, "
        "n_prompt_tokens, n_ctx); OOM: `llama-server reported out-of-memory during startup`",
        "overflow: `the input length exceeds the context length`; OOM: `model requires more "
        "system memory (...) than is available (...)` (llm/server.go)",
    ),
    Rule(
        DONE_CARRIES_CONTENT,
        (0, 13, 3),
        "model/parsers/olmo3.go Olmo3Parser.Add drains held-back text when done (v0.13.3; "
        "gemma4.go and lfm2.go by v0.20.0), put on the done line by server/routes.go "
        "ChatHandler; from v0.30.0 also llm/llama_server.go Chat's final chunk",
        "the done line may carry the last piece of the answer",
        "the done line's content is empty",
    ),
    Rule(
        PROMPT_EVAL_SKIPS_CACHE,
        (0, 30, 0),
        "llm/llama_server.go Completion and Chat: PromptEvalCount is llama-server's "
        "timings.prompt_n; llamaServerChatRequest sends cache_prompt (= shift, on by default) "
        "(v0.30.0)",
        "prompt_eval_count leaves out the prefix reused from the previous request's cache",
        "prompt_eval_count is every prompt token the runner kept (NewSequence numPromptInputs)",
    ),
    Rule(
        SHIFT_OFF_REFUSES,
        (0, 30, 9),
        "llm/llama_server.go completionPromptForRequest, launch config ContextShift from "
        "server/sched.go resolveContextShift (v0.30.9)",
        "truncate=true, shift=false and a prompt over the window: 400 `the prompt is longer "
        "than the context length currently available to the model; ...`",
        "the prompt is cut to fit all the same (shift only governs shifting while generating)",
    ),
    Rule(
        V1_OWN_FINISH_CHUNK,
        (0, 32, 6),
        "openai/openai.go FinishChunk, written by middleware/openai.go's chat writer (v0.32.6)",
        "/v1 streams send the finish reason in a chunk of its own",
        "the finish reason rides on the last content chunk",
    ),
)
_BY_NAME = {rule.name: rule for rule in RULES}

RUNNER_FAILED_PREFIX = "an error was encountered while running the model: "
INPUT_TOO_LONG = "the input length exceeds the context length"
OOM_LLAMA_SERVER = (
    "llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory"
)
OOM_SCHEDULER = "model requires more system memory (5.6 GiB) than is available (3.1 GiB)"
GIB = 1024**3


@dataclass(frozen=True)
class Profile:
    """The wire rules in effect for one emulated version."""

    version: str

    def has(self, rule: str) -> bool:
        """Whether the emulated release has the newer behaviour of ``rule``."""
        return version_tuple(self.version) >= _BY_NAME[rule].since

    def default_num_ctx(self, context_length_env: int | None, vram_bytes: int) -> int:
        """The server's default num_ctx: OLLAMA_CONTEXT_LENGTH, else by release and VRAM."""
        if context_length_env:
            return context_length_env
        if self.has(VRAM_DEFAULT_CONTEXT):
            # 47/23 GiB rather than 48/24: the server allows for rounding (routes.go Serve).
            if vram_bytes >= 47 * GIB:
                return 262144
            if vram_bytes >= 23 * GIB:
                return 32768
        return 4096

    def overflow_text(self, prompt_tokens: int, num_ctx: int) -> str:
        """The error text for a prompt over num_ctx with truncate=false (REFUSES_OVERFLOW)."""
        if not self.has(LLAMA_SERVER):
            return INPUT_TOO_LONG
        # Ollama passes llama-server's body through as the error string (statusErrorMessage).
        return json.dumps(
            {
                "error": {
                    "code": 400,
                    "message": f"request ({prompt_tokens} tokens) exceeds the available "
                    f"context size ({num_ctx} tokens), try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": prompt_tokens,
                    "n_ctx": num_ctx,
                }
            },
            separators=(",", ":"),
        )

    @property
    def out_of_memory_text(self) -> str:
        return OOM_LLAMA_SERVER if self.has(LLAMA_SERVER) else OOM_SCHEDULER

    @property
    def runner_terminated_text(self) -> str:
        """A runner that died while loading (llm/server.go WaitUntilRunning before v0.30,
        llm/llama_server.go after), answered as 500 by routes.go handleScheduleError."""
        if self.has(LLAMA_SERVER):
            return "llama-server process has terminated: exit status 1: error loading model"
        return "llama runner process has terminated: exit status 2"

    @staticmethod
    def runner_failed_text(reason: str = "unexpected EOF") -> str:
        """The mid-stream error line's text (llm/server.go, llm/llama_server.go; all releases)."""
        return RUNNER_FAILED_PREFIX + reason


# Responses -------------------------------------------------------------------------------------
JSON_UTF8 = "application/json; charset=utf-8"  # gin's c.JSON
NDJSON = "application/x-ndjson"


class ApiError(Exception):
    """An error answered before any output: the HTTP status and the server's text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RunnerError(ApiError):
    """An error from the model runner, after the request was scheduled but before any output.

    The server sends it through its stream writer, so how it looks depends on the release
    (STREAM_ERROR_STATUS): see :func:`runner_error_reply`.
    """


@dataclass
class Reply:
    """A complete response body (sent with Content-Length)."""

    status: int
    body: bytes
    content_type: str
    is_json: bool = True


@dataclass
class Stream:
    """A 200 streamed with chunked transfer encoding, one framed JSON document per chunk.

    The last ``terminal`` payloads end the stream normally (the ``done`` line; for SSE the
    finish chunk, usage chunk and ``[DONE]``); scripted faults cut the stream before them.
    ``on_complete`` runs just before the terminal payloads are written, so that its effect (a
    pulled model being installed) is visible as soon as the client sees the stream end.
    """

    content_type: str
    payloads: Sequence[bytes]
    frame: Callable[[bytes], bytes]
    error_payload: Callable[[str], bytes]
    terminal: int = 1
    on_complete: Callable[[], None] | None = None


Response = Union[Reply, Stream]


def json_reply(
    value: Any, status: int = 200, *, content_type: str = JSON_UTF8, newline: bool = False
) -> Reply:
    """``newline`` mimics Go's ``json.Encoder`` (used by the OpenAI layer), which ends with \\n."""
    return Reply(status, go_json(value) + (b"\n" if newline else b""), content_type)


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode("utf-8"), "text/plain; charset=utf-8", is_json=False)


def ndjson_stream(
    documents: Sequence[Any], *, terminal: int = 1, on_complete: Callable[[], None] | None = None
) -> Stream:
    """Newline-delimited JSON; a mid-stream error is one more line ``{"error": "..."}``."""
    return Stream(
        NDJSON,
        [go_json(document) for document in documents],
        frame=lambda payload: payload + b"\n",
        error_payload=lambda message: go_json({"error": message}),
        terminal=terminal,
        on_complete=on_complete,
    )


def runner_error_reply(status: int, message: str, *, keeps_status: bool) -> Response:
    """A runner's error before any output, as server/routes.go streamResponse sends it.

    From v0.12.6 (``keeps_status``): the status and ``{"error": ...}`` with the Content-Type
    streamResponse set, ``application/json`` without a charset. Before: a 200 NDJSON stream
    whose only line is the error.
    """
    if keeps_status:
        return json_reply({"error": message}, status, content_type="application/json")
    return Stream(
        NDJSON,
        [go_json({"error": message})],
        frame=lambda payload: payload + b"\n",
        error_payload=lambda text: go_json({"error": text}),
        terminal=1,
    )


# Request checks --------------------------------------------------------------------------------
PROMPT_TOO_LONG = (
    "the prompt is longer than the context length currently available to the model; "
    "shorten the prompt, adjust the context length in settings, or use a model with a longer "
    "context length"
)
THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_CHOICES = '"high", "medium", "low", "max", true, or false'

# Go field types of the request structs, for Go's "cannot unmarshal" messages.
_COMMON = {
    "model": "string",
    "stream": "bool",
    "options": "map[string]interface {}",
    "truncate": "bool",
    "shift": "bool",
    "logprobs": "bool",
    "top_logprobs": "int",
}
CHAT_FIELDS = {**_COMMON, "messages": "[]api.Message", "tools": "api.Tools"}
GENERATE_FIELDS = {
    **_COMMON,
    **dict.fromkeys(("prompt", "suffix", "system", "template"), "string"),
    "context": "[]int",
    "raw": "bool",
    "images": "[]api.ImageData",
}
SHOW_FIELDS = {
    **dict.fromkeys(("model", "name", "system", "template"), "string"),
    "verbose": "bool",
    "options": "map[string]interface {}",
}
PULL_FIELDS = {
    **dict.fromkeys(("model", "name", "username", "password"), "string"),
    "stream": "bool",
    "insecure": "bool",
}
_MESSAGE_FIELDS = {"role": "string", "content": "string", "thinking": "string"}

_OPTION_TYPES = {
    **dict.fromkeys(
        ("num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch"),
        "integer",
    ),
    **dict.fromkeys(("num_gpu", "main_gpu", "num_thread"), "integer"),
    **dict.fromkeys(
        ("min_p", "typical_p", "repeat_penalty", "temperature", "top_p"),
        "float32",
    ),
    **dict.fromkeys(("presence_penalty", "frequency_penalty"), "float32"),
    "use_mmap": "boolean",
    "stop": "array",
}


def decode_request(
    body: bytes,
    struct: str,
    fields: Mapping[str, str],
    *,
    message_fields: Mapping[str, str] = _MESSAGE_FIELDS,
) -> dict[str, Any]:
    """The body as a JSON object, type-checked against ``fields``; ``null`` gives ``{}``."""
    try:
        value = decode_json(body)
    except DecodeError as exc:
        raise ApiError(400, str(exc)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(
            400, f"json: cannot unmarshal {_kind(value)} into Go value of type api.{struct}"
        )
    for key, item in value.items():
        if key in fields:
            _check_type(item, fields[key], f"{struct}.{key}")
    for message in value.get("messages") or ():
        if not isinstance(message, dict):
            item_type = fields["messages"].removeprefix("[]")
            raise ApiError(400, _type_error(message, f"{struct}.messages", item_type))
        for key, go_type in message_fields.items():
            _check_type(message.get(key), go_type, f"{struct}.messages.{key}")
        if isinstance(message.get("role"), str):
            message["role"] = message["role"].lower()  # api.Message lowercases on decode
    return value


def _check_type(value: Any, go_type: str, where: str) -> None:
    if value is None:  # Go leaves the field at its zero value
        return
    expected: type | tuple[type, ...]
    if go_type == "string":
        expected = str
    elif go_type == "bool":
        expected = bool
    elif go_type == "int":
        if isinstance(value, float) or _kind(value) != "number":
            raise ApiError(400, _type_error(value, where, go_type))
        return
    elif go_type.startswith("float"):
        if _kind(value) != "number":
            raise ApiError(400, _type_error(value, where, go_type))
        return
    elif go_type.startswith("map"):
        expected = dict
    else:
        expected = list
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ApiError(400, _type_error(value, where, go_type))


def _type_error(value: Any, where: str, go_type: str) -> str:
    kind = _kind(value)
    if kind == "number" and go_type == "int":
        kind = f"number {value}"
    return f"json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def parse_model_name(raw: Any, *, empty_status: int, empty_message: str) -> ModelName:
    """A valid model name, or the 400/404 the endpoint gives for an empty or malformed one."""
    text = raw if isinstance(raw, str) else ""
    if not text:
        raise ApiError(empty_status, empty_message)
    name = parse_name(text)
    if not name.is_valid:
        raise ApiError(400, "invalid model name")
    return name


def parse_think(value: Any) -> bool | str | None:
    """``think``: a bool or a level; other strings and types are 400s (api.ThinkValue)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value not in THINK_LEVELS:
            raise ApiError(
                400, f"invalid think value: {go_quote(value)} (must be {_THINK_CHOICES})"
            )
        return value
    raise ApiError(400, f"think must be a boolean or string ({_THINK_CHOICES})")


def parse_keep_alive(value: Any) -> float | None:
    """Seconds; ``inf`` for a negative value (forever); None when absent (server default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        go_type = {bool: "bool", dict: "map[string]interface {}"}.get(type(value), "[]interface {}")
        raise ApiError(400, f"Unsupported type: '{go_type}'")
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    else:
        seconds = float(value)
    return math.inf if seconds < 0 else seconds


def check_format(value: Any) -> None:
    """``format`` must be ``"json"`` or a schema object; anything else is a 500 from the runner."""
    if value in (None, "", "json") or isinstance(value, dict):
        return
    raw = go_json(value).decode("utf-8")
    raise ApiError(
        500, f'invalid format: {go_quote(raw)}; expected "json" or a valid JSON Schema object'
    )


def resolve_options(model: FakeModel, requested: Any) -> dict[str, Any]:
    """Request options over Modelfile PARAMETERs, type-checked like ``api.Options.FromMap``.

    A wrong type is a 500 (it surfaces from the scheduler); unknown keys are dropped.
    """
    merged = {**model.parameters, **(requested if isinstance(requested, dict) else {})}
    options: dict[str, Any] = {}
    for key, value in merged.items():
        kind = _OPTION_TYPES.get(key)
        if kind is None or value is None:
            continue
        options[key] = _option_value(key, value, kind)
    return options


def _option_value(key: str, value: Any, kind: str) -> Any:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer" and number:
        return int(value)
    if kind == "float32" and number:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "array" and isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ApiError(500, f"option {go_quote(key)} must be of an array of strings")
        return value
    raise ApiError(500, f"option {go_quote(key)} must be of type {kind}")


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
