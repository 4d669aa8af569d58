"""The plugin's own extension points (pluggy project ``persona_ollama``).

Another package extends persona-ollama by exposing a module or object under the entry-point
group ``persona_ollama`` and marking its functions with :data:`hookimpl`::

    # pyproject.toml
    [project.entry-points.persona_ollama]
    my_probe = "my_package.probe"

    # my_package/probe.py
    from persona_ollama.choosing.hookspecs import GPU, AcceleratorReport, hookimpl

    @hookimpl
    def persona_ollama_probe_accelerators(timeout):
        return AcceleratorReport(gpus=(GPU("Example NPU", "example", 16 * 2**30, None),))

An implementation may accept any subset of a hook's parameters, by name. The built-in probes
and catalogue sources are registered through the same plugin manager (see ``plugins.py``).

This module is the bottom layer of the model-choice code: the hook types live here, the
built-in plugins (``accelerators``, ``packaged_catalogue``) import them, the plugin manager
(``plugins``) registers those, and ``hardware.probe`` / ``catalogue.load_catalogue`` call the
manager. ``GPU`` and ``AcceleratorReport`` are also importable from
``persona_ollama.choosing.hardware``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .catalogue import ModelSpec

PROJECT = "persona_ollama"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class GPU:
    """One accelerator. Memory is None when the tool does not say."""

    name: str
    vendor: str
    memory_total_bytes: int | None
    memory_free_bytes: int | None = None


@dataclass(frozen=True)
class AcceleratorReport:
    """What one accelerator probe found, and notes on what it tried."""

    gpus: tuple[GPU, ...] = ()
    notes: tuple[str, ...] = ()
    unified_memory: bool = False


@hookspec
def persona_ollama_probe_accelerators(
    system: str, machine: str, total_memory_bytes: int, timeout: float
) -> AcceleratorReport | None:
    """Report the accelerators (GPUs, NPUs, unified memory) this probe knows how to find.

    :param system: ``platform.system()``, e.g. ``"Linux"``, ``"Darwin"``, ``"Windows"``.
    :param machine: ``platform.machine()``, e.g. ``"x86_64"``, ``"arm64"``.
    :param total_memory_bytes: the machine's physical memory, for unified-memory designs.
    :param timeout: seconds an external tool may take before the probe gives up on it.
    :return: an ``AcceleratorReport`` (GPUs found, notes on what was tried), or None when the
        probe does not apply to this machine. A probe must not raise: a missing tool, a
        timeout or output it cannot read goes into the report's ``notes``. If one raises
        anyway, the failure is recorded as a note and the other probes still count.
    """


@hookspec
def persona_ollama_catalogue_entries(
    environ: Mapping[str, str],
) -> Iterable[Mapping[str, Any] | ModelSpec] | None:
    """Contribute model catalogue entries (same fields as ``data/models.json``'s ``models``).

    :param environ: the environment in effect (``os.environ`` unless a caller passed one).
    :return: entries as dicts or ``ModelSpec`` objects, or None. An entry whose name is already
        known updates only the fields it gives. Sources are applied from the lowest priority
        to the highest: the packaged file, then plugins, then the user's file named by
        PERSONA_OLLAMA_CATALOGUE, so the user always has the last word.
    """
