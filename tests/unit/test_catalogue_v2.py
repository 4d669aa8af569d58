"""Schema 2 of the catalogue: architecture-derived KV cache, the quality formula, and schema-1
user files still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_ollama.choosing.catalogue import Catalogue, load_catalogue
from persona_ollama.choosing.quality import WEIGHTS, Score, quality
from persona_ollama.errors import ConfigurationError

FIXTURE = Path(__file__).parent / "data" / "catalogue_v2.json"


@pytest.fixture
def v2():
    return load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(FIXTURE)})


def test_schema_2_entries_load_with_sources_and_architecture(v2):
    gpt = v2.get("gpt-oss:latest")
    assert gpt is not None and gpt.name == "gpt-oss:20b"
    assert gpt.moe and gpt.compute_parameters_b == 3.6
    assert all(url.startswith("https://") for url in gpt.sources)
    # 24 layers, half of them limited to a 128-token window: 2 x 8 heads x 64 x 2 bytes each.
    per_layer = 2 * 8 * 64 * 2
    assert gpt.facts.kv_bytes(32768) == (12 * 32768 + 12 * 128) * per_layer
    assert gpt.facts.kv_source == "the published architecture"


def test_quality_comes_from_the_cited_figures_by_the_formula(v2):
    llama = v2.get("llama3.1:8b")
    assert llama.quality == 80  # one figure: the weights renormalise over it
    assert "IFEval 80.4" in llama.quality_reason and "partial: 1 of 4" in llama.quality_reason
    qwen = v2.get("qwen3:8b")
    assert qwen.quality is None and "no benchmark figures" in qwen.quality_reason


def test_the_formula_weights_and_renormalises() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    figures = {key: Score(50.0, "https://example.org") for key in WEIGHTS}
    figures["ifeval"] = Score(90.0, "https://example.org")
    full = quality(figures)
    assert full.score == round(0.35 * 90 + 0.65 * 50) and "partial" not in full.basis
    two = quality({"ifeval": Score(90.0, "https://x"), "writing": Score(40.0, "https://x")})
    assert two.score == round((0.35 * 90 + 0.15 * 40) / 0.5)
    assert "partial: 2 of 4 figures" in two.basis
    assert quality({}).score is None


def test_a_schema_1_user_file_still_loads_and_its_quality_is_marked_as_given(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 1,
                "models": [
                    {
                        "name": "acme/writer:8b",
                        "parameters_b": 8.0,
                        "context_length": 131072,
                        "download_bytes": 4920753328,
                        "kv_bytes_per_token": 131072,
                        "quality": 70,
                        "quality_reason": "our evaluation",
                    }
                ],
            }
        )
    )
    spec = load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(path)}).get("acme/writer:8b")
    assert spec is not None and spec.quality == 70
    assert (
        spec.quality_reason
        == f"our evaluation; given by the user file (PERSONA_OLLAMA_CATALOGUE={path})"
    )
    assert spec.facts.kv_bytes(1000) == 131072 * 1000


@pytest.mark.parametrize(
    ("scores", "problem"),
    [
        ({"ifeval": {"value": 180, "source": "https://x"}}, "from 0 to 100"),
        ({"ifeval": {"value": 80}}, "must be the URL"),
        ({"ifeval": 80}, "must be an object"),
    ],
)
def test_a_bad_score_is_named(tmp_path, scores, problem):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"schema_version": 2, "models": [{"name": "qwen3:8b", "scores": scores}]})
    )
    with pytest.raises(ConfigurationError, match=problem):
        load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(path)})


def test_unknown_architecture_facts_fall_back_to_the_rule_of_thumb(tmp_path):
    path = tmp_path / "partial.json"
    entry = {
        "name": "new:14b", "parameters_b": 14.0, "context_length": 32768,
        "download_bytes": 9 * 10**9,
        "architecture": {"layers": 40, "kv_heads": None, "head_dim": 128},
    }  # fmt: skip
    path.write_text(json.dumps({"schema_version": 2, "models": [entry]}))
    spec = load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(path)}).get("new:14b")
    assert spec.architecture is None and spec.facts.kv_source == "a rule of thumb for its size"
    assert spec.facts.kv_bytes(1) == 200 * 1024


def test_unknown_facts_written_as_null_are_estimated_and_said_so(tmp_path):
    path = tmp_path / "nulls.json"
    entry = {
        "name": "hybrid:9b", "parameters_b": 9.0, "active_parameters_b": 9.0,
        "quantization": None, "download_bytes": None, "context_length": None,
        # One layer in four keeps a growing cache; the others a fixed state (window 0).
        "architecture": {"layers": 32, "kv_heads": 4, "head_dim": 256, "sliding_window": 0,
                         "global_layers": 8},
        "scores": {}, "sources": ["https://example.org/config.json"],
    }  # fmt: skip
    path.write_text(json.dumps({"schema_version": 2, "models": [entry]}))
    spec = load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(path)}).get("hybrid:9b")
    assert spec.quantization is None
    assert spec.size_estimated and spec.download_bytes == int(9.0e9 * 0.6)
    assert not spec.context_known and spec.context_length == 32768
    assert spec.facts.kv_bytes(32768) == 8 * 32768 * 2 * 4 * 256 * 2  # global layers only
    from persona_ollama.choosing.selection import recommend

    (only,) = recommend([], 64 * 2**30, Catalogue([spec]))
    assert "download size is not in the catalogue: estimated from its parameters" in only.reason
    assert "context length is not in the catalogue: 32768 assumed" in only.reason


def test_a_negative_window_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    arch = {"layers": 2, "kv_heads": 1, "head_dim": 8, "sliding_window": -1}
    path.write_text(json.dumps({"models": [{"name": "qwen3:8b", "architecture": arch}]}))
    with pytest.raises(ConfigurationError, match="sliding_window' must be 0 or more"):
        load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(path)})


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("architecture", [32, 8, 128], "'architecture' must be an object"),
        ("architecture", {"layers": 2, "heads": 8}, "unknown key 'heads'"),
        ("scores", [80], "'scores' must be an object"),
        ("sources", ["ollama.com/library/qwen3"], "'sources' must be a list of URLs"),
    ],
)
def test_a_malformed_schema_2_field_is_named(tmp_path, field, value, problem):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"schema_version": 2, "models": [{"name": "qwen3:8b", field: value}]})
    )
    with pytest.raises(ConfigurationError, match=problem):
        load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(path)})
