"""The command line: help, an end-to-end run on tiny data, clear errors without tracebacks."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from gruunet_edu.cli import main

COMMANDS = ("sample-data", "train", "predict", "evaluate", "demo")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: gruunet-edu {command}")
    assert "--out" in out


def test_python_dash_m_and_no_command(capsys):
    result = subprocess.run(
        [sys.executable, "-m", "gruunet_edu", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert all(command in result.stdout for command in COMMANDS)
    assert main([]) != 0  # no command: help and a non-zero status
    assert "usage: gruunet-edu" in capsys.readouterr().out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Sample data and a checkpoint trained for 2 steps (shared by the end-to-end tests)."""
    root = tmp_path_factory.mktemp("cli")
    data, run = root / "data", root / "run"
    assert main(["sample-data", "--out", str(data), "--n-train", "4", "--n-val", "1",
                 "--n-test", "2", "--size", "64"]) == 0  # fmt: skip
    code = main(["train", "--data", str(data), "--out", str(run), "--steps", "2",
                 "--batch-size", "2", "--crop", "32", "--val-every", "2", "--device", "cpu",
                 "--no-progress", "--figures", "1"])  # fmt: skip
    assert code == 0
    return root, data, run


def test_sample_data_and_train_write_their_files(trained):
    _, data, run = trained
    for split, n in (("train", 4), ("val", 1), ("test", 2)):
        assert len(list((data / split / "images").glob("*.tif"))) == n
        assert len(list((data / split / "masks").glob("*.tif"))) == n
    for name in ("model.pt", "history.json", "loss.png", "val_metrics.json",
                 "val_prediction_000.png", "val_error_gallery.png"):  # fmt: skip
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert history["step"] == [2]
    metrics = json.loads((run / "val_metrics.json").read_text())
    assert {"dice", "ap50", "mean_ap", "seg", "f1_50"} <= set(metrics)


def test_predict_and_evaluate_write_their_files(trained, capsys):
    root, data, run = trained
    pred = root / "pred"
    assert main(["predict", str(data / "test" / "images"), "--checkpoint", str(run / "model.pt"),
                 "--out", str(pred), "--device", "cpu"]) == 0  # fmt: skip
    for stem in ("000", "001"):
        labels = tifffile.imread(pred / f"{stem}_labels.tif")
        assert labels.shape == (64, 64) and labels.dtype == np.uint16
        assert (pred / f"{stem}_prediction.png").is_file()
    ev = root / "eval"
    assert main(["evaluate", "--checkpoint", str(run / "model.pt"), "--data", str(data),
                 "--out", str(ev), "--device", "cpu", "--figures", "1"]) == 0  # fmt: skip
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["n_images"] == 2 and 0.0 <= metrics["dice"] <= 1.0
    assert (ev / "prediction_000.png").is_file() and (ev / "error_gallery.png").is_file()
    assert "Metrics:" in capsys.readouterr().out


def test_evaluate_averages_over_turns_and_flips_unless_told_not_to(trained):
    root, data, run = trained
    recorded = {}
    for flag in ([], ["--no-tta"]):
        ev = root / ("eval_tta" if not flag else "eval_once")
        args = ["--checkpoint", str(run / "model.pt"), "--data", str(data), "--out", str(ev)]
        assert main(["evaluate", *args, "--device", "cpu", "--figures", "0", *flag]) == 0
        recorded[tuple(flag)] = json.loads((ev / "metrics.json").read_text())["tta"]
    assert recorded == {(): True, ("--no-tta",): False}


def test_predict_and_evaluate_pass_tta_to_the_network(trained, monkeypatch):
    """``--tta`` / ``--no-tta`` reach the forward pass (not only metrics.json)."""
    from gruunet_edu.evaluation import inference
    from gruunet_edu.evaluation.tta import class_probabilities

    root, data, run = trained
    seen: list[bool] = []

    def spy(model, x, tta=False):
        seen.append(tta)
        return class_probabilities(model, x, tta)

    monkeypatch.setattr(inference, "class_probabilities", spy)
    common = ["--checkpoint", str(run / "model.pt"), "--device", "cpu"]
    commands = {
        "predict": ["predict", str(data / "test" / "images"), "--out", str(root / "pred_spy")],
        "evaluate": [
            "evaluate",
            "--data",
            str(data),
            "--out",
            str(root / "ev_spy"),
            "--figures",
            "0",
        ],
    }
    for name, command in commands.items():
        for flag, expected in (([], True), (["--no-tta"], False)):
            seen.clear()
            assert main([*command, *common, *flag]) == 0
            assert seen and all(t == expected for t in seen), (name, flag, seen)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "gruunet_edu", *args], capture_output=True, text=True, timeout=180
    )


