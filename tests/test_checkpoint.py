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
    with pytest.raises(OSError, match="disk full"):
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
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(path)


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
