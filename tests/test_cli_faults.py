"""The command line never loses a user's work and never says something wrong or nothing.

Each test is one class of fault a careful user runs into: a folder that already holds a run or
the user's own files, an output path that is a file, name collisions among predicted images,
NaN pixels, RGB(A) images, semantic masks given as instance labels, images too small for the
network, a misnamed option or variable in a message, and Ctrl-C while the command starts.
"""

import builtins
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from gruunet_edu.cli import main
from gruunet_edu.models import GRUUNetConfig, build_model
from gruunet_edu.training.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny GRUU-Net (predictions are meaningless, their files are what counts)."""
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    config = GRUUNetConfig.preset("tiny")
    return save_checkpoint(path, model=build_model(config), config=config)


def _image(size=32, seed=0):
    return np.random.default_rng(seed).random((size, size)).astype(np.float32)


def _fails_with(argv, capsys, message):
    assert main(argv) == 1, argv
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ output folders


def test_train_refuses_a_folder_with_a_finished_run(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"the user's run")
    (tmp_path / "history.json").write_text("{}")
    err = _fails_with(["train", "--out", str(tmp_path), "--steps", "1"], capsys, "already holds")
    assert "--resume" in err and "--force" in err
    assert (tmp_path / "model.pt").read_bytes() == b"the user's run"


def test_demo_refuses_a_folder_with_a_finished_run(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"the user's run")
    _fails_with(["demo", "--out", str(tmp_path)], capsys, "replace it with --force")
    assert not (tmp_path / "data").exists()


def test_resume_and_force_pass_the_finished_run_check(tmp_path):
    from argparse import Namespace

    from gruunet_edu.cli_files import refuse_finished_run

    (tmp_path / "model.pt").write_bytes(b"x")
    refuse_finished_run(tmp_path, Namespace(resume=True, force=False))
    refuse_finished_run(tmp_path, Namespace(resume=False, force=True))


def test_sample_data_keeps_the_users_images(tmp_path, capsys):
    images = tmp_path / "train" / "images"
    images.mkdir(parents=True)
    tifffile.imwrite(images / "000.tif", np.full((8, 8), 3, np.uint16))
    _fails_with(["sample-data", "--out", str(tmp_path), "--size", "64"], capsys, "left alone")
    assert (tifffile.imread(images / "000.tif") == 3).all()


@pytest.mark.parametrize("command", ["train", "predict", "evaluate", "sample-data"])
def test_an_output_path_that_is_a_file_is_refused_first(tmp_path, capsys, checkpoint, command):
    out = tmp_path / "taken"
    out.write_text("a file")
    extra = {
        "train": ["--steps", "1"],
        "predict": [str(tmp_path), "--checkpoint", str(checkpoint)],
        "evaluate": ["--checkpoint", str(checkpoint)],
        "sample-data": [],
    }[command]
    _fails_with([command, *extra, "--out", str(out)], capsys, f"--out {out} is a file")


# ------------------------------------------------------------------ predict


def test_predict_gives_every_input_its_own_outputs(tmp_path, checkpoint, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        tifffile.imwrite(tmp_path / folder / "000.tif", _image())
    tifffile.imwrite(tmp_path / "img.tif", _image())
    iio.imwrite(tmp_path / "img.png", (_image() * 255).astype(np.uint8))
    out = tmp_path / "out"
    inputs = [tmp_path / "a", tmp_path / "b", tmp_path / "img.tif", tmp_path / "img.png"]
    argv = ["predict", *map(str, inputs), "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0
    labels = sorted(p.name for p in out.glob("*_labels.tif"))
    assert labels == [
        "a_000_tif_labels.tif",
        "b_000_tif_labels.tif",
        "img_png_labels.tif",
        "img_tif_labels.tif",
    ]
    assert capsys.readouterr().out.count(" nuclei -> ") == 4


def test_predict_into_its_input_folder_twice_ignores_its_own_outputs(tmp_path, checkpoint):
    tifffile.imwrite(tmp_path / "cell.tif", _image())
    argv = ["predict", str(tmp_path), "--checkpoint", str(checkpoint), "--out", str(tmp_path)]
    for _ in range(2):
        assert main([*argv, "--device", "cpu", "--probabilities"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    expected = ["cell.tif", "cell_labels.tif", "cell_prediction.png", "cell_probabilities.tif"]
    assert names == expected


def test_predict_converts_rgba_like_train_and_evaluate(tmp_path, checkpoint):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = (_image() * 255).astype(np.uint8)[..., None]
    rgba[..., 3] = 255
    iio.imwrite(tmp_path / "dsb.png", rgba)
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "dsb.png"), "--checkpoint", str(checkpoint)]
    assert main([*argv, "--out", str(out), "--device", "cpu"]) == 0
    assert tifffile.imread(out / "dsb_labels.tif").shape == (32, 32)


def test_predict_refuses_nan_pixels_with_their_count(tmp_path, checkpoint, capsys):
    image = _image()
    image[:2, :5] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", image)
    argv = ["predict", str(tmp_path / "nan.tif"), "--checkpoint", str(checkpoint)]
    err = _fails_with([*argv, "--out", str(tmp_path / "o")], capsys, "10 NaN pixel(s)")
    assert "nan.tif" in err


# ------------------------------------------------------------------ evaluate and train data


def _pairs(root, labels, size=32):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    tifffile.imwrite(root / "images" / "x.tif", _image(size))
    tifffile.imwrite(root / "masks" / "x.tif", labels)
    return root


def test_evaluate_warns_about_semantic_masks(tmp_path, checkpoint, capsys):
    semantic = np.zeros((32, 32), np.uint16)
    for i in range(4):  # four nuclei, all labelled 1, with boundaries labelled 2
        semantic[2 + 8 * i : 6 + 8 * i, 2:6] = 1
        semantic[1 + 8 * i, 1:7] = 2
    data = _pairs(tmp_path / "data", semantic)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--figures", "0"]
    assert main([*argv, "--out", str(tmp_path / "ev"), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "label 1 is made of 4 separate blobs" in err
    assert "semantic mask" in err and "'x'" in err


def test_evaluate_names_an_image_too_small_for_the_network(tmp_path, checkpoint, capsys):
    data = _pairs(tmp_path / "data", np.ones((3, 3), np.uint16), size=3)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data)]
    err = _fails_with([*argv, "--out", str(tmp_path / "ev")], capsys, "image 'x' is 3x3 px")
    assert str(data) in err


def test_crop_too_small_names_the_option(tmp_path, capsys):
    argv = ["train", "--crop", "2", "--steps", "1", "--device", "cpu", "--out", str(tmp_path)]
    _fails_with(argv, capsys, "--crop 2 is too small for the 'tiny' preset")


def test_bad_device_variable_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRUUNET_DEVICE", "banana")
    argv = ["train", "--steps", "1", "--out", str(tmp_path)]
    _fails_with(argv, capsys, "unknown $GRUUNET_DEVICE='banana'")


# ------------------------------------------------------------------ Ctrl-C while starting


def test_ctrl_c_while_importing_exits_130_with_one_line(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name.endswith("training.loop"):
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert main(["evaluate", "--checkpoint", "m.pt", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err == "gruunet-edu evaluate: interrupted while starting\n"


def test_sigint_soon_after_start_exits_130_without_a_traceback(tmp_path):
    argv = ["train", "--steps", "1", "--device", "cpu", "--no-progress", "--out", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gruunet_edu", *argv],
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal: a job started in the background by a non-interactive shell
        # inherits SIGINT ignored (POSIX), and Python then keeps ignoring it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
