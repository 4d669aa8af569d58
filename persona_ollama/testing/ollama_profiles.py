"""Ollama's release profiles: ``FakeOllama(version=...)`` emulates one release of the server.

Where the real server's wire behaviour changed between releases, the change is one
:class:`~persona_ollama.testing.profiles.Rule`: the first release that has the newer behaviour,
and where in the server's Go source (file, function, tag) it was read. The faces ask
``profile.has(RULE)``; everything not listed is the same on every release the double emulates.
:data:`PROFILES` names one release on each side of every change, for tests parametrised over
versions (``@pytest.mark.parametrize("version", PROFILES)``). :class:`OllamaProfile` holds the
rules and the server's error texts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

from . import profiles
from .profiles import (
    DONE_CARRIES_CONTENT,
    LLAMA_SERVER,
    PROMPT_EVAL_SKIPS_CACHE,
    REFUSES_OVERFLOW,
    RELOAD_BY_EFFECTIVE_WINDOW,
    SHIFT_OFF_REFUSES,
    Rule,
)

__all__ = [
    "BUSY",
    "CHAT_NOT_FOUND_PLAIN",
    "DONE_CARRIES_CONTENT",
    "GIB",
    "INPUT_TOO_LONG",
    "LLAMA_SERVER",
    "OOM_LLAMA_SERVER",
    "OOM_SCHEDULER",
    "OUT_OF_MEMORY",
    "PROFILES",
    "PROMPT_EVAL_SKIPS_CACHE",
    "REFUSES_OVERFLOW",
    "RELOAD_BY_EFFECTIVE_WINDOW",
    "RULES",
    "RUNNER_FAILED",
    "RUNNER_FAILED_PREFIX",
    "RUNNER_STOPPED",
    "SHIFT_OFF_REFUSES",
    "STREAM_ERROR_STATUS",
    "TAGS_CONTEXT_LENGTH",
    "V1_OWN_FINISH_CHUNK",
    "VRAM_DEFAULT_CONTEXT",
    "OllamaProfile",
    "Profile",
    "Rule",
]


# Version profiles ------------------------------------------------------------------------------
# The releases the conformance tests run on: the last 0.11, the first that refuses an
# over-long prompt, the last before the llama-server runner, the first with it, the newest.
PROFILES = ("0.11.11", "0.12.6", "0.24.0", "0.30.0", "0.33.0-rc2")


# The faces' own switches (the engine's are in profiles.py).
CHAT_NOT_FOUND_PLAIN = "chat_not_found_plain"
STREAM_ERROR_STATUS = "stream_error_status"
VRAM_DEFAULT_CONTEXT = "vram_default_context"
TAGS_CONTEXT_LENGTH = "tags_context_length"
V1_OWN_FINISH_CHUNK = "v1_own_finish_chunk"

RULES = (
    Rule(
        CHAT_NOT_FOUND_PLAIN,
        (0, 12, 0),
        "server/routes.go ChatHandler, GetModel before scheduling (v0.12.0; v0.11.11: "
        "handleScheduleError)",
        "/api/chat for a missing model: 404 `model 'x' not found`",
        '404 `model "x" not found, try pulling it first`',
    ),
    Rule(
        REFUSES_OVERFLOW,
        (0, 12, 6),
        "runner/ollamarunner/runner.go and runner/llamarunner/runner.go NewSequence, "
        "errorInputTooLong (v0.12.6); server/prompt.go chatPrompt's truncate argument",
        "truncate=false and a prompt over num_ctx: 400 `the input length exceeds the context "
        "length`",
        "truncate is ignored: chatPrompt drops old messages, then the runner keeps num_ctx "
        "tokens (the first num_keep and the end) and answers 200",
    ),
    Rule(
        STREAM_ERROR_STATUS,
        (0, 12, 6),
        "server/routes.go streamResponse (v0.12.6: c.Writer.Written check)",
        'an error from the runner before any output: its status, `{"error": ...}`, '
        "Content-Type application/json",
        '200 application/x-ndjson whose only line is `{"error": ...}`',
    ),
    Rule(
        VRAM_DEFAULT_CONTEXT,
        (0, 15, 5),
        "server/routes.go Serve, `vram-based default context` (v0.15.5); envconfig "
        "ContextLength default 0",
        "default num_ctx: OLLAMA_CONTEXT_LENGTH, else 4096 / 32768 (>= 23 GiB VRAM) / "
        "262144 (>= 47 GiB)",
        "default num_ctx: OLLAMA_CONTEXT_LENGTH, else 4096",
    ),
    Rule(
        TAGS_CONTEXT_LENGTH,
        (0, 30, 0),
        "api/types.go ListModelResponse.Capabilities and ModelDetails.ContextLength (v0.30.0)",
        "/api/tags entries carry details.context_length and capabilities",
        "they carry neither (/api/show is the only source)",
    ),
    Rule(
        LLAMA_SERVER,
        (0, 30, 0),
        "llm/llama_server.go Completion and Chat, statusErrorMessage; the out-of-memory "
        "startup check (v0.30.0)",
        "overflow: 400 whose error is llama-server's JSON body (exceed_context_size_error, "
        "n_prompt_tokens, n_ctx); OOM: `llama-server reported out-of-memory during startup`",
        "overflow: `the input length exceeds the context length`; OOM: `model requires more "
        "system memory (...) than is available (...)` (llm/server.go)",
    ),
    Rule(
        DONE_CARRIES_CONTENT,
        (0, 13, 3),
        "model/parsers/olmo3.go Olmo3Parser.Add drains held-back text when done (v0.13.3; "
        "gemma4.go and lfm2.go by v0.20.0), put on the done line by server/routes.go "
        "ChatHandler; from v0.30.0 also llm/llama_server.go Chat's final chunk",
        "the done line may carry the last piece of the answer",
        "the done line's content is empty",
    ),
    Rule(
        PROMPT_EVAL_SKIPS_CACHE,
        (0, 30, 0),
        "llm/llama_server.go Completion and Chat: PromptEvalCount is llama-server's "
        "timings.prompt_n; llamaServerChatRequest sends cache_prompt (= shift, on by default) "
        "(v0.30.0)",
        "prompt_eval_count leaves out the prefix reused from the previous request's cache",
        "prompt_eval_count is every prompt token the runner kept (NewSequence numPromptInputs)",
    ),
    Rule(
        RELOAD_BY_EFFECTIVE_WINDOW,
        (0, 30, 0),
        "server/sched.go runnerRef.needsReload, effectiveContext (v0.30.0; absent from v0.24.0)",
        "a loaded model is reused when the window it runs with (num_ctx capped at the trained "
        "context; two automatic windows always match), its context shift and runner options "
        "(draft_num_predict among them, main_gpu unset unless sent) match the request's",
        "reused when the num_ctx asked for and the runner options match",
    ),
    Rule(
        SHIFT_OFF_REFUSES,
        (0, 30, 9),
        "llm/llama_server.go completionPromptForRequest, launch config ContextShift from "
        "server/sched.go resolveContextShift (v0.30.9)",
        "truncate=true, shift=false and a prompt over the window: 400 `the prompt is longer "
        "than the context length currently available to the model; ...`",
        "the prompt is cut to fit all the same (shift only governs shifting while generating)",
    ),
    Rule(
        V1_OWN_FINISH_CHUNK,
        (0, 32, 6),
        "openai/openai.go FinishChunk, written by middleware/openai.go's chat writer (v0.32.6)",
        "/v1 streams send the finish reason in a chunk of its own",
        "the finish reason rides on the last content chunk",
    ),
)
RUNNER_FAILED_PREFIX = "an error was encountered while running the model: "
INPUT_TOO_LONG = "the input length exceeds the context length"
OOM_LLAMA_SERVER = (
    "llama-server reported out-of-memory during startup: cudaMalloc failed: out of memory"
)
OOM_SCHEDULER = "model requires more system memory (5.6 GiB) than is available (3.1 GiB)"
# A runner that died before answering (llm/server.go, llm/llama_server.go: the request to it
# failed).
RUNNER_STOPPED = (
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details"
)
BUSY = "server busy, please try again.  maximum pending requests exceeded"  # two spaces, sic
OUT_OF_MEMORY = OOM_LLAMA_SERVER
GIB = 1024**3


@dataclass(frozen=True)
class OllamaProfile(profiles.Profile):
    """The wire rules in effect for one emulated release of Ollama, and its error texts."""

    rules: ClassVar[tuple[Rule, ...]] = RULES

    def default_num_ctx(self, context_length_env: int | None, vram_bytes: int) -> int:
        """The server's default num_ctx: the context length set in its environment (the variable
        VRAM_DEFAULT_CONTEXT's rule names), else by release and VRAM."""
        if context_length_env:
            return context_length_env
        if self.has(VRAM_DEFAULT_CONTEXT):
            # 47/23 GiB rather than 48/24: the server allows for rounding (routes.go Serve).
            if vram_bytes >= 47 * GIB:
                return 262144
            if vram_bytes >= 23 * GIB:
                return 32768
        return 4096

    def overflow_text(self, prompt_tokens: int, num_ctx: int) -> str:
        """The error text for a prompt over num_ctx with truncate=false (REFUSES_OVERFLOW)."""
        if not self.has(LLAMA_SERVER):
            return INPUT_TOO_LONG
        # The server passes llama-server's body through as the error string (statusErrorMessage).
        return json.dumps(
            {
                "error": {
                    "code": 400,
                    "message": f"request ({prompt_tokens} tokens) exceeds the available "
                    f"context size ({num_ctx} tokens), try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": prompt_tokens,
                    "n_ctx": num_ctx,
                }
            },
            separators=(",", ":"),
        )

    @property
    def busy_text(self) -> str:
        """A full queue (server/sched.go ErrMaxQueue; every release)."""
        return BUSY

    @property
    def out_of_memory_text(self) -> str:
        return OOM_LLAMA_SERVER if self.has(LLAMA_SERVER) else OOM_SCHEDULER

    @property
    def runner_stopped_text(self) -> str:
        return RUNNER_STOPPED

    @property
    def runner_terminated_text(self) -> str:
        """A runner that died while loading (llm/server.go WaitUntilRunning before v0.30,
        llm/llama_server.go after), answered as 500 by routes.go handleScheduleError."""
        if self.has(LLAMA_SERVER):
            return "llama-server process has terminated: exit status 1: error loading model"
        return "llama runner process has terminated: exit status 2"

    def runner_failed_text(self, reason: str = "unexpected EOF") -> str:
        """The mid-stream error line's text (llm/server.go, llm/llama_server.go; all releases)."""
        return RUNNER_FAILED_PREFIX + reason


# The error line of a runner that fails mid-answer, as every release sends it.
RUNNER_FAILED = RUNNER_FAILED_PREFIX + "unexpected EOF"
# Compatibility alias: ``persona_ollama.testing.Profile`` has always been Ollama's profile.
Profile = OllamaProfile
