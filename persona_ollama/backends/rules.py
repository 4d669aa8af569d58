"""What a backend declares to the layers above it: where its server is, and its model names.

The kernel (endpoint.py, names.py, settings.py) knows no server by name: it reads these
declarations, which each backend's ``*_rules`` module provides as ``DECLARATION`` and
:func:`~persona_ollama.backends.registry.declared` finds by API name. A provider for another
server writes one :class:`Declaration`; everything it leaves out keeps the neutral default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# The kinds of option values: how a message names the kind, and the Python types that pass.
OptionType = tuple[str, tuple[type, ...]]
INT: OptionType = ("an integer", (int,))
NUMBER: OptionType = ("a number", (int, float))
BOOL: OptionType = ("true or false", (bool,))
STRINGS: OptionType = ("a list of strings", (list, tuple))

# Above this many characters a model name is a pasted document, not a name; no server's
# grammar that we know of allows more (the longest we know, a registry host plus path, is 512).
MAX_NAME_LENGTH = 1024


@dataclass(frozen=True)
class AddressRules:
    """How a backend's server address is read from arguments and the environment.

    ``variables`` name the server in order of precedence (the first set one wins); ``label``
    names the server in messages ("... is not a valid <label> address"); ``special`` maps a
    whole value the server's own clients spell specially to the URL it means;
    ``exact_scheme_port`` True keeps ``default_port`` for a scheme not written in lower case
    ("HTTP://host"), as some servers' own parsers do; ``remote_example`` is a URL with a path
    prefix shown in error messages.
    """

    label: str
    variables: tuple[str, ...]
    default_port: int
    default_host: str = "127.0.0.1"
    special: Mapping[str, str] = field(default_factory=dict)
    exact_scheme_port: bool = False
    remote_example: str = "https://gpu-box.example/llm"

    @property
    def default_url(self) -> str:
        """The address used when neither an argument nor a variable names one."""
        return f"http://{self.default_host}:{self.default_port}"


class NameRules(Protocol):
    """A server's model-name grammar: which names it takes and which spellings are one model."""

    @property
    def example(self) -> str | None:
        """A name its server takes, shown where a hint needs one; None where no name is
        typical (a server whose ids are whatever it was started with)."""

    def check(self, name: str) -> None:
        """Raise ConfigurationError, naming the server and a good name, when the server would
        refuse ``name`` (already stripped, non-empty, without control characters)."""

    def canonical(self, name: str) -> str:
        """The key two spellings of one model share (compare and cache by it)."""

    def is_remote(self, name: str) -> bool:
        """True when the server forwards requests for ``name`` to another service."""

    #: Where the server forwards a name ``is_remote`` says it forwards (None: it does not say),
    #: and how we know, for messages.
    remote_host: str | None
    remote_evidence: str


class AnyName:
    """The neutral default: any text is a name, compared exactly as written."""

    example = None
    remote_host: str | None = None
    remote_evidence = "the server forwards it by its name"

    def check(self, name: str) -> None:
        """Take every name the kernel's own checks passed."""
        return None

    def canonical(self, name: str) -> str:
        """``name`` without surrounding spaces: servers of this kind match ids exactly."""
        return name.strip()

    def is_remote(self, name: str) -> bool:
        """False: nothing is known about where the server runs its models."""
        return False


@dataclass(frozen=True)
class ContextWords:
    """What the server does with a prompt longer than its window, in the words of messages.

    ``would_cut`` ends "Nothing was sent: ..." when a prompt cannot fit; ``fills_window``
    follows a count of evaluated prompt tokens that filled the whole window, and says what
    happened and what to do. ``window_name`` and ``answer_name`` are how callers spell the
    window and the answer's token budget: the provider's keyword, the keys of ``options``
    and of an answer's ``raw_response``, and the names in messages;
    ``smaller_window`` names a smaller window in advice ("... or <it>, would fit the GPU").
    """

    would_cut: str = "the server might have silently dropped part of the input"
    fills_window: str = (
        "the server probably cut a longer prompt to fit, so part of the input was dropped. "
        "Ask for a larger context window, or use a model with a longer context."
    )
    window_name: str = "context_window"
    answer_name: str = "answer_tokens"
    smaller_window: str = "a smaller context window"


@dataclass(frozen=True)
class Declaration:
    """Everything one backend declares: its address rules, a phrase for the API it speaks
    (used where the kernel lists the APIs, e.g. "the server's /chat route"), its model names,
    and the options its server knows beyond the common sampling ones (options.COMMON_OPTIONS),
    each with the kind of value it takes, what its server does with an option it does not know
    (``unknown_option``, words that end "it is sent as given, and ..."), and what its server
    does with too long a prompt."""

    address: AddressRules
    speaks: str
    names: NameRules = field(default_factory=AnyName)
    options: Mapping[str, OptionType] = field(default_factory=dict)
    context: ContextWords = ContextWords()
    unknown_option: str = "a server that does not know it may ignore it silently"
