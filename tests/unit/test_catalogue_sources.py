"""scripts/check_catalogue_sources.py holds the packaged catalogue to schema 2 and its sourcing
rules: every entry cited, every score with its URL and date, nothing outside the schema."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "check_catalogue_sources", REPO / "scripts" / "check_catalogue_sources.py"
)
assert SPEC is not None and SPEC.loader is not None
checker = importlib.util.module_from_spec(SPEC)
sys.modules["check_catalogue_sources"] = checker
SPEC.loader.exec_module(checker)

PACKAGED = REPO / "persona_ollama" / "choosing" / "data" / "models.json"
CARD = "https://huggingface.co/example/model-card"
ELSEWHERE = "https://other.example/x"


def packaged() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(PACKAGED.read_text(encoding="utf-8"))
    return document


def entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "example:8b",
        "family": "example",
        "parameters_b": 8.0,
        "active_parameters_b": 8.0,
        "quantization": "Q4_K_M",
        "download_bytes": 5_000_000_000,
        "context_length": 131072,
        "architecture": {
            "layers": 32,
            "kv_heads": 8,
            "head_dim": 128,
            "sliding_window": None,
            "global_layers": None,
        },
        "thinking": False,
        "embedding": False,
        "scores": {"ifeval": {"value": 80.0, "source": CARD, "date": "2025-04"}},
        "sources": ["https://ollama.com/library/example:8b", CARD],
    }
    base.update(changes)
    return base


def document_with(*entries: dict[str, Any]) -> dict[str, Any]:
    document = packaged()
    document["models"] = list(entries)
    return document


def test_the_packaged_catalogue_is_schema_2_and_fully_cited() -> None:
    document = packaged()

    assert checker.check_document(document) == []
    assert document["schema_version"] == 2
    assert all(model["sources"] for model in document["models"])


def test_the_packaged_catalogue_covers_the_families_ollama_releases_test() -> None:
    # integration/reg_release_test.go of ollama/ollama runs these families' chat models.
    families = {model["family"] for model in packaged()["models"]}

    assert {"gemma4", "qwen3.5", "qwen3.6", "granite4.1", "ministral-3", "gpt-oss"} <= families


def test_a_sound_entry_passes() -> None:
    assert checker.check_document(document_with(entry())) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"sources": []}, "sources must list at least one URL"),
        ({"sources": ["http://insecure.example/x", CARD]}, "is not an https:// URL"),
        (
            {"scores": {"ifeval": {"value": 80.0, "source": ELSEWHERE, "date": "2025-04"}}},
            "is not among the entry's sources",
        ),
        ({"scores": {"ifeval": {"value": 80.0, "source": CARD}}}, "must have exactly"),
        ({"scores": {"ifeval": {"value": 180.0, "source": CARD, "date": "2025-04"}}}, "0 to 100"),
        ({"scores": {"ifeval": {"value": 80.0, "source": CARD, "date": "April"}}}, "YYYY-MM"),
        ({"scores": {"vibes": {"value": 80.0, "source": CARD, "date": "2025-04"}}}, "benchmarks"),
        ({"quality": 90}, "fields not in schema 2: ['quality']"),
        ({"download_bytes": -1}, "download_bytes must be a positive integer or null"),
        ({"active_parameters_b": 9.0}, "active_parameters_b is more than parameters_b"),
        ({"quantization": "Q3_weird"}, "quantization 'Q3_weird'"),
        ({"thinking": "yes"}, "thinking must be true or false"),
        ({"name": "no-tag"}, "name must be an Ollama tag"),
    ],
)
def test_an_entry_that_breaks_a_rule_is_named_with_the_rule(
    changes: dict[str, Any], expected: str
) -> None:
    problems = checker.check_document(document_with(entry(**changes)))

    assert any(expected in problem for problem in problems), problems


def test_architecture_problems_are_caught() -> None:
    bad = entry()
    bad["architecture"] = dict(bad["architecture"], sliding_window=1024, global_layers=40)
    missing_key = entry(name="other:1b")
    del missing_key["architecture"]["head_dim"]

    problems = checker.check_document(document_with(bad, missing_key))

    assert any("global_layers is more than its layers" in p for p in problems)
    assert any("architecture keys" in p and "other:1b" in p for p in problems)


def test_null_means_missing_and_is_allowed() -> None:
    unknown = entry(quantization=None, download_bytes=None, scores={})
    unknown["architecture"] = dict.fromkeys(unknown["architecture"])

    assert checker.check_document(document_with(unknown)) == []


def test_a_tag_may_name_only_one_entry() -> None:
    first = entry(aliases=["example:latest"])
    second = entry(name="example:latest")

    problems = checker.check_document(document_with(first, second))

    assert any("'example:latest' is also in models[0]" in p for p in problems)


def test_embedding_models_carry_no_scores() -> None:
    problems = checker.check_document(document_with(entry(embedding=True)))

    assert any("embedding model cannot generate" in p for p in problems)


def test_schema_1_is_refused() -> None:
    document = document_with(entry())
    document["schema_version"] = 1

    assert "schema_version must be 2" in checker.check_document(document)


def test_the_command_exits_1_with_a_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = document_with(entry(sources=[], scores={}), entry(name="b:1b", quality=3))
    path = tmp_path / "models.json"
    path.write_text(json.dumps(broken), encoding="utf-8")

    assert checker.main([str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert all(line.startswith("models.json: models[") for line in err)


def test_the_command_summarises_the_packaged_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert checker.main([str(PACKAGED), "--summary"]) == 0
    out = capsys.readouterr().out
    count = len(packaged()["models"])
    assert out.startswith(f"{count} entries")
    assert "scores over" in out


def test_unreadable_json_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "models.json"
    path.write_text("{not json", encoding="utf-8")

    assert checker.main([str(path)]) == 1
    assert "cannot read it as JSON" in capsys.readouterr().err


def test_checking_does_not_change_the_document() -> None:
    document = packaged()
    before = copy.deepcopy(document)

    checker.check_document(document)

    assert document == before
