"""selection.py: the default model and recommendations on simulated machines, with reasons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona_ollama.backends.ollama import listed_model
from persona_ollama.choosing.catalogue import (
    Catalogue,
    GiB,
    ModelSpec,
    kv_bytes_rule_of_thumb,
    load_catalogue,
    runtime_memory_bytes,
)
from persona_ollama.choosing.hardware import GPU, memory_budget
from persona_ollama.choosing.selection import (
    choose_default,
    estimate_memory_bytes,
    fits,
    is_embedding_only,
    recommend,
)
from persona_ollama.model_info import ModelInfo

MiB = 1 << 20


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue({})


def tags_entry(
    name: str,
    size: int,
    parameter_size: str,
    quantization: str = "Q4_K_M",
    capabilities: tuple[str, ...] | None = ("completion",),
    context_length: int | None = None,
) -> dict:
    """One /api/tags element (docs/reference/ollama-protocol.md, "Model list"); servers before
    0.30 leave out the last two."""
    details = {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": parameter_size,
        "quantization_level": quantization,
    }
    if context_length:
        details["context_length"] = context_length
    entry = {"name": name, "model": name, "size": size, "digest": "a" * 64, "details": details}
    if capabilities is not None:
        entry["capabilities"] = list(capabilities)
    return entry


def installed(*entries: dict) -> list[ModelInfo]:
    return [listed_model(entry) for entry in entries]


def seed_models(capabilities: bool = True) -> list[ModelInfo]:
    """The issue's installed set, as a v0.30+ server (or an older one) lists it."""
    chat = ("completion",) if capabilities else None
    embedding = ("embedding",) if capabilities else None
    return installed(
        tags_entry("llama3:70b", 39_969_745_349, "70.6B", "Q4_0", chat),
        tags_entry("mixtral:8x7b", 26_442_481_545, "46.7B", "Q4_0", chat),
        tags_entry("qwen2.5:7b", 4_683_087_332, "7.6B", "Q4_K_M", chat),
        tags_entry("llama3:8b", 4_661_224_676, "8.0B", "Q4_0", chat),
        tags_entry("llama3.2:3b", 2_019_393_189, "3.2B", "Q4_K_M", chat),
        tags_entry("nomic-embed-text:latest", 274_302_450, "137M", "F16", embedding),
    )


# -- simulated machines -------------------------------------------------------------------

RTX_4090 = GPU("NVIDIA GeForce RTX 4090", "nvidia", 24564 * MiB, 23000 * MiB)
MACHINES = [
    pytest.param(
        {"total_memory_bytes": 8 * GiB},
        # At the planned 32K window a 3B's KV cache alone is 3.5 GiB: only 1B models leave
        # the headroom free.
        "gemma3:1b",
        ["gemma3:1b", "llama3.2:1b", "qwen3.5:0.8b"],  # the last has no cited figures yet
        "4.0 GiB: no GPU found, so 50% of 8.0 GiB RAM",
        id="8 GB laptop",
    ),
    pytest.param(
        {"total_memory_bytes": 16 * GiB, "unified_memory": True},
        # gemma3:12b needs 10.6 GiB at a 32K window, more than the headroom leaves; the 4B's
        # IFEval (90.2) and writing figures beat the 8-12B models that fit.
        "gemma3:4b",
        ["gemma3:4b", "gemma4:12b", "qwen3.5:9b"],
        "10.7 GiB: unified memory, about 67% of 16.0 GiB",
        id="16 GB M1 Pro",
    ),
    pytest.param(
        {"total_memory_bytes": 128 * GiB, "unified_memory": True},
        # The best score; a tie (81: gemma3:4b, gemma3:12b, llama3.1:70b) goes to the smaller.
        "gemma3:27b",
        ["gemma3:27b", "gemma3:4b", "gemma3:12b"],
        "96.0 GiB: unified memory, about 75% of 128.0 GiB",
        id="128 GB Mac Studio",
    ),
    pytest.param(
        {"total_memory_bytes": 24 * GiB},
        "gemma3:4b",  # ties gemma3:12b at 81 and is three times faster on a CPU
        ["gemma3:4b", "gemma3:12b", "gemma4:12b"],
        "18.0 GiB: no GPU found, so 75% of 24.0 GiB RAM",
        id="24 GB RAM, no GPU",
    ),
    pytest.param(
        {"total_memory_bytes": 64 * GiB, "gpus": (RTX_4090,)},
        "gemma3:27b",  # sliding-window layers keep its 32K cache small; a dense 32B's is 8 GiB
        ["gemma3:27b", "gemma3:4b", "gemma3:12b"],
        "24.0 GiB: VRAM of NVIDIA GeForce RTX 4090. Ollama can spill a bigger model into RAM",
        id="24 GB NVIDIA card in a 64 GB box",
    ),
    pytest.param(
        {"total_memory_bytes": 64 * GiB, "cgroup_limit_bytes": 4 * GiB},
        "gemma3:1b",
        ["gemma3:1b", "qwen3.5:0.8b"],
        "3.4 GiB: no GPU found, and a container memory limit of 4.0 GiB",
        id="container limited to 4 GB",
    ),
    pytest.param(
        {"total_memory_bytes": 64 * GiB},
        "gemma3:4b",  # a 70B fits in RAM, but writes about a token a second without a GPU
        ["gemma3:4b", "gemma3:12b", "gemma4:12b"],
        "48.0 GiB: no GPU found, so 75% of 64.0 GiB RAM",
        id="64 GB RAM, no GPU",
    ),
]


