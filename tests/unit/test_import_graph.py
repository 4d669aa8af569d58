"""The package's import graph has no cycle, so every module only calls downward.

The graph is built from the source with ``ast``: every ``import`` and ``from ... import`` of a
``persona_ollama`` module, wherever it sits. An import inside a function counts: a lazy import
delays a dependency, it does not remove it. Imports under ``if TYPE_CHECKING:`` are left out,
because they never run: they exist only for annotations, which ``from __future__ import
annotations`` keeps as strings. Modules named as strings (``importlib.import_module``, the lazy
exports of ``persona_ollama/__init__.py``) are not seen; they are the package's public doors,
imported from outside, and import nothing back.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import persona_ollama

PACKAGE = "persona_ollama"
ROOT = Path(persona_ollama.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree`` except those in an ``if TYPE_CHECKING:`` body."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the else branch does run
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> list[str]:
    """The package modules one import statement depends on."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in known]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    if source not in known:
        return []
    # `from package import submodule` depends on the submodule, not on the package as a whole.
    submodules = [f"{source}.{alias.name}" for alias in node.names]
    found = [name for name in submodules if name in known]
    return found if len(found) == len(submodules) else [*found, source]


def import_graph() -> dict[str, set[str]]:
    """Module name -> the package modules it imports (at import time or later)."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _import_nodes(tree):
            graph[name].update(t for t in _targets(name, is_package, node, known) if t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that ends where it starts, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_lazy_imports_and_skips_type_checking_ones():
    graph = import_graph()
    # provider imports the catalogue only inside a method, when a default model is needed.
    assert f"{PACKAGE}.choosing.catalogue" in graph[f"{PACKAGE}.provider"]
    # hookspecs names ModelSpec only for annotations, under `if TYPE_CHECKING:`.
    assert f"{PACKAGE}.choosing.catalogue" not in graph[f"{PACKAGE}.choosing.hookspecs"]
    assert f"{PACKAGE}.cli.doctor" in graph
    # A command registers itself on the group it imports from cli.app, which imports no command.
    assert f"{PACKAGE}.cli.app" in graph[f"{PACKAGE}.cli.doctor"]
    assert not {name for name in graph[f"{PACKAGE}.cli.app"] if name.startswith(f"{PACKAGE}.cli")}


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}, ["b", "b2", "b"]),
    ],
)
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


# The layers of one generate(), top to bottom: a module may import its own layer or lower
# ones, never a higher one (the README's diagram draws the same path). Every module must be
# placed, so a new one states where it sits.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "testing", "_host"),  # the commands and the double: users of everything below
    ("provider", "deadline"),  # Persona's contract; the deadline of its call
    ("request",),  # checks + context plan (a window shared) -> one ChatRequest
    # the server's models; the answer (asked again if cut); what answers measure (speeds,
    # waits, GPU share)
    ("served", "stream", "restart", "timings", "waits", "offload"),
    ("backends",),  # one server API each, neutral types out
    ("choosing",),  # hardware, catalogue, selection (backends read catalogue facts)
    ("transport",),  # session, retries, deadlines, bounded NDJSON/SSE reading
    (  # the vocabulary every layer shares
        "backends.base",
        # what each backend declares to the layers above (addresses, model names), and where
        "backends.rules",
        "backends.registry",
        "backends.ollama_rules",
        "backends.openai_rules",
        "server_state",  # what the process knows of each server (facts, windows, ...)
        "catalogue_seam",  # whether choosing/ is here, and the plain default model without it
        "windows",
        "model_info",
        "context",
        "privacy",
        "options",
        "endpoint",
        "settings",
        "names",
        "thinking",
        "terminal",
        "errors",
        "balancer",  # the errors of machines that disagree behind one address
        "_persona",
        "_lazy",
    ),
)


def layer_of(module: str) -> int | None:
    """The index in LAYERS of ``module`` (its longest matching prefix), None if unplaced."""
    name = module[len(PACKAGE) + 1 :] if module != PACKAGE else ""
    best: tuple[int, int] | None = None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            matches = name == prefix or name.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def test_every_module_has_a_layer():
    graph = import_graph()
    unplaced = [m for m in graph if m != PACKAGE and layer_of(m) is None]
    assert unplaced == [], "place these in LAYERS: " + ", ".join(unplaced)


def test_modules_import_only_their_layer_or_lower_ones():
    graph = import_graph()
    upward = [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if module != PACKAGE
        and target != PACKAGE  # `from persona_ollama import __version__`: the leaf package
        and layer_of(target) is not None
        and layer_of(module) is not None
        and layer_of(target) < layer_of(module)  # type: ignore[operator]
    ]
    assert upward == []


def test_generate_reads_top_down_provider_request_backend_transport():
    graph = import_graph()
    path = [f"{PACKAGE}.{name}" for name in ("provider", "request", "backends.base")]
    assert path[1] in graph[path[0]] and path[2] in graph[path[1]]
    assert f"{PACKAGE}.transport.http" in graph[f"{PACKAGE}.backends.ollama"]
    assert f"{PACKAGE}.stream" in graph[f"{PACKAGE}.provider"]
    # Neither backend translates through the other, nor any module it is split into.
    family = {
        api: {m for m in graph if m.startswith(f"{PACKAGE}.backends.{api}")}
        for api in ("ollama", "openai")
    }
    assert f"{PACKAGE}.backends.openai_sse" in family["openai"]
    for api, other in (("ollama", "openai"), ("openai", "ollama")):
        assert not {target for m in family[api] for target in graph[m]} & family[other]


def test_the_readme_diagram_names_the_layers_in_their_order():
    """The README's diagram of one generate() matches the code: every module it names exists,
    and the path it draws (provider, request, backends, transport) runs down LAYERS."""
    # The repository's README, next to tests/ (the package may be an installed wheel).
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    diagram = readme.split("<!-- architecture -->", 1)[1].split("```text\n", 1)[1]
    diagram = diagram.split("```", 1)[0]
    named = re.findall(r"(?<![\w/])([a-z_]+(?:/[a-z_]+)*(?:\.py|/))", diagram)

    def module(name: str) -> str:
        return f"{PACKAGE}." + name.removesuffix(".py").removesuffix("/").replace("/", ".")

    modules = set(import_graph())
    assert len(named) >= 8
    for name in named:
        assert module(name) in modules, f"the README's diagram names {name}, which does not exist"
    path = [n for n in named if n in ("provider.py", "request.py", "backends/", "transport/")]
    assert path == ["provider.py", "request.py", "backends/", "transport/"]
    layers = [layer_of(module(n)) for n in path]
    assert layers == sorted(layers) and len(set(layers)) == len(layers)


@pytest.mark.parametrize(
    ("module", "layer"),
    [("persona_ollama.backends.base", 7), ("persona_ollama.backends.ollama", 4),
     ("persona_ollama.cli.doctor", 0), ("persona_ollama.elsewhere", None)],
)  # fmt: skip
def test_layer_of_takes_the_longest_prefix(module, layer):
    assert layer_of(module) == layer


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())
