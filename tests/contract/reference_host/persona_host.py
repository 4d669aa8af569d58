"""A reference host for the contract tests: a test fixture, not part of the product.

It stands in for Persona as the design card describes it: the factory resolves a provider
name through the ``persona.providers`` entry point, builds it as ``cls(api_key=None)``, and
the generate path renders one prompt that embeds the whole data file, calls ``generate``,
parses personas from the answer and writes one JSON file per persona. Standard library only.

    python -m persona_host generate --from data.csv --provider NAME \
        [--model M] [--count N] --output DIR
    python -m persona_host models --provider NAME
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

GROUP = "persona.providers"
REQUIRED_FIELDS = ("id", "name", "demographics", "goals", "pain_points", "behaviours", "quotes")
_REASONING = re.compile(r"^\s*<reasoning>.*?</reasoning>", re.DOTALL)
_FENCE = re.compile(r"^```[a-zA-Z]*\n(.*)\n```$", re.DOTALL)


class HostError(Exception):
    """A failure of the host itself (unknown provider, unusable answer), not of the provider."""


def provider_entry_points() -> dict[str, Any]:
    """Installed providers by name, the 3.9-compatible way."""
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points

        found = entry_points(group=GROUP)
    else:
        try:
            from importlib_metadata import entry_points

            found = entry_points(group=GROUP)
        except ImportError:
            from importlib.metadata import entry_points

            found = entry_points().get(GROUP, [])
    return {ep.name: ep for ep in found}


def load_provider_class(name: str) -> type[Any]:
    entry_points = provider_entry_points()
    entry_point = entry_points.get(name.lower())
    if entry_point is None:
        available = ", ".join(sorted(entry_points)) or "none installed"
        raise HostError(f"Unknown provider: {name}. Available providers: {available}")
    return entry_point.load()  # type: ignore[no-any-return]


def provider_error_class(cls: type[Any]) -> type[Exception]:
    """Persona's ProviderError, or the one that sits beside the plugin's LLMProvider base."""
    try:
        from persona.core.providers.base import ProviderError
    except ImportError:
        for base in cls.__mro__:
            if base.__name__.endswith("LLMProvider"):
                return getattr(sys.modules[base.__module__], "ProviderError")  # noqa: B009
        raise HostError(f"{cls.__name__} does not derive from an LLMProvider base.") from None
    return ProviderError  # type: ignore[no-any-return]


def render_prompt(data_path: Path, count: int) -> str:
    data = data_path.read_text(encoding="utf-8")
    kind = data_path.suffix.lstrip(".").lower() or "text"
    return (
        f"You are a UX researcher. From the research data below, create exactly {count} "
        "distinct user personas grounded in what participants said.\n"
        'Answer with JSON only: {"personas": [...]}, each persona an object with the keys '
        f"{', '.join(REQUIRED_FIELDS)}. demographics is an object; goals, pain_points, "
        "behaviours and quotes are lists of strings; quotes are verbatim from the data. You "
        "may put your reasoning first in a <reasoning>...</reasoning> block.\n\n"
        f'<data format="{kind}" source="{data_path.name}">\n{data}\n</data>\n'
    )


def parse_personas(content: str) -> list[dict[str, Any]]:
    text = _REASONING.sub("", content, count=1).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise HostError(f"The answer is not JSON ({error}): {text[:200]!r}") from None
    personas = parsed.get("personas") if isinstance(parsed, dict) else parsed
    if not isinstance(personas, list) or not personas:
        raise HostError('Expected a non-empty array of personas or {"personas": [...]}.')
    for number, persona in enumerate(personas, 1):
        keys = persona if isinstance(persona, dict) else {}
        missing = [key for key in REQUIRED_FIELDS if key not in keys]
        if missing:
            raise HostError(f"Persona {number} lacks {', '.join(missing)}.")
    return personas


def ensure_configured(provider: Any) -> None:
    """Persona 1.11.1's check, word for word (persona/ui/commands/generate.py): a provider
    that is not configured is taken to lack an API key. The plugin's own message can only
    reach the user if is_configured() is True for a usable address."""
    if provider.is_configured():
        return
    raise HostError(
        f"{provider.name} is not configured.\n"
        f"Set the {provider.name.upper()}_API_KEY environment variable."
    )


def generate(provider: Any, args: argparse.Namespace) -> None:
    ensure_configured(provider)
    model = args.model or provider.default_model
    prompt = render_prompt(Path(args.from_path), args.count)
    response = provider.generate(
        prompt=prompt, model=model, max_tokens=args.max_tokens, temperature=args.temperature
    )
    personas = parse_personas(response.content)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    for number, persona in enumerate(personas, 1):
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", str(persona["id"])).strip("-") or "persona"
        path = output / f"{number:02d}-{slug}.json"
        path.write_text(json.dumps(persona, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"Wrote {len(personas)} personas to {output} with {response.model}: "
        f"{response.input_tokens} input tokens, {response.output_tokens} output tokens."
    )


def models(provider: Any, _args: argparse.Namespace) -> None:
    for name in provider.list_available_models():  # raises, with the reason, when it cannot
        print(name)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="persona_host", description="Reference Persona host.")
    commands = root.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="generate personas from a data file")
    gen.add_argument("--from", dest="from_path", required=True, metavar="FILE")
    gen.add_argument("--provider", required=True)
    gen.add_argument("--model")
    gen.add_argument("--count", type=int, default=3)
    gen.add_argument("--max-tokens", type=int, default=4096)
    gen.add_argument("--temperature", type=float, default=0.7)
    gen.add_argument("--output", required=True, metavar="DIR")
    gen.set_defaults(run=generate)
    listing = commands.add_parser("models", help="list the provider's installed models")
    listing.add_argument("--provider", required=True)
    listing.set_defaults(run=models)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cls = load_provider_class(args.provider)
        provider_error = provider_error_class(cls)
        try:
            args.run(cls(api_key=None), args)
        except provider_error as error:
            raise HostError(str(error)) from None
    except (HostError, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
