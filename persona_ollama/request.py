"""Request preparation: one generate() call's arguments, checked, placed and sized.

Everything here happens before a byte of the prompt is sent: the arguments are checked,
where the model runs is checked against local-only mode (by name, by the listing, by the
model's facts), an embedding model is refused, and the context is planned (a window reused
from the loaded model where it fits, ContextOverflowError when the prompt cannot fit). The
result is a neutral :class:`~persona_ollama.backends.base.ChatRequest` and the plan behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .backends.base import ChatRequest
from .catalogue_seam import HAS_CATALOGUE
from .context import (
    DEFAULT_WORDS,
    LADDER,
    MIN_USEFUL_ANSWER,
    ContextPlan,
    estimate_messages,
    plan,
)
from .errors import (
    ConfigurationError,
    ContextOverflowError,
    LocalOnlyViolationError,
    ServerError,
    overflow_before_sending,
)
from .model_info import Placement, placement
from .options import validate_format, validate_keep_alive, validate_options, validate_think
from .privacy import cannot_tell, check_destination, forwarded_after_check, warn_once
from .settings import MODEL_VAR

if TYPE_CHECKING:
    from .backends.base import Backend
    from .backends.rules import ContextWords
    from .endpoint import Endpoint
    from .served import ServedModels

log = logging.getLogger("persona_ollama")

# Extra answer budget for a thinking model's reasoning, as a multiple of max_tokens: the
# server counts thinking tokens against the answer's token limit, so without it reasoning eats
# the answer.
THINKING_BUDGET = 1.0


@dataclass(frozen=True)
class Prepared:
    """A checked request and what the stream needs to judge its answer."""

    chat: ChatRequest
    plan: ContextPlan
    #: The window was chosen here (not named by the caller) and shared through the server's
    #: windows (windows.py).
    shared_window: bool
    #: The server may cut a long prompt rather than refuse it: the answer's counts are checked.
    may_cut: bool


@dataclass(frozen=True)
class Call:
    """One generate() call's arguments, as the caller gave them."""

    prompt: Any
    model: str
    max_tokens: Any
    temperature: Any
    system: Any = None
    format: Any = None
    think: Any = None
    keep_alive: Any = None
    #: The caller's explicit context window (the provider's keyword, ContextWords.window_name).
    window: Any = None
    options: Mapping[str, Any] | None = None
    #: True when the provider chose the model (not named by the caller or the environment).
    chosen: bool = False


def check_arguments(call: Call, words: ContextWords = DEFAULT_WORDS) -> None:
    """ConfigurationError, with the fix, for an argument of the wrong type or value
    (``words`` name the window argument)."""
    if not isinstance(call.prompt, str):
        raise ConfigurationError(
            f"prompt must be text (str), got {type(call.prompt).__name__}.",
            hint="Decode bytes first, e.g. data.decode('utf-8').",
        )
    if call.system is not None and not isinstance(call.system, str):
        raise ConfigurationError(f"system must be text (str), got {type(call.system).__name__}.")
    for label, value in (("max_tokens", call.max_tokens), (words.window_name, call.window)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigurationError(f"{label} must be an integer, got {value!r}.")
    temperature = call.temperature
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or temperature != temperature  # NaN
        or temperature in (float("inf"), float("-inf"))
    ):
        raise ConfigurationError(
            f"temperature must be a finite number, got {temperature!r}.",
            hint="e.g. temperature=0.7 (0 for the most repeatable answers).",
        )


