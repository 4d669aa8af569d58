"""Make a new provider plugin from this repository: step 1 of docs/writing-a-provider.md.

    python scripts/new_provider.py acme Acme ../persona-acme

writes a new project into the target directory (which must not exist, or be empty):

- the neutral core of the package, the *kernel*: every module except the template's own server
  (``backends/ollama*.py``), its /v1 backend (``backends/openai*.py``), the model catalogue
  (``choosing/``), the command line (``cli/``) and the double's faces of that server
  (``testing/``); a module the kernel still imports comes along, whatever it is;
- one backend and one face of the double (``scripts/template/``): a working skeleton for the
  invented Acme server, a server shaped like many (one model per server, a prompt string,
  errors as events inside its stream), to be changed into your server's API;
- the contract suite, the kernel's unit tests that name nothing of the template's server, and
  the skeleton's own tests;
- a fresh pyproject.toml, README, CHANGELOG and docs.

Everything is renamed: the package ``persona_<name>``, the distribution ``persona-<name>``,
the class ``<Display>Provider``, the variables ``PERSONA_<NAME>_*``, the provider's registry
name ``<name>``. Then the copy is checked: no line may name the template's own server (in any
case), and each offence is listed as ``file:line`` and the command exits 1, leaving the copy
in place to read. Standard library only; Python 3.9+.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import re
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).resolve().parent / "template"
PACKAGE = "persona_ollama"
# The word the copy must not contain, in any case: the template's own server.
SERVER_WORD = re.compile("ollama", re.IGNORECASE)
# The template's example names (scripts/template), renamed like the package's own.
EXAMPLE = "acme"

# Modules of the package that are not the kernel (patterns relative to the package).
NOT_KERNEL = (
    "backends/ollama*.py",
    "backends/openai*.py",
    "choosing/*",
    "cli/*",
    "testing/*",
)
# Subpackages the kernel may import only where it has asked whether they are there
# (catalogue_seam.HAS_CATALOGUE): the generator does not follow imports into them.
OPTIONAL = ("choosing",)
# The contract suite, the guard against real sleeps in unit tests and the errors' bases
# restored after each test, copied as they are: they name no server.
COPIED_TESTS = (
    "tests/error_bases.py",
    "tests/real_waits.py",
    "tests/contract/conftest.py",
    "tests/contract/test_installed_plugin.py",
    "tests/contract/reference_host/persona_host.py",
    "tests/contract/data/interviews.csv",
)
# The fixtures the copy's tests/conftest.py (scripts/template) does not define: a unit test
# that takes one of them tests the template's server, not the kernel.
REPO_ONLY_FIXTURES = ("mocked", "cli_runner", "terminal", "fake_ollama", "fake_ollama_factory")
# Unit tests of the kernel whose cases are facts of the template itself under other words:
# what its default backend declares, or its own modules' list, which a new project replaces.
SERVER_FACT_TESTS = {
    "tests/unit/test_options.py": "its cases are the default backend's options (num_ctx, "
    "num_predict, use_mmap ...): the template's server's",
    "tests/unit/test_module_state.py": "its list is of the template's modules, choosing/ and "
    "the template's backends among them; a new project starts its own",
}
# Third-party imports of the copy -> the requirement in the template's pyproject.toml.
DISTRIBUTIONS = {
    "requests": "requests",
    "psutil": "psutil",
    "pluggy": "pluggy",
    "click": "click",
    "importlib_metadata": "importlib-metadata",
}
# The skeleton's files a provider author changes into their server's API (scripts/template
# paths; docs/writing-a-provider.md states their sizes).
SKELETON = (
    "persona_acme/backends/acme.py",
    "persona_acme/backends/acme_rules.py",
    "persona_acme/testing/acme.py",
    "tests/unit/test_backend_acme.py",
)
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DISPLAY = re.compile(r"^[A-Z][A-Za-z0-9]*$")


class GenerateError(Exception):
    """The project cannot be generated as asked; the message says why."""


@dataclass(frozen=True)
class Names:
    """The new provider's names: ``name`` (acme) and ``display`` (Acme)."""

    name: str
    display: str

    @property
    def package(self) -> str:
        return f"persona_{self.name}"

    @property
    def distribution(self) -> str:
        return f"persona-{self.name.replace('_', '-')}"

    def renames(self) -> list[tuple[re.Pattern[str], str]]:
        """The textual renames, in the order they are applied, as (pattern, replacement)."""
        upper = self.name.upper()
        return [
            (re.compile(r"PERSONA_OLLAMA_"), f"PERSONA_{upper}_"),
            (re.compile(r"persona_ollama"), self.package),
            (re.compile(r"persona-ollama"), self.distribution),
            (re.compile(r"\bOllamaProvider\b"), f"{self.display}Provider"),
            # The registry name: the provider's `name` and its docstring.
            (re.compile(r'return "ollama"'), f'return "{self.name}"'),
            (re.compile(r'registry: ``"ollama"``'), f'registry: ``"{self.name}"``'),
            # The example's names in scripts/template.
            (re.compile(r"PERSONA_ACME_"), f"PERSONA_{upper}_"),
            (re.compile(r"\bACME_"), f"{upper}_"),
            (re.compile(r"persona_acme"), self.package),
            (re.compile(r"persona-acme"), self.distribution),
            (re.compile(r"Acme"), self.display),
            (re.compile(r"(?<![A-Za-z])acme"), self.name),
        ]


