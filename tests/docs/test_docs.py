"""Every code block in README.md and docs/ runs, or is listed below with the reason it cannot.

The conventions (which blocks run, how shown output is compared, the docs-test options) are
described for doc authors in docs/README.md. In short:

- ```python blocks run in a fresh module, against a started FakeOllama that OLLAMA_HOST points
  at; a ```text block right after one is what it must print.
- ```console blocks: each ``$ persona-ollama ...`` line runs the CLI in-process, ``$ persona
  generate ...`` runs the reference host of tests/contract (Persona's CLI shape, resolving the
  provider through the entry point), ``$ python -m persona_ollama.testing ...`` starts the
  double; the lines shown under a command must match its real output.
- ```json blocks must parse, and a catalogue must load; a ```toml block must be a verbatim part
  of pyproject.toml.
- Anything else (another program, a block for a real server) must be in ALLOWED_COMMANDS or
  ALLOWED_BLOCKS with the reason it cannot run here. Entries that no longer match the docs fail.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from docs_harness import (
    REPO,
    Block,
    Step,
    console_steps,
    doc_files,
    is_output,
    mismatch,
    normalise,
    read_blocks,
)

from persona_ollama import privacy
from persona_ollama.choosing.catalogue import load_catalogue
from persona_ollama.testing.demo import DEMO_MODELS, demo_server

pytest_plugins = ["pytester"]

# Commands the docs show that cannot run in a test, and why. Each must appear in the docs,
# exactly, with no output shown under it (shown output would go unchecked).
ALLOWED_COMMANDS: dict[str, str] = {
    "python3.12 -m venv persona-env": "makes a virtual environment for Persona and the "
    "plugin; the tests run in their own (tests/contract makes a fresh one)",
    ". persona-env/bin/activate": "activates the environment made by the command above",
    "git clone https://github.com/persona-ollama/persona-ollama": "clones over the network; "
    "the tests run from a checkout already",
    "pip install ./persona-ollama": "installs the clone made by the command above; the "
    "tests run the package installed in their own environment (tests/contract installs the "
    "built wheel into a fresh one)",
    'pip install "git+https://github.com/REPPL/Persona.git"': "installs Persona from its "
    "repository over the network; the reference host stands in for it",
    "pip install tox": "installs from the package index",
    "tox": "runs the whole test suite, this test included",
    "ollama serve": "starts a real Ollama server; the loopback double stands in for it",
    "persona-ollama persona generate --from examples/interviews.csv --provider ollama "
    "--model qwen2.5:7b --output personas": "runs Persona's own command line, which is not "
    "installable from the package index; tests/integration/test_cli_persona_bridge.py runs "
    "the bridge against Persona-shaped hosts",
    "persona plugin list": "Persona's own command; Persona is not installable from the "
    "package index, so the tests cannot depend on it",
    'TIKTOKEN_CACHE_DIR="$HOME/tiktoken-cache" python -c "import tiktoken; '
    "tiktoken.get_encoding('cl100k_base')\"": "downloads Persona's tokenizer data; needs the "
    "network and tiktoken, a dependency of Persona only",
    'export TIKTOKEN_CACHE_DIR="$HOME/tiktoken-cache"': "configures Persona's tokenizer cache "
    "(see the command above); nothing of this plugin reads it",
    "pip download persona-ollama --dest wheels/": "downloads from the package index",
    "pip install --no-index --find-links wheels/ persona-ollama": "installs from a folder "
    "made by the command above, which needs the network",
    "tox -e bench": "runs the benchmarks (about 20 s)",
    "python -m bench": "runs the benchmarks (about 20 s); tests/bench runs the --quick form",
    "python -m bench --json figures.json": "runs the benchmarks (about 20 s)",
    "python -m bench --quick": "run by tests/bench/test_bench_smoke.py",
}

# Blocks in a language the test does not run, keyed by (file, language, first line).
ALLOWED_BLOCKS: dict[tuple[str, str, str], str] = {
    (
        "README.md",
        "text",
        "Persona ── generate(prompt) ──▶ provider.py     Persona's contract; the model named, or "
        "chosen (choosing/)",
    ): "a diagram, checked against the code by tests/unit/test_import_graph.py",
    ("docs/host-integration.md", "py", "from importlib.metadata import entry_points"): "needs "
    "Python 3.10+ (entry_points with group and name); the 3.9 form above it runs",
    (
        "docs/host-integration.md",
        "py",
        "# persona/core/providers/factory.py, at the top of ProviderFactory.create",
    ): "a patch to Persona's source, which is not installed here",
    ("docs/configuration.md", "nginx", "location /ollama/ {"): "configuration for nginx",
    ("docs/models-and-hardware.md", "toml", "[project.entry-points.persona_ollama]"): "a "
    "fragment of another package's pyproject.toml",
    ("docs/writing-a-provider.md", "toml", '[project.entry-points."persona.providers"]'): "a "
    "fragment of another package's pyproject.toml (the worked example's)",
    (
        "docs/troubleshooting.md",
        "text",
        "ConnectionError: HTTPSConnectionPool(host='openaipublic.blob.core.windows.net',",
    ): "Persona's own output when offline, captured "
    "from Persona 1.11.1; Persona is not installable in the tests",
    ("docs/scaling.md", "bash", "sudo systemctl edit ollama"): "configures a real Ollama service",
    ("docs/scaling.md", "nginx", "upstream ollama_pool {"): "configuration for nginx",
    ("docs/scaling.md", "py", "from persona_ollama import OllamaProvider"): "needs a real "
    "gateway in front of several Ollama machines",
    (
        "docs/scaling.md",
        "yaml",
        "# litellm.yaml: one entry per machine, all under the model's Ollama name",
    ): "configuration for a LiteLLM proxy",
    ("docs/scaling.md", "bash", "litellm --config litellm.yaml --port 4000"): "starts a "
    "LiteLLM proxy",
    ("docs/scaling.md", "py", "provider = OllamaProvider("): "needs a LiteLLM proxy and its key",
    (
        "docs/scaling.md",
        "bash",
        "vllm serve Qwen/Qwen3-8B --served-model-name qwen3-8b \\",
    ): "starts vLLM on a GPU machine",
    ("docs/scaling.md", "bash", "# on the head machine"): "starts a Ray cluster and vLLM",
    ("docs/scaling.md", "py", "import os"): "needs a vLLM server and its token",
    (
        "docs/scaling.md",
        "bash",
        "# 4 parallel slots; on builds that split the cache, 16k tokens each",
    ): "starts llama.cpp's server",
    (
        "docs/scaling.md",
        "bash",
        'pip install --find-links ../shared/wheels "llama-cpp-python[server]==0.3.36" gguf',
    ): "installs and starts llama-cpp-python's server; tests/realserver (tox -e realserver) "
    "runs the same steps",
}

DOCS_MODELS = DEMO_MODELS  # what the docs' double has installed by default
DOCS_MEMORY_GB = "16"  # so that model advice does not depend on the machine running the test
PERSONA_FIELDS = ("id", "name", "demographics", "goals", "pain_points", "behaviours", "quotes")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
HOST_SCRIPT = REPO / "tests" / "contract" / "reference_host" / "persona_host.py"


@contextlib.contextmanager
def docs_double(options: dict[str, str]) -> Iterator[str]:
    """Start the double a block runs against and yield its URL (docs-test options models=,
    server=, version=, fault=, latency=); with server=down nothing listens at the URL."""
    listed = options.get("models")
    names = DOCS_MODELS if listed is None else [n for n in listed.split(",") if n and n != "none"]
    # The demo server's own configuration (python -m persona_ollama.testing): the outputs
    # the docs show are the ones it produces.
    with demo_server(names, version=options.get("version", "0.33.0")) as fake:
        script_faults(fake, options)
        url = fake.url
        if options.get("server", "up") == "up":
            yield url
            return
    yield url  # stopped: nothing answers there now


def page_files(block: Block) -> dict[str, str]:
    """The files a page shows (``<!-- docs-test: file=NAME -->`` before the block), by name."""
    return {
        b.options["file"]: b.text for b in BLOCKS if b.path == block.path and "file" in b.options
    }


def write_page_files(block: Block, directory: Path) -> None:
    """Write the page's files where its commands and code find them."""
    for name, text in page_files(block).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def importable(directory: Path) -> Iterator[None]:
    """``directory`` on sys.path; modules imported from it are forgotten afterwards."""
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None) or "").startswith(str(directory)):
                del sys.modules[name]


