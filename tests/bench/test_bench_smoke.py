"""The benchmark harness still runs: a tiny `python -m bench --quick` (its figures mean nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_runs_every_section_and_reports_the_targets(tmp_path):
    figures = tmp_path / "figures.json"

    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(figures)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    for heading in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## 7.", "## Targets"):
        assert heading in done.stdout
    report = json.loads(figures.read_text())
    assert {
        "per_request",
        "per_chunk",
        "imports",
        "concurrency",
        "batch",
        "startup_with_persona",
        "targets",
    } <= set(report)
    assert report["startup_with_persona"]["cli_persona_modules"] == []
    assert report["per_request_server"]["other"] == 0  # no extra round trip per generate
