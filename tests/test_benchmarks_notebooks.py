"""The notebook benchmark runs one notebook under nbval and reports time and memory."""

from __future__ import annotations

from _bench import load_benchmark


def test_bench_notebooks_one_notebook(capsys):
    status = load_benchmark("bench_notebooks").main(
        ["--only", "solutions", "--pattern", "00_*.ipynb"]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert "solutions/00_setup_and_data.ipynb" in out and "pass" in out
    peak_line = next(line for line in out.splitlines() if line.startswith("total:"))
    assert "peak memory" in peak_line and "GB" in peak_line
