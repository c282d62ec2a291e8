"""The data benchmark runs (quick mode) and reports positive rates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_data.py"


def _load():
    spec = importlib.util.spec_from_file_location("bench_data", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_data_quick(capsys):
    results = _load().main(["--quick", "--size", "96", "--crop", "48", "--train-rate", "2.0"])
    out = capsys.readouterr().out
    for key in ("generate", "item_pool", "item_fly", "item_whole", "loader"):
        assert results[key] > 0
    assert "images/s" in out and "data/training ratio" in out
    assert results["headroom"] == results["loader"] / 2.0
