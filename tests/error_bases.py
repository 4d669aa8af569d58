"""The error classes' bases are the same in every test: an autouse fixture (``error_bases``),
which tests/conftest.py uses, and a project generated from the template copies.

A test that imports a Persona-shaped package after the errors were defined moves them onto
its classes (_persona._adopt); later tests must see the stand-in bases again, and the import
hooks (sys.meta_path) as they were.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from persona_ollama import _persona

if sys.version_info < (3, 10):
    # On import, the importlib_metadata backport appends its distribution finder to
    # sys.meta_path and deletes the stdlib PathFinder's find_distributions. Import it before any
    # test snapshots sys.meta_path (error_bases below, pytester): restoring a snapshot taken
    # before that import drops the backport's finder, and then neither importlib.metadata nor
    # the backport finds any distribution or entry point for the rest of the session.
    import importlib_metadata  # noqa: F401


@pytest.fixture(autouse=True)
def error_bases() -> Iterator[None]:
    """Restore the errors' stand-in bases and sys.meta_path after each test."""
    stand_ins = (
        _persona._ProviderError,
        _persona._AuthenticationError,
        _persona._RateLimitError,
        _persona._ModelNotFoundError,
    )
    saved = {cls: cls.__bases__ for base in stand_ins for cls in base.__subclasses__()}
    meta_path = list(sys.meta_path)
    yield
    for cls, bases in saved.items():
        if cls.__bases__ != bases:
            cls.__bases__ = bases
    sys.meta_path[:] = meta_path
