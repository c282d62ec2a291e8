"""The training benchmark runs in quick mode and reports both networks."""

from __future__ import annotations

import math

from _bench import load_benchmark


def test_bench_train_quick(capsys):
    results = load_benchmark("bench_train").benchmark(["--quick"])
    out = capsys.readouterr().out
    assert "GRUU-Net (tiny)" in out and "U-Net (same budget)" in out and "AP50" in out
    for arch in ("gruunet", "unet"):
        history, test = results[arch]["history"], results[arch]["test"]
        assert history["step"][-1] == 2 and math.isfinite(history["train_loss"][-1])
        assert 0.0 <= test["ap50"] <= 1.0 and 0.0 <= test["seg"] <= 1.0