# The kernel's seams that name the server's API: set to the new provider's one backend.
# (file in the package, pattern, replacement); each pattern must match exactly once.
SEAMS = (
    ("settings.py", re.compile(r"^APIS = .*$", re.MULTILINE), 'APIS = ("{name}",)'),
    ("settings.py", re.compile(r"^DEFAULT_API = .*$", re.MULTILINE), 'DEFAULT_API = "{name}"'),
    (
        "backends/registry.py",
        re.compile(r"^BACKENDS = \{\n.*?^\}$", re.MULTILINE | re.DOTALL),
        'BACKENDS = {{\n    "{name}": (".{name}_rules", ".{name}", "{display}Backend"),\n}}',
    ),
)

# A block of this plugin's compatibility names (its users import them), marked in the kernel:
# a new project has no users yet, so the block and every listing of its names are left out.
ALIASES_START = re.compile(r"^\s*# (-- )?compatibility aliases(?!: end)", re.IGNORECASE)
ALIASES_END = re.compile(
    r"^\s*# (-- end of the compatibility aliases|compatibility aliases: end)", re.IGNORECASE
)
ALIAS = re.compile(r"^(\w+) = \w+$")
# A lint exemption that only the block needed ("the aliases apart", unsorted in __all__).
ALIASES_NOQA = re.compile(r"  # noqa: [A-Z0-9, ]+ - [^\n]*\balias[^\n]*", re.IGNORECASE)


def check_names(names: Names, target: Path) -> None:
    """Refuse what would leave a half-made project, before anything is written."""
    if not NAME.match(names.name):
        raise GenerateError(
            f"{names.name!r} is not a short name: use lower-case letters, digits and _, e.g. acme."
        )
    if not DISPLAY.match(names.display):
        raise GenerateError(
            f"{names.display!r} is not a display name: a capitalised word, e.g. Acme "
            "(the provider class becomes AcmeProvider)."
        )
    if names.name == "ollama":
        raise GenerateError(f"{names.name!r} is the template's own name; pick your server's.")
    if target.exists() and any(target.iterdir()):
        raise GenerateError(f"{target} is not empty: give a new directory.")
    if target.resolve().is_relative_to(REPO.resolve()):
        raise GenerateError(f"{target} is inside the template: give a directory outside it.")


def is_kernel(relative: str) -> bool:
    """True for a module of the package (path relative to it) that belongs to the kernel."""
    return not any(fnmatch.fnmatch(relative, pattern) for pattern in NOT_KERNEL)


