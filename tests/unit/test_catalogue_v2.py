"""Schema 2 of the catalogue: architecture-derived KV cache, the quality formula, and schema-1
user files still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from persona_ollama.choosing.catalogue import Catalogue, load_catalogue
from persona_ollama.choosing.quality import (
    TITLES,
    WEIGHTS,
    Median,
    Score,
    medians_of,
    packaged_medians,
    quality,
)
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
    # One figure; the other three count as the packaged catalogue's medians.
    medians = packaged_medians()
    expected = 0.35 * 80.4 + sum(
        WEIGHTS[key] * medians[key].value for key in WEIGHTS if key != "ifeval"
    )
    assert llama.quality == round(expected)
    assert "IFEval 80.4" in llama.quality_reason
    assert f"writing {medians['writing'].value:g} (median of" in llama.quality_reason
    qwen = v2.get("qwen3:8b")
    assert qwen.quality is None and "no benchmark figures" in qwen.quality_reason


def _figures(**values: float) -> dict[str, Score]:
    return {key: Score(value, "https://example.org") for key, value in values.items()}


MEDIANS = {
    "ifeval": Median(80.0, 9), "structured": Median(70.0, 5),
    "long_context": Median(60.0, 3), "writing": Median(50.0, 7),
}  # fmt: skip


@pytest.mark.parametrize(
    ("figures", "score", "imputed"),
    [
        # A full set: the weighted sum, nothing imputed.
        (_figures(ifeval=90, structured=80, long_context=70, writing=60), 78, []),
        # One high figure alone no longer counts as the whole score (it was 92 when the
        # weights were renormalised over the figures present): the rest are medians.
        (_figures(ifeval=92), round(0.35 * 92 + 0.25 * 70 + 0.25 * 60 + 0.15 * 50), 3),
        # Two figures: the other two are medians, each named with its model count.
        (_figures(ifeval=90, writing=40), round(0.35 * 90 + 0.25 * 70 + 0.25 * 60 + 0.15 * 40), 2),
        # A figure at the median scores as if it were missing.
        (_figures(structured=70), round(0.35 * 80 + 0.25 * 70 + 0.25 * 60 + 0.15 * 50), 3),
        # A low figure pulls the score down below the all-median model's.
        (_figures(long_context=0), round(0.35 * 80 + 0.25 * 70 + 0.15 * 50), 3),
    ],
)
def test_the_formula_counts_a_missing_figure_as_the_median(figures, score, imputed) -> None:
    result = quality(figures, MEDIANS)
    assert result.score == score
    if imputed == []:
        assert "missing" not in result.basis
    else:
        assert result.basis.count("(median of") == imputed
        for key in set(WEIGHTS) - set(figures):
            median = MEDIANS[key]
            assert f"{TITLES[key]} {median.value:g} (median of {median.models} models)" in (
                result.basis
            )


def test_a_model_with_one_high_figure_does_not_outrank_a_full_set() -> None:
    one = quality(_figures(ifeval=92), MEDIANS)
    full = quality(_figures(ifeval=88, structured=80, long_context=75, writing=65), MEDIANS)
    assert one.score is not None and full.score is not None and full.score > one.score


def test_a_model_without_figures_has_no_score() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    assert quality({}, MEDIANS).score is None
    assert "ranked after scored models" in quality({}, MEDIANS).basis


def test_the_medians_come_from_the_models_that_report_each_benchmark() -> None:
    entries = [
        {"scores": {"ifeval": {"value": 70.0}, "writing": {"value": 40.0}}},
        {"scores": {"ifeval": {"value": 90.0}}},
        {"scores": {"ifeval": {"value": 80.0}}},
        {"scores": {}},
        {"name": "no scores"},
    ]
    assert medians_of(entries) == {"ifeval": Median(80.0, 3), "writing": Median(40.0, 1)}
    # The packaged catalogue reports every benchmark, so every missing figure has a median.
    assert set(packaged_medians()) == set(WEIGHTS)
    assert all(median.models >= 3 for median in packaged_medians().values())


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
    from persona_ollama.choosing.selection import recommend

    (only,) = recommend([], 64 * 2**30, Catalogue([spec]))
    assert (
        "its architecture is not in the catalogue: KV cache estimated by a rule of thumb for "
        "its size (200 KiB per token)" in only.reason
    )
    assert "download size is not in the catalogue" not in only.reason  # it was given


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
    assert (
        "download size is not in the catalogue: estimated from its parameters at Q4_K_M "
        "(its quantisation is not known either), ~5.0 GiB" in only.reason
    )
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
