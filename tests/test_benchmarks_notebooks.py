"""The notebook benchmark runs one notebook under nbval and reports time and memory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_notebooks.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_notebooks", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_notebooks_one_notebook(capsys):
    status = _load().main(["--only", "solutions", "--pattern", "00_*.ipynb"])
    out = capsys.readouterr().out
    assert status == 0
    assert "solutions/00_setup_and_data.ipynb" in out and "pass" in out
    peak_line = next(line for line in out.splitlines() if line.startswith("total:"))
    assert "peak memory" in peak_line and "GB" in peak_line
