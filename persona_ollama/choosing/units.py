"""Memory units, at the bottom of the import graph so that any module may use them."""

from __future__ import annotations

GiB = 1 << 30
MiB = 1 << 20


def format_gib(size: float) -> str:
    """A byte count as people read memory sizes: ``'18.0 GiB'``."""
    return f"{size / GiB:.1f} GiB"