@pytest.mark.parametrize(("facts", "default", "top3", "reason"), MACHINES)
def test_each_simulated_machine_gets_the_model_a_knowledgeable_person_would_pick(
    catalogue, facts, default, top3, reason
):
    budget = memory_budget(environ={}, **facts)
    cpu_only = budget.source == "cpu"

    selection = choose_default([], budget.bytes, catalogue, cpu_only=cpu_only)
    recommendations = recommend([], budget.bytes, catalogue, n=5, cpu_only=cpu_only)

    assert budget.reason.startswith(reason)
    assert (selection.model, selection.installed) == (default, False)
    assert f"Run `persona-ollama pull {default}`" in selection.reasons[-1]
    assert [r.spec.name for r in recommendations[:3]] == top3
    # Nothing recommended here scores above the pick: the pick is the best that fits.
    pick = next(r for r in recommendations if r.spec.name == default)
    assert all((r.spec.quality or 0) <= (pick.spec.quality or 0) for r in recommendations)
    assert all(r.fits and r.memory_bytes <= budget.bytes for r in recommendations)
    assert not any(r.spec.embedding or r.installed for r in recommendations)


# -- the installed set ------------------------------------------------------------


@pytest.mark.parametrize("capabilities", [True, False], ids=["v0.30+", "older server"])
def test_24_gb_cpu_only_machine_picks_a_small_model_never_70b_moe_or_embedding(
    catalogue, capabilities
):
    budget = memory_budget(total_memory_bytes=24 * GiB, environ={})
    selection = choose_default(seed_models(capabilities), budget.bytes, catalogue, cpu_only=True)
    # llama3.2:3b, qwen2.5:7b and llama3:8b all score 71 (the 3B with all four figures, the
    # others with medians for what is missing): the tie goes to the smaller, faster one.
    assert selection.model == "llama3.2:3b"
    assert selection.installed
    assert selection.warnings == ()
    text = "\n".join(selection.reasons)
    assert "nomic-embed-text:latest: skipped, embedding-only" in text
    # Memory at the planned window (32K, the reference job), capped at the trained context.
    assert "llama3:70b: needs 41.0 GiB of 18.0 GiB (1.8 GiB kept free) at 8192 tokens" in text
    assert "too big, skipped." in text
    assert "mixtral:8x7b: needs 29.6 GiB of 18.0 GiB (1.8 GiB kept free) at 32768 tokens" in text
    assert selection.reasons[-1].startswith(
        "Chose llama3.2:3b: needs 5.9 GiB of 18.0 GiB (1.8 GiB kept free) at 32768 tokens"
    )
    assert "the best of 3 installed chat model(s) that fit" in selection.reasons[-1]


