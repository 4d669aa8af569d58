"""Rename a copy of persona-ollama into the plugin of another server: step 2 of
docs/writing-a-provider.md.

    python scripts/new_provider.py acme Acme

run at the root of the copy, renames every *name* the template gives itself, and no *fact*
about Ollama:

- the package ``persona_ollama`` -> ``persona_acme`` (its directory and every import, the
  pytest plugin, the pluggy project and entry-point group, the logger, coverage and mypy);
- the distribution and CLI command ``persona-ollama`` -> ``persona-acme`` (pyproject.toml,
  README, .ci/run, tox.ini);
- the environment prefix ``PERSONA_OLLAMA_`` -> ``PERSONA_ACME_``;
- the provider class ``OllamaProvider`` -> ``AcmeProvider``;
- the provider's name in Persona's registry, ``ollama`` -> ``acme`` (the ``name`` property, the
  ``persona.providers`` entry point, ``--provider ollama`` in the docs).

It leaves alone what is true of Ollama: backends/ollama.py stays a working Ollama backend,
``FakeOllama`` a double of Ollama, ``OLLAMA_HOST`` Ollama's variable, CHANGELOG.md the
template's history. It deletes the template's own machinery (this script, its test and the
template test), which has no use in the copy. Standard library only; Python 3.9+.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

OLD_NAME = "ollama"
OLD_DISPLAY = "Ollama"
# Never read or written: version control, environments, caches and build output.
SKIPPED_DIRS = {".git", ".venv", ".tox", "build", "dist", "__pycache__", "node_modules"}
SKIPPED_SUFFIXES = (".egg-info", "_cache")
# Files whose text is left as it is: the template's history, and data that names models.
KEPT_FILES = {"CHANGELOG.md"}
KEPT_SUFFIXES = (".csv", ".gguf", ".png", ".jpg", ".whl", ".gz", ".zip")
# The template's own machinery, deleted from the copy (paths relative to the root).
TEMPLATE_ONLY = (
    "scripts/new_provider.py",
    "tests/unit/test_new_provider.py",
    "tests/contract/test_template.py",
)
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DISPLAY = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class RenameError(Exception):
    """The copy cannot be renamed as asked; the message says why."""


def replacements(name: str, display: str) -> list[tuple[re.Pattern[str], str]]:
    """The textual renames, in the order they are applied, as (pattern, replacement)."""
    dashed = name.replace("_", "-")
    return [
        (re.compile(r"PERSONA_OLLAMA"), f"PERSONA_{name.upper()}"),
        (re.compile(r"persona_ollama"), f"persona_{name}"),
        (re.compile(r"persona-ollama"), f"persona-{dashed}"),
        (re.compile(r"\bOllamaProvider\b"), f"{display}Provider"),
        # The registry name: the provider's `name`, the entry point, and hosts asking for it.
        (re.compile(r'return "ollama"'), f'return "{name}"'),
        (re.compile(r'registry: ``"ollama"``'), f'registry: ``"{name}"``'),
        (re.compile(r'^ollama = "persona_', re.MULTILINE), f'{name} = "persona_'),
        (re.compile(r"--provider ollama\b"), f"--provider {name}"),
    ]


def check(root: Path, name: str, display: str) -> None:
    """Refuse what would leave a half-renamed copy, before anything is changed."""
    if not NAME.match(name):
        raise RenameError(
            f"{name!r} is not a short name: use lower-case letters, digits and _, e.g. acme."
        )
    if not DISPLAY.match(display):
        raise RenameError(
            f"{display!r} is not a display name: a capitalised word, e.g. Acme "
            "(the provider class becomes AcmeProvider)."
        )
    if name == OLD_NAME:
        raise RenameError(f"{name!r} is the template's own name; pick your server's.")
    if not (root / "persona_ollama").is_dir():
        raise RenameError(
            f"{root} has no persona_ollama package: run this at the root of a fresh copy of "
            "the template (it may have been renamed already)."
        )
    if (root / f"persona_{name}").exists():
        raise RenameError(f"{root / f'persona_{name}'} exists already.")


def text_files(root: Path) -> list[Path]:
    """Every file of the copy whose text may hold a name, sorted."""
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p in SKIPPED_DIRS or p.endswith(SKIPPED_SUFFIXES) for p in parts):
            continue
        if path.is_file() and path.name not in KEPT_FILES and not path.name.endswith(KEPT_SUFFIXES):
            found.append(path)
    return found


def rename(root: Path, name: str, display: str) -> list[str]:
    """Rename the copy at ``root``; returns the changed and deleted files, relative to it."""
    check(root, name, display)
    changed: list[str] = []
    for relative in TEMPLATE_ONLY:
        if (root / relative).is_file():
            (root / relative).unlink()
            changed.append(f"deleted {relative}")
    for leftover in root.glob("*.egg-info"):  # build output that names the old package
        shutil.rmtree(leftover)
    rules = replacements(name, display)
    for path in text_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
        new = text
        for pattern, replacement in rules:
            new = pattern.sub(replacement, new)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(f"edited {path.relative_to(root).as_posix()}")
    (root / "persona_ollama").rename(root / f"persona_{name}")
    changed.append(f"moved persona_ollama -> persona_{name}")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``new_provider.py NAME DISPLAY [--root DIR]``."""
    parser = argparse.ArgumentParser(
        description="Rename a copy of persona-ollama into persona-NAME (see "
        "docs/writing-a-provider.md)."
    )
    parser.add_argument("name", help="short name of your server, e.g. acme")
    parser.add_argument("display", help="its display name, e.g. Acme (class AcmeProvider)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the copy (default: .)")
    args = parser.parse_args(argv)
    try:
        changed = rename(args.root.resolve(), args.name, args.display)
    except RenameError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    edited = sum(1 for line in changed if line.startswith("edited "))
    print(
        f"persona-{args.name.replace('_', '-')}: {edited} files edited, package "
        f"persona_{args.name}, class {args.display}Provider, entry point "
        f'{args.name} = "persona_{args.name}:{args.display}Provider".'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
