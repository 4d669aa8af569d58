"""catalogue.py: the packaged file, Ollama-style name lookup, and user and plugin layers."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from persona_ollama import names
from persona_ollama.choosing import plugins as _plugins
from persona_ollama.choosing.catalogue import (
    OVERHEAD_BYTES,
    Catalogue,
    GiB,
    ModelSpec,
    kv_bytes_rule_of_thumb,
    load_catalogue,
    packaged_document,
    runtime_memory_bytes,
)
from persona_ollama.choosing.hookspecs import hookimpl
from persona_ollama.errors import ConfigurationError

SEED_TABLE = [
    "llama3:70b", "llama3:8b", "llama3.2:3b", "qwen2.5:72b", "qwen2.5:7b", "mistral:7b",
    "mixtral:8x7b",
]  # fmt: skip
CURRENT_FAMILIES = [
    "llama3.1:8b", "llama3.1:70b", "llama3.2:1b", "llama3.3:70b", "qwen2.5:3b", "qwen2.5:14b",
    "qwen2.5:32b", "qwen3:4b", "qwen3:8b", "qwen3:14b", "qwen3:30b", "qwen3:32b",
    "mistral-small:24b", "mistral-nemo:12b", "gemma3:4b", "gemma3:12b", "gemma3:27b", "phi4:14b",
    "deepseek-r1:7b", "deepseek-r1:8b", "deepseek-r1:14b", "deepseek-r1:32b", "deepseek-r1:70b",
    "gpt-oss:20b", "gpt-oss:120b",
]  # fmt: skip


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue({})


def spec(name: str, **fields) -> ModelSpec:
    base = {
        "family": "test",
        "parameters_b": 8.0,
        "context_length": 8192,
        "download_bytes": 4 * GiB,
        "memory_bytes": 5 * GiB,
        "quality": 50,
    }
    return ModelSpec(name=name, **{**base, **fields})


# -- the packaged file --------------------------------------------------------------------


def test_packaged_file_is_valid_json_loaded_as_package_data():
    text = files("persona_ollama.choosing").joinpath("data", "models.json").read_text("utf-8")
    document = json.loads(text)
    assert document["schema_version"] == 2
    assert document["_about"] and document["benchmarks"] and document["as_of"]
    assert document == packaged_document()


@pytest.mark.parametrize("name", SEED_TABLE + CURRENT_FAMILIES)
def test_catalogue_has_every_seed_model_and_current_family(catalogue, name):
    model = catalogue.get(name)
    assert model is not None and model.name == name
    assert not model.embedding and model.quality_reason


@pytest.mark.parametrize(
    "name", ["nomic-embed-text", "mxbai-embed-large", "all-minilm", "bge-m3:latest"]
)
def test_embedding_models_are_known_and_flagged(catalogue, name):
    model = catalogue.get(name)
    assert model is not None and model.embedding and model.quality is None


def test_every_packaged_entry_is_consistent(catalogue):
    aliases = [alias for model in catalogue for alias in model.aliases]
    assert len(set(map(names.canonical, aliases))) == len(aliases), "an alias names two models"
    for model in catalogue:
        assert names.check_name(model.name) == model.name
        context = min(model.typical_context, model.context_length)
        kv_per_token = model.facts.kv_bytes(context) / context
        assert model.memory_bytes == runtime_memory_bytes(
            model.download_bytes, kv_per_token, context
        ), model.name
        assert model.memory_bytes > model.download_bytes
        if model.moe:
            assert model.active_parameters_b is not None
            assert model.active_parameters_b < model.parameters_b
        if model.family in ("deepseek-r1", "qwen3", "gpt-oss"):
            assert model.thinking, model.name


@pytest.mark.parametrize(
    ("better", "worse"),
    [
        # The figures the publishers give (docs/reference/catalogue-sources.md) decide.
        ("llama3.1:8b", "llama3:8b"),  # same size, better IFEval and BFCL, and long context
        ("llama3.2:3b", "llama3.2:1b"),
        ("gemma3:27b", "gemma3:1b"),
        ("llama3.3:70b", "llama3:70b"),
        # One high figure (IFEval 91.5) no longer outranks models with fuller sets.
        ("gemma3:27b", "qwen3.5:9b"),
        ("llama3.1:70b", "qwen3.5:9b"),
    ],
)
def test_quality_ranks_models_for_persona_generation(catalogue, better, worse):
    assert catalogue.get(better).quality > catalogue.get(worse).quality


def test_a_packaged_model_has_a_score_exactly_when_it_has_cited_figures(catalogue):
    for model in catalogue:
        assert (model.quality is None) == (not model.scores), model.name
        for _, figure in model.scores:
            assert figure.source.startswith("https://") and figure.source in model.sources


def test_mixtral_is_a_47b_mixture_of_experts_needing_over_24_gib(catalogue):
    mixtral = catalogue.get("mixtral:8x7b")
    assert mixtral.moe and mixtral.parameters_b > 46
    assert mixtral.memory_bytes > 24 * GiB


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("llama3", "llama3:8b"),
        ("llama3:latest", "llama3:8b"),
        ("LLAMA3", "llama3:8b"),
        ("library/llama3", "llama3:8b"),
        ("registry.ollama.ai/library/llama3:latest", "llama3:8b"),
        ("Llama3:8B", "llama3:8b"),
        ("qwen2.5", "qwen2.5:7b"),
        ("llama3.2:latest", "llama3.2:3b"),
        ("mistral", "mistral:7b"),
        ("nomic-embed-text", "nomic-embed-text:v1.5"),
        ("gpt-oss", "gpt-oss:20b"),
    ],
)
def test_get_matches_names_the_way_ollama_does(catalogue, name, expected):
    assert catalogue.get(name).name == expected
    assert name in catalogue


@pytest.mark.parametrize("name", ["llama4", "someone/llama3", "hf.co/org/llama3:latest"])
def test_get_returns_none_for_other_models(catalogue, name):
    assert catalogue.get(name) is None
    assert name not in catalogue


def test_a_real_name_beats_another_models_alias():
    catalogue = Catalogue([spec("a:1", aliases=("b:1",)), spec("b:1")])
    assert catalogue.get("b:1").name == "b:1"
    assert len(catalogue) == 2 and [m.name for m in catalogue] == ["a:1", "b:1"]
    assert 42 not in catalogue


# -- memory -------------------------------------------------------------------------------


def test_memory_at_scales_the_kv_cache_with_context_up_to_the_trained_length(catalogue):
    qwen = catalogue.get("qwen2.5:7b")
    assert qwen.memory_at(8192) == qwen.memory_bytes
    assert qwen.memory_at(16384) == qwen.memory_bytes + 8192 * qwen.facts.kv_bytes(1)
    assert qwen.memory_at(1_000_000) == qwen.memory_at(32768)
    llama3 = catalogue.get("llama3:8b")  # trained on 8K: a bigger num_ctx is clamped
    assert llama3.memory_at(32768) == llama3.memory_bytes


def test_memory_at_uses_the_installed_file_size_when_known(catalogue):
    qwen = catalogue.get("qwen2.5:7b")
    assert qwen.memory_at(8192, weights_bytes=qwen.download_bytes + GiB) == qwen.memory_bytes + int(
        GiB * 1.02
    )


def test_runtime_memory_is_weights_plus_kv_cache_plus_overhead():
    assert runtime_memory_bytes(10 * GiB, 1000, 8192) == int(
        10 * GiB + 8_192_000 + OVERHEAD_BYTES + 0.02 * 10 * GiB
    )


@pytest.mark.parametrize(
    ("billions", "per_token"),
    [(1, 128 * 1024), (4, 128 * 1024), (8, 160 * 1024), (14, 200 * 1024), (32, 256 * 1024),
     (70, 320 * 1024), (400, 320 * 1024)],
)  # fmt: skip
def test_kv_rule_of_thumb_by_parameter_count(billions, per_token):
    assert kv_bytes_rule_of_thumb(billions) == per_token


def test_spec_without_kv_figure_uses_the_rule_of_thumb():
    assert spec("x:1", parameters_b=70.0).facts.kv_bytes(1) == 320 * 1024


def test_compute_parameters_are_the_active_ones_for_a_mixture_of_experts(catalogue):
    assert catalogue.get("gpt-oss:20b").compute_parameters_b == pytest.approx(3.6)
    assert catalogue.get("qwen2.5:7b").compute_parameters_b == pytest.approx(7.6)


# -- the user's catalogue file ------------------------------------------------------------


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "models.json"

    def write(content) -> dict[str, str]:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return {"PERSONA_OLLAMA_CATALOGUE": str(path)}

    return write


def test_user_file_changes_only_the_fields_it_gives(user_file):
    environ = user_file({"models": [{"name": "LLAMA3", "quality": 99, "_note": "my pick"}]})
    changed = load_catalogue(environ).get("llama3:8b")
    original = load_catalogue({}).get("llama3:8b")
    assert changed.quality == 99
    assert changed.memory_bytes == original.memory_bytes
    assert changed.download_bytes == original.download_bytes


def test_user_file_adds_a_model_and_works_out_its_memory(user_file):
    environ = user_file(
        [
            {
                "name": "acme/persona-writer:12b",
                "parameters_b": 12,
                "context_length": 65536,
                "download_bytes": 7_000_000_000,
                "quality": 77,
                "kv_bytes_per_token": 100_000,
            }
        ]
    )
    catalogue = load_catalogue(environ)
    added = catalogue.get("Acme/Persona-Writer:12B")
    assert added.family == "persona-writer"
    assert added.memory_bytes == runtime_memory_bytes(7_000_000_000, 100_000, 8192)
    assert catalogue.sources[-1] == environ["PERSONA_OLLAMA_CATALOGUE"]


def test_user_file_changing_a_size_recomputes_memory(user_file):
    environ = user_file({"models": [{"name": "qwen2.5:7b", "download_bytes": 8_000_000_000}]})
    changed = load_catalogue(environ).get("qwen2.5:7b")
    assert changed.memory_bytes == runtime_memory_bytes(8_000_000_000, 57344, 8192)


def test_user_file_may_set_memory_directly(user_file):
    environ = user_file({"models": [{"name": "qwen2.5:7b", "memory_bytes": 7 * GiB}]})
    assert load_catalogue(environ).get("qwen2.5:7b").memory_bytes == 7 * GiB
    environ = user_file(
        [{"name": "n:1", "parameters_b": 1, "context_length": 2048, "download_bytes": 10,
          "quality": 1, "memory_bytes": 99, "active_parameters_b": None}]
    )  # fmt: skip
    assert load_catalogue(environ).get("n:1").memory_bytes == 99


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"models": [\n  {"name": "x"\n  "quality": 1}]}', "line 3 column 3: Expecting ','"),
        ('{"schema_version": 3, "models": []}', "schema_version 3 is not supported"),
        ('{"model": []}', 'an object with a "models" list'),
        ('"llama3"', "expected a list of models"),
        ('["llama3"]', "models[0]: an entry must be an object, got str"),
        (
            '[{"name": "llama3", "quality": "high"}]',
            "models[0] (llama3): field 'quality' must be an integer from 0 to 100, got 'high'",
        ),
        ('[{"name": "llama3", "quality": 101}]', "from 0 to 100, got 101"),
        ('[{"name": "llama3", "qualty": 90}]', "unknown field 'qualty'; expected some of name,"),
        ('[{"name": "llama3", "moe": "yes"}]', "field 'moe' must be true or false"),
        ('[{"name": "llama3", "aliases": "l3"}]', "field 'aliases' must be a list of model"),
        ('[{"name": "llama3", "family": ""}]', "field 'family' must be a non-empty string"),
        ('[{"name": "llama3", "quality_reason": 3}]', "field 'quality_reason' must be a string"),
        ('[{"name": "llama3", "parameters_b": -1}]', "field 'parameters_b' must be a positive"),
        ('[{"name": "llama3", "context_length": 8192.5}]', "must be a positive integer"),
        ('[{"name": "llama3", "download_bytes": true}]', "must be a positive integer"),
        ('[{"name": "new:1b", "quality": 50}]', "a new model needs parameters_b"),
        ('[{"name": "bad name!", "quality": 50}]', "is not a valid Ollama model name"),
        ('[{"quality": 50}]', "models[0]: a new model needs name"),
    ],
)
def test_broken_user_file_raises_configuration_error_naming_file_and_problem(
    user_file, content, says
):
    environ = user_file(content)
    with pytest.raises(ConfigurationError) as caught:
        load_catalogue(environ)
    assert environ["PERSONA_OLLAMA_CATALOGUE"] in caught.value.message
    assert says in caught.value.message
    assert caught.value.hint


def test_missing_user_file_raises_naming_the_variable(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigurationError) as caught:
        load_catalogue({"PERSONA_OLLAMA_CATALOGUE": str(missing)})
    assert f"PERSONA_OLLAMA_CATALOGUE={missing}: cannot read the file" in caught.value.message


def test_blank_catalogue_variable_is_ignored():
    assert len(load_catalogue({"PERSONA_OLLAMA_CATALOGUE": "  "})) == len(load_catalogue({}))


# -- plugin layers ------------------------------------------------------------------------


class ExtraModels:
    """A catalogue plugin: one new model, and an opinion on an existing one."""

    @hookimpl
    def persona_ollama_catalogue_entries(self, environ):
        assert "PERSONA_OLLAMA_CATALOGUE" in environ or environ == {}
        return (
            {"name": "plugin-model:7b", "parameters_b": 7, "context_length": 32768,
             "download_bytes": 4_000_000_000, "quality": 60},
            {"name": "llama3:8b", "quality": 10},
        )  # fmt: skip


class Broken:
    @hookimpl
    def persona_ollama_catalogue_entries(self):
        raise KeyError("models")


class Silent:
    @hookimpl
    def persona_ollama_catalogue_entries(self):
        return None


@pytest.fixture
def registered():
    """Register plugin objects on the process's plugin manager for one test."""
    manager = _plugins.plugin_manager()
    added = []

    def register(plugin, name):
        manager.register(plugin, name=name)
        added.append(plugin)

    yield register
    for plugin in added:
        manager.unregister(plugin)


