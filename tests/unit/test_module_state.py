"""Every piece of process-wide mutable state in the package is known: an owner and a bound.

Module-level state joins modules behind the call graph's back (the import graph test sees only
imports), and the test suite has to reset it. Issue 24 asks for no module-level mutable state
except documented caches with an owner and a bound; this test holds the list. A new piece of
state fails it until it is written into :data:`DOCUMENTED` (or, better, owned by an object
passed explicitly); a piece that is gone fails it until it is struck off, so the list stays true.

The finder reads the source with ``ast``. A module-level name counts as state when:

- it is bound to a call of something stateful by nature (a ContextVar, a lock, a
  ``threading.local``, a weak dictionary, a counter, an ``lru_cache``);
- it is bound to an instance of a package class whose methods change the instance (assign to,
  or mutate, an attribute of ``self`` outside ``__init__``);
- it is mutated anywhere in the package: ``NAME[key] = ...``, ``del NAME[key]``,
  ``NAME += ...``, or a mutating method (``.add``, ``.append``, ``.update``, ``.pop``,
  ``.clear``, ``.setdefault``, ...), also as ``module.NAME`` from another module;
- a function rebinds it (``global NAME``);
- a module-level function is wrapped in ``functools.cache`` or ``functools.lru_cache``.

A dict, list or set that nothing mutates is a constant and is not listed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

import persona_ollama

ROOT = Path(persona_ollama.__file__).resolve().parent

# Constructors whose instances are state whatever is done with them afterwards.
STATEFUL = frozenset(
    {
        "ContextVar",
        "Lock",
        "RLock",
        "Condition",
        "Semaphore",
        "BoundedSemaphore",
        "Event",
        "local",
        "WeakValueDictionary",
        "WeakKeyDictionary",
        "WeakSet",
        "count",
        "lru_cache",
        "cache",
    }
)
MUTATORS = frozenset(
    {
        "add",
        "append",
        "appendleft",
        "extend",
        "insert",
        "update",
        "pop",
        "popitem",
        "popleft",
        "clear",
        "setdefault",
        "remove",
        "discard",
        "move_to_end",
        "sort",
        "reverse",
        "__setitem__",
        "__delitem__",
    }
)


class Owned(NamedTuple):
    owner: str  # who reads and writes it, and who resets it
    bound: str  # what limits its size (or why it needs no limit)


# "module:NAME" -> its owner and bound.
DOCUMENTED: dict[str, Owned] = {
    "persona_ollama._persona:_pending": Owned(
        "_persona's import hook: the Persona classes seen before the base module loaded",
        "one entry per provider class defined before Persona's base; emptied on adoption",
    ),
    "persona_ollama.server_state:SERVERS": Owned(
        "OllamaProvider takes its server's ServerState from it once, when built, and passes it "
        "to its backend and served models: each server's model facts, loaded windows, "
        "release, /v1 kind and served entries, and the warnings already given (per server, "
        "and the process-wide ones); tests reset it with SERVERS.clear()",
        "the MAX_SERVERS servers used last, plus those a live provider holds (weakly)",
    ),
    "persona_ollama.provider:_PROBING": Owned(
        "OllamaProvider: one hardware probe at a time for the default model",
        "a lock: no size",
    ),
    "persona_ollama.transport.http:_WATCHED": Owned(
        "Transport's _Watchdog: the connections the current thread's request took",
        "one list per thread, cleared when the request has its headers",
    ),
    "persona_ollama.windows:_canonical": Owned(
        "windows.py: canonical model names, memoised", "lru_cache(maxsize=256)"
    ),
    "persona_ollama.choosing.packaged_catalogue:packaged_document": Owned(
        "choosing: the catalogue document shipped with the package, parsed once",
        "lru_cache(maxsize=1)",
    ),
    "persona_ollama.choosing.plugins:_state": Owned(
        "choosing.plugins: the plugin manager and its load problems, built once",
        "functools.cache of a function without arguments: one entry",
    ),
    "persona_ollama.choosing.quality:packaged_medians": Owned(
        "choosing.quality: the medians shipped with the package, read once",
        "lru_cache(maxsize=1)",
    ),
    "persona_ollama.timings:_STORES": Owned(
        "TimingStore.from_env(), under _STORES_LOCK: the live store of each timings file",
        "held weakly: one entry per file while a provider holds its store",
    ),
    "persona_ollama.timings:_STORES_LOCK": Owned("guards _STORES", "a lock: no size"),
    "persona_ollama.choosing.hardware:_machine": Owned(
        "choosing.hardware: the machine's memory, system and architecture, probed once",
        "lru_cache(maxsize=1)",
    ),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _callee(node: ast.expr) -> str:
    """The last name of what ``node`` calls: ``threading.Lock()`` -> "Lock"; a call of a
    call (``functools.lru_cache(maxsize=1)(f)``) -> the inner one."""
    if isinstance(node, ast.Call):
        node = node.func
        if isinstance(node, ast.Call):
            return _callee(node)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _self_mutating(cls: ast.ClassDef) -> bool:
    """Whether a method other than __init__ changes an attribute of self."""
    for method in cls.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if method.name in ("__init__", "__post_init__"):
            continue
        for node in ast.walk(method):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = (
                    node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                )
                for target in targets:
                    while isinstance(target, (ast.Subscript, ast.Attribute)):
                        target = target.value
                        if isinstance(target, ast.Name) and target.id == "self":
                            return True
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
                and isinstance(node.func.value, ast.Attribute)
                and isinstance(node.func.value.value, ast.Name)
                and node.func.value.value.id == "self"
            ):
                return True
    return False


def _mutated_names(tree: ast.AST) -> set[str]:
    """Names (bare, or the attribute of ``module.NAME``) mutated in ``tree``."""
    found: set[str] = set()

    def name_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.update(node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in MUTATORS:
                name = name_of(node.func.value)
                if name:
                    found.add(name)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if isinstance(node, ast.AugAssign) and isinstance(target, ast.Name):
                    found.add(target.id)
                elif isinstance(target, ast.Subscript):
                    name = name_of(target.value)
                    if name:
                        found.add(name)
    return found


def module_state(sources: dict[str, str]) -> set[str]:
    """ "module:NAME" for every piece of module-level mutable state in ``sources``
    (module name -> its source)."""
    trees = {module: ast.parse(source) for module, source in sources.items()}
    mutating_classes = {
        node.name
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and _self_mutating(node)
    }
    # Mutation by name is matched across the package: `models.CACHE.clear()` in another
    # module mutates models.CACHE, and so does `CACHE[key] = ...` after
    # `from .models import CACHE`. Other bare names are matched within their own module.
    attribute_mutated: set[str] = set()
    for tree in trees.values():
        imported = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        attribute_mutated |= imported & _mutated_names(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in MUTATORS
                and isinstance(node.func.value, ast.Attribute)
            ):
                attribute_mutated.add(node.func.value.attr)
    state: set[str] = set()
    for module, tree in trees.items():
        mutated = _mutated_names(tree) | attribute_mutated
        for statement in tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if any(_callee(d) in ("cache", "lru_cache") for d in statement.decorator_list):
                    state.add(f"{module}:{statement.name}")
                continue
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                targets, value = [statement.target], statement.value
            else:
                continue
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                name = target.id
                callee = _callee(value) if isinstance(value, ast.Call) else ""
                if callee in STATEFUL or callee in mutating_classes or name in mutated:
                    state.add(f"{module}:{name}")
    return state


def _package_sources() -> dict[str, str]:
    return {
        _module_name(path): path.read_text(encoding="utf-8") for path in sorted(ROOT.rglob("*.py"))
    }


def test_every_module_level_mutable_object_is_documented_with_an_owner_and_a_bound():
    found = module_state(_package_sources())
    new = sorted(found - DOCUMENTED.keys())
    gone = sorted(DOCUMENTED.keys() - found)
    assert not new, (
        f"new module-level mutable state: {new}. Pass it explicitly from its owner, or add "
        "it to DOCUMENTED with its owner and bound."
    )
    assert not gone, f"no longer module-level state, strike it off DOCUMENTED: {gone}"
    for key, owned in DOCUMENTED.items():
        assert owned.owner.strip() and owned.bound.strip(), key


SAMPLE = """
import functools, threading, contextvars
from dataclasses import dataclass

