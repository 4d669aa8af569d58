"""Configured secrets kept out of everything a server can echo back.

A server or a proxy in front of it may repeat the request's headers in an error body (a debug
page, a misconfigured gateway). That text becomes an error's message and ``server_text``, a log
line, `doctor`'s report; so the transport scrubs every configured secret from it first, in
every form it travels in: the bearer token, the whole Authorization value, a URL password (and
a lone URL user name, often a token), the base64 ``user:password`` of basic auth, and their
percent-encoded, JSON- and repr-escaped spellings.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from ..errors import ServerError

REDACTED = "[redacted]"
# Shorter values are not scrubbed: replacing every "ab" would garble the text and hides little.
MIN_SECRET = 4
# The fields of a server's document that name things the plugin asks for again (a model, its
# digest): kept as they came, so that a short password inside a model's name cannot break it.
IDENTIFIERS = frozenset({"name", "model", "id", "digest", "parent_model"})
# Where a message cuts a server's value short: its end, the "..." of a shortened field, the
# closing quote of a repr()'d snippet. The start of a secret just before one is scrubbed too.
_CUT = re.compile(r"\.\.\.|['\"]|\Z")


def _forms(secret: str) -> set[str]:
    """The spellings of ``secret`` that a server may echo."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    forms |= {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    # A message may quote the server's text with repr(): either quote, each escaped.
    forms |= {repr(secret)[1:-1], repr(secret + "'\"")[1:-4]}
    return forms


def _basic(user: str, password: str) -> set[str]:
    """The basic-auth credentials as requests sends them (latin-1), and as UTF-8; each also
    in the URL-safe alphabet and without its padding, as a gateway that re-encodes may show."""
    found = set()
    for encoding in ("latin-1", "utf-8"):
        try:
            raw = f"{user}:{password}".encode(encoding)
        except UnicodeEncodeError:
            continue
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            found |= {encoded.decode("ascii"), encoded.decode("ascii").rstrip("=")}
    return found


def _start_before(text: str, end: int, forms: list[str]) -> int | None:
    """Where the earliest start (four characters or more, not a whole form) of one of
    ``forms`` that ends at ``end`` begins, if any."""
    found = None
    for form in forms:
        for size in range(min(len(form) - 1, end), MIN_SECRET - 1, -1):
            if text.startswith(form[:size], end - size):
                if found is None or end - size < found:
                    found = end - size
                break
    return found


class Redactor:
    """Scrubs a fixed set of secrets (each in all its forms) from text and from errors."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET:
                forms |= _forms(secret)
        # Longest first, so that a secret inside a longer form goes with it. Matched in any
        # case: an error page may show the headers upper-cased, and "%2f" is "%2F".
        self._forms = sorted(
            {f.lower() for f in forms if len(f) >= MIN_SECRET}, key=len, reverse=True
        )
        self._pattern = re.compile("|".join(map(re.escape, self._forms)), re.IGNORECASE)

    @classmethod
    def for_request(
        cls,
        headers: Mapping[str, str],
        auth: tuple[str, str] | None = None,
        *,
        also: Iterable[tuple[str, str]] = (),
    ) -> Redactor:
        """The secrets of a request: every Authorization-like header value (and the credential
        after its scheme word), the URL's ``(user, password)``, and the ``(user, password)``
        pairs ``also`` names (what requests takes from ~/.netrc and a proxy's URL)."""
        secrets: list[str] = []
        for name, value in headers.items():
            if name.lower() in ("authorization", "proxy-authorization", "x-api-key", "api-key"):
                secrets.append(value)
                secrets.extend(value.split(None, 1)[1:])  # "Bearer TOKEN" -> "TOKEN"
        for user, password in [auth] if auth is not None else []:
            secrets.append(password if password else user)
            secrets.extend(_basic(user, password))
        for user, password in also:
            if password:
                secrets += [password, *_basic(user, password)]
        return cls(secrets)

    def __bool__(self) -> bool:
        return bool(self._forms)

    def text(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``[redacted]``, and the start
        of one (four characters or more) that runs into a cut: a message that shows only the
        first characters of a server's value (a wrong-typed field, a line that is not JSON)
        may have cut an echoed secret in two."""
        if not self._forms:
            return text
        text = self._pattern.sub(REDACTED, text)
        low = text.lower()
        if len(low) != len(text):  # a character whose lower case is longer: match as it is
            low = text
        starts = [form for form in self._forms if form[:MIN_SECRET] in low]
        if not starts:
            return text
        # The last characters before a cut must lie in a form: most cuts are let go at once.
        grams = {f[i : i + MIN_SECRET] for f in starts for i in range(len(f) - MIN_SECRET + 1)}
        pieces: list[str] = []
        done = 0
        for cut in _CUT.finditer(text):
            end = cut.start()
            if end - MIN_SECRET < done or low[end - MIN_SECRET : end] not in grams:
                continue
            start = _start_before(low, end, starts)
            if start is not None and start >= done:
                pieces += [text[done:start], REDACTED]
                done = end
        return "".join(pieces) + text[done:]

    def data(self, value: Any) -> Any:
        """A decoded JSON document with every whole form of every secret replaced in its
        text values (not in IDENTIFIERS): a server may echo the request's headers into any
        field of a successful answer (a model's remote_host, its family), which messages,
        warnings and the CLI then show."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self._pattern.sub(REDACTED, value)
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, dict):
            return {
                key: item if key in IDENTIFIERS and isinstance(item, str) else self.data(item)
                for key, item in value.items()
            }
        return value

    def error(self, error: ServerError) -> ServerError:
        """``error`` with every text it shows scrubbed, field by field (in place); returned."""
        if self._forms:
            error.scrub(self.text)
        return error
