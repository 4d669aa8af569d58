"""The wire rules, gathered: how the real Ollama server spells what it sends, release by release.

Everything was read in the server's Go source (file, function and tag are cited next to each
rule); the faces (native.py, openai.py) and the engine ask these rules instead of spelling bytes
themselves. docs/reference/ollama-protocol.md describes each behaviour in prose. One module per
concern; this one keeps the names importable from one place:

- go.py: Go details (``encoding/json``, Go's decoder errors, ``time.ParseDuration``, RFC 3339);
- ollama_names.py: model names as the server parses them (its model_names.Naming);
- ollama_profiles.py: version profiles, one :class:`Rule` per change between releases, and the
  release's error texts;
- responses.py: what a face answers with (the core's response types);
- checks.py: request checks, with the server's status codes and texts;
- host_check.py: the Host check of a server listening on loopback.

A double of another server keeps the response types and writes its own rules next to its face.
"""

from __future__ import annotations

from .checks import (
    CHAT_FIELDS,
    GENERATE_FIELDS,
    PROMPT_TOO_LONG,
    PULL_FIELDS,
    SHOW_FIELDS,
    THINK_LEVELS,
    check_format,
    decode_request,
    parse_keep_alive,
    parse_think,
    resolve_options,
)
from .go import (
    DecodeError,
    decode_json,
    go_float,
    go_json,
    go_quote,
    local_rfc3339,
    parse_duration,
    rfc3339,
    syntax_message,
    version_tuple,
)
from .host_check import host_is_local
from .ollama_names import (
    DEFAULT_HOST,
    DEFAULT_NAMESPACE,
    DEFAULT_TAG,
    ModelName,
    parse_model_name,
    parse_name,
)
from .ollama_profiles import (
    CHAT_NOT_FOUND_PLAIN,
    DONE_CARRIES_CONTENT,
    GIB,
    INPUT_TOO_LONG,
    LLAMA_SERVER,
    OOM_LLAMA_SERVER,
    OOM_SCHEDULER,
    PROFILES,
    PROMPT_EVAL_SKIPS_CACHE,
    REFUSES_OVERFLOW,
    RELOAD_BY_EFFECTIVE_WINDOW,
    RULES,
    RUNNER_FAILED_PREFIX,
    SHIFT_OFF_REFUSES,
    STREAM_ERROR_STATUS,
    TAGS_CONTEXT_LENGTH,
    V1_OWN_FINISH_CHUNK,
    VRAM_DEFAULT_CONTEXT,
    OllamaProfile,
    Profile,
    Rule,
)
from .responses import (
    JSON_UTF8,
    NDJSON,
    ApiError,
    Reply,
    Response,
    RunnerError,
    Stream,
    json_reply,
    ndjson_stream,
    runner_error_reply,
    text_reply,
)

__all__ = [
    "CHAT_FIELDS",
    "CHAT_NOT_FOUND_PLAIN",
    "DEFAULT_HOST",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TAG",
    "DONE_CARRIES_CONTENT",
    "GENERATE_FIELDS",
    "GIB",
    "INPUT_TOO_LONG",
    "JSON_UTF8",
    "LLAMA_SERVER",
    "NDJSON",
    "OOM_LLAMA_SERVER",
    "OOM_SCHEDULER",
    "PROFILES",
    "PROMPT_EVAL_SKIPS_CACHE",
    "PROMPT_TOO_LONG",
    "PULL_FIELDS",
    "REFUSES_OVERFLOW",
    "RELOAD_BY_EFFECTIVE_WINDOW",
    "RULES",
    "RUNNER_FAILED_PREFIX",
    "SHIFT_OFF_REFUSES",
    "SHOW_FIELDS",
    "STREAM_ERROR_STATUS",
    "TAGS_CONTEXT_LENGTH",
    "THINK_LEVELS",
    "V1_OWN_FINISH_CHUNK",
    "VRAM_DEFAULT_CONTEXT",
    "ApiError",
    "DecodeError",
    "ModelName",
    "OllamaProfile",
    "Profile",
    "Reply",
    "Response",
    "Rule",
    "RunnerError",
    "Stream",
    "check_format",
    "decode_json",
    "decode_request",
    "go_float",
    "go_json",
    "go_quote",
    "host_is_local",
    "json_reply",
    "local_rfc3339",
    "ndjson_stream",
    "parse_duration",
    "parse_keep_alive",
    "parse_model_name",
    "parse_name",
    "parse_think",
    "resolve_options",
    "rfc3339",
    "runner_error_reply",
    "syntax_message",
    "text_reply",
    "version_tuple",
]
