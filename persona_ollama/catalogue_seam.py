"""Whether this package can choose a model from a catalogue, and the plain choice when not.

``choosing/`` (the hardware probe, the model catalogue, the speed model) is where the
provider's default model, its first-byte estimate and a window's memory cap come from. A
provider generated from the template (scripts/new_provider.py) may have none: then the default
model is the first chat model the server lists (a one-model server's only one), no speed is
estimated (a first-byte wait is what was measured, or the timeout), and no window is capped
by memory. The provider asks :data:`HAS_CATALOGUE` at those three doors and nowhere else.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model_info import ModelInfo

#: True when this package holds its choosing/ subpackage (found without importing it).
HAS_CATALOGUE = importlib.util.find_spec(f"{__package__}.choosing") is not None
#: The name asked for when the server lists no chat model, or cannot be asked: hosts read
#: ``default_model`` outside any try, and generate() then says why (the server is down, or
#: which models it serves).
NO_MODEL = "default"


def first_chat_model(listing: Iterable[ModelInfo]) -> str:
    """The first model of ``listing`` that can chat; :data:`NO_MODEL` when there is none."""
    return next((info.name for info in listing if info.can_chat), NO_MODEL)