@pytest.mark.parametrize(
    ("gigabytes", "expected"), [("64", "gemma3:27b"), ("12", "gemma3:4b"), ("4", "gemma3:1b")]
)
def test_memory_override_changes_the_pick_on_the_same_machine(catalogue, gigabytes, expected):
    budget = memory_budget(
        total_memory_bytes=24 * GiB, environ={"PERSONA_OLLAMA_MEMORY_GB": gigabytes}
    )
    cpu_only = budget.source == "cpu"
    assert choose_default([], budget.bytes, catalogue, cpu_only=cpu_only).model == expected


@given(st.permutations(seed_models()))
def test_the_choice_does_not_depend_on_the_order_of_the_model_list(order):
    catalogue = load_catalogue({})
    for budget in (4 * GiB, 18 * GiB, 64 * GiB, None):
        assert choose_default(order, budget, catalogue) == choose_default(
            seed_models(), budget, catalogue
        )


# -- fallbacks ----------------------------------------------------------------------------


def test_when_nothing_installed_fits_the_smallest_is_used_with_a_warning(catalogue):
    models = installed(
        tags_entry("llama3:70b", 39_969_745_349, "70.6B", "Q4_0"),
        tags_entry("qwen2.5:7b", 4_683_087_332, "7.6B"),
    )
    selection = choose_default(models, 3 * GiB, catalogue)
    assert (selection.model, selection.installed) == ("qwen2.5:7b", True)
    (warning,) = selection.warnings
    assert warning.startswith("No installed model fits 3.0 GiB; using the smallest, qwen2.5:7b")
    assert "`persona-ollama pull gemma3:1b` gets one that fits" in warning


