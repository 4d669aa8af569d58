"""How a double's server names its models: :class:`Naming`, given to ``FakeServer(naming=...)``.

A server decides three things about a model name: whether it is valid, the spelling it lists
(its display form) and which spellings are the same model (the key its lookups compare). Servers
disagree: one takes any id as it is (a Hub id like ``org/Model-7B``, or a local path), another
has a registry grammar with defaults filled in and case folded. So the core asks the server's
naming and never parses a name itself. :data:`PLAIN`, the default, is the first kind; a face of
a server with a grammar of its own subclasses :class:`Naming` and its double passes it in.

The double does not reuse the client's name rules: a test double that shares the client's parser
would agree with the client's bugs.
"""

from __future__ import annotations

import hashlib

from .models import FakeModel

__all__ = ["PLAIN", "Naming"]

# A name longer than this is refused. A server named by the path it loaded (vLLM's default
# served name) cannot have a longer one: Linux's PATH_MAX is 4096 bytes, its terminating null
# included (linux/limits.h).
MAX_NAME = 4095


class Naming:
    """A model name taken as it is: valid when it is 1 to 4095 printable characters (a space
    inside it included, as in a local path; no control character), shown as given (trimmed)
    and compared exactly, case included."""

    # What a derived digest hashes before the name: a double's digests stay as they were.
    digest_seed = "fake-model"
    # What the error for a name the server refuses says after "is not a valid model name".
    invalid_hint = "for this server"

    def is_valid(self, raw: str) -> bool:
        text = raw.strip()
        return 0 < len(text) <= MAX_NAME and text.isprintable()

    def display(self, raw: str) -> str:
        """The spelling the server lists for ``raw``."""
        return raw.strip()

    def full(self, raw: str) -> str:
        """The fully qualified form the server's error texts quote (by default the display)."""
        return self.display(raw)

    def key(self, raw: str) -> str:
        """What lookups compare: two spellings of one model have the same key."""
        return raw.strip()

    def adopt(self, model: FakeModel) -> FakeModel:
        """``model``, changed in place to how the server lists it once installed: the name
        checked and shown in display form, and a digest derived from it when none was given.
        In place, so that the model a test installs is the one the server serves.

        Raises ValueError for a name the server would refuse, leaving ``model`` as it was."""
        if not self.is_valid(model.name):
            raise ValueError(f"{model.name!r} is not a valid model name {self.invalid_hint}")
        model.name = self.display(model.name)
        if not model.digest:
            model.digest = hashlib.sha256(f"{self.digest_seed}:{model.name}".encode()).hexdigest()
        return model

    def model(self, name: str) -> FakeModel:
        """The model a bare name the server's library does not know stands for."""
        return FakeModel(name)


PLAIN = Naming()
"""Names taken as they are (the core's default)."""
