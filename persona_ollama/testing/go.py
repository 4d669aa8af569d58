"""Go details: the default server is a Go program, and the double reproduces how Go encodes
and decodes.

Its JSON is encoded by ``encoding/json`` (compact, ``<>&`` escaped), its decoder errors are Go's,
``keep_alive`` strings are parsed by ``time.ParseDuration`` and times are RFC 3339 with
nanoseconds. A client that works against the double should work against the server, so the double
reproduces these details, not Python's. Each rule cites where in the server's Go source it was
read; the server's protocol reference (docs/reference) describes each behaviour in prose.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = [
    "DecodeError",
    "decode_json",
    "go_float",
    "go_json",
    "go_quote",
    "local_rfc3339",
    "parse_duration",
    "rfc3339",
    "syntax_message",
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
