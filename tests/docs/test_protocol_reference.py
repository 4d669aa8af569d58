"""The project's facts about the server live in the repository: every pointer into
docs/reference/ollama-protocol.md names a section that exists, and no file points elsewhere."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference" / "ollama-protocol.md"
# docs/reference/ollama-protocol.md, "Section" (a comment may wrap after the comma)
POINTER = re.compile(r'ollama-protocol\.md,?\s*(?:#\s*)?((?:"[^"]+"(?:,\s*|\s+and\s+)?)+)')


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / line for line in out.splitlines() if line.endswith((".py", ".md"))]
    return [path for path in files if path.exists()]


def headings() -> set[str]:
    return {
        line[3:].strip()
        for line in REFERENCE.read_text("utf-8").splitlines()
        if line.startswith("## ")
    }


def test_every_pointer_names_an_existing_section() -> None:
    known = headings()
    pointers = 0
    for path in tracked_files():
        if path == Path(__file__).resolve():
            continue
        text = " ".join(path.read_text("utf-8", errors="replace").split())
        for match in POINTER.finditer(text):
            for section in re.findall(r'"([^"]+)"', match.group(1)):
                pointers += 1
                assert section in known, f"{path.relative_to(ROOT)}: no section {section!r}"
    assert pointers >= 10


def test_no_file_refers_to_a_reading_aid_outside_the_repository() -> None:
    names = ("OLLAMA_API", "DESIGN", "PERSONA_CONTRACT")  # spelled apart: this file is scanned too
    outside = re.compile("|".join(re.escape(name + ".md") for name in names))
    for path in tracked_files():
        found = outside.search(path.read_text("utf-8", errors="replace"))
        assert found is None, f"{path.relative_to(ROOT)} refers to {found.group(0)}"
