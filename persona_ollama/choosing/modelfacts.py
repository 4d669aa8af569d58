"""What the estimates need to know about one model, wherever the facts came from.

A :class:`ModelFacts` is built from a catalogue entry (``ModelSpec.facts``) or from what the
server says about an installed model (:func:`facts_from_server`, for models the catalogue
does not know). Memory (:mod:`.catalogue`) and speed (:mod:`.speed`) are worked out from it
alone, so both sources get the same estimates, and ``basis`` says which one it was.
"""

from __future__ import annotations

from dataclasses import dataclass

# f16 KV cache bytes per token of context when a model's architecture is unknown: what a
# grouped-query-attention model of that size needs (Llama 3 8B: 128 KiB; 70B: 320 KiB),
# rounded up. (largest parameter count in billions, bytes per token)
KV_RULE_OF_THUMB = ((4.0, 128 * 1024), (9.0, 160 * 1024), (16.0, 200 * 1024), (40.0, 256 * 1024))
KV_LARGEST = 320 * 1024
# Bytes of one cache element: Ollama keeps the KV cache in f16 unless OLLAMA_KV_CACHE_TYPE
# says otherwise (docs/reference/ollama-protocol.md).
KV_ELEMENT_BYTES = 2
# Bytes per parameter of a Q4_K_M file (weights plus embeddings), to size a model whose
# file size the server does not give.
BYTES_PER_PARAMETER = 0.6

BASIS_CATALOGUE = "catalogue"
BASIS_SERVER = "estimated from the server"


def kv_bytes_rule_of_thumb(parameters_b: float) -> int:
    """KV cache bytes per token for a model of this size whose architecture is unknown."""
    for largest, per_token in KV_RULE_OF_THUMB:
        if parameters_b <= largest:
            return per_token
    return KV_LARGEST


@dataclass(frozen=True)
class Architecture:
    """The published config facts the KV cache depends on: ``kv_heads`` and ``head_dim`` of
    the layers whose cache grows with the context. ``sliding_window``: tokens a local-attention
    layer keeps (0: the other layers keep no per-token cache, as in hybrid linear-attention
    models); ``global_layers``: how many layers attend to everything (None with a sliding
    window: every layer is local). The local layers are counted at the global layers' width,
    which overestimates a little where theirs is narrower (Gemma 4)."""

    layers: int
    kv_heads: int
    head_dim: int
    sliding_window: int | None = None
    global_layers: int | None = None

    @property
    def bytes_per_layer_token(self) -> int:
        """K and V of one layer for one token: 2 x KV heads x head size x 2 bytes (f16)."""
        return 2 * self.kv_heads * self.head_dim * KV_ELEMENT_BYTES

    def kv_bytes(self, context_tokens: int) -> int:
        """The whole KV cache at ``context_tokens``: full-attention layers hold every token,
        sliding-window layers at most their window."""
        if self.sliding_window is None:
            return self.layers * self.bytes_per_layer_token * context_tokens
        full = self.global_layers or 0
        local = self.layers - full
        held = full * context_tokens + local * min(context_tokens, self.sliding_window)
        return held * self.bytes_per_layer_token


@dataclass(frozen=True)
class ModelFacts:
    """Everything memory and speed are estimated from. ``kv_bytes_per_token`` is used only
    when ``architecture`` is None (a given figure, or the rule of thumb); ``basis`` is
    "catalogue" or "estimated from the server"."""

    name: str
    parameters_b: float
    active_parameters_b: float
    weights_bytes: int
    context_length: int | None
    architecture: Architecture | None = None
    kv_bytes_per_token: int | None = None
    thinking: bool = False
    basis: str = BASIS_CATALOGUE

    def kv_bytes(self, context_tokens: int) -> int:
        """The KV cache at ``context_tokens`` (capped at the trained context)."""
        tokens = min(context_tokens, self.context_length or context_tokens)
        if self.architecture is not None:
            return self.architecture.kv_bytes(tokens)
        per_token = self.kv_bytes_per_token or kv_bytes_rule_of_thumb(self.parameters_b)
        return per_token * tokens

    @property
    def kv_source(self) -> str:
        """Where the KV cache size comes from, in words."""
        if self.architecture is not None:
            return "the published architecture"
        if self.kv_bytes_per_token is not None:
            return "the catalogue's figure"
        return "a rule of thumb for its size"

    @property
    def bytes_read_per_token(self) -> float:
        """Weight bytes read to generate one token: the active share of the file."""
        return self.weights_bytes * min(1.0, self.active_parameters_b / self.parameters_b)


def facts_from_server(
    name: str,
    *,
    parameters_b: float | None,
    size_bytes: int | None,
    context_length: int | None,
    thinking: bool = False,
) -> ModelFacts | None:
    """Facts of a model the catalogue does not know, from /api/tags and /api/show (size,
    parameter count, context); None when neither size nor parameter count is known."""
    if parameters_b is None and not size_bytes:
        return None
    params = parameters_b or (size_bytes or 0) / (1e9 * BYTES_PER_PARAMETER)
    weights = size_bytes or int(params * 1e9 * BYTES_PER_PARAMETER)
    return ModelFacts(
        name=name,
        parameters_b=params,
        active_parameters_b=params,  # /api/show does not say how many experts are active
        weights_bytes=weights,
        context_length=context_length,
        thinking=thinking,
        basis=BASIS_SERVER,
    )
