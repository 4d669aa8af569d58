"""One address, several machines: what the provider says when they disagree.

The provider treats one ``base_url`` as one server: it reads a model's facts (the backend's
``describe``: trained context, capabilities) once per address and keeps them, and plans every
prompt with them. Behind a balancer (docs/scaling.md) each request may reach another machine,
so the rule is that every machine behind one address serves the same models, the same versions
(digests).
Where they do not, a request reaches a machine that contradicts the facts the provider holds;
these functions turn the resulting error into one that says so, instead of "not installed, did
you mean <the same name>?" or "ask for a larger window" (which was asked for).
"""

from __future__ import annotations

from .errors import ContextOverflowError, ModelNotAvailableError

RULE_HINT = (
    "Behind a balancer, every machine must serve the same models, the same versions (compare "
    "the digests of `persona-ollama models --host <machine>` on each), and pull or update them "
    "on all machines at once: docs/scaling.md."
)


def missing_on_a_machine(model: str, url: str, *, seen: str) -> ModelNotAvailableError:
    """``model`` was ``seen`` ("listed", "described") by the server at ``url``, which then
    said it is not installed: a machine behind a balancer lacks it (or it was just removed)."""
    return ModelNotAvailableError(
        f"The server at {url} {seen} '{model}' and then answered that it is not installed: "
        "if that address is a balancer, not every machine behind it has the model (or it "
        "was removed just now).",
        model=model,
        hint=RULE_HINT,
        status_code=404,
        url=url,
    )


def shorter_on_a_machine(
    error: ContextOverflowError, *, window: int, trained: int | None, url: str
) -> ContextOverflowError:
    """``error`` as is, unless the server refused with a context shorter than the ``window``
    sent, which the model's facts say it was ``trained`` for: then the machine that answered
    runs another version of the model than the one described."""
    used = error.context_length
    if used is None or used >= window or trained is None or trained < window:
        return error
    return error.with_context(
        f"The request asked for a window of {window} tokens, and the model's facts from {url} "
        f"say it was trained for {trained} tokens, but the machine that answered ran it with "
        f"{used}: if that address is a balancer, its machines do not all have the same "
        "version of the model."
    ).with_fields(hint=RULE_HINT)