def test_when_nothing_in_the_catalogue_fits_there_is_no_model(catalogue):
    selection = choose_default([], GiB // 2, catalogue)
    assert selection.model is None
    assert selection.warnings[0].startswith(
        "No chat model is installed, and none in the catalogue fits 0.5 GiB; the smallest, "
        "gemma3:1b"
    )
    tiny = installed(tags_entry("huge:1t", 600 * GiB, "1000B"))
    assert "gets one that fits" not in choose_default(tiny, GiB // 2, catalogue).warnings[0]


def test_an_empty_catalogue_and_no_models_give_no_model():
    selection = choose_default([], 8 * GiB, Catalogue([]))
    assert selection.model is None
    assert selection.warnings == ("No chat model is installed, and none in the catalogue fits "
                                  "8.0 GiB.",)  # fmt: skip


def test_unknown_budget_ranks_installed_models_by_quality_and_says_so(catalogue):
    selection = choose_default(seed_models(), None, catalogue)
    # llama3:70b scores higher (79), but holds only 8K; mixtral:8x7b has no cited figures;
    # the three scored 71 tie and the smallest wins.
    assert selection.model == "llama3.2:3b"
    assert "memory is unknown" in selection.reasons[0]
    assert "PERSONA_OLLAMA_MEMORY_GB" in selection.reasons[0]


def test_unknown_budget_with_nothing_installed_suggests_a_model_most_machines_run(catalogue):
    selection = choose_default([], None, catalogue)
    assert selection.model == "gemma3:4b"
    assert any("runs in 8.0 GiB" in reason for reason in selection.reasons)


def test_only_embedding_models_installed_means_suggesting_a_chat_model(catalogue):
    models = installed(tags_entry("nomic-embed-text:latest", 274_302_450, "137M", "F16", None))
    selection = choose_default(models, 18 * GiB, catalogue, cpu_only=True)
    assert (selection.model, selection.installed) == ("gemma3:4b", False)


# -- ranking ------------------------------------------------------------------------------


def test_cpu_only_ranks_large_dense_models_after_usable_ones(catalogue):
    models = installed(
        tags_entry("mistral-small:24b", 14_333_927_918, "23.6B"),
        tags_entry("qwen2.5:7b", 4_683_087_332, "7.6B"),
    )
    on_cpu = choose_default(models, 24 * GiB, catalogue, cpu_only=True)
    assert on_cpu.model == "qwen2.5:7b"
    assert on_cpu.reasons[1].startswith("mistral-small:24b: needs 19.1 GiB of 24.0 GiB")
    assert on_cpu.reasons[1].endswith(
        "without a GPU a model this large writes only a few tokens a second: ranked lower."
    )
    assert choose_default(models, 24 * GiB, catalogue).model == "mistral-small:24b"


def test_a_model_whose_context_is_shorter_than_planned_ranks_last(catalogue):
    models = installed(
        tags_entry("llama3:70b", 39_969_745_349, "70.6B", "Q4_0"),
        tags_entry("qwen2.5:14b", 8_988_110_976, "14.8B"),
    )
    assert choose_default(models, 64 * GiB, catalogue, context_tokens=8192).model == "llama3:70b"
    longer = choose_default(models, 64 * GiB, catalogue, context_tokens=16384)
    assert longer.model == "qwen2.5:14b"
    assert choose_default(models, 64 * GiB, catalogue).model == "qwen2.5:14b"  # the planned 32K
    assert "shorter than the planned 16384 tokens" in longer.candidates[-1].describe(
        64 * GiB, 16384
    )


def test_ties_go_to_the_smaller_model_then_the_name():
    models = installed(
        tags_entry("b/custom:8b", 6 * GiB, "8.0B"),
        tags_entry("a/custom:8b", 6 * GiB, "8.0B"),
        tags_entry("c/custom:8b", 5 * GiB, "8.0B"),
    )
    selection = choose_default(models, 16 * GiB, Catalogue([]))
    assert [c.name for c in selection.candidates] == ["c/custom:8b", "a/custom:8b", "b/custom:8b"]


def test_unknown_models_have_no_score_and_rank_by_size_after_scored_ones(catalogue):
    models = installed(
        tags_entry("hf.co/org/small:Q8_0", 4 * GiB, "3.2B", "Q8_0"),
        tags_entry("hf.co/org/big:Q4_K_M", 9 * GiB, "14.0B", "Q4_K_M"),
    )
    selection = choose_default(models, 24 * GiB, catalogue)
    assert selection.model == "hf.co/org/big:Q4_K_M"
    assert "no score (not in the catalogue, so no benchmark figures" in selection.reasons[-1]
    assert "by size (14.0B, Q4_K_M)" in selection.reasons[-1]
    # A catalogue model with a score ranks first, even if smaller.
    scored = installed(tags_entry("llama3.2:3b", 2_019_393_189, "3.2B"))
    mixed = choose_default([*models, *scored], 24 * GiB, catalogue)
    assert mixed.model == "llama3.2:3b"


# -- installed models ---------------------------------------------------------------------


def test_a_current_servers_listing_is_read_whole():
    model = listed_model(
        tags_entry("llama3.2:latest", 2_019_393_189, "3.2B", "Q4_K_M", ("completion", "tools"),
                   131072)
    )  # fmt: skip
    assert model == ModelInfo(
        name="llama3.2:latest",
        size_bytes=2_019_393_189,
        parameter_size="3.2B",
        quantization_level="Q4_K_M",
        family="llama",
        capabilities=("completion", "tools"),
        context_length=131072,
        digest="a" * 64,
    )
    assert model.complete  # v0.30+: enough to plan a request without /api/show
    assert model.parameters_b == pytest.approx(3.2)
    assert model.can_chat


def test_a_listing_entry_with_missing_and_odd_fields_is_read_as_unknown():
    model = listed_model(
        {"model": "x:1", "size": "big", "details": None, "capabilities": "completion"}
    )
    # A size that is not a number cannot rule out a stub: where it runs is unknown (local-only
    # mode refuses it), not shown to be remote.
    assert not model.placement.known and not model.placement.remote
    assert model == ModelInfo(name="x:1", complete=False, placement=model.placement)
    assert model.parameters_b is None
    assert listed_model({}).name == ""


@pytest.mark.parametrize(
    ("parameter_size", "billions"),
    [("8.0B", 8.0), ("137M", 0.137), ("1.5T", 1500.0), ("22.7K", 22.7e-6), ("7b", 7.0),
     ("8x7B", None), ("", None), (None, None)],
)  # fmt: skip
def test_parameter_size_parsing(parameter_size, billions):
    model = ModelInfo("m:1", parameter_size=parameter_size)
    assert model.parameters_b == (pytest.approx(billions) if billions else None)


@pytest.mark.parametrize(
    ("name", "capabilities", "embedding"),
    [
        ("anything:1", ("embedding",), True),
        ("anything:1", ("completion", "embedding"), False),
        ("nomic-embed-text:latest", ("completion",), False),  # capabilities beat names
        ("anything:1", ("vision",), False),
        ("nomic-embed-text:latest", None, True),
        ("mxbai-embed-large:latest", None, True),
        ("bge-m3:latest", None, True),
        ("all-minilm:22m", None, True),
        ("jeffh/intfloat-multilingual-e5-large:f16", None, True),
        ("e5-mistral:7b", None, True),
        ("gte-qwen2:1.5b", None, True),
        ("qwen2.5:7b", None, False),
        ("phi3.5:latest", None, False),
        ("deepseek-r1:8b", None, False),
        ("gemma3:latest", (), False),
    ],
)
def test_embedding_only_detection(name, capabilities, embedding):
    model = ModelInfo(name, capabilities=capabilities)
    assert model.is_embedding is embedding
    assert model.can_chat is not embedding


def test_catalogue_flag_marks_embedding_models_the_server_does_not_describe():
    vectors = ModelSpec(
        name="acme/vectors:1", family="bert", parameters_b=0.3, context_length=512,
        download_bytes=GiB, memory_bytes=2 * GiB, quality=0, embedding=True,
    )  # fmt: skip
    catalogue = Catalogue([vectors])
    assert is_embedding_only(ModelInfo("acme/vectors:1"), catalogue)
    assert not is_embedding_only(ModelInfo("acme/vectors:1", capabilities=("completion",)),
                                 catalogue)  # fmt: skip
    assert is_embedding_only(vectors)
    assert not is_embedding_only(ModelInfo("acme/vectors:1"))


# -- memory estimates ---------------------------------------------------------------------


def test_estimate_for_a_catalogue_model_uses_its_kv_cache_figure(catalogue):
    spec = catalogue.get("qwen2.5:7b")
    model = ModelInfo("qwen2.5:latest", size_bytes=spec.download_bytes, parameter_size="7.6B")
    assert estimate_memory_bytes(model, 8192, catalogue) == spec.memory_bytes
    assert estimate_memory_bytes(spec, 16384) == spec.memory_at(16384)


def test_estimate_for_an_unknown_model_is_file_plus_rule_of_thumb_kv_plus_overhead():
    model = ModelInfo("acme/m:8b", size_bytes=5 * GiB, parameter_size="8.0B", context_length=4096)
    expected = runtime_memory_bytes(5 * GiB, kv_bytes_rule_of_thumb(8.0), 4096)
    assert estimate_memory_bytes(model, 8192) == expected  # capped at its 4096-token context


@pytest.mark.parametrize(
    ("size", "parameter_size", "expected"),
    [
        (None, "10.0B", runtime_memory_bytes(6_000_000_000, 200 * 1024, 8192)),
        (3_000_000_000, None, runtime_memory_bytes(3_000_000_000, 160 * 1024, 8192)),
        (None, None, None),
    ],
)
def test_estimate_fills_in_size_or_parameters_from_the_other(size, parameter_size, expected):
    model = ModelInfo("acme/m:1", size_bytes=size, parameter_size=parameter_size)
    assert estimate_memory_bytes(model, 8192) == expected


@pytest.mark.parametrize(
    ("memory", "budget", "expected"),
    # A model must leave 10 % of the budget, at least 1 GiB, free (selection.HEADROOM_*).
    [(GiB, 2 * GiB, True), (GiB + 1, 2 * GiB, False), (2 * GiB, 2 * GiB, False),
     (9 * GiB, 10 * GiB, True), (9 * GiB + 1, 10 * GiB, False), (90 * GiB, 100 * GiB, True),
     (91 * GiB, 100 * GiB, False), (None, 2 * GiB, False), (GiB, None, None),
     (None, None, None)],
)  # fmt: skip
def test_fits(memory, budget, expected):
    assert fits(memory, budget) is expected


def test_a_model_of_unknown_size_never_fits_a_known_budget(catalogue):
    models = installed(tags_entry("mystery:1", 0, "?", capabilities=("completion",)))
    selection = choose_default(models, 16 * GiB, catalogue)
    assert "mystery:1: size unknown of 16.0 GiB (1.6 GiB kept free)" in selection.warnings[0]
    assert selection.reasons[1].endswith(": may not fit, skipped.")


# -- recommend ----------------------------------------------------------------------------


def test_recommend_marks_installed_models_and_stops_at_n(catalogue):
    recommendations = recommend(seed_models(), 18 * GiB, catalogue, n=12, cpu_only=True)
    assert len(recommendations) == 12
    by_name = {r.spec.name: r for r in recommendations}
    assert by_name["qwen2.5:7b"].installed and by_name["llama3.2:3b"].installed
    assert not by_name["gemma3:12b"].installed
    assert by_name["gemma3:12b"].reason.startswith(
        "gemma3:12b: needs 10.6 GiB of 18.0 GiB (1.8 GiB kept free) at 32768 tokens"
    )
    # Not known to be CPU-only: the best that fits 24 GiB at the planned 32K window.
    assert [r.spec.name for r in recommend(seed_models(), 24 * GiB, catalogue, n=2)] == [
        "gemma3:27b",
        "gemma3:4b",
    ]


def test_recommend_with_unknown_budget_lists_the_best_without_claiming_they_fit(catalogue):
    recommendations = recommend([], None, catalogue, n=3)
    assert [r.spec.name for r in recommendations] == ["gemma3:27b", "gemma3:4b", "gemma3:12b"]
    assert all(r.fits is None for r in recommendations)
    assert "of" not in recommendations[0].reason.split(";")[0]


def test_a_reason_without_a_quality_note_is_just_memory_and_score():
    plain = ModelSpec(
        name="plain:1", family="plain", parameters_b=1.0, context_length=8192,
        download_bytes=GiB, memory_bytes=2 * GiB, quality=40, kv_bytes_per_token=64 * 1024,
    )  # fmt: skip
    (only,) = recommend([], 4 * GiB, Catalogue([plain]), context_tokens=8192)
    assert (
        only.reason
        == "plain:1: needs 2.0 GiB of 4.0 GiB (1.0 GiB kept free) at 8192 tokens; quality 40"
    )


# -- an OpenAI-compatible server -----------------------------------------------------------


def test_a_v1_server_s_models_are_ranked_by_quality_without_a_memory_check(catalogue):
    served = installed(
        tags_entry("tiny-llama", None, None),  # llama-cpp-python states no size at all
        tags_entry("qwen2.5:7b", 4_683_087_332, "7.6B"),
    )

    selection = choose_default(served, GiB // 2, catalogue, server="llama.cpp server")

    assert (selection.model, selection.installed) == ("qwen2.5:7b", True)
    assert selection.warnings == ()
    assert "The llama.cpp server loaded its models itself" in selection.reasons[0]
    assert not any("pull" in line for line in selection.reasons)


def test_a_v1_server_serving_no_chat_model_gives_no_pull_advice(catalogue):
    selection = choose_default([], 8 * GiB, catalogue, server="vLLM server")

    assert selection.model is None
    assert selection.reasons == (
        "The vLLM server serves no chat model: start it with one (it cannot pull).",
    )


@pytest.mark.parametrize("budget", [8 * GiB, GiB // 2, None])
def test_without_the_servers_listing_nothing_says_it_has_no_model(catalogue, budget):
    """The server did not answer: the catalogue's pick (if any) stands, but no reason or
    warning claims that no chat model is installed, and none advises a pull."""
    known = choose_default([], budget, catalogue)
    unknown = choose_default([], budget, catalogue, listed=False)

    assert (unknown.model, unknown.installed) == (known.model, False)
    said = (*unknown.reasons, *unknown.warnings)
    assert not any("No chat model is installed" in line or "pull" in line for line in said)
    assert set(said) < set((*known.reasons, *known.warnings))  # only those claims are left out


def test_a_v1_server_that_did_not_list_its_models_has_no_default_and_no_claim(catalogue):
    selection = choose_default([], 8 * GiB, catalogue, server="vLLM server", listed=False)

    assert (selection.model, selection.reasons, selection.warnings) == (None, (), ())
