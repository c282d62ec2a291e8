"""The training benchmark runs in quick mode and reports both networks on both test sets."""

from __future__ import annotations

import math

from _bench import load_benchmark


def test_bench_train_quick(capsys):
    results = load_benchmark("bench_train").benchmark(["--quick"])
    out = capsys.readouterr().out
    assert "GRUU-Net (tiny)" in out and "U-Net (same budget)" in out
    for metric in ("AP50", "mean AP", "F1@0.5", "SEG", "Dice"):
        assert metric in out
    for arch in ("gruunet", "unet"):
        history, tests = results[arch]["history"], results[arch]["test"]
        assert history["step"][-1] == 2 and math.isfinite(history["train_loss"][-1])
        assert {"synthetic", "shift"} <= set(tests)
        for test in tests.values():
            assert 0.0 <= test["ap50"] <= 1.0 and 0.0 <= test["seg"] <= 1.0
        for name in ("synthetic", "shift"):  # the unmatched objects, by kind
            errors = tests[name]["errors"]
            t = tests[name]
            assert sum(errors["missed"].values()) == round(t["n_true"] * (1 - t["recall50"]))
            assert sum(errors["spurious"].values()) == round(t["n_pred"] * (1 - t["precision50"]))
            assert 0.0 <= test["mean_ap"] <= test["ap50"] + 1e-9


def test_bench_train_precision_table(capsys):
    results = load_benchmark("bench_train").benchmark(["--quick", "--precision"])
    out = capsys.readouterr().out
    assert "bfloat16 instructions:" in out
    rows = results["precision"]
    assert set(rows) == {
        "float32, NCHW",
        "float32, channels-last",
        "bfloat16 autocast, channels-last",
    }
    assert all(math.isfinite(v) and v > 0 for v in rows.values())