def test_bad_argument_exits_non_zero_without_traceback():
    result = run_cli("train", "--steps", "0")
    assert result.returncode == 2
    assert "expected a positive integer" in result.stderr and "Traceback" not in result.stderr


def test_number_options_say_what_they_expect(capsys):
    cases = [
        (["train", "--lr", "0"], "expected a positive number, got 0.0"),
        (["train", "--lr", "fast"], "expected a positive number, got 'fast'"),
        (["train", "--figures", "-1"], "expected an integer >= 0, got -1"),
        (["sample-data", "--size", "x"], "expected a positive integer, got 'x'"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2, argv
        assert message in capsys.readouterr().err, argv


def test_missing_checkpoint_exits_non_zero_without_traceback(tmp_path):
    image = tmp_path / "image.tif"
    tifffile.imwrite(image, np.zeros((32, 32), np.float32))
    result = run_cli("predict", str(image), "--checkpoint", str(tmp_path / "none.pt"))
    assert result.returncode == 1
    assert "checkpoint not found" in result.stderr and "Traceback" not in result.stderr


def test_user_errors_give_one_clear_line(trained, tmp_path, capsys):
    _, data, run = trained
    image = tmp_path / "image.tif"
    tifffile.imwrite(image, np.zeros((32, 32), np.float32))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.zeros((4, 32, 32), np.float32), photometric="minisblack")
    cases = [
        (["predict", str(image), "--checkpoint", str(broken)], "cannot read checkpoint"),
        (
            [
                "predict",
                str(stack),
                "--checkpoint",
                str(run / "model.pt"),
                "--out",
                str(tmp_path / "p"),
            ],
            "expected a 2D image",
        ),  # fmt: skip
        (
            ["predict", str(tmp_path / "nothing.tif"), "--checkpoint", str(run / "model.pt")],
            "no such file",
        ),  # fmt: skip
        (
            ["evaluate", "--checkpoint", str(run / "model.pt"), "--data", str(tmp_path / "none")],
            "folder not found",
        ),  # fmt: skip
        (["evaluate", "--checkpoint", str(broken)], "cannot read checkpoint"),
        (
            [
                "train",
                "--data",
                str(tmp_path / "none"),
                "--steps",
                "1",
                "--no-progress",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "t"),
            ],
            "folder not found",
        ),  # fmt: skip
    ]
    for argv, message in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
        assert err.startswith(f"gruunet-edu {argv[0]}: error:")


def test_figures_render_with_the_agg_backend_and_name_the_errors(tmp_path):
    from gruunet_edu.viz.plots import (
        error_examples,
        error_gallery,
        plot_history,
        prediction_figure,
        save_figure,
        show_sample,
    )

    image = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    truth = np.zeros((24, 24), np.uint16)
    truth[2:8, 2:8], truth[2:8, 8:14] = 1, 2  # a touching pair ...
    truth[14:22, 14:22] = 3  # ... and a nucleus
    pred = np.zeros_like(truth)
    pred[2:8, 2:14] = 1  # the pair merged
    pred[14:22, 14:18], pred[14:22, 18:22] = 2, 3  # the nucleus split in halves
    names = {(e["kind"], e["name"]) for e in error_examples([image], [truth], [pred])}
    # IoU 1/2 matches one nucleus of the pair and one half: the rest are the errors
    assert names == {("missed", "merged"), ("spurious", "split")}
    figures = {
        "sample": show_sample(image, truth, np.minimum(truth, 2)),
        "history": plot_history(
            {
                "step": [1, 2],
                "train_loss": [1.0, 0.5],
                "val_loss": [1.1, None],
                "val_dice": [0.5, 0.8],
            }
        ),  # fmt: skip
        "prediction": prediction_figure(image, truth, pred),
        "prediction_only": prediction_figure(image, None, pred),
        "gallery": error_gallery([image], [truth], [pred]),
        "no_errors": error_gallery([image], [truth], [truth]),
    }
    assert len(figures["prediction"].axes) == 4
    for name, fig in figures.items():
        path = save_figure(fig, tmp_path / f"{name}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_error_examples_name_misses_and_false_detections():
    from gruunet_edu.viz.plots import error_examples

    image = np.zeros((16, 16), np.float32)
    truth = np.zeros((16, 16), np.uint16)
    truth[1:6, 1:6] = 1  # nothing predicted here
    pred = np.zeros_like(truth)
    pred[9:14, 9:14] = 1  # nothing true here
    names = {(e["kind"], e["name"]) for e in error_examples([image], [truth], [pred])}
    assert names == {("missed", "missed"), ("spurious", "false detection")}
