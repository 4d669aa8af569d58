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

DECLARATION = Declaration(
    # The native backend's: the same server, reached by the same variables.
    address=declared("native").address,
    speaks="the OpenAI-compatible /v1/chat/completions of vLLM, llama.cpp, LM Studio, LiteLLM "
    "or Ollama (see docs/scaling.md)",
    names=AnyName(),
)
