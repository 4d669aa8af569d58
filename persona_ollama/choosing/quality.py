"""The one formula that turns a model's cited benchmark figures into its quality score.

Persona generation reads a long transcript, follows a template, returns strict JSON and writes
believable prose, so four kinds of figure count, with these weights:

- ``ifeval`` (instruction following, IFEval prompt-level strict accuracy): 0.35
- ``structured`` (structured / JSON output): 0.25
- ``long_context`` (retrieval at 32K tokens or more, e.g. RULER): 0.25
- ``writing`` (writing quality, normalised to 0-100): 0.15

The score is the weighted sum of the four figures, each 0-100, rounded. A missing figure counts
as the packaged catalogue's median for that benchmark (over its models that report it) and is
shown as missing ("imputed: median of N models"): a model is neither rewarded nor punished for
a figure nobody published, so one high figure alone (92 from IFEval) cannot outrank a model
with a full set, as it could when the weights were renormalised over the figures present. With
no figures at all there is no score: such models rank after every scored one, larger (more
parameters) first. No score is typed in by hand; a user's catalogue file may still give
``quality`` itself, and that is shown as given by the file.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .packaged_catalogue import packaged_document

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
class Median:
    """What stands in for a missing figure: the median of ``models`` reported figures."""

    value: float
    models: int


@dataclass(frozen=True)
class Quality:
    """A computed score (None: no figures) and the words saying what it used."""

    score: int | None
    basis: str


def medians_of(entries: Iterable[Any]) -> dict[str, Median]:
    """Per benchmark, the median figure of the catalogue entries that report it."""
    reported: dict[str, list[float]] = {key: [] for key in WEIGHTS}
    for entry in entries:
        scores = entry.get("scores") if isinstance(entry, Mapping) else None
        for key, figure in (scores or {}).items():
            value = figure.get("value") if isinstance(figure, Mapping) else None
            if key in reported and isinstance(value, (int, float)):
                reported[key].append(float(value))
    return {
        key: Median(statistics.median(values), len(values))
        for key, values in reported.items()
        if values
    }


@functools.lru_cache(maxsize=1)
def packaged_medians() -> Mapping[str, Median]:
    """The medians of the packaged ``data/models.json`` (the same for every user's file)."""
    models = packaged_document().get("models")
    return medians_of(models if isinstance(models, list) else [])


def quality(scores: Mapping[str, Score], medians: Mapping[str, Median] | None = None) -> Quality:
    """The quality of a model from its figures, a missing one counted as ``medians`` gives it
    (default: the packaged catalogue's; see the module's docstring)."""
    used = [(key, scores[key]) for key in WEIGHTS if key in scores]
    if not used:
        return Quality(None, "no benchmark figures: ranked after scored models, by size")
    medians = packaged_medians() if medians is None else medians
    value = sum(WEIGHTS[key] * score.value for key, score in used)
    imputed = []
    for key in WEIGHTS:
        if key not in scores:
            median = medians[key]  # the packaged file reports every benchmark (a test says so)
            value += WEIGHTS[key] * median.value
            imputed.append(f"{TITLES[key]} {median.value:g} (median of {median.models} models)")
    figures = ", ".join(f"{TITLES[key]} {score.value:g}" for key, score in used)
    missing = f"; missing, imputed: {', '.join(imputed)}" if imputed else ""
    return Quality(round(value), f"from {figures}{missing}")
