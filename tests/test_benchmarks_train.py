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


def test_bench_train_seeds_share_the_test_sets_and_average(capsys):
    bench = load_benchmark("bench_train")
    results = bench.benchmark(["--quick", "--no-unet", "--seeds", "0", "1"])
    out = capsys.readouterr().out
    assert "GRUU-Net (tiny), seed 0" in out and "GRUU-Net (tiny), seed 1" in out
    assert "Over training seeds 0, 1 (mean, min-max):" in out
    runs = results["runs"]
    assert results["seeds"] == [0, 1] and len(runs) == 2
    # one test set for all seeds: the same images, so the same number of true nuclei
    n_true = {r["gruunet"]["test"]["synthetic"]["n_true"] for r in runs}
    assert len(n_true) == 1
    mean = bench.seed_summary(runs, "gruunet")["synthetic"]["seg"]
    seg = [r["gruunet"]["test"]["synthetic"]["seg"] for r in runs]
    assert math.isclose(mean, sum(seg) / 2)
    assert results["gruunet"] is runs[0]["gruunet"]  # the single-seed keys stay the first run's


def test_spread_formats_one_value_and_a_range():
    bench = load_benchmark("bench_train")
    assert bench._spread([0.5]) == "0.500"
    assert bench._spread([0.8, 0.9, 1.0]) == "0.900 (0.800-1.000)"


def test_target_lever_trains_on_the_one_pixel_boundary():
    from gruunet_edu.data import CONTACT_RADIUS

    bench = load_benchmark("bench_train")
    for target, radius in (("default", CONTACT_RADIUS), ("former", 0)):
        train_set, val_set = bench.training_data(32, 0, quick=True, target=target)
        assert train_set.contact_radius == radius and val_set.contact_radius == radius
    assert CONTACT_RADIUS > 0


def test_alike_lever_reaches_the_training_data():
    from gruunet_edu.data import SyntheticConfig

    bench = load_benchmark("bench_train")
    for lever, expected in (({}, SyntheticConfig.training()), ({"alike": 0.0}, SyntheticConfig())):
        train_set, val_set = bench.training_data(32, 0, quick=True, **lever)
        for dataset in (train_set, val_set):
            assert dataset.config.replace(size=256) == expected.replace(size=256)
    assert SyntheticConfig.training().alike_fraction > 0.0