class Preparation:
    """Prepares the calls of one provider: its backend, its server's models, its settings."""

    def __init__(
        self,
        backend: Backend,
        served: ServedModels,
        endpoint: Endpoint,
        *,
        local_only: bool,
        keep_alive: Any,
        environ: Mapping[str, str],
        words: ContextWords = DEFAULT_WORDS,
    ) -> None:
        """``environ``: where the memory budget and the catalogue settings are read;
        ``words``: how callers spell the window and the answer's budget (options, messages)."""
        self.words = words
        self.backend = backend
        self.served = served
        self.endpoint = endpoint
        self.local_only = local_only
        self.keep_alive = keep_alive
        self.environ = environ

    def check_place(self, call: Call, where: Placement) -> None:
        """Refuse a model that runs elsewhere: always for a chosen default, and for any
        model in local-only mode; otherwise warn once, naming the host."""
        name = call.model
        if call.chosen and where.remote and not self.local_only:  # local-only refuses below
            # Selection skips remote models; should one get through anyway (a listing
            # without remote fields, a stale cache), it is refused, not used with a warning.
            raise ConfigurationError(
                f"The default model '{name}' runs on {where.host_text}, not on the "
                f"{self.backend.label} ({where.evidence}), so it was not used: a remote model "
                "is used only when you name it.",
                hint=f"Name a local model (model=... or {MODEL_VAR}); "
                "`persona-ollama models` marks remote ones.",
                url=str(self.endpoint),
            )
        check_destination(
            name, where, self.endpoint, local_only=self.local_only, label=self.backend.label
        )

    def confirm_local(self, model: str, *, deadline: float | None = None) -> None:
        """Local-only mode, once an answer that would not say it was forwarded has started:
        ask the server again where ``model`` runs (a fresh listing and description, by the
        call's ``deadline``), and refuse the answer unless it is still established to run
        there."""
        self.served.forget_listing(model)
        url = str(self.endpoint)
        try:
            listed, facts = self.served.checked_facts(model, sent=True, deadline=deadline)
        except LocalOnlyViolationError:
            raise
        except ServerError as error:  # gone, or no longer there: the answer is not trusted
            raise cannot_tell(model, error.message, url, sent=True) from None
        for where in (listed.placement if listed else facts.placement, facts.placement):
            if where.remote:
                raise forwarded_after_check(model, where.host_text, url, label=self.backend.label)
            if not where.known:
                raise cannot_tell(model, where.evidence, url, sent=True)

    def prepare(self, call: Call, *, deadline: float | None = None) -> Prepared:
        """The checked, sized request for ``call``, built before a byte is sent; ``deadline``
        (the call's, deadline.py) bounds each request made to the server meanwhile.

        Checks the arguments, where the model runs (local-only mode, remote default models),
        that it can chat, and plans the context window (ContextOverflowError when the prompt
        cannot fit); raises ConfigurationError for bad input.
        """
        check_arguments(call, self.words)
        name = call.model
        window_name, answer_name = self.words.window_name, self.words.answer_name
        # The name alone first: on some servers even the description of a remote model's name
        # is asked of the remote service.
        self.check_place(call, placement(name))
        checked = validate_options(call.options or {})
        refuses = self.backend.refuses_overflow(deadline=deadline)
        max_tokens = call.max_tokens
        if answer_name in checked:  # options={answer_name: n} means max_tokens=n
            max_tokens = checked.pop(answer_name)
        if self.local_only:
            # Listed even when facts are cached: those are process-wide for minutes and may
            # predate a model of that name being replaced by one that runs elsewhere.
            # The listing (one round trip per provider, cached a few seconds) says where the
            # model runs now, and its size tells a stub on a server that lists no remote_host;
            # the facts are no older than it. A listing that fails refuses the call.
            listed, facts = self.served.checked_facts(name, deadline=deadline)
            if listed is not None:
                self.check_place(call, listed.placement)
        else:
            facts = self.served.facts(name, deadline=deadline)
        # Then what the server says (remote_host of an alias, a stub's size): still before
        # a byte of the prompt is sent.
        self.check_place(call, facts.placement)
        if not facts.can_chat:
            # Before sizing the context: its warnings would be about a request never served.
            raise ConfigurationError(
                f"{name} is an embedding model: it turns text into vectors and cannot write "
                "text, so it cannot generate.",
                hint="Pick a chat model: `persona-ollama models` lists the installed ones, "
                "`persona-ollama recommend` suggests one to pull.",
            )
        messages: list[dict[str, str]] = []
        if call.system:
            messages.append({"role": "system", "content": call.system})
        messages.append({"role": "user", "content": call.prompt})
        thinks = facts.thinks and call.think is not False
        budget = max_tokens + (int(max_tokens * THINKING_BUDGET) if thinks else 0)
        explicit = call.window if call.window is not None else checked.pop(window_name, None)
        sets_window = self.backend.sets_window
        if explicit is not None and not sets_window:
            warn_once(
                f"{window_name}-not-sent",
                f"The {self.backend.label} has no per-request context size: {window_name}="
                f"{explicit} was not sent, and the context the server states is planned "
                "for instead (set it where the server starts, e.g. llama.cpp's -c, vLLM's "
                "--max-model-len).",
            )
            explicit = None
        prompt_tokens = estimate_messages(messages)
        # A model the overflow hint names must hold what plan() requires of this one.
        holds = prompt_tokens + min(budget, MIN_USEFUL_ANSWER)
        sizes = {
            "context_length": facts.context_length,
            "window": explicit,
            "preferred": facts.modelfile_num_ctx if sets_window else None,
            "model": name,
            "input_limit": facts.input_limit,
            "words": self.words,
        }
        try:
            context = plan(prompt_tokens, budget, **sizes)
        except ContextOverflowError:
            # The error path only: planned again with the models that could hold the prompt
            # named in the hint (finding them may take a few requests).
            longer = self.served.longer_context(
                facts.context_length, name, holds, deadline=deadline
            )
            try:
                plan(prompt_tokens, budget, alternatives=longer, **sizes)
            except ContextOverflowError as error:
                raise self._in_its_words(error, name, facts.input_limit) from None
            raise AssertionError("plan() is a pure function") from None  # pragma: no cover
        shared = explicit is None and sets_window
        if shared:
            window = self._shared_window(name, context, budget, deadline)
            if window != context.window:
                context = replace(context, window=window)
        for warning in context.warnings:
            log.warning(warning)
        keep_alive = call.keep_alive if call.keep_alive is not None else self.keep_alive
        chat = ChatRequest(
            model=name,
            messages=tuple(messages),
            max_tokens=context.max_tokens,
            window=context.window if sets_window else None,
            options=checked,
            format=validate_format(call.format) if call.format is not None else None,
            think=validate_think(call.think) if call.think is not None else None,
            keep_alive=validate_keep_alive(keep_alive) if keep_alive is not None else None,
        )
        return Prepared(chat, context, shared_window=shared, may_cut=refuses is not True)

    def _in_its_words(
        self, error: ContextOverflowError, model: str, input_limit: int | None
    ) -> ContextOverflowError:
        """An overflow found before sending, told of a server with one fixed window (the
        context it states) rather than of a window set per request: the same sizes and
        alternatives, the server's words. An overflow of the prompt's own budget
        (``input_limit``) says so already."""
        if self.backend.sets_window or error.prompt_tokens is None or not error.context_length:
            return error
        if error.context_length == input_limit:
            return error
        label = self.backend.label
        return overflow_before_sending(
            model,
            prompt_tokens=error.prompt_tokens,
            window=error.context_length,
            limit_reason=f"the context the {label} states: {error.context_length} tokens",
            consequence=f"Nothing was sent to the {label}.",
            alternatives=error.alternatives,
            a_model="a served model",
        )

    def _shared_window(
        self, model: str, context: ContextPlan, budget: int, deadline: float | None
    ) -> int:
        """The window to send instead of the prompt's own rung, so that the loaded model is
        not reloaded for a smaller window (see windows.py)."""
        windows = self.served.state.windows
        return windows.choose(
            model,
            needed=context.prompt_tokens + budget,
            rung=context.window,
            loaded=lambda: windows.loaded(
                lambda: self.backend.loaded_windows(deadline=deadline)
            ).get(self.served.state.names.canonical(model)),
            limit=context.context_length,
            cap=lambda: self._window_cap(model, deadline),
        )

    def _window_cap(self, model: str, deadline: float | None) -> int | None:
        """The largest ladder window with which ``model`` fits the memory budget the default
        model selection uses; None when the budget or the model's size is unknown."""
        if not HAS_CATALOGUE:
            return None
        from .choosing.catalogue import load_catalogue
        from .choosing.hardware import probe
        from .choosing.selection import estimate_memory_bytes, fits

        try:
            budget = probe(server_is_local=self.endpoint.is_loopback, environ=self.environ)
            catalogue = load_catalogue(self.environ)
        except ConfigurationError as error:
            # Only a hint for reusing a window: a bad PERSONA_OLLAMA_MEMORY_GB or catalogue is
            # reported where it is needed (model selection, `persona-ollama models`), not by
            # failing a generation.
            log.debug("memory check of the window skipped: %s", error.message)
            return None
        try:
            self.served.listing(deadline=deadline)
        except ServerError:
            return None
        listed = self.served.listed(model)
        if budget.memory_budget_bytes is None or listed is None:
            return None
        fitting = 0
        for window in LADDER:
            memory = estimate_memory_bytes(listed, window, catalogue)
            if memory is None:
                return None
            if not fits(memory, budget.memory_budget_bytes):  # with the headroom kept free
                break
            fitting = window
        return fitting
