"""The fixture every module here shares: the plugin's wheel, built once per session and
installed into a fresh virtual environment (test_installed_plugin.py says how)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from test_installed_plugin import InstalledPlugin


@pytest.fixture(scope="session")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> InstalledPlugin:
    from test_installed_plugin import install_plugin

    return install_plugin(tmp_path_factory)