def test_plugin_entries_sit_between_the_packaged_file_and_the_user_file(registered, user_file):
    registered(ExtraModels(), "extra")
    registered(Silent(), "silent")
    catalogue = load_catalogue({})
    assert catalogue.get("plugin-model:7b").quality == 60
    assert catalogue.get("llama3").quality == 10
    assert catalogue.sources == ("persona_ollama.packaged_catalogue", "extra")
    environ = user_file([{"name": "llama3:8b", "quality": 80}])
    assert load_catalogue(environ).get("llama3").quality == 80


def test_a_failing_catalogue_plugin_is_named_in_the_error(registered):
    registered(Broken(), "broken-plugin")
    with pytest.raises(ConfigurationError) as caught:
        load_catalogue({})
    assert "catalogue plugin 'broken-plugin' failed: KeyError" in caught.value.message
    assert "uninstall" in caught.value.hint


def test_a_catalogue_plugin_may_give_model_specs(registered):
    class Specs:
        @hookimpl
        def persona_ollama_catalogue_entries(self):
            return [spec("typed:1")]

    registered(Specs(), "typed")
    assert load_catalogue({}).get("typed:1") == spec("typed:1")


def test_a_catalogue_plugin_reporting_bad_configuration_is_passed_through(registered):
    class Strict:
        @hookimpl
        def persona_ollama_catalogue_entries(self):
            raise ConfigurationError("ACME_MODELS is not set", hint="set ACME_MODELS")

    registered(Strict(), "strict")
    with pytest.raises(ConfigurationError, match="ACME_MODELS is not set"):
        load_catalogue({})


