"""The core's state and engine, gathered: what every face answers requests against.

One module per concern; this one keeps the names importable from one place (the faces of a
provider built from this template import them from here):

- face.py: the face interface (:class:`Face`, :class:`Route`, :class:`Call`) that server.py
  dispatches to;
- tokens.py: the double's tokeniser (four bytes of UTF-8 a token);
- script.py: canned replies, injected failures and latency, matched per request;
- scheduler.py: one runner per model, reloaded when runner options change;
- state.py: the state shared by every request thread (:class:`ServerState`);
- model_names.py: how the server checks, shows and compares model names (:class:`Naming`);
- profiles.py: the emulated release's rules and error texts (:class:`Profile`, :class:`Rule`);
- generation.py: running a fake model (:func:`run`).

Nothing here knows a URL path: the faces (native.py, openai.py) do.
"""

from __future__ import annotations

from .face import Call, Face, Handler, Route
from .generation import (
    COLD_LOAD_NS,
    EVAL_NS_PER_TOKEN,
    OPEN_ENDED_FACTOR,
    PROMPT_EVAL_NS_PER_TOKEN,
    WARM_LOAD_NS,
    Generation,
    GenerationRequest,
    context_size,
    run,
)
from .model_names import PLAIN, Naming
from .profiles import Profile, Rule
from .scheduler import Lease, Runner, Scheduler, runner_options
from .script import (
    ANY_PATH,
    DROP,
    EMPTY,
    ERROR_MID_STREAM,
    INTERRUPTED,
    MALFORMED,
    NO_DONE,
    NO_LATENCY,
    NO_USAGE,
    RUNNER,
    STATUS,
    STREAM_KINDS,
    UNSTREAMED_STATUS,
    Fault,
    Latency,
    ReplyRule,
    Script,
)
from .state import DEFAULT_KEEP_ALIVE_S, LoadedModel, RecordedRequest, ServerState, Settings
from .tokens import (
    BYTES_PER_TOKEN,
    MESSAGE_OVERHEAD_TOKENS,
    count_prompt_tokens,
    count_tokens,
    split_chunks,
    truncate_to_tokens,
)

__all__ = [
    "ANY_PATH",
    "BYTES_PER_TOKEN",
    "COLD_LOAD_NS",
    "DEFAULT_KEEP_ALIVE_S",
    "DROP",
    "EMPTY",
    "ERROR_MID_STREAM",
    "EVAL_NS_PER_TOKEN",
    "INTERRUPTED",
    "MALFORMED",
    "MESSAGE_OVERHEAD_TOKENS",
    "NO_DONE",
    "NO_LATENCY",
    "NO_USAGE",
    "OPEN_ENDED_FACTOR",
    "PLAIN",
    "PROMPT_EVAL_NS_PER_TOKEN",
    "RUNNER",
    "STATUS",
    "STREAM_KINDS",
    "UNSTREAMED_STATUS",
    "WARM_LOAD_NS",
    "Call",
    "Face",
    "Fault",
    "Generation",
    "GenerationRequest",
    "Handler",
    "Latency",
    "Lease",
    "LoadedModel",
    "Naming",
    "Profile",
    "RecordedRequest",
    "ReplyRule",
    "Route",
    "Rule",
    "Runner",
    "Scheduler",
    "Script",
    "ServerState",
    "Settings",
    "context_size",
    "count_prompt_tokens",
    "count_tokens",
    "run",
    "runner_options",
    "split_chunks",
    "truncate_to_tokens",
]
