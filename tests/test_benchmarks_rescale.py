"""The rescaling benchmark runs in quick mode and scores every tolerance on both tuning sets."""

from __future__ import annotations

import pytest
from _bench import load_benchmark


def test_bench_rescale_quick(capsys):
    bench = load_benchmark("bench_rescale")
    results = bench.benchmark(["--quick"])
    out = capsys.readouterr().out
    assert "the default tolerance is" in out
    assert set(results) == {"synthetic (tuning)", "shift (tuning)"}
    for rows in results.values():
        assert list(rows) == ["own scale"] + [f"auto, tolerance {t}" for t in bench.TOLERANCES]
        for metrics in rows.values():
            assert 0.0 <= metrics["ap50"] <= 1.0 and 0.0 <= metrics["seg"] <= 1.0


def test_bench_rescale_postprocess_sweep_quick(capsys):
    bench = load_benchmark("bench_rescale")
    results = bench.benchmark(["--quick", "--postprocess", "--seeds", "0", "1"])
    out = capsys.readouterr().out
    assert "Models: tiny recipe, seeds 0, 1" in out
    for rows in results.values():
        assert len(rows) == len(bench.SEED_H) * len(bench.BOUNDARY_POWERS)
        assert "seed_h 0.5, boundary_power 1.0" in rows
        for metrics in rows.values():
            assert 0.0 <= metrics["ap50"] <= 1.0 and 0.0 <= metrics["seg"] <= 1.0


def test_postprocess_sweep_hands_every_setting_to_the_post_processing(monkeypatch):
    bench = load_benchmark("bench_rescale")
    seen = []
    real = bench.probabilities_to_instances

    def spy(probs, **options):
        seen.append((options["seed_h"], options["boundary_power"]))
        return real(probs, **options)

    monkeypatch.setattr(bench, "probabilities_to_instances", spy)
    bench.benchmark(["--quick", "--postprocess"])
    grid = {(h, p) for h in bench.SEED_H for p in bench.BOUNDARY_POWERS}
    assert set(seen) == grid


def test_bench_rescale_rejects_seeds_it_would_not_use():
    bench = load_benchmark("bench_rescale")
    for argv in (["--quick", "--seeds", "0", "1"], ["--checkpoint", "m.pt", "--seeds", "0"]):
        with pytest.raises(SystemExit):
            bench.benchmark(argv)


def test_tuning_images_are_not_the_test_images():
    from gruunet_edu.data.dataset import synthetic_test_sets

    bench = load_benchmark("bench_rescale")
    tuning = bench.tuning_sets(2, 64)
    tests = synthetic_test_sets(2, 64, 0)
    for (_, tune), (_, test) in zip(sorted(tuning.items()), sorted(tests.items()), strict=True):
        for a in tune:
            assert all((a.image != b.image).any() for b in test)