def test_catalogue_repr_names_its_size_and_sources(catalogue):
    assert repr(catalogue) == "Catalogue(69 models from persona_ollama.packaged_catalogue)"


def test_every_packaged_entry_loads_and_its_null_facts_are_estimated_and_said_so(catalogue):
    """Schema 2 writes a fact no source gave as null: each such entry loads, the estimate
    stands in, and the reason line says it is an estimate (never shown as a catalogue fact)."""
    from persona_ollama.choosing.selection import recommend

    entries = packaged_document()["models"]
    assert len(catalogue) == len(entries) == 69
    seen = {"size": 0, "context": 0, "architecture": 0, "window 0": 0}
    for entry in entries:
        spec = catalogue.get(entry["name"])
        assert spec is not None and spec.name == entry["name"]
        if entry["embedding"]:
            continue
        (line,) = recommend([], 1024 * GiB, Catalogue([spec]), n=1)
        if entry["download_bytes"] is None:
            seen["size"] += 1
            assert spec.size_estimated, spec.name
            level = entry["quantization"] or "Q4_K_M (its quantisation is not known either)"
            assert (
                f"download size is not in the catalogue: estimated from its parameters at {level}"
                in line.reason
            )
        else:
            assert not spec.size_estimated and spec.download_bytes == entry["download_bytes"]
            assert "download size is not in the catalogue" not in line.reason
        if entry["context_length"] is None:
            seen["context"] += 1
            assert (
                not spec.context_known and "context length is not in the catalogue" in line.reason
            )
        arch = entry["architecture"]
        if None in (arch["layers"], arch["kv_heads"], arch["head_dim"]):
            seen["architecture"] += 1
            assert spec.architecture is None, spec.name
            assert "KV cache estimated by a rule of thumb" in line.reason, spec.name
        else:
            assert spec.architecture is not None
            assert "rule of thumb" not in line.reason
            if arch["sliding_window"] == 0:  # only the global layers keep a growing cache
                seen["window 0"] += 1
                per_layer = 2 * arch["kv_heads"] * arch["head_dim"] * 2
                assert spec.facts.kv_bytes(1000) == arch["global_layers"] * per_layer * 1000
    assert all(count > 0 for count in seen.values()), seen
