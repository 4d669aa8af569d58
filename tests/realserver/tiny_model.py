"""A tiny llama-architecture GGUF with random, seeded weights, written with the ``gguf`` package.

It exists so that a real inference engine (llama.cpp, through llama-cpp-python's server) can run
in the test suite on any CPU in well under a second per request. Its answers are noise; what the
tests exercise is the server's HTTP behaviour: streaming, its end-of-stream rules, its errors and
its context window. The vocabulary is SentencePiece-style ("llama" tokenizer): three control
tokens, the 256 byte tokens (so any text tokenises by byte fallback) and a few word pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# A chat template in the GGUF metadata: llama-cpp-python formats chat messages with it when no
# chat_format is given. It is deliberately plain (no model family's markers).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

WORDS = (
    *("the", "a", "persona", "user", "research", "data", "model", "local", "server", "answer"),
    *("test", "of", "and", "to", "is", "in", "it", "you", "that", "for", "on", "with", "as"),
    *("be", "at", "this", "are", "from", "or", "have", "by", "not", "but", "what", "all"),
)

N_EMBD = 64
N_HEAD = 4
N_LAYER = 2
N_FF = 128
CONTEXT_LENGTH = 4096  # what the model says it was trained for; the server's n_ctx is smaller
EOS = 2


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of the SentencePiece vocabulary."""
    from gguf import TokenType

    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [TokenType.BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    # Every prefix of a word piece is a piece too: SentencePiece builds a word by merging
    # pairs whose result is in the vocabulary, so "\u2581se" must exist for "\u2581server".
    for word in WORDS:
        for end in range(1, len(word) + 1):
            piece = "\u2581" + word[:end]
            if piece not in pieces:
                pieces.append(piece)
    tokens += pieces
    types += [TokenType.NORMAL] * len(pieces)
    # SentencePiece merges the highest-scoring pieces first: longer pieces score higher.
    scores = [0.0] * (3 + 256) + [float(len(piece)) for piece in pieces]
    return tokens, scores, [int(t) for t in types]


def output_weights(weights: np.ndarray, types: list[int]) -> np.ndarray:
    """The output projection, shaped so that the model writes word pieces, not raw bytes.

    With random weights every token is about as likely, and three quarters of this vocabulary
    are byte tokens: the answers would be mostly invalid UTF-8, which llama-cpp-python's
    streaming holds back and re-decodes token by token (tens of seconds for a few hundred
    tokens). Zero rows give the byte and control tokens a logit of 0 against word pieces of a
    spread of about 8, so they are picked only where a grammar leaves nothing else (a JSON
    schema's braces and digits); the end-of-text token gets half the spread, so that answers
    usually run to max_tokens but can stop.
    """
    from gguf import TokenType

    scaled = weights * 5.0
    for token, kind in enumerate(types):
        if kind != TokenType.NORMAL:
            scaled[token] = 0.0
    scaled[EOS] = weights[EOS] * 2.5
    return scaled


def write_model(path: Path, *, seed: int = 17) -> Path:
    """Write the model to ``path`` and return it. Same seed, same file."""
    import numpy as np
    from gguf import GGUFWriter

    rng = np.random.default_rng(seed)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)

    def weights(*shape: int) -> np.ndarray:
        # numpy's shape is the reverse of GGUF's (ne0 is the innermost dimension).
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    writer = GGUFWriter(str(path), "llama")
    writer.add_name("persona-ollama tiny test model")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(EOS)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weights(n_vocab, N_EMBD))
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    writer.add_tensor("output.weight", output_weights(weights(n_vocab, N_EMBD), types))
    for layer in range(N_LAYER):
        block = f"blk.{layer}"
        writer.add_tensor(f"{block}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{block}.{name}.weight", weights(N_EMBD, N_EMBD))
        writer.add_tensor(f"{block}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{block}.ffn_gate.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_up.weight", weights(N_FF, N_EMBD))
        writer.add_tensor(f"{block}.ffn_down.weight", weights(N_EMBD, N_FF))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