def script_faults(fake: Any, options: dict[str, str]) -> None:
    """docs-test options fault= (what goes wrong with the next generation) and latency=
    (seconds before every generation answers)."""
    faults = {
        "oom": fake.out_of_memory_next,
        "stopped": fake.error_mid_stream_next,
        "cut": fake.drop_connection_mid_stream_next,
        "no-done": fake.end_stream_without_done_next,
        "busy": lambda: fake.fail_next(4),  # more than the retries
        "unauthorized": lambda: fake.fail_next(99, 401, "unauthorized", path="*"),  # a proxy
        "not-ollama": lambda: fake.fail_next(99, 404, "404 page not found", path="*"),
    }
    fault = options.get("fault")
    if fault is not None:
        assert fault in faults, f"fault={fault} is not one of {sorted(faults)}"
        faults[fault]()
    if "latency" in options:
        fake.latency(first_byte=float(options["latency"]))


@pytest.fixture
def docs_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean environment and a working directory holding examples/, restored afterwards."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("PERSONA_OLLAMA_", "OLLAMA_")):
            del os.environ[name]
    os.environ.update({"PERSONA_OLLAMA_MEMORY_GB": DOCS_MEMORY_GB, "NO_COLOR": "1"})
    os.environ["COLUMNS"] = "80"
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    privacy.reset_warnings()
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)


