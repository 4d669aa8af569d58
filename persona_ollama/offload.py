"""After a load: how much of a model the server put in GPU memory, and a warning when part of
it runs on the CPU.

A model that does not fit the GPU is split: the layers that fit run on the GPU, the rest on
the CPU from system memory, and every token then waits for the slow part. The server says
how the model was placed (the backend reads its list of loaded models into
:class:`~persona_ollama.backends.base.LoadedModel`: the whole size and the part on GPUs);
this module turns that into one warning per model and server, with the share on the CPU,
the slowdown to expect and an installed model that fits. ``persona-ollama doctor`` shows
the same shares for every loaded model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import names

if TYPE_CHECKING:
    from .backends.base import LoadedModel
    from .backends.rules import ContextWords
    from .model_info import ModelInfo

# How much slower the CPU's memory is than the GPU's: decoding reads every weight once per
# token, so its speed follows memory bandwidth. A consumer GPU reads about 1,000 GB/s (GeForce
# RTX 4090: 1,008 GB/s, https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4090/
# specifications), two channels of DDR5-5600 about 90 GB/s (5,600 MT/s x 8 bytes x 2 channels
# = 89.6 GB/s): a ratio of about 11, rounded down to 10 so the warning does not overstate it.
GPU_TO_CPU_BANDWIDTH = 10.0


def slowdown(cpu_share: float, ratio: float = GPU_TO_CPU_BANDWIDTH) -> float:
    """How many times slower decoding is with ``cpu_share`` of the model's bytes on the CPU
    than with all of it on the GPU: the GPU part at full speed, the CPU part ``ratio``
    times slower, read one after the other for every token."""
    share = min(1.0, max(0.0, cpu_share))
    return (1.0 - share) + share * ratio


def fitting_alternative(
    loaded: LoadedModel, listing: Sequence[ModelInfo], listed_size: int | None
) -> ModelInfo | None:
    """The largest other installed local chat model that would fit the GPU memory this one
    got, with the same context and buffers on top (the loaded size minus the file's size)."""
    if loaded.gpu_bytes is None or loaded.size_bytes is None:
        return None
    overhead = max(0, loaded.size_bytes - listed_size) if listed_size else 0
    key = names.canonical(loaded.name)
    fitting = [
        model
        for model in listing
        if model.can_chat
        and not model.placement.remote
        and model.size_bytes
        and names.canonical(model.name) != key
        and model.size_bytes + overhead <= loaded.gpu_bytes
    ]
    return max(fitting, key=lambda model: model.size_bytes or 0, default=None)


def partial_offload_warning(
    loaded: LoadedModel,
    listing: Sequence[ModelInfo],
    *,
    server: str,
    words: ContextWords | None = None,
) -> str | None:
    """The warning for a model partly on the CPU; None when it is wholly on the GPU, wholly on
    the CPU (a machine without a GPU: nothing better to do) or the server does not say.
    ``words``: the backend's words for its window (default: the default API's)."""
    share = loaded.gpu_share
    if share is None or share <= 0.0 or share >= 1.0:
        return None
    assert loaded.size_bytes is not None
    assert loaded.gpu_bytes is not None
    cpu_share = 1.0 - share
    cpu_bytes = loaded.size_bytes - loaded.gpu_bytes
    key = names.canonical(loaded.name)
    own = next((m for m in listing if names.canonical(m.name) == key), None)
    alternative = fitting_alternative(loaded, listing, own.size_bytes if own else None)
    advice = (
        f"{alternative.name} ({_gib(alternative.size_bytes or 0)}) would fit the GPU memory it got."
        if alternative is not None
        else "A smaller model or quantisation, or "
        f"{(words or _default_words()).smaller_window}, would fit the GPU."
    )
    return (
        f"{loaded.name} runs {cpu_share:.0%} on the CPU: the server at {server} put "
        f"{_gib(cpu_bytes)} of its {_gib(loaded.size_bytes)} in system memory. Expect answers "
        f"about {slowdown(cpu_share):.1f}x slower than with the whole model on the GPU "
        f"(decoding speed follows memory bandwidth; the CPU's is about "
        f"{GPU_TO_CPU_BANDWIDTH:.0f}x lower). {advice}"
    )


def _default_words() -> ContextWords:
    from .backends.registry import declared
    from .settings import DEFAULT_API

    return declared(DEFAULT_API).context


def _gib(value: int) -> str:
    return f"{value / 1024**3:.1f} GiB"
