"""Every public function, and every long one, says its contract in a docstring."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import persona_ollama

PACKAGE = Path(persona_ollama.__file__).resolve().parent
# testing/ is the double, documented on its own terms.
SKIPPED = ("testing",)
LONG = 40  # lines: past this a reader needs the contract before the body


def _functions(
    node: ast.AST, public: bool, prefix: str
) -> Iterator[tuple[str, bool, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, is public, node) for each function under ``node``; a function is
    public when its name and every enclosing class's are, and no function encloses it."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + child.name, public and not child.name.startswith("_"), child
            yield from _functions(child, False, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            inner = public and not child.name.startswith("_")
            yield from _functions(child, inner, f"{prefix}{child.name}.")


def _undocumented() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in SKIPPED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name, public, function in _functions(tree, True, ""):
            length = (function.end_lineno or function.lineno) - function.lineno + 1
            if (public or length > LONG) and ast.get_docstring(function) is None:
                found.append(f"{relative.as_posix()}:{function.lineno} {name} ({length} lines)")
    return found


def test_public_and_long_functions_have_docstrings() -> None:
    assert _undocumented() == []


def test_the_check_sees_a_missing_docstring() -> None:
    source = "class Public:\n    def method(self):\n        return 1\n"
    functions = list(_functions(ast.parse(source), True, ""))

    assert [(name, public) for name, public, _ in functions] == [("Public.method", True)]
    assert ast.get_docstring(functions[0][2]) is None
