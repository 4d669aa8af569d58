"""What the /v1 backend declares to the layers above it: the address it reads, and that it
takes any model id its server serves.

The address is read as the native backend reads it (the same variables, port and messages), so
``api="openai"`` pointed at an Ollama server needs no other setting; the provider then adds
``/v1`` (endpoint.v1_endpoint). Model ids are the server's own: vLLM serves ``org/model`` ids
and local paths, llama.cpp the file name it loaded, so only the neutral checks apply.
"""

from __future__ import annotations

from .registry import declared
from .rules import AnyName, Declaration


class ServedIds(AnyName):
    """Any id passes; two spellings that differ only in case name one served model. The
    backend sends the id as the server lists it, so "qwen/qwen3-8b" finds vLLM's
    "Qwen/Qwen3-8B" (an exact id is preferred where the server lists both)."""

    def canonical(self, name: str) -> str:
        """``name`` without surrounding spaces, lower-cased."""
        return name.strip().lower()


DECLARATION = Declaration(
    # The native backend's: the same server, reached by the same variables.
    address=declared("native").address,
    speaks="the OpenAI-compatible /v1/chat/completions of vLLM, llama.cpp, LM Studio, LiteLLM "
    "or Ollama (see docs/scaling.md)",
    names=ServedIds(),
)
