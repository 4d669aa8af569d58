"""The Acme face of the double: the Acme server's API (backends/acme.py) on the core.

The core (server.py) gives it sockets, the models, the scripted faults and the recorded
requests; the engine (engine.py) counts tokens and produces the answer. This module reads
Acme's requests and frames Acme's answers: one model (the first installed), a prompt string,
server-sent events, and every error as an event inside the 200 stream.
"""

from __future__ import annotations

import json
from typing import Any

from .engine import Call, Face, GenerationRequest, Route, count_tokens, run
from .models import FakeModel
from .responses import ApiError, Reply, Response, Stream, json_reply

VERSION = "2.1.0"
SAMPLING = ("temperature", "top_p", "seed")
REASONS = {"stop": "eos_token", "length": "length"}  # the engine's words -> Acme's
# The texts Acme's errors start with, by the error_type of the event: those of
# text-generation-inference, whose error events Acme's copy, e.g. {"error": "Input validation
# error: max_new_tokens must be <= 1. Given: 100", "error_type": "validation"}
# (https://huggingface.co/fblgit/una-cybertron-7b-v2-bf16/discussions/10).
VALIDATION = "Input validation error"
OVERLOADED = "Model is overloaded"


def error_type(message: str) -> str:
    """The ``error_type`` of an error event, from its text."""
    if message.startswith(VALIDATION):
        return "validation"
    if message.startswith(OVERLOADED):
        return "overloaded"
    return "generation"


def refusal(message: str) -> Stream:
    """A request Acme refuses: a 200 stream whose one event is the error."""
    return events([{"error": message, "error_type": error_type(message)}])


def event(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def events(documents: list[Any]) -> Stream:
    """A 200 stream of server-sent events; an error is one more event, whatever its kind."""
    return Stream(
        "text/event-stream",
        [event(document) for document in documents],
        frame=lambda payload: b"data: " + payload + b"\n\n",
        error_payload=lambda message: event({"error": message, "error_type": error_type(message)}),
    )


class AcmeFace(Face):
    """Acme's routes. ``prompt_format`` is what /info says (None: it says nothing);
    ``input_share`` the part of a model's context its prompt alone may take."""

    def __init__(self, *, prompt_format: str | None = "chatml", input_share: float = 0.5) -> None:
        self.prompt_format = prompt_format
        self.input_share = input_share
        self.routes = (
            Route("GET", "/info", self.info),
            Route("POST", "/generate_stream", self.generate, generation=True),
        )

    def error(self, status: int, message: str) -> Reply:
        """An error before any output (a scripted status): ``{"error", "error_type"}``."""
        return json_reply({"error": message, "error_type": error_type(message)}, status)

    def served(self, call: Call) -> FakeModel:
        """The one model: the first installed; a server started without one answers 503."""
        installed = call.state.installed()
        if not installed:
            raise ApiError(503, f"{OVERLOADED}: no model is loaded yet")
        return installed[0]

    def info(self, call: Call) -> Response:
        model = self.served(call)
        info = {
            "model_id": model.name,
            "max_input_tokens": int(model.context_length * self.input_share),
            "max_total_tokens": model.context_length,
            "version": VERSION,
        }
        if self.prompt_format is not None:
            info["prompt_format"] = self.prompt_format
        return json_reply(info)

    def generate(self, call: Call) -> Response:
        body: Any = call.record.json
        inputs = body.get("inputs") if isinstance(body, dict) else None
        parameters = body.get("parameters", {}) if isinstance(body, dict) else None
        if not isinstance(inputs, str) or not isinstance(parameters, dict):
            return refusal(f"{VALIDATION}: expected inputs and parameters")
        model = self.served(call)
        total = model.context_length
        tokens = count_tokens(inputs)
        new = parameters.get("max_new_tokens", 20)
        if tokens > int(total * self.input_share):
            limit = int(total * self.input_share)
            return refusal(
                f"{VALIDATION}: `inputs` must have less than {limit} tokens. Given: {tokens}"
            )
        if not isinstance(new, int) or tokens + new > total:
            return refusal(
                f"{VALIDATION}: `inputs` tokens + `max_new_tokens` must be <= {total}. "
                f"Given: {tokens} `inputs` tokens and {new} `max_new_tokens`"
            )
        options: dict[str, Any] = {"num_ctx": total, "num_predict": new}
        options.update({key: parameters[key] for key in SAMPLING if key in parameters})
        if parameters.get("stop"):
            options["stop"] = list(parameters["stop"])
        request = GenerationRequest(
            verb="generate",
            model_arg=model.name,
            model=model,
            messages=[{"role": "user", "content": inputs}],
            raw=body,
            options=options,
            truncate=False,
        )
        answer = run(call.state, request, call.record, waited_s=call.waited_s)
        details = {
            "finish_reason": REASONS.get(answer.done_reason, "eos_token"),
            "input_tokens": answer.metrics.get("prompt_eval_count", tokens),
            "generated_tokens": answer.metrics.get("eval_count", 0),
        }
        pieces = [{"token": {"text": piece}} for piece in answer.content]
        final = {"token": {"text": ""}, "generated_text": "".join(answer.content)}
        return events([*pieces, {**final, "details": details}])