# -- collecting ------------------------------------------------------------------------------


def all_blocks() -> list[Block]:
    return [block for path in doc_files() for block in read_blocks(path)]


BLOCKS = all_blocks()
RUN = [block for block in BLOCKS if not is_output(block, BLOCKS)]


@pytest.mark.parametrize("block", RUN, ids=[block.id for block in RUN])
def test_doc_block(block: Block, docs_env: Path, request: pytest.FixtureRequest) -> None:
    if "template" in block.options:
        check_template_step(block)
        return
    write_page_files(block, docs_env)
    if block.lang == "python":
        run_python(block, request)
    elif block.lang == "console":
        run_console(block, docs_env)
    elif block.lang == "json":
        check_json(block, docs_env)
    elif block.lang == "signature":
        check_signature(block)
    elif block.lang == "toml" and block.text.strip() in (REPO / "pyproject.toml").read_text():
        pass  # a verbatim part of the real pyproject.toml
    else:
        reason = ALLOWED_BLOCKS.get((block.path, block.lang, block.first_line))
        assert reason, (
            f"{block.id} ({block.first_line!r}) is neither run by this test nor in "
            "ALLOWED_BLOCKS: make it a runnable block (see docs/README.md), or add "
            f"({block.path!r}, {block.lang!r}, {block.first_line!r}) with the reason it cannot run."
        )


def test_allow_lists_name_only_what_the_docs_contain() -> None:
    """A stale entry would let a changed command or block go unchecked."""
    commands = {
        step.command for block in BLOCKS if block.lang == "console" for step in console_steps(block)
    }
    assert set(ALLOWED_COMMANDS) <= commands, set(ALLOWED_COMMANDS) - commands
    blocks = {(block.path, block.lang, block.first_line) for block in BLOCKS}
    assert set(ALLOWED_BLOCKS) <= blocks, set(ALLOWED_BLOCKS) - blocks
    assert all(reason.strip() for reason in [*ALLOWED_COMMANDS.values(), *ALLOWED_BLOCKS.values()])


def test_every_text_block_shows_the_output_of_the_python_block_before_it() -> None:
    orphans = [
        block.id
        for block in BLOCKS
        if block.lang == "text"
        and not is_output(block, BLOCKS)
        and (block.path, block.lang, block.first_line) not in ALLOWED_BLOCKS
    ]
    assert not orphans, f"text blocks that nothing checks: {orphans}"


def test_the_reference_lists_the_catalogue_as_it_is() -> None:
    """docs/reference/provider-apis.md has one row per catalogue model, with its figures."""
    from persona_ollama.choosing.catalogue import packaged_document

    gib = 1 << 30
    catalogue = load_catalogue({})
    expected = []
    for entry in packaged_document()["models"]:
        spec = catalogue.get(entry["name"])
        assert spec is not None
        active = f"{spec.active_parameters_b:g}B" if spec.active_parameters_b else ""
        flags = [("thinks", spec.thinking), ("sparse", spec.moe), ("embedding", spec.embedding)]
        notes = ", ".join(flag for flag, on in flags if on)
        # A fact the catalogue lacks is "?", an estimate starts with "~", no score is "-".
        context = spec.context_length if spec.context_known else "?"
        size = ("~" if spec.size_estimated else "") + f"{spec.download_bytes / gib:.1f} GiB"
        quality = "-" if spec.quality is None else spec.quality
        expected.append(
            f"| `{spec.name}` | {spec.parameters_b:g}B | {active} | {context} | "
            f"{spec.quantization or '?'} | {size} | "
            f"{spec.memory_bytes / gib:.1f} GiB | {quality} | {notes} |"
        )
    page = (REPO / "docs" / "reference" / "provider-apis.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `") and line.count("|") == 10]
    assert rows == expected


LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_local_links_and_anchors_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for match in LINK.finditer(strip_code(text)):
        target = match["target"]
        if re.match(r"^[a-z]+:", target):
            continue  # https:, mailto:
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        known = destination.exists() and (
            not anchor or destination.suffix != ".md" or anchor in anchors(destination)
        )
        if not known:
            broken.append(target)
    assert not broken, f"broken links in {page.name}: {broken}"


def strip_code(text: str) -> str:
    return re.sub(r"```.*?```", "", re.sub(r"`[^`\n]*`", "", text), flags=re.DOTALL)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in strip_code(page.read_text(encoding="utf-8")).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


# -- template steps --------------------------------------------------------------------------


def check_template_step(block: Block) -> None:
    """A step of the provider guide: tests/contract/test_template.py runs it (slow, in the
    contract group); here, fast: each is a console block of commands."""
    assert block.lang == "console", f"{block.id}: a template step is a console block"
    assert console_steps(block), f"{block.id}: a template step has commands"


# -- python ----------------------------------------------------------------------------------


def run_python(block: Block, request: pytest.FixtureRequest) -> None:
    with docs_double(block.options) as url, importable(Path.cwd()):
        os.environ["OLLAMA_HOST"] = url
        if re.search(r"^def test_", block.text, re.MULTILINE):
            # pytester changes directory and restores sys.modules afterwards: only here.
            run_as_tests(block, request.getfixturevalue("pytester"))
            return
        module = types.ModuleType("docs_example")
        module.__file__ = str(REPO / block.path)
        sys.modules["docs_example"] = module
        printed = io.StringIO()
        # Leading newlines make tracebacks point at the line of the Markdown file.
        code = compile("\n" * block.line + block.text, str(REPO / block.path), "exec")
        try:
            with contextlib.redirect_stdout(printed):
                exec(code, module.__dict__)
        finally:
            del sys.modules["docs_example"]
    if block.output is not None:
        problem = mismatch(block.output.text.splitlines(), normalise(printed.getvalue()))
        assert problem is None, f"{block.output.id}: {problem}"


def run_as_tests(block: Block, pytester: pytest.Pytester) -> None:
    """A block that defines pytest tests runs as a test file, with the plugin's fixtures."""
    write_page_files(block, pytester.path)
    pytester.syspathinsert()
    pytester.makepyfile(**{"test_docs_example": block.text})
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 1 and not outcomes.get("failed"), result.stdout.str()


# -- signatures ------------------------------------------------------------------------------


def check_signature(block: Block) -> None:
    """A ```signature block names the same parameters, with the same defaults, as the code."""
    from persona_ollama import OllamaProvider

    text = " ".join(block.text.split())
    name, _, rest = text.partition("(")
    shown = {}
    for part in rest.rsplit(")", 1)[0].split(","):
        part = part.strip()
        if part and part != "*":
            key, _, default = part.partition("=")
            shown[key.lstrip("*")] = default or None
    if name == "OllamaProvider":
        real = dict(inspect.signature(OllamaProvider).parameters)
        real["ollama_options"] = real.pop("extra_options")  # **kwargs, named for readers
    elif name == "generate":
        # generate() passes its keywords on to stream(); it takes on_token and on_restart
        # itself, and Persona's system_prompt is an alias of system.
        real = dict(inspect.signature(OllamaProvider.stream).parameters)
        real.pop("self")
        real["ollama_options"] = real.pop("kwargs")
        real.update(
            {
                "on_token": real["system"],
                "on_restart": real["system"],
                "system_prompt": real["system"],
            }
        )
    else:
        raise AssertionError(f"{block.id}: no code known for the signature of {name}")
    assert set(shown) == set(real), f"{block.id}: shown {sorted(shown)}, real {sorted(real)}"
    for key, default in shown.items():
        parameter = real[key]
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        real_default = None if parameter.default is parameter.empty else repr(parameter.default)
        assert default == real_default, f"{block.id}: {key}={default}, real {real_default}"


# -- json ------------------------------------------------------------------------------------


def check_json(block: Block, workdir: Path) -> None:
    data = json.loads(block.text)
    entries = data.get("models") if isinstance(data, dict) else data
    if isinstance(entries, list) and all(isinstance(e, dict) and "name" in e for e in entries):
        catalogue_file = workdir / "catalogue.json"
        catalogue_file.write_text(block.text, encoding="utf-8")
        catalogue = load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(catalogue_file)})
        for entry in entries:
            assert entry["name"] in catalogue


