"""The one formula that turns a model's cited benchmark figures into its quality score.

Persona generation reads a long transcript, follows a template, returns strict JSON and writes
believable prose, so four kinds of figure count, with these weights:

- ``ifeval`` (instruction following, IFEval prompt-level strict accuracy): 0.35
- ``structured`` (structured / JSON output): 0.25
- ``long_context`` (retrieval at 32K tokens or more, e.g. RULER): 0.25
- ``writing`` (writing quality, normalised to 0-100): 0.15

The score is the weighted mean of the figures present, each 0-100 (weights renormalised over
them), rounded; with fewer than four it is marked "partial: N of 4 figures". With none there is
no score: such models rank after every scored one, larger (more parameters) first. No score is
typed in by hand; a user's catalogue file may still give ``quality`` itself, and that is shown
as given by the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

WEIGHTS: Mapping[str, float] = {
    "ifeval": 0.35,
    "structured": 0.25,
    "long_context": 0.25,
    "writing": 0.15,
}
TITLES: Mapping[str, str] = {
    "ifeval": "IFEval",
    "structured": "structured output",
    "long_context": "long context",
    "writing": "writing",
}


@dataclass(frozen=True)
class Score:
    """One benchmark figure (0-100) with its source URL and date."""

    value: float
    source: str
    date: str = ""


@dataclass(frozen=True)
class Quality:
    """A computed score (None: no figures) and the words saying what it used."""

    score: int | None
    basis: str


def quality(scores: Mapping[str, Score]) -> Quality:
    """The quality of a model from its figures (see the module's docstring)."""
    used = [(key, scores[key]) for key in WEIGHTS if key in scores]
    if not used:
        return Quality(None, "no benchmark figures: ranked after scored models, by size")
    total = sum(WEIGHTS[key] for key, _ in used)
    value = sum(WEIGHTS[key] * score.value for key, score in used) / total
    figures = ", ".join(f"{TITLES[key]} {score.value:g}" for key, score in used)
    partial = (
        "" if len(used) == len(WEIGHTS) else f"; partial: {len(used)} of {len(WEIGHTS)} figures"
    )
    return Quality(round(value), f"from {figures}{partial}")
