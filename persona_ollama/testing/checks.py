"""Request checks, with the default server's status codes and texts.

See "Routing and error bodies", "Chat requests" and "Context and truncation" in the server's
protocol reference (docs/reference): each check raises ApiError with what the server answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import FakeModel
from .go import DecodeError, decode_json, go_json, go_quote, parse_duration
from .responses import ApiError

__all__ = [
    "CHAT_FIELDS",
    "GENERATE_FIELDS",
    "PROMPT_TOO_LONG",
    "PULL_FIELDS",
    "SHOW_FIELDS",
    "THINK_LEVELS",
    "check_format",
    "decode_request",
    "parse_keep_alive",
    "parse_think",
    "resolve_options",
]


# Request checks --------------------------------------------------------------------------------
PROMPT_TOO_LONG = (
    "the prompt is longer than the context length currently available to the model; "
    "shorten the prompt, adjust the context length in settings, or use a model with a longer "
    "context length"
)
THINK_LEVELS = ("high", "medium", "low", "max")
_THINK_CHOICES = '"high", "medium", "low", "max", true, or false'

# Go field types of the request structs, for Go's "cannot unmarshal" messages.
_COMMON = {
    "model": "string",
    "stream": "bool",
    "options": "map[string]interface {}",
    "truncate": "bool",
    "shift": "bool",
    "logprobs": "bool",
    "top_logprobs": "int",
}
CHAT_FIELDS = {**_COMMON, "messages": "[]api.Message", "tools": "api.Tools"}
GENERATE_FIELDS = {
    **_COMMON,
    **dict.fromkeys(("prompt", "suffix", "system", "template"), "string"),
    "context": "[]int",
    "raw": "bool",
    "images": "[]api.ImageData",
}
SHOW_FIELDS = {
    **dict.fromkeys(("model", "name", "system", "template"), "string"),
    "verbose": "bool",
    "options": "map[string]interface {}",
}
PULL_FIELDS = {
    **dict.fromkeys(("model", "name", "username", "password"), "string"),
    "stream": "bool",
    "insecure": "bool",
}
_MESSAGE_FIELDS = {"role": "string", "content": "string", "thinking": "string"}

_OPTION_TYPES = {
    **dict.fromkeys(
        ("num_keep", "seed", "num_predict", "top_k", "repeat_last_n", "num_ctx", "num_batch"),
        "integer",
    ),
    **dict.fromkeys(("num_gpu", "main_gpu", "num_thread"), "integer"),
    **dict.fromkeys(
        ("min_p", "typical_p", "repeat_penalty", "temperature", "top_p"),
        "float32",
    ),
    **dict.fromkeys(("presence_penalty", "frequency_penalty"), "float32"),
    "use_mmap": "boolean",
    "stop": "array",
}


def decode_request(
    body: bytes,
    struct: str,
    fields: Mapping[str, str],
    *,
    message_fields: Mapping[str, str] = _MESSAGE_FIELDS,
) -> dict[str, Any]:
    """The body as a JSON object, type-checked against ``fields``; ``null`` gives ``{}``."""
    try:
        value = decode_json(body)
    except DecodeError as exc:
        raise ApiError(400, str(exc)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(
            400, f"json: cannot unmarshal {_kind(value)} into Go value of type api.{struct}"
        )
    for key, item in value.items():
        if key in fields:
            _check_type(item, fields[key], f"{struct}.{key}")
    for message in value.get("messages") or ():
        if not isinstance(message, dict):
            item_type = fields["messages"].removeprefix("[]")
            raise ApiError(400, _type_error(message, f"{struct}.messages", item_type))
        for key, go_type in message_fields.items():
            _check_type(message.get(key), go_type, f"{struct}.messages.{key}")
        if isinstance(message.get("role"), str):
            message["role"] = message["role"].lower()  # api.Message lowercases on decode
    return value


def _check_type(value: Any, go_type: str, where: str) -> None:
    if value is None:  # Go leaves the field at its zero value
        return
    expected: type | tuple[type, ...]
    if go_type == "string":
        expected = str
    elif go_type == "bool":
        expected = bool
    elif go_type == "int":
        if isinstance(value, float) or _kind(value) != "number":
            raise ApiError(400, _type_error(value, where, go_type))
        return
    elif go_type.startswith("float"):
        if _kind(value) != "number":
            raise ApiError(400, _type_error(value, where, go_type))
        return
    elif go_type.startswith("map"):
        expected = dict
    else:
        expected = list
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ApiError(400, _type_error(value, where, go_type))


def _type_error(value: Any, where: str, go_type: str) -> str:
    kind = _kind(value)
    if kind == "number" and go_type == "int":
        kind = f"number {value}"
    return f"json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def parse_think(value: Any) -> bool | str | None:
    """``think``: a bool or a level; other strings and types are 400s (api.ThinkValue)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value not in THINK_LEVELS:
            raise ApiError(
                400, f"invalid think value: {go_quote(value)} (must be {_THINK_CHOICES})"
            )
        return value
    raise ApiError(400, f"think must be a boolean or string ({_THINK_CHOICES})")


def parse_keep_alive(value: Any) -> float | None:
    """Seconds; ``inf`` for a negative value (forever); None when absent (server default)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        go_type = {bool: "bool", dict: "map[string]interface {}"}.get(type(value), "[]interface {}")
        raise ApiError(400, f"Unsupported type: '{go_type}'")
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    else:
        seconds = float(value)
    return math.inf if seconds < 0 else seconds


def check_format(value: Any) -> None:
    """``format`` must be ``"json"`` or a schema object; anything else is a 500 from the runner."""
    if value in (None, "", "json") or isinstance(value, dict):
        return
    raw = go_json(value).decode("utf-8")
    raise ApiError(
        500, f'invalid format: {go_quote(raw)}; expected "json" or a valid JSON Schema object'
    )


def resolve_options(model: FakeModel, requested: Any) -> dict[str, Any]:
    """Request options over Modelfile PARAMETERs, type-checked like ``api.Options.FromMap``.

    A wrong type is a 500 (it surfaces from the scheduler); unknown keys are dropped.
    """
    merged = {**model.parameters, **(requested if isinstance(requested, dict) else {})}
    options: dict[str, Any] = {}
    for key, value in merged.items():
        kind = _OPTION_TYPES.get(key)
        if kind is None or value is None:
            continue
        options[key] = _option_value(key, value, kind)
    return options


def _option_value(key: str, value: Any, kind: str) -> Any:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer" and number:
        return int(value)
    if kind == "float32" and number:
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "array" and isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise ApiError(500, f"option {go_quote(key)} must be of an array of strings")
        return value
    raise ApiError(500, f"option {go_quote(key)} must be of type {kind}")