LIMITS = {"a": 1}              # read only: a constant
NAMES = ["x", "y"]             # read only
SEEN = {}                      # mutated by subscript
WARNED = set()                 # mutated by a method
LOG = []                       # mutated from another module
SHARED = {}                    # imported by name and mutated in another module
LOCK = threading.Lock()
DEADLINE = contextvars.ContextVar("d", default=None)
COUNT = 0                      # rebound by `global`

@dataclass(frozen=True)
class Point:
    x: int

class Registry:
    def __init__(self):
        self._items = {}
    def put(self, key, value):
        self._items[key] = value

class Reader:
    def __init__(self):
        self.size = 1
    def size_of(self):
        return self.size

ORIGIN = Point(0)
REGISTRY = Registry()
READER = Reader()
memo = functools.lru_cache(maxsize=8)(len)

@functools.lru_cache(maxsize=1)
def probe():
    return 1

def plain():
    return LIMITS["a"] + len(NAMES)

def remember(key):
    global COUNT
    SEEN[key] = True
    WARNED.add(key)
    COUNT += 1
"""


@pytest.mark.parametrize(
    ("name", "is_state"),
    [
        ("LIMITS", False),
        ("NAMES", False),
        ("SEEN", True),
        ("WARNED", True),
        ("LOG", True),
        ("SHARED", True),
        ("LOCK", True),
        ("DEADLINE", True),
        ("COUNT", True),
        ("ORIGIN", False),
        ("REGISTRY", True),
        ("READER", False),
        ("memo", True),
        ("probe", True),
        ("plain", False),
    ],
)
def test_the_finder_tells_state_from_constants(name, is_state):
    other = (
        "import sample\nfrom sample import SHARED\n\n"
        "def log(line):\n    sample.LOG.append(line)\n    SHARED[line] = True\n"
    )
    found = module_state({"sample": SAMPLE, "other": other})
    assert (f"sample:{name}" in found) is is_state
