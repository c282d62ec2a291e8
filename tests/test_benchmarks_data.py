"""The data benchmark runs (quick mode) and reports positive rates."""

from __future__ import annotations

from _bench import load_benchmark


def test_bench_data_quick(capsys):
    results = load_benchmark("bench_data").main(
        ["--quick", "--size", "96", "--crop", "48", "--train-rate", "2.0"]
    )
    out = capsys.readouterr().out
    for key in ("generate", "item_pool", "item_fly", "item_whole", "loader"):
        assert results[key] > 0
    assert "images/s" in out and "data/training ratio" in out
    assert results["headroom"] == results["loader"] / 2.0
