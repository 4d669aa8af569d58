"""No Ollama-specific name above the backends: the kernel speaks of "the server".

The kernel is every module of the package except Ollama's backend (``backends/ollama*.py``),
the /v1 backend (``backends/openai*.py``: it may name Ollama's /v1 where that is a fact about
that server), the catalogue (``choosing/``), the command line (``cli/``) and the doubles
(``testing/``). A backend declares what the kernel needs (backends/rules.py); a provider built
from this template then replaces the backends and keeps the kernel as it is.

The scan reads each kernel file as text (code, strings, comments and docstrings alike) and
reports ``file:line: token`` for every forbidden token:

- "ollama" in any case, except inside this product's own names (``persona_ollama``,
  ``PERSONA_OLLAMA_``, ``persona-ollama``, ``OllamaProvider``: the template's rename script
  renames them) and inside a block of compatibility aliases marked by :data:`BEGIN` and
  :data:`END` lines;
- Ollama's default port, its routes (``/api/...``) and its option names as sent on the wire.

Allowed occurrences outside that are listed in :data:`SEAM`, each with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import persona_ollama
from persona_ollama.backends.ollama_rules import OPTIONS as OLLAMA_OPTIONS

ROOT = Path(persona_ollama.__file__).resolve().parent

NOT_KERNEL = ("choosing/", "cli/", "testing/")
NOT_KERNEL_FILES = re.compile(r"backends/(ollama|openai)[^/]*\.py")

# The product's own names, taken out before the scan.
OWN_NAMES = re.compile(r"persona_ollama|PERSONA_OLLAMA_|persona-ollama|OllamaProvider")
FORBIDDEN = {
    "ollama": re.compile(r"(?i)ollama"),
    "default port": re.compile(r"11434"),
    # A route written out, or built: f"/api/{name}", "/api/" + name.
    "route": re.compile(r"/api/[a-z{]?"),
    # Every option Ollama's backend declares (num_ctx, num_gpu ...), and its wire keep_alive.
    "option": re.compile(r"\b(?:" + "|".join(sorted(OLLAMA_OPTIONS)) + r")\b|[\"']keep_alive[\"']"),
}
# A block of compatibility aliases for the Ollama-named public classes (errors.py) sits
# between a line holding BEGIN and one holding END; what is inside is not scanned.
BEGIN = "# compatibility aliases: begin"
END = "# compatibility aliases: end"
# The files that may hold such a block: the error classes, and the package's lazy exports.
ALIAS_FILES = frozenset({"errors.py", "__init__.py"})

# Kernel file -> the exact texts it may hold, and why.
SEAM: dict[str, tuple[tuple[str, ...], str]] = {
    "backends/registry.py": (
        ('".ollama_rules", ".ollama", "OllamaBackend"',),
        "the one list of backends by API name: the template replaces its entries",
    ),
    "provider.py": (
        ("num_ctx: int | None = None,", "window=num_ctx"),
        "the public keyword of stream() and generate() (docs/reference/provider-apis.md): this "
        "product's users name the window as Ollama's option does; the kernel below calls it "
        "window, and the backend's ContextWords.window_name spells it in messages",
    ),
}

# Kernel files that other branches of issue 24 are still making neutral; the lead strikes
# each off as its branch lands (a file listed here that is clean fails the test).
PENDING: frozenset[str] = frozenset()


def is_kernel(relative: str) -> bool:
    """True for a package file (posix path below the package) that the rule covers."""
    return not relative.startswith(NOT_KERNEL) and not NOT_KERNEL_FILES.fullmatch(relative)


def kernel_files() -> list[str]:
    files = (path.relative_to(ROOT).as_posix() for path in sorted(ROOT.rglob("*.py")))
    return [relative for relative in files if is_kernel(relative)]


def violations(relative: str, text: str) -> list[str]:
    """``relative:line: token (the line)`` for each forbidden token in ``text``."""
    allowed = SEAM.get(relative, ((), ""))[0]
    found = []
    inside = False
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if BEGIN in line:
            inside = True
            if relative not in ALIAS_FILES:
                found.append(f"{relative}:{number}: alias block outside {sorted(ALIAS_FILES)}")
        if inside:
            inside = END not in line
            start = number if BEGIN in line else start
            continue
        for exact in allowed:
            line = line.replace(exact, "")
        line = OWN_NAMES.sub("", line)
        for what, pattern in FORBIDDEN.items():
            for match in pattern.finditer(line):
                found.append(f"{relative}:{number}: {what} {match.group()!r}")
    if inside:  # a block never closed would hide the rest of the file
        found.append(f"{relative}:{start}: alias block without {END!r}")
    return found


def test_the_kernel_names_no_ollama_fact_outside_the_pending_files() -> None:
    found = []
    for relative in kernel_files():
        if relative not in PENDING:
            found += violations(relative, (ROOT / relative).read_text("utf-8"))
    assert found == [], "\n".join(found)


def test_every_pending_file_exists_and_still_needs_work() -> None:
    """PENDING stays true: a file another branch made neutral is struck off it."""
    clean = [
        relative
        for relative in sorted(PENDING)
        if not (ROOT / relative).exists()
        or not violations(relative, (ROOT / relative).read_text("utf-8"))
    ]
    assert clean == [], "strike these off PENDING: " + ", ".join(clean)


def test_the_kernel_is_what_the_rule_says() -> None:
    kernel = set(kernel_files())
    assert {"endpoint.py", "names.py", "backends/__init__.py", "backends/rules.py"} <= kernel
    assert {"transport/http.py", "backends/registry.py", "backends/base.py"} <= kernel
    outside = {"backends/ollama.py", "backends/ollama_rules.py", "backends/openai_sse.py"}
    outside |= {"choosing/catalogue.py", "cli/doctor.py", "testing/server.py"}
    assert not kernel & outside
    assert set(SEAM) <= kernel
    assert PENDING.issubset(kernel)


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ('label = "Ollama server"', "ollama 'Ollama'"),
        ("# see OLLAMA_HOST", "ollama 'OLLAMA'"),
        ("url = 'http://127.0.0.1:11434'", "default port '11434'"),
        ('path = "/api/chat"', "route '/api/c'"),
        ("options['num_ctx'] = 8192", "option 'num_ctx'"),
        ("body = {'keep_alive': '5m'}", "option \"'keep_alive'\""),
    ],
)
def test_the_scan_reports_file_line_and_token(line: str, token: str) -> None:
    assert violations("x.py", f"ok = 1\n{line}\n") == [f"x.py:2: {token}"]


@pytest.mark.parametrize(
    "line",
    [
        "from persona_ollama import OllamaProvider",
        'PREFIX = "PERSONA_OLLAMA_"',
        "`persona-ollama doctor` checks the set-up",
        "keep_alive: float | None = None  # the caller's argument, not the wire name",
        "window = plan.window",
    ],
)
def test_the_products_own_names_and_neutral_words_pass(line: str) -> None:
    assert violations("x.py", line) == []


def test_a_marked_block_of_compatibility_aliases_is_not_scanned() -> None:
    text = f"a = 1\n{BEGIN}\nOllamaError = ProviderError\n{END}\nb = 'ollama'\n"
    assert violations("errors.py", text) == ["errors.py:5: ollama 'ollama'"]


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ('url = endpoint.url(f"/api/{route}")', "route '/api/{'"),
        ('url = endpoint.url("/api/" + route)', "route '/api/'"),
        ('options["num_gpu"] = 0', "option 'num_gpu'"),
        ("body = {'use_mmap': False}", "option 'use_mmap'"),
    ],
)
def test_the_scan_sees_built_routes_and_every_declared_ollama_option(line, token) -> None:
    assert violations("x.py", f"{line}\n") == [f"x.py:1: {token}"]


def test_an_alias_block_hides_nothing_outside_its_files_or_its_end() -> None:
    # Another module's block, and errors.py's block left open, would each hide what follows.
    assert violations("settings.py", f"{BEGIN}\nHOST = 'OLLAMA_HOST'\n{END}\n") == [
        "settings.py:1: alias block outside ['__init__.py', 'errors.py']"
    ]
    assert violations("errors.py", f"{BEGIN}\nOllamaError = ServerError\nx = 'ollama'\n") == [
        f"errors.py:1: alias block without {END!r}"
    ]


def test_a_seam_allows_only_its_exact_text() -> None:
    allowed = SEAM["backends/registry.py"][0][0]
    assert violations("backends/registry.py", f"    {allowed},\n") == []
    assert violations("backends/registry.py", '"other": ".ollama2"\n') == [
        "backends/registry.py:1: ollama 'ollama'"
    ]
