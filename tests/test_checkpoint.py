"""Checkpoints: round trip, atomic writes, damaged and incompatible files."""

import os

import pytest
import torch

from gruunet_edu.models import GRUUNetConfig, build_model
from gruunet_edu.training import checkpoint as ckpt
from gruunet_edu.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    load_state,
    save_checkpoint,
)

TINY = GRUUNetConfig.preset("tiny")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(TINY)


def test_round_trip_restores_weights_config_optimizer_step_history(tmp_path, model):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    path = save_checkpoint(
        tmp_path / "sub" / "m.pt",
        model=model,
        config=TINY,
        optimizer=opt,
        step=7,
        history={"step": [5, 7], "val_dice": [0.5, 0.6]},
        extra={"note": "x"},
    )
    data = load_checkpoint(path)
    assert data["step"] == 7 and data["arch"] == "gruunet" and data["extra"] == {"note": "x"}
    assert data["history"]["val_dice"] == [0.5, 0.6]
    assert data["optimizer"]["param_groups"][0]["lr"] == 1e-3
    rebuilt, _ = load_model(path)
    assert rebuilt.config == TINY and not rebuilt.training
    for (name, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_failing_save_leaves_the_old_checkpoint_intact(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", model=model, config=TINY, step=1)
    before = path.read_bytes()

    def broken_save(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(CheckpointError, match=r"disk full; the previous checkpoint .* is intact"):
        save_checkpoint(path, model=model, config=TINY, step=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["m.pt"]  # no temporary file left behind


def test_interrupted_save_leaves_the_old_checkpoint_intact(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", model=model, config=TINY, step=1)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=model, config=TINY, step=2)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["m.pt"]


def test_truncated_corrupt_missing_and_foreign_files_raise_checkpoint_error(tmp_path, model):
    good = save_checkpoint(tmp_path / "good.pt", model=model, config=TINY, step=1)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(truncated)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(noise)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(tmp_path)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(CheckpointError, match="not a gruunet-edu checkpoint"):
        load_checkpoint(tensor)


class Custom:
    """An arbitrary Python object: the safe loader must refuse to unpickle it."""


def test_arbitrary_objects_are_refused_by_weights_only_loading(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "gruunet-edu", "payload": Custom()}, path)
    with pytest.raises(CheckpointError, match=r"refused to load .*Custom'.*could run code") as err:
        load_checkpoint(path)
    assert "damaged" not in str(err.value) and "\x1b" not in str(err.value)


def test_incompatible_checkpoints_raise_checkpoint_error(tmp_path, model):
    path = save_checkpoint(tmp_path / "tiny.pt", model=model, config=TINY, step=1)
    data = load_checkpoint(path)
    other = build_model(GRUUNetConfig.preset("tiny", hidden_channels=8))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_state(other, data, path)
    unet = build_model(TINY, arch="unet")
    with pytest.raises(CheckpointError, match="'gruunet' network, not a 'unet'"):
        load_state(unet, data, path)
    data["config"] = {"no_such_field": 1}
    bad = tmp_path / "bad_config.pt"
    torch.save(data, bad)
    with pytest.raises(CheckpointError, match="cannot build"):
        load_model(bad)


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    path = tmp_path / "evil.pt"
    torch.save({"format": "gruunet-edu", "x": Evil()}, path)
    with pytest.raises(CheckpointError, match=r"holds the Python object '\w+\.system'"):
        load_model(path)
    assert not (tmp_path / "ran").exists()


def test_damaged_message_has_no_ansi_codes(tmp_path):
    err = RuntimeError("\x1b[1mWeightsUnpickler error:\x1b[0m bad\nmore")
    assert ckpt._first_line(err) == "WeightsUnpickler error: bad"
    assert ckpt._first_line(EOFError()) == "EOFError"


def test_zero_byte_checkpoint_says_empty(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\)"):
        load_model(path)


def test_checkpoint_from_a_future_format_version_is_refused(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model=model, config=TINY, step=1)
    data = load_checkpoint(path)
    data["version"] = ckpt.VERSION + 1
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=r"format version 2, newer .* upgrade"):
        load_model(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"hidden_channels": 10**9}, r"config.hidden_channels = 1000000000 asks for an enormous"),
        ({"encoder_widths": [8] * 100}, r"config.encoder_widths lists 100 values"),
        ({"hidden_channels": 4096}, r"the network it describes has [\d,]+ weight values"),
    ],
)
def test_enormous_config_is_refused_before_building(tmp_path, model, monkeypatch, change, match):
    path = save_checkpoint(tmp_path / "m.pt", model=model, config=TINY, step=1)
    data = load_checkpoint(path)
    data["config"].update(change)
    torch.save(data, path)
    built = []
    monkeypatch.setattr(
        "gruunet_edu.models.build_model",
        lambda *a, **k: built.append(torch.empty(0).device) or build_model(*a, **k),
    )
    with pytest.raises(CheckpointError, match=match):
        load_model(path)
    assert all(device.type == "meta" for device in built)  # nothing built for real


def test_stale_temporary_file_is_removed_by_the_next_save(tmp_path, model):
    stale = tmp_path / ".m.pt.abc123.tmp"
    stale.write_bytes(b"left by kill -9")
    other = tmp_path / ".other.pt.abc123.tmp"
    other.write_bytes(b"another file's")
    save_checkpoint(tmp_path / "m.pt", model=model, config=TINY, step=1)
    assert sorted(os.listdir(tmp_path)) == [".other.pt.abc123.tmp", "m.pt"]


def test_full_disk_says_the_previous_checkpoint_is_intact(tmp_path, model, monkeypatch):
    import errno

    path = save_checkpoint(tmp_path / "m.pt", model=model, config=TINY, step=1)

    def full(obj, handle, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full)
    with pytest.raises(CheckpointError, match=r"the disk is full; the previous checkpoint .*m.pt"):
        save_checkpoint(path, model=model, config=TINY, step=2)
    with pytest.raises(CheckpointError, match="no checkpoint was written"):
        save_checkpoint(tmp_path / "new.pt", model=model, config=TINY, step=2)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1


def test_zero_byte_file_in_the_model_cache_is_retrained(tmp_path, monkeypatch, capsys):
    from gruunet_edu.training import pretrained

    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path))
    options = {"steps": 1, "crop": 32, "eval_interval": 1, "batch_size": 1, "progress": False}
    path = pretrained.pretrained_path("tiny", **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    model = pretrained.pretrained_model("tiny", device="cpu", **options)
    assert "is empty (0 bytes)" in capsys.readouterr().out and path.stat().st_size > 0
    assert load_checkpoint(path)["step"] == model.history.step[-1]