# -- console ---------------------------------------------------------------------------------


def run_console(block: Block, workdir: Path) -> None:
    env: dict[str, str | None] = {}
    with docs_double(block.options) as url:
        os.environ["OLLAMA_HOST"] = url
        for step in console_steps(block):
            if step.command in ALLOWED_COMMANDS:
                assert not [line for line in step.shown if line.strip()], (
                    f"{block.id}: `{step.command}` is not run, so no output may be shown under it"
                )
                continue
            output, status = run_step(step, env, block, workdir)
            shown = [line for line in step.shown]
            if not [line for line in shown if line.strip()]:
                assert status == 0, f"{block.id}: `{step.command}` failed:\n{output}"
                continue
            problem = mismatch(shown, normalise(output))
            assert problem is None, f"{block.id}: `{step.command}`: {problem}"


def run_step(
    step: Step, env: dict[str, str | None], block: Block, workdir: Path
) -> tuple[str, int]:
    """Run one command; ``env`` collects ``export``/``unset`` for the rest of the block."""
    argv = shlex.split(step.command, comments=True)
    if argv and argv[0] in ("export", "unset"):
        for word in argv[1:]:
            name, _, value = word.partition("=")
            env[name] = value if argv[0] == "export" else None
        return "", 0
    local = dict(env)
    while argv and ASSIGNMENT.match(argv[0]):
        name, _, value = argv.pop(0).partition("=")
        local[name] = value
    stdin = None
    if "<" in argv:
        at = argv.index("<")
        stdin = (workdir / argv[at + 1]).read_text(encoding="utf-8")
        del argv[at : at + 2]
    if argv[:1] == ["persona-ollama"]:
        return run_cli(argv[1:], local, stdin)
    if argv[:2] == ["persona", "generate"]:
        return run_reference_host(argv[1:], local, workdir)
    if argv[:3] == ["python", "-m", "persona_ollama.testing"]:
        return run_double_process(argv[3:], local)
    raise AssertionError(
        f"{block.id}: `{step.command}` cannot run in this test: make it one of the runnable "
        "commands (docs/README.md) or add it to ALLOWED_COMMANDS with the reason."
    )


def run_cli(args: list[str], env: dict[str, str | None], stdin: str | None) -> tuple[str, int]:
    from persona_ollama.cli import main

    # CliRunner forces 80 columns of help text; a real terminal of 80 or more gets 78.
    result = CliRunner().invoke(
        main, args, env=env, input=stdin, prog_name="persona-ollama", terminal_width=78
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.output, result.exit_code


@contextlib.contextmanager
def environment(env: dict[str, str | None]) -> Iterator[None]:
    saved = dict(os.environ)
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def both_streams_to(buffer: io.StringIO) -> Iterator[None]:
    """Standard output and error into one buffer, interleaved as a terminal shows them."""
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield


def reference_host() -> Any:
    module = sys.modules.get("persona_host")
    if module is None:
        spec = importlib.util.spec_from_file_location("persona_host", HOST_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["persona_host"] = module
        spec.loader.exec_module(module)
    return module


def run_reference_host(
    args: list[str], env: dict[str, str | None], workdir: Path
) -> tuple[str, int]:
    """`persona generate ...` through the reference host, then check the personas it wrote."""
    printed = io.StringIO()
    with environment(env), both_streams_to(printed):
        status = reference_host().main(args)
    if status == 0:
        output = workdir / args[args.index("--output") + 1]
        written = sorted(output.glob("*.json"))
        assert written, f"persona generate wrote no persona to {output}"
        for path in written:
            persona = json.loads(path.read_text(encoding="utf-8"))
            assert all(key in persona for key in PERSONA_FIELDS), path
    return printed.getvalue(), status


def run_double_process(args: list[str], env: dict[str, str | None]) -> tuple[str, int]:
    """`python -m persona_ollama.testing ...` in its own process: its first line, then stop it.
    A fixed --port becomes 0 (any free port); the URL is shown with port 11434 anyway."""
    if "--port" in args:
        args[args.index("--port") + 1] = "0"
    full_env = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
    process = subprocess.Popen(
        [sys.executable, "-m", "persona_ollama.testing", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    assert process.stdout is not None and process.stdin is not None
    started = time.monotonic()
    first = process.stdout.readline()
    process.stdin.close()  # the double stops when its standard input closes
    status = process.wait(timeout=10)
    assert time.monotonic() - started < 10
    return first, status
