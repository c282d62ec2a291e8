"""The post-processing memory benchmark runs in quick mode and finds the drawn nuclei."""

from __future__ import annotations

from _bench import load_benchmark


def test_bench_postprocess_quick(capsys):
    result = load_benchmark("bench_postprocess").benchmark(["--quick"])
    out = capsys.readouterr().out
    assert "peak RSS" in out and "objects found" in out
    assert result["peak_mib"] >= result["before_mib"] > 0
    assert 0.9 * result["drawn"] <= result["objects"] <= 1.1 * result["drawn"]
