"""The partial-offload warning (offload.py) from what /api/ps says about a loaded model."""

from __future__ import annotations

import pytest

from persona_ollama.backends.base import LoadedModel
from persona_ollama.backends.ollama import loaded_models_of
from persona_ollama.model_info import ModelInfo
from persona_ollama.offload import partial_offload_warning, slowdown

GIB = 1024**3
LISTING = [
    ModelInfo("llama3:70b", size_bytes=40 * GIB, capabilities=("completion",)),
    ModelInfo("qwen3:14b", size_bytes=9 * GIB, capabilities=("completion",)),
    ModelInfo("qwen3:32b", size_bytes=20 * GIB, capabilities=("completion",)),
    ModelInfo("nomic-embed-text:latest", size_bytes=GIB // 4, capabilities=("embedding",)),
]


def test_slowdown_follows_the_share_on_the_cpu():
    assert slowdown(0.0) == 1.0
    assert slowdown(1.0) == 10.0
    assert slowdown(0.25) == pytest.approx(0.75 + 2.5)


def test_a_model_partly_on_the_cpu_gets_share_slowdown_and_a_model_that_fits():
    loaded = LoadedModel("llama3:70b", 44 * GIB, 22 * GIB, 8192)

    warning = partial_offload_warning(loaded, LISTING, server="http://127.0.0.1:11434")

    assert warning is not None
    assert "llama3:70b runs 50% on the CPU" in warning
    assert "22.0 GiB of its 44.0 GiB in system memory" in warning
    assert "5.5x slower" in warning
    # 4 GiB of context and buffers on top of the file: qwen3:32b (20 + 4 > 22) does not fit.
    assert "qwen3:14b (9.0 GiB) would fit" in warning


def test_no_fitting_model_gets_generic_advice():
    loaded = LoadedModel("qwen3:14b", 10 * GIB, 3 * GIB)
    warning = partial_offload_warning(loaded, LISTING, server="s")
    assert "A smaller model or quantisation, or a smaller num_ctx" in warning


@pytest.mark.parametrize(
    "loaded",
    [
        LoadedModel("qwen3:14b", 10 * GIB, 10 * GIB),  # all on the GPU
        LoadedModel("qwen3:14b", 10 * GIB, 0),  # no GPU: nothing better to do
        LoadedModel("qwen3:14b", 10 * GIB, None),  # the server does not say
        LoadedModel("qwen3:14b", None, 3 * GIB),
    ],
)
def test_no_warning_unless_split(loaded):
    assert partial_offload_warning(loaded, LISTING, server="s") is None


def test_api_ps_entries_are_read_with_their_sizes():
    entries = [
        {"name": "qwen3:8b", "size": 6_000, "size_vram": 4_000, "context_length": 8192},
        {"model": "old:1b", "size": 100},  # before size_vram and context_length
        {"name": "bad:1b", "size": -1, "size_vram": "x", "context_length": True},
        {"size": 5},
        "junk",
    ]
    assert loaded_models_of(entries) == [
        LoadedModel("qwen3:8b", 6_000, 4_000, 8192),
        LoadedModel("old:1b", 100, None, None),
        LoadedModel("bad:1b", None, None, None),
    ]
    assert LoadedModel("qwen3:8b", 6_000, 4_000).gpu_share == pytest.approx(2 / 3)
