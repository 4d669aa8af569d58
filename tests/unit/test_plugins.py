"""_plugins.py: built-ins and third-party plugins on one pluggy manager, found by entry point."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from persona_ollama.choosing import hardware
from persona_ollama.choosing import plugins as _plugins
from persona_ollama.choosing.catalogue import GiB, load_catalogue
from persona_ollama.choosing.hardware import GPU, AcceleratorReport, probe
from persona_ollama.choosing.hookspecs import PROJECT, hookimpl
from persona_ollama.cli import main
from persona_ollama.testing import FakeModel, FakeOllama

TINY_PLUGIN = '''
"""A third-party persona_ollama plugin: one accelerator and one catalogue model."""

from persona_ollama.choosing.hardware import GPU, AcceleratorReport
from persona_ollama.choosing.hookspecs import hookimpl


@hookimpl
def persona_ollama_probe_accelerators(timeout):
    gpu = GPU("Tiny NPU", "tiny", 48 * 2**30, None)
    return AcceleratorReport(gpus=(gpu,), notes=(f"tiny probe ran with timeout {timeout}",))


@hookimpl
def persona_ollama_catalogue_entries():
    return [{"name": "tiny/persona:1b", "parameters_b": 1.0, "context_length": 32768,
             "download_bytes": 800000000, "quality": 30, "quality_reason": "tiny"}]
'''


def install_dist(site, distribution: str, entry_points: dict[str, str], module: str = "") -> None:
    """A minimal installed distribution: a .dist-info with entry_points.txt (and a module)."""
    info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{PROJECT}]\n{lines}")
    if module:
        (site / f"{distribution.replace('-', '_')}.py").write_text(textwrap.dedent(module))


@pytest.fixture
def fresh():
    """A plugin manager and hardware facts built for this test alone."""
    _plugins.reset()
    hardware.clear_cache()
    yield
    _plugins.reset()
    hardware.clear_cache()


@pytest.fixture
def site(tmp_path, monkeypatch, fresh):
    """A directory on sys.path where a test installs distributions."""
    directory = tmp_path / "site-packages"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    yield directory
    for name in ("tiny_persona_plugin",):
        sys.modules.pop(name, None)


# -- built-ins ----------------------------------------------------------------------------


def test_builtins_register_on_the_same_manager_as_third_party_plugins(fresh):
    manager = _plugins.plugin_manager()
    assert manager.project_name == "persona_ollama"
    assert _plugins.plugins() == [
        ("persona_ollama.amd", None),
        ("persona_ollama.apple_silicon", None),
        ("persona_ollama.nvidia", None),
        ("persona_ollama.packaged_catalogue", None),
    ]
    assert _plugins.load_problems() == ()


def test_plugin_manager_is_built_once_per_process_until_reset(fresh):
    first = _plugins.plugin_manager()
    assert _plugins.plugin_manager() is first
    _plugins.reset()
    assert _plugins.plugin_manager() is not first


def test_implementations_run_from_lowest_priority_to_highest(fresh):
    class Plugin:
        def __init__(self, value):
            self.value = value

        @hookimpl
        def persona_ollama_catalogue_entries(self):
            return self.value

    class Last:
        @hookimpl(trylast=True)
        def persona_ollama_catalogue_entries(self):
            return "last"

    class First:
        @hookimpl(tryfirst=True)
        def persona_ollama_catalogue_entries(self, environ):
            return environ["x"]

    manager = _plugins.plugin_manager()
    for name, plugin in [("first", First()), ("one", Plugin(1)), ("last", Last()),
                         ("two", Plugin(2))]:  # fmt: skip
        manager.register(plugin, name=name)
    impls = _plugins.implementations("persona_ollama_catalogue_entries")
    assert [impl.plugin_name for impl in impls] == [
        "last", "persona_ollama.packaged_catalogue", "one", "two", "first",
    ]  # fmt: skip
    assert impls[-1](environ={"x": "from environ"}) == "from environ"


# -- third-party plugins through the entry-point group ------------------------------------


def test_a_third_party_probe_and_catalogue_are_picked_up_from_an_entry_point(site):
    install_dist(site, "tiny-persona-plugin", {"tiny": "tiny_persona_plugin"}, TINY_PLUGIN)

    profile = probe(environ={}, refresh=True)
    catalogue = load_catalogue({})

    assert GPU("Tiny NPU", "tiny", 48 * GiB, None) in profile.gpus
    assert f"tiny probe ran with timeout {hardware.TOOL_TIMEOUT}" in profile.notes
    assert catalogue.get("tiny/persona:1b").quality == 30
    assert "tiny" in catalogue.sources
    assert ("tiny", "tiny-persona-plugin 0.1") in _plugins.plugins()


def test_a_plugin_that_fails_to_load_costs_only_itself(site):
    install_dist(site, "broken-persona-plugin", {"broken": "no_such_module_for_persona_ollama"})
    install_dist(site, "tiny-persona-plugin", {"tiny": "tiny_persona_plugin"}, TINY_PLUGIN)

    problems = _plugins.load_problems()

    assert len(problems) == 1
    assert problems[0].startswith("plugin 'broken' failed to load: ModuleNotFoundError")
    assert _plugins.plugin_manager().has_plugin("tiny")
    assert _plugins.plugin_manager().is_blocked("broken")


# -- doctor lists them ---------------------------------------------------------------------


@pytest.fixture
def doctor(site, monkeypatch, cli_runner):
    """Run `persona-ollama doctor` against the double, with a fixed memory budget."""
    for name in (
        "OLLAMA_HOST",
        "OLLAMA_BASE_URL",
        "PERSONA_OLLAMA_MODEL",
        "PERSONA_OLLAMA_CATALOGUE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PERSONA_OLLAMA_MEMORY_GB", "16")
    monkeypatch.setenv("NO_COLOR", "1")
    with FakeOllama([FakeModel("qwen2.5:7b", parameter_size="7.6B")]) as fake:
        yield lambda *args: cli_runner.invoke(main, ["doctor", "--host", fake.url, *args])


def test_doctor_says_nothing_about_plugins_when_only_the_built_ins_are_there(doctor):
    result = doctor()
    report = json.loads(doctor("--json").stdout)

    assert result.exit_code == 0, result.output
    assert "Plugins" not in result.stdout
    assert report["plugins"] == {"loaded": [], "problems": []}


def test_doctor_lists_third_party_plugins_and_why_one_failed_to_load(site, doctor):
    install_dist(site, "broken-persona-plugin", {"broken": "no_such_module_for_persona_ollama"})
    install_dist(site, "tiny-persona-plugin", {"tiny": "tiny_persona_plugin"}, TINY_PLUGIN)

    result = doctor()
    report = json.loads(doctor("--json").stdout)

    assert result.exit_code == 0, result.output  # a broken plugin costs only itself
    assert "Plugins    tiny (tiny-persona-plugin 0.1); 1 failed to load (see the warnings)" in (
        result.stdout
    )
    assert (
        "Warning    plugin 'broken' failed to load: ModuleNotFoundError: No module named "
        "'no_such_module_for_persona_ollama'. Update or uninstall the package that provides it."
    ) in result.stdout
    assert report["plugins"]["loaded"] == [
        {"name": "tiny", "distribution": "tiny-persona-plugin 0.1"}
    ]
    (problem,) = report["plugins"]["problems"]
    assert problem.startswith("plugin 'broken' failed to load: ModuleNotFoundError")
    assert any(w.startswith(problem) for w in report["warnings"])
    # The plugin's accelerator is in the hardware section, like a built-in probe's.
    assert "Tiny NPU" in [gpu["name"] for gpu in report["hardware"]["gpus"]]


# -- probes that misbehave ----------------------------------------------------------------


class RaisingProbe:
    @hookimpl
    def persona_ollama_probe_accelerators(self):
        raise RuntimeError("driver exploded")


class WrongTypeProbe:
    @hookimpl
    def persona_ollama_probe_accelerators(self):
        return {"gpus": []}


class GoodProbe:
    @hookimpl
    def persona_ollama_probe_accelerators(self, system, machine, total_memory_bytes):
        assert system and machine and total_memory_bytes > 0
        return AcceleratorReport((GPU("Good GPU", "good", 16 * GiB, 15 * GiB),))


def test_a_probe_that_raises_or_returns_nonsense_becomes_a_note_and_others_still_count(fresh):
    manager = _plugins.plugin_manager()
    manager.register(RaisingProbe(), name="raising")
    manager.register(WrongTypeProbe(), name="wrong-type")
    manager.register(GoodProbe(), name="good")

    profile = probe(environ={}, refresh=True)

    assert "raising failed: RuntimeError: driver exploded" in profile.notes
    assert "wrong-type returned dict, not an AcceleratorReport" in profile.notes
    assert GPU("Good GPU", "good", 16 * GiB, 15 * GiB) in profile.gpus
