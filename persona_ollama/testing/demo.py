"""The demo configuration of the double: what ``python -m persona_ollama.testing`` serves, and
what the docs test runs every documented command against.

- Models carry the facts of the packaged catalogue (size, parameters, quantisation, context,
  capabilities), installed or pulled, so `persona-ollama models` shows what a real server
  with those models would show. Names the catalogue does not know keep the double's LIBRARY
  facts (or its defaults).
- Every model of the catalogue can be pulled.
- A request for JSON (``format="json"``, a JSON schema, or a prompt that asks for personas as
  JSON) gets personas as JSON; anything else a short greeting that says where it came from.

It is still a double: the answers are canned, not generated from the prompt.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .models import FakeModel
from .ollama_models import as_model
from .ollama_server import FakeOllama

__all__ = [
    "DEMO_MODELS",
    "GREETING",
    "PERSONAS",
    "catalogue_model",
    "demo_reply",
    "demo_server",
]

DEMO_MODELS: tuple[str, ...] = ("llama3.2:3b", "qwen2.5:7b")
"""What the demo server and the docs' double have installed unless told otherwise."""

GREETING = "Hello from your local model."

# Three personas grounded in examples/interviews.csv, quotes verbatim from it.
PERSONAS: list[dict[str, Any]] = [
    {
        "id": "compliance-bound-researcher",
        "name": "Dana, the compliance-bound researcher",
        "demographics": {
            "role": "UX researcher",
            "sector": "Healthcare",
            "experience": "6-14 years",
        },
        "goals": ["Analyse interviews without sending data off the network"],
        "pain_points": ["Cloud AI tools are blocked; synthesis by hand takes a week"],
        "behaviours": ["Codes transcripts in spreadsheets", "Reviews every artefact for PII"],
        "quotes": [
            "Anything with patient context is protected health information. It stays on our "
            "network or it doesn't get analysed."
        ],
    },
    {
        "id": "evidence-first-lead",
        "name": "Sam, the evidence-first design lead",
        "demographics": {"role": "Design lead", "sector": "Media", "experience": "12 years"},
        "goals": ["Personas that trace every trait back to a session"],
        "pain_points": ["Confident prose hides thin evidence"],
        "behaviours": ["Challenges unsupported claims in readouts"],
        "quotes": [
            "A persona that sounds sure of itself on thin evidence is worse than having no "
            "persona at all."
        ],
    },
    {
        "id": "scripting-analyst",
        "name": "Kai, the scripting analyst",
        "demographics": {"role": "Data analyst", "sector": "Insurance", "experience": "7 years"},
        "goals": ["Repeatable, scriptable runs over many studies"],
        "pain_points": ["Hosted tools need procurement and logins"],
        "behaviours": ["Works from CSV files and the command line"],
        "quotes": ["Give me a CSV and a command line and I'm happy."],
    },
]

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_COUNT = re.compile(
    r"\b(\d{1,2}|" + "|".join(_WORDS) + r")\s+(?:distinct\s+)?(?:user\s+)?personas?\b",
    re.IGNORECASE,
)


def catalogue_model(name: str, modified_at: float = 1_760_000_000.0) -> FakeModel:
    """A model for the double with the catalogue's facts; LIBRARY's (or defaults) otherwise.

    The model keeps the name asked for: ``llama3.2`` is served as ``llama3.2:latest`` with the
    facts of ``llama3.2:3b`` (the catalogue's alias), as `ollama pull llama3.2` installs it."""
    from ..choosing.catalogue import load_catalogue

    spec = load_catalogue({}).get(name)
    if spec is None:
        model = as_model(name)
        model.modified_at = modified_at
        return model
    capabilities = ["completion", "tools"] + (["thinking"] if spec.thinking else [])
    return FakeModel(
        name=name,
        family=spec.family,
        parameter_size=f"{spec.parameters_b:.1f}B",
        quantization_level=spec.quantization or "unknown",
        context_length=spec.context_length,
        size=spec.download_bytes,
        capabilities=["embedding"] if spec.embedding else capabilities,
        modified_at=modified_at,
    )


def demo_reply(request: Any) -> str:
    """Personas as JSON for a request that wants JSON or personas in JSON; else a greeting."""
    messages = request.get("messages") or [{"content": request.get("prompt", "")}]
    prompt = str(messages[-1].get("content", ""))
    wants_json = request.get("format") not in (None, "")
    asks_for_personas = "persona" in prompt.lower() and "json" in prompt.lower()
    if not (wants_json or asks_for_personas):
        return GREETING
    found = _COUNT.search(prompt)
    word = found.group(1).lower() if found else str(len(PERSONAS))
    count = _WORDS[word] if word in _WORDS else int(word)
    personas = [_nth_persona(n) for n in range(max(1, min(count, 20)))]
    return json.dumps({"personas": personas})


def _nth_persona(n: int) -> dict[str, Any]:
    persona = copy.deepcopy(PERSONAS[n % len(PERSONAS)])
    if n >= len(PERSONAS):  # more were asked for than there are: distinct ids all the same
        persona["id"] = f"{persona['id']}-{n // len(PERSONAS) + 1}"
    return persona


def demo_server(
    models: Iterable[str] = DEMO_MODELS,
    *,
    reply_file: Path | None = None,
    pullable: Sequence[str] | None = None,
    **settings: Any,
) -> FakeOllama:
    """A FakeOllama (not started) set up as the demo: catalogue facts for ``models`` and for
    every catalogue model (all can be pulled), and the demo replies (or ``reply_file``'s text)."""
    from ..choosing.catalogue import load_catalogue

    names = list(models)
    fake = FakeOllama(
        [catalogue_model(name, 1_760_000_000.0 - n) for n, name in enumerate(names)],
        **settings,
    )
    if pullable is None:
        # Every tag the registry answers to, the ``:latest`` aliases included (`pull llama3.2`).
        pullable = [name for spec in load_catalogue({}) for name in (spec.name, *spec.aliases)]
    for name in pullable:
        fake.pullable(catalogue_model(name))
    if reply_file is not None:
        text = reply_file.read_text(encoding="utf-8")
        fake.reply_with(text)
    else:
        fake.reply_with(demo_reply)
    return fake
