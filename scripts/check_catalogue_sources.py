"""Check persona_ollama/choosing/data/models.json against catalogue schema 2 and its sourcing rules.

    python scripts/check_catalogue_sources.py [FILE] [--summary]

The catalogue's promise is that every number in it was read in a cited public source. This
script cannot read the sources, but it checks everything that makes the promise checkable:

- the document has exactly the schema-2 keys (``_about``, ``schema_version`` 2, ``as_of`` as a
  date, ``benchmarks``, ``models``), and every model exactly the schema-2 fields;
- every number is a positive number of the right type, or null (missing is allowed, a guess
  is not), and the architecture has its five keys;
- every entry lists at least one ``https://`` source, every score has a value from 0 to 100,
  an ``https://`` source that is also among the entry's sources, and a ``YYYY-MM`` date;
- names and aliases are unique, scores use only the benchmarks the file defines, and
  embedding models carry no scores.

It prints one line per problem and exits 1 when there is any; ``--summary`` also prints the
counts the catalogue's citation page reports (entries per family, scores per benchmark,
fields left null). Standard library only; Python 3.9+.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_FILE = (
    Path(__file__).resolve().parents[1] / "persona_ollama" / "choosing" / "data" / "models.json"
)
TOP_KEYS = {"_about", "schema_version", "as_of", "benchmarks", "models"}
BENCHMARKS = {"ifeval", "structured", "long_context", "writing"}
REQUIRED = {
    "name",
    "family",
    "parameters_b",
    "active_parameters_b",
    "quantization",
    "download_bytes",
    "context_length",
    "architecture",
    "thinking",
    "embedding",
    "scores",
    "sources",
}
OPTIONAL = {"aliases", "cloud_only", "note"}
ARCHITECTURE = {"layers", "kv_heads", "head_dim", "sliding_window", "global_layers"}
SCORE_KEYS = {"value", "source", "date"}
QUANTIZATIONS = {
    "F16",
    "BF16",
    "Q8_0",
    "Q6_K",
    "Q5_K_M",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_0",
    "MXFP4",
    "NVFP4",
}
DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
FULL_DATE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")
URL = re.compile(r"^https://[^\s/]+\.[^\s/]+/\S*$")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_number(value: Any) -> bool:
    return _is_number(value) and value > 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_architecture(where: str, architecture: Any) -> list[str]:
    if not isinstance(architecture, Mapping):
        return [f"{where}: architecture must be an object with {sorted(ARCHITECTURE)}"]
    problems = []
    if set(architecture) != ARCHITECTURE:
        problems.append(
            f"{where}: architecture keys {sorted(architecture)} are not {sorted(ARCHITECTURE)}"
        )
    for key in ("layers", "kv_heads", "head_dim", "global_layers"):
        value = architecture.get(key)
        if value is not None and not _positive_int(value):
            problems.append(f"{where}: architecture.{key} must be a positive integer or null")
    window = architecture.get("sliding_window")
    # 0 is meaningful: the other layers keep no per-token cache at all (a recurrent state).
    if window is not None and not (isinstance(window, int) and not isinstance(window, bool)):
        problems.append(f"{where}: architecture.sliding_window must be an integer or null")
    elif isinstance(window, int) and window < 0:
        problems.append(f"{where}: architecture.sliding_window must not be negative")
    layers, global_layers = architecture.get("layers"), architecture.get("global_layers")
    if _positive_int(layers) and _positive_int(global_layers) and global_layers > layers:
        problems.append(f"{where}: architecture.global_layers is more than its layers")
    if global_layers is not None and window is None:
        problems.append(f"{where}: architecture.global_layers without a sliding_window")
    return problems


def _check_scores(where: str, scores: Any, sources: list[str]) -> list[str]:
    if not isinstance(scores, Mapping):
        return [f"{where}: scores must be an object (empty when nothing was found)"]
    problems = []
    for key, score in scores.items():
        here = f"{where}: scores.{key}"
        if key not in BENCHMARKS:
            problems.append(f"{here}: not one of the file's benchmarks {sorted(BENCHMARKS)}")
        if not isinstance(score, Mapping) or set(score) != SCORE_KEYS:
            problems.append(f"{here}: must have exactly {sorted(SCORE_KEYS)}")
            continue
        value = score["value"]
        if not (_is_number(value) and 0 <= value <= 100):
            problems.append(f"{here}: value must be a number from 0 to 100")
        source = score["source"]
        if not (isinstance(source, str) and URL.match(source)):
            problems.append(f"{here}: source must be an https:// URL")
        elif source not in sources:
            problems.append(f"{here}: source {source} is not among the entry's sources")
        if not (isinstance(score["date"], str) and DATE.match(score["date"])):
            problems.append(f"{here}: date must read YYYY-MM")
    return problems


def check_entry(entry: Any, index: int) -> list[str]:
    """Problems with one model entry, each a line naming the entry."""
    if not isinstance(entry, Mapping):
        return [f"models[{index}]: must be an object"]
    name = entry.get("name")
    where = f"models[{index}] {name!r}"
    problems = []
    missing, unknown = REQUIRED - set(entry), set(entry) - REQUIRED - OPTIONAL
    if missing:
        problems.append(f"{where}: missing {sorted(missing)}")
    if unknown:
        problems.append(f"{where}: fields not in schema 2: {sorted(unknown)}")
    if not (isinstance(name, str) and ":" in name and name == name.strip()):
        problems.append(f"{where}: name must be an Ollama tag such as 'qwen3:8b'")
    if not (isinstance(entry.get("family"), str) and entry.get("family")):
        problems.append(f"{where}: family must be a non-empty string")
    for key in ("parameters_b", "active_parameters_b"):
        if entry.get(key) is not None and not _positive_number(entry.get(key)):
            problems.append(f"{where}: {key} must be a positive number or null")
    params, active = entry.get("parameters_b"), entry.get("active_parameters_b")
    if _positive_number(params) and _positive_number(active) and active > params:
        problems.append(f"{where}: active_parameters_b is more than parameters_b")
    for key in ("download_bytes", "context_length"):
        if entry.get(key) is not None and not _positive_int(entry.get(key)):
            problems.append(f"{where}: {key} must be a positive integer or null")
    quantization = entry.get("quantization")
    if quantization is not None and quantization not in QUANTIZATIONS:
        problems.append(f"{where}: quantization {quantization!r} not in {sorted(QUANTIZATIONS)}")
    for key in ("thinking", "embedding"):
        if not isinstance(entry.get(key), bool):
            problems.append(f"{where}: {key} must be true or false")
    if "cloud_only" in entry and not isinstance(entry["cloud_only"], bool):
        problems.append(f"{where}: cloud_only must be true or false")
    aliases = entry.get("aliases", [])
    if not (isinstance(aliases, list) and all(isinstance(a, str) and ":" in a for a in aliases)):
        problems.append(f"{where}: aliases must be a list of Ollama tags")
    if "note" in entry and not (isinstance(entry["note"], str) and entry["note"].strip()):
        problems.append(f"{where}: note must be a non-empty line")
    sources = entry.get("sources")
    if not (isinstance(sources, list) and sources):
        problems.append(f"{where}: sources must list at least one URL")
        sources = []
    for source in sources:
        if not (isinstance(source, str) and URL.match(source)):
            problems.append(f"{where}: source {source!r} is not an https:// URL")
    if len(set(map(str, sources))) != len(sources):
        problems.append(f"{where}: a source is listed twice")
    problems += _check_architecture(where, entry.get("architecture"))
    scores = entry.get("scores")
    problems += _check_scores(where, scores, [str(s) for s in sources])
    if entry.get("embedding") is True and scores:
        problems.append(f"{where}: an embedding model cannot generate, so it has no scores")
    return problems


def check_document(document: Any) -> list[str]:
    """Every problem with a catalogue document, one line each; empty when it is sound."""
    if not isinstance(document, Mapping):
        return ["the catalogue must be a JSON object"]
    problems = []
    if set(document) != TOP_KEYS:
        problems.append(f"top-level keys {sorted(document)} are not {sorted(TOP_KEYS)}")
    if document.get("schema_version") != 2:
        problems.append("schema_version must be 2")
    as_of = document.get("as_of")
    if not (isinstance(as_of, str) and FULL_DATE.match(as_of)):
        problems.append("as_of must be the file's date, YYYY-MM-DD")
    about = document.get("_about")
    if not (isinstance(about, list) and about and all(isinstance(line, str) for line in about)):
        problems.append("_about must be a list of lines")
    benchmarks = document.get("benchmarks")
    if not (isinstance(benchmarks, Mapping) and set(benchmarks) == BENCHMARKS):
        problems.append(f"benchmarks must define exactly {sorted(BENCHMARKS)}")
    else:
        for key, benchmark in benchmarks.items():
            if not (
                isinstance(benchmark, Mapping)
                and set(benchmark) == {"title", "url"}
                and isinstance(benchmark["title"], str)
                and isinstance(benchmark["url"], str)
                and URL.match(benchmark["url"])
            ):
                problems.append(f"benchmarks.{key}: needs a title and an https:// url")
    models = document.get("models")
    if not (isinstance(models, list) and models):
        return [*problems, "models must be a non-empty list"]
    seen: dict[str, str] = {}
    for index, entry in enumerate(models):
        problems += check_entry(entry, index)
        if not isinstance(entry, Mapping):
            continue
        aliases = entry.get("aliases")
        for tag in [entry.get("name"), *(aliases if isinstance(aliases, list) else [])]:
            if isinstance(tag, str):
                if tag in seen:
                    problems.append(f"models[{index}]: {tag!r} is also {seen[tag]}")
                seen[tag] = f"in models[{index}]"
    return problems


def summary(document: Mapping[str, Any]) -> list[str]:
    """The counts the citation page quotes: entries per family, scores per benchmark, nulls."""
    models = document["models"]
    families = Counter(m["family"] for m in models)
    scores = Counter(key for m in models for key in m["scores"])
    chat = [m for m in models if not m["embedding"]]
    nulls = Counter(
        key
        for m in models
        for key in ("parameters_b", "quantization", "download_bytes", "context_length")
        if m[key] is None
    )
    arch_nulls = Counter(key for m in models for key, v in m["architecture"].items() if v is None)
    lines = [
        f"{len(models)} entries ({len(chat)} chat, {len(models) - len(chat)} embedding) "
        f"in {len(families)} families, as of {document['as_of']}",
        "families: " + ", ".join(f"{f} {n}" for f, n in families.items()),
        f"scores over {len(chat)} chat entries: "
        + ", ".join(f"{key} {scores.get(key, 0)}" for key in sorted(BENCHMARKS)),
        f"chat entries with no score at all: {sum(1 for m in chat if not m['scores'])}",
        "fields left null: " + (", ".join(f"{k} {n}" for k, n in sorted(nulls.items())) or "none"),
        "architecture left null (sliding_window/global_layers null = every layer is global): "
        + ", ".join(f"{k} {n}" for k, n in sorted(arch_nulls.items())),
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--summary", action="store_true", help="print the catalogue's counts")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{args.file}: cannot read it as JSON: {exc}", file=sys.stderr)
        return 1
    problems = check_document(document)
    for problem in problems:
        print(f"{args.file.name}: {problem}", file=sys.stderr)
    if args.summary and not problems:
        print("\n".join(summary(document)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