def module_file(source: Path, module: str) -> Path | None:
    """The file of ``module`` (dotted, from the package's parent) under ``source``."""
    base = source.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path, module: str, package: str) -> set[str]:
    """Every module of ``package`` that the file ``path`` (module ``module``) imports,
    anywhere in it (a function's lazy import and a TYPE_CHECKING import count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    parts = module.split(".")
    here = parts if is_package else parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                prefix = ".".join([*base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
        for target in targets:
            if target == package or target.startswith(package + "."):
                found.add(target)
    return found


def kernel_closure(source: Path, generated: Iterable[str]) -> set[str]:
    """The package modules the copy needs (dotted names): the kernel, the generated modules
    and, transitively, everything they import; ``__init__`` of each package included."""
    package_dir = source / PACKAGE
    wanted = {
        _dotted(path.relative_to(source))
        for path in package_dir.rglob("*.py")
        if "__pycache__" not in path.parts and is_kernel(path.relative_to(package_dir).as_posix())
    }
    wanted |= set(generated)
    todo = sorted(wanted)
    while todo:
        module = todo.pop()
        path = module_file(source, module)
        generated_path = module_file(TEMPLATE, _example(module))
        if module in generated and generated_path is not None:
            imports = imported_modules(generated_path, _example(module), f"persona_{EXAMPLE}")
            imports = {m.replace(f"persona_{EXAMPLE}", PACKAGE, 1) for m in imports}
        elif path is None:
            continue  # a name imported from a module (from .x import NAME), not a module
        else:
            imports = imported_modules(path, module, PACKAGE)
        parts = module.split(".")
        parents = {".".join(parts[:n]) for n in range(1, len(parts))}
        for found in sorted(imports | parents):
            if any(found.startswith(f"{PACKAGE}.{name}") for name in OPTIONAL):
                continue
            if found not in wanted and (module_file(source, found) or found in generated):
                wanted.add(found)
                todo.append(found)
    return {module for module in wanted if module_file(source, module) or module in generated}


def _dotted(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _example(module: str) -> str:
    """A module of the copy (named after the template's package) as scripts/template names it."""
    return module.replace(PACKAGE, f"persona_{EXAMPLE}", 1)


def template_files() -> dict[str, Path]:
    """scripts/template's files by their path in the copy (the example's package named as the
    template's, renamed later with everything else)."""
    found = {}
    for path in sorted(TEMPLATE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(TEMPLATE).as_posix()
            found[relative.replace(f"persona_{EXAMPLE}/", f"{PACKAGE}/", 1)] = path
    return found


def kernel_tests(source: Path, modules: set[str], names: Names) -> list[str]:
    """The unit tests of the kernel that the copy can run: every persona import is a module
    the copy has, none takes a fixture only the template's conftest defines, none imports a
    test helper of the template's, none names its server once renamed, and none is listed
    in SERVER_FACT_TESTS."""
    kept = []
    for path in sorted((source / "tests" / "unit").glob("test_*.py")):
        if path.relative_to(source).as_posix() in SERVER_FACT_TESTS:
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        ok = True
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names_imported = [f"{node.module}.{alias.name}" for alias in node.names]
                if node.module.startswith(PACKAGE):
                    # A submodule imported by name must be in the copy too.
                    ok &= node.module in modules and all(
                        name in modules or module_file(source, name) is None
                        for name in names_imported
                    )
                elif node.level or node.module.split(".")[0] in ("tests", "shared_helpers"):
                    ok = False
            elif isinstance(node, ast.Import):
                ok &= all(
                    alias.name in modules or not alias.name.startswith(PACKAGE)
                    for alias in node.names
                )
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                ok &= not {arg.arg for arg in node.args.args} & set(REPO_ONLY_FIXTURES)
        uses_package = PACKAGE in text
        if ok and uses_package and not SERVER_WORD.search(rename_text(text, names)):
            kept.append(path.relative_to(source).as_posix())
    return kept


def rename_text(text: str, names: Names) -> str:
    for pattern, replacement in names.renames():
        text = pattern.sub(replacement, text)
    return text


def dependencies(source: Path, copy_package: Path) -> list[str]:
    """The requirements of the template's pyproject.toml that the copy's package imports."""
    imported: set[str] = set()
    for path in copy_package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
    pyproject = (source / "pyproject.toml").read_text(encoding="utf-8")
    listed = re.search(r"^dependencies = \[\n(.*?)^\]", pyproject, re.MULTILINE | re.DOTALL)
    requirements = re.findall(r'"([^"]+)"', listed.group(1)) if listed else []
    wanted = {DISTRIBUTIONS[name] for name in imported if name in DISTRIBUTIONS}
    return [
        requirement
        for requirement in requirements
        if re.split(r"[<>=!;\[ ]", requirement, maxsplit=1)[0] in wanted
    ]


def generate(target: Path, names: Names, source: Path | None = None) -> list[str]:
    """Write the new project to ``target`` from ``source`` (this repository by default);
    returns the offences the check found there (``file:line: text``), empty when clean."""
    source = source or REPO
    check_names(names, target)
    templates = template_files()
    generated = {
        _dotted(Path(relative)) for relative in templates if relative.startswith(PACKAGE + "/")
    }
    generated = {module for module in generated if not module.startswith("tests")}
    modules = kernel_closure(source, generated)
    files: dict[str, Path] = {}
    for module in sorted(modules):
        path = module_file(source, module)
        if path is None:
            continue
        files[path.relative_to(source).as_posix()] = path
        if path.name == "__init__.py":  # a package's data files come with it
            for data in sorted((path.parent / "data").glob("*")):
                if data.is_file():
                    files[data.relative_to(source).as_posix()] = data
    files[f"{PACKAGE}/py.typed"] = source / PACKAGE / "py.typed"
    for relative in (*COPIED_TESTS, *kernel_tests(source, modules, names)):
        files[relative] = source / relative
    files.update(templates)  # the skeleton, its wiring, and the fresh project files
    target.mkdir(parents=True, exist_ok=True)
    for relative, path in sorted(files.items()):
        destination = target / rename_text(relative, names)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            shutil.copyfile(path, destination)
            continue
        destination.write_text(rename_text(text, names), encoding="utf-8")
    package = target / names.package
    drop_compatibility_names(package)
    apply_seams(package, names)
    fill_pyproject(target / "pyproject.toml", dependencies(source, package), package, names)
    return leftovers(target)


def apply_seams(package: Path, names: Names) -> None:
    """Point the kernel's seams (its settings, the backends' registry) at the new provider's
    one backend."""
    for relative, pattern, replacement in SEAMS:
        path = package / relative
        text = path.read_text(encoding="utf-8")
        text, count = pattern.subn(replacement.format(name=names.name, display=names.display), text)
        if count != 1:
            raise GenerateError(
                f"{relative} has {count} places matching {pattern.pattern!r}, not one: "
                "update SEAMS in scripts/new_provider.py to the kernel's."
            )
        path.write_text(text, encoding="utf-8")


def drop_compatibility_names(package: Path) -> None:
    """Leave out the kernel's marked compatibility blocks, and each line that lists one of the
    names such a block defines (an import, an ``__all__`` entry, a lazy export), unless the
    project still uses one: then all stay, and the check lists them."""
    texts = {path: path.read_text(encoding="utf-8") for path in sorted(package.rglob("*.py"))}
    aliases: set[str] = set()
    dropped = {}
    for path, text in texts.items():
        kept: list[str] = []
        inside = False
        for line in text.splitlines(keepends=True):
            if ALIASES_START.match(line):
                inside = True
            if not inside:
                kept.append(line)
            elif found := ALIAS.match(line.strip()):
                aliases.add(found.group(1))
            if ALIASES_END.match(line):
                inside = False
        dropped[path] = "".join(kept)
    if not aliases:
        return
    names = "|".join(sorted(aliases))
    listed = re.compile(rf'^\s*"?({names})"?(: "[\w.]+")?,\s*\n', re.MULTILINE)
    dropped = {path: ALIASES_NOQA.sub("", listed.sub("", text)) for path, text in dropped.items()}
    if any(re.search(rf"\b({names})\b", text) for text in dropped.values()):
        return  # still used: the check lists every line that names them
    for path, text in dropped.items():
        if text != texts[path]:
            # Where a block was, at most the two blank lines that separate top-level code.
            path.write_text(re.sub(r"\n{4,}", "\n\n\n", text), encoding="utf-8")


def fill_pyproject(pyproject: Path, requirements: list[str], package: Path, names: Names) -> None:
    """The dependencies and the package data the copy holds."""
    data = sorted(
        {path.parent.parent.relative_to(package.parent) for path in package.rglob("data/*")}
    )
    package_data = "".join(f'"{".".join(folder.parts)}" = ["data/*"]\n' for folder in data)
    text = pyproject.read_text(encoding="utf-8")
    lines = "".join(f'    "{requirement}",\n' for requirement in requirements)
    text = text.replace("    # @DEPENDENCIES@\n", lines).replace("# @PACKAGE_DATA@\n", package_data)
    pyproject.write_text(text, encoding="utf-8")


def leftovers(root: Path) -> list[str]:
    """Every line of the copy that names the template's server, as ``file:line: text``."""
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(root).as_posix()
        if SERVER_WORD.search(relative):
            found.append(f"{relative}:0: (its name)")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            continue
        found.extend(
            f"{relative}:{number}: {line.strip()[:120]}"
            for number, line in enumerate(lines, 1)
            if SERVER_WORD.search(line)
        )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``new_provider.py NAME DISPLAY TARGET``."""
    parser = argparse.ArgumentParser(
        description="Write a new provider plugin, persona-NAME, into TARGET (see "
        "docs/writing-a-provider.md)."
    )
    parser.add_argument("name", help="short name of your server, e.g. acme")
    parser.add_argument("display", help="its display name, e.g. Acme (class AcmeProvider)")
    parser.add_argument("target", type=Path, help="a new directory for the project")
    args = parser.parse_args(argv)
    names = Names(args.name, args.display)
    try:
        found = generate(args.target, names)
    except GenerateError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    if found:
        print(
            f"Error: {args.target} still names the template's server on {len(found)} lines "
            "(a new project must not; see docs/writing-a-provider.md):",
            file=sys.stderr,
        )
        print("\n".join(f"  {line}" for line in found), file=sys.stderr)
        return 1
    print(
        f"{names.distribution} in {args.target}: package {names.package}, class "
        f"{names.display}Provider, entry point "
        f'{names.name} = "{names.package}:{names.display}Provider".'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
