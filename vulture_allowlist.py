"""Names vulture reports as unused that are used, from outside its view (``tox -e lint``).

vulture reads ``persona_ollama`` (not the tests: code only the tests use is dead) without
``persona_ollama/testing``, the tests' double, whose users are the tests. Each line below is a
use vulture cannot see; say who uses it. Never read or imported: only vulture parses it.
"""

# ruff: noqa
# `_` is vulture's convention for "an object of some class": only the attribute name counts.

# Persona's provider contract: the host calls these on OllamaProvider (and on the fallback base).
_.validate_model
_.is_configured
_.generate_async
_.total_tokens  # LLMResponse.total_tokens, read by Persona
_.RateLimitError  # _persona.py re-exports Persona's errors

# backends/registry.py opens each backend by module and class name (importlib.import_module).
_.OllamaBackend

# Hook implementations and specifications: pluggy calls them by name.
_.persona_ollama_probe_accelerators
_.persona_ollama_catalogue_entries

# Dataclass fields read through dataclasses.asdict (doctor --json prints the hardware profile)
# or written by catalogue entries (data/models.json, plugins, PERSONA_OLLAMA_CATALOGUE).
_.vendor
_.memory_free_bytes
_.moe
# ModelSpec.family is a catalogue field (the double's demo reads it); ModelInfo.family is
# part of the public model_info() answer (docs/reference/provider-apis.md), read by callers.
_.family

# Read by other libraries: requests reads Session.trust_env; functools.wraps convention.
_.trust_env
_.__wrapped__
exc  # the *exc of __exit__, required by the protocol

# The test suite resets process-wide state between tests (tests/conftest.py, test_plugins.py).
_.reset
_.reset_warnings

# requests and urllib3 call or read these: Session.resolve_redirects (overridden so that a
# redirect's body is never read), PoolManager.pool_classes_by_scheme (our pools, which tell the
# deadline's watchdog which connection a request got).
_.resolve_redirects
_.pool_classes_by_scheme

# The pool state that the hostile-server tests and the end-to-end fuzzing bound (no connection
# left checked out): a diagnostic on the client, read by those tests.
_.connections_in_use

# Module attribute resolved by _persona.__getattr__ (PEP 562): whether Persona's classes were
# in use; read by the tests of both import orders (test_persona_bases.py, test_startup.py).
_.PERSONA_AVAILABLE

# Public: model_info() reports a model's size (the /api/tags entry's), for callers and hosts.
_.size_bytes


# bench's Run fields, printed through vars() in `persona-ollama bench --json` "details".
_.wall_seconds

# Part of the backend protocol for servers that take a prompt string: the template's skeleton
# backend (scripts/template, a generated project's backends/) writes its chats with it.
_.PromptTemplate

# choosing/validation.py's table(): tests/unit/test_generated_docs.py writes the validation
# table of docs/models-and-hardware.md with it (vulture saw the name only as a loop variable).
_.table
