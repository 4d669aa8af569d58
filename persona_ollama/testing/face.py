"""The face interface that server.py dispatches to: :class:`Face`, :class:`Route`, :class:`Call`.

It lives apart from the server so that the faces (native.py, openai.py) and the server import it
without a cycle. Nothing here knows a URL path: the faces do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .responses import Reply, Response, json_reply

if TYPE_CHECKING:
    from .model_names import Naming
    from .profiles import Profile
    from .state import RecordedRequest, ServerState

__all__ = [
    "Call",
    "Face",
    "Route",
]


# The face interface ------------------------------------------------------------------------------
@dataclass
class Call:
    """One request being answered: the shared state, its record, the latency already waited."""

    state: ServerState
    record: RecordedRequest
    waited_s: float = 0.0


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class Route:
    """``method`` ``path`` is answered by ``handle``.

    A path ending in ``{name}`` (``/v1/models/{model}``) matches that prefix followed by at least
    one character. ``generation``: the route runs a model, so scripted rules without a path
    apply to it and it holds one of the ``parallel`` slots.
    """

    method: str
    path: str
    handle: Handler
    generation: bool = False

    @property
    def prefix(self) -> str | None:
        """The fixed part of a ``{name}`` path, or None for an exact path."""
        if self.path.endswith("}") and "{" in self.path:
            return self.path[: self.path.index("{")]
        return None


class Face:
    """One API a double serves: its routes and its error shape (subclass and set ``routes``,
    in the class body, or in ``__init__`` when the handlers read the face's own settings)."""

    routes: Sequence[Route] = ()
    not_implemented: ClassVar[frozenset[str]] = frozenset()
    """Paths the real server has and the double does not: a clear 501 beats a misleading 404."""
    naming: ClassVar[Naming | None] = None
    """How the face's server names models (model_names.py), when it has rules of its own: a
    double serving the face uses them unless it is given ``naming=``."""
    profile_type: ClassVar[type[Profile] | None] = None
    """The face's server's release rules and error texts (profiles.py), when it has its own: a
    double serving the face uses them unless its settings name a profile."""

    def error(self, status: int, message: str) -> Reply:
        """The body of an error answered before any output: ``{"error": message}``."""
        return json_reply({"error": message}, status)

    def runner_error(self, state: ServerState, status: int, message: str) -> Response:
        """An error from the model runner (a RunnerError, ``runner_stopped_next``)."""
        return self.error(status, message)
