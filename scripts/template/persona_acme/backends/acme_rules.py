"""What the Acme backend declares to the layers above it: where its server is, and what it
does with too long a prompt."""

from __future__ import annotations

from .rules import AddressRules, ContextWords, Declaration

DECLARATION = Declaration(
    # The first variable set wins; none set: http://127.0.0.1:8080.
    address=AddressRules(
        label="Acme", variables=("PERSONA_ACME_URL", "ACME_HOST"), default_port=8080
    ),
    speaks="the Acme server's /generate_stream",
    context=ContextWords(
        would_cut="the Acme server would have refused it",
        fills_window="the Acme server refuses a prompt over its input limit, so this count is "
        "its own; use a model with a longer context if the answer was cut.",
    ),
)
