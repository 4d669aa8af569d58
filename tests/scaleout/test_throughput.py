"""A batch through nginx in front of N machines runs at 0.8 x N or better of one machine's
throughput, for N = 2 and 3 (figures: docs/benchmarks.md, section 8)."""

from __future__ import annotations

import pytest

from .throughput import measure_all, table

pytestmark = pytest.mark.scaleout


def test_throughput_grows_with_the_machines_behind_nginx(capsys):
    figures = measure_all((1, 2, 3))

    with capsys.disabled():
        print("\n" + table(figures))
    one = figures[0].tokens_per_second
    for figure in figures[1:]:
        ratio = figure.tokens_per_second / one
        assert ratio >= 0.8 * figure.machines, table(figures)
