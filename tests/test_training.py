"""The training loop on tiny inputs: history, seeds, resume, Ctrl-C, divergence, CPU options."""

import json
import math
import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from gruunet_edu.data.normalize import percentile_normalize
from gruunet_edu.data.synthetic import make_nuclei
from gruunet_edu.data.targets import three_class
from gruunet_edu.models import GRUUNetConfig, build_model
from gruunet_edu.training import precision
from gruunet_edu.training.checkpoint import load_checkpoint
from gruunet_edu.training.config import TrainConfig, learning_rate
from gruunet_edu.training.history import History
from gruunet_edu.training.loop import TrainingDiverged, train
from gruunet_edu.training.precision import resolve_amp, use_channels_last

TINY = GRUUNetConfig.preset("tiny", encoder_widths=(8, 16), decoder_widths=(8,), hidden_channels=8)


@pytest.fixture(scope="module")
def data():
    """Eight 32 x 32 synthetic samples as (image (1, H, W), target (H, W)) pairs."""
    items = []
    for i in range(8):
        image, labels = make_nuclei(i, size=32, density=12)
        items.append(
            (
                torch.from_numpy(percentile_normalize(image))[None],
                torch.from_numpy(three_class(labels).astype(np.int64)),
            )
        )
    return items


def fresh_model(seed=0):
    torch.manual_seed(seed)
    return build_model(TINY)


def config(**kw):
    base = dict(steps=4, eval_interval=2, batch_size=2, lr=3e-3, warmup=1, device="cpu")
    base.update(progress=False, verbose=False)
    base.update(kw)
    return TrainConfig(**base)


def weights(model):
    return [p.detach().clone() for p in model.state_dict().values()]


def test_history_per_eval_interval_is_returned_and_saved(tmp_path, data):
    ckpt = tmp_path / "m.pt"
    history = train(fresh_model(), data[:6], data[6:], config(checkpoint=str(ckpt)))
    assert history.step == [2, 4]
    assert all(math.isfinite(x) for x in history.train_loss + history.val_loss)
    assert all(0.0 <= d <= 1.0 for d in history.val_dice)
    assert history.lr[-1] == pytest.approx(learning_rate(3, config()))
    saved = json.loads((tmp_path / "m_history.json").read_text())
    assert saved["step"] == [2, 4] and saved["interrupted"] is False
    assert History.load(tmp_path / "m_history.json").val_dice == pytest.approx(history.val_dice)
    stored = load_checkpoint(ckpt)
    assert stored["step"] == 4 and stored["history"]["step"] == [2, 4]
    assert stored["config"] == TINY.to_dict() and stored["optimizer"] is not None


def test_same_seed_same_run_other_seed_other_run(data):
    runs = []
    for seed in (0, 0, 1):
        model = fresh_model()
        runs.append((train(model, data, None, config(steps=2, seed=seed)), weights(model)))
    (h0, w0), (h1, w1), (h2, _) = runs
    assert h0.train_loss == h1.train_loss
    assert all(torch.equal(a, b) for a, b in zip(w0, w1, strict=True))
    assert h2.train_loss != h0.train_loss  # another seed draws other batches


class InterruptAfter:
    """A dataset that raises KeyboardInterrupt (like Ctrl-C) after `n` items were read."""

    def __init__(self, items, n):
        self.items, self.n, self.reads = items, n, 0

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.reads += 1
        if self.reads > self.n:
            raise KeyboardInterrupt
        return self.items[i]


def test_ctrl_c_keeps_checkpoint_and_resume_equals_uninterrupted_run(tmp_path, data):
    full_model = fresh_model()
    full = train(full_model, data, data[:1], config())

    ckpt = tmp_path / "m.pt"
    cut_model = fresh_model()
    # 2 items per step: the interrupt comes while reading the batch of step 3 (after step 2's save)
    cut = train(cut_model, InterruptAfter(data, 4), data[:1], config(checkpoint=str(ckpt)))
    assert cut.interrupted and cut.step == [2]
    assert load_checkpoint(ckpt)["step"] == 2
    assert History.load(tmp_path / "m_history.json").interrupted

    resumed_model = fresh_model(seed=123)  # other initial weights: they come from the checkpoint
    resumed = train(resumed_model, data, data[:1], config(checkpoint=str(ckpt), resume=True))
    assert resumed.step == [2, 4] and not resumed.interrupted
    assert resumed.train_loss == pytest.approx(full.train_loss, rel=1e-5)
    for a, b in zip(weights(full_model), weights(resumed_model), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert load_checkpoint(ckpt)["step"] == 4


def test_nan_loss_raises_training_diverged_with_advice(tmp_path, data):
    bad = [(torch.full_like(x, float("nan")), y) for x, y in data]
    with pytest.raises(TrainingDiverged) as err:
        train(fresh_model(), bad, None, config())
    message = str(err.value)
    assert "NaN" in message and "step 0" in message
    assert (
        "lower learning rate" in message and "normalisation" in message and "amp='off'" in message
    )


def test_amp_resolution_per_device(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert resolve_amp("auto", cpu) is None  # emulated bfloat16 would be slower than float32
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert resolve_amp("auto", cpu) is torch.bfloat16
    assert resolve_amp("off", cpu) is None
    assert resolve_amp("bf16", cpu) is torch.bfloat16
    assert resolve_amp("fp16", cpu) is torch.bfloat16  # the CPU autocasts to bfloat16
    with pytest.raises(ValueError, match="amp must be one of"):
        resolve_amp("int8", cpu)
    with pytest.raises(ValueError, match="amp must be one of"):
        TrainConfig(amp="fp8")


def test_cpu_bf16_probe_and_memory_format():
    assert isinstance(precision.cpu_has_bf16(), bool)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_channels_last(False, cpu, torch.bfloat16)  # oneDNN's bf16 kernels want NHWC
    assert not use_channels_last(False, cpu, None)
    assert not use_channels_last(False, cuda, torch.bfloat16)  # on CUDA only when asked for
    assert use_channels_last(True, cpu, None)


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))

    def forward(self, x):
        return self.body(x)


def test_bf16_autocast_on_cpu_trains(data):
    model = SmallNet()
    before = weights(model)
    history = train(model, data, data[:2], config(steps=2, amp="bf16"))
    assert all(math.isfinite(x) for x in history.train_loss + history.val_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(model), strict=True))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


def test_channels_last_on_cpu_matches_default_layout(data):
    plain, nhwc = fresh_model(), fresh_model()
    h_plain = train(plain, data, None, config(steps=2))
    h_nhwc = train(nhwc, data, None, config(steps=2, channels_last=True))
    conv = next(m for m in nhwc.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert h_nhwc.train_loss == pytest.approx(h_plain.train_loss, rel=1e-4)


@pytest.mark.skipif(not hasattr(torch, "compile"), reason="torch.compile is not available")
def test_compile_flag_on_cpu_trains_and_saves_plain_weights(tmp_path, data):
    model = SmallNet()
    ckpt = tmp_path / "c.pt"
    history = train(
        model,
        data,
        data[:2],
        config(steps=2, compile="eager", checkpoint=str(ckpt)),
        model_config={"kind": "small test net"},
    )
    assert len(history) == 1 and math.isfinite(history.train_loss[0])
    keys = list(load_checkpoint(ckpt)["model"])
    assert keys and not any("_orig_mod" in k for k in keys)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="resume=True needs a checkpoint"):
        TrainConfig(resume=True)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=float("nan"))


def test_pretrained_model_trains_once_then_loads_from_the_cache(tmp_path, monkeypatch):
    from gruunet_edu.training import pretrained, quick

    monkeypatch.setenv("GRUUNET_CACHE", str(tmp_path))
    settings = dict(steps=2, batch_size=2, crop=32, eval_interval=2, device="cpu", verbose=False)
    settings["data_options"] = dict(pool=2, n_val=1, val_size=32)
    first = pretrained.pretrained_model(progress=False, **settings)
    path = pretrained.pretrained_path(**settings)
    assert path.parent == tmp_path and path.is_file() and not first.training
    assert first.history.step == [2]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model should have been loaded")

    monkeypatch.setattr(quick, "quick_train", no_training)
    second = pretrained.pretrained_model(progress=False, **settings)
    for a, b in zip(weights(first), weights(second), strict=True):
        assert torch.equal(a, b)
    assert second.history.step == [2]
    assert pretrained.pretrained_path(**{**settings, "seed": 1}) != path  # keyed by the seed
    assert pretrained.pretrained_path(**{**settings, "lr": 1e-3}) != path  # and the settings
    assert pretrained.pretrained_path(**{**settings, "device": "cuda"}) == path  # not the device

    path.write_bytes(b"damaged")  # a damaged cache file is trained again and replaced
    monkeypatch.undo()
    monkeypatch.setenv("GRUUNET_CACHE", str(tmp_path))
    third = pretrained.pretrained_model(progress=False, **settings)
    assert third.history.step == [2] and path.stat().st_size > 1000


class SignalAfter(InterruptAfter):
    """A dataset that sends this process a signal after `n` items were read (a `kill PID`)."""

    def __init__(self, items, n, signum):
        super().__init__(items, n)
        self.signum = signum

    def __getitem__(self, i):
        self.reads += 1
        if self.reads == self.n + 1:
            os.kill(os.getpid(), self.signum)
        return self.items[i]


def test_sigterm_stops_training_like_ctrl_c_and_keeps_the_checkpoint(tmp_path, data, capsys):
    ckpt = tmp_path / "m.pt"
    before = signal.getsignal(signal.SIGTERM)
    history = train(
        fresh_model(),
        SignalAfter(data, 4, signal.SIGTERM),
        None,
        config(checkpoint=str(ckpt), verbose=True),
    )
    assert history.interrupted and history.step == [2]
    assert load_checkpoint(ckpt)["step"] == 2
    out = capsys.readouterr().out
    assert "terminated (SIGTERM) at step" in out and "holds step 2" in out
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is restored


def test_ctrl_c_while_a_checkpoint_is_written_reports_what_is_on_disk(
    tmp_path, data, capsys, monkeypatch
):
    from gruunet_edu.training import loop

    ckpt = tmp_path / "m.pt"
    real_save = loop.save_checkpoint
    calls = []

    def save_then_interrupt(path, **kwargs):
        calls.append(kwargs["step"])
        if len(calls) == 2:  # Ctrl-C during the second save: the first file stays
            raise KeyboardInterrupt
        return real_save(path, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", save_then_interrupt)
    history = train(fresh_model(), data, None, config(checkpoint=str(ckpt), verbose=True))
    out = capsys.readouterr().out
    assert calls == [2, 4] and load_checkpoint(ckpt)["step"] == 2
    assert f"the checkpoint on disk at {ckpt} holds step 2" in out
    assert history.interrupted and history.step == [2]  # what a resume continues from


def test_resume_without_a_checkpoint_says_so_and_starts_at_step_0(tmp_path, data, capsys):
    ckpt = tmp_path / "missing.pt"
    history = train(
        fresh_model(), data, None, config(checkpoint=str(ckpt), resume=True, verbose=True)
    )
    out = capsys.readouterr().out
    assert f"Nothing to resume: there is no checkpoint at {ckpt}; training from step 0." in out
    assert history.step == [2, 4] and ckpt.is_file()


def test_settings_of_earlier_versions_are_read():
    old = TrainConfig.from_dict({"val_every": 10, "epochs": 3, "lr": 1e-3, "unknown": 1})
    assert old.eval_interval == 10 and old.steps == 30 and old.lr == 1e-3
    assert History.from_dict({"epoch": [1], "step": [5], "train_loss": [0.5]}).step == [5]


def test_notebook_04_caches_the_model_that_notebooks_05_and_06_load(tmp_path, monkeypatch):
    from gruunet_edu.training.pretrained import course_model_path, pretrained_path
    from gruunet_edu.training.recipes import COURSE_DATA, COURSE_TRAINING, course_run, recipe

    monkeypatch.setenv("GRUUNET_CACHE", str(tmp_path))
    monkeypatch.delenv("GRUUNET_PRESET", raising=False)
    preset, settings = course_run("cpu")
    assert (preset, settings) == ("tiny", COURSE_TRAINING)
    path = course_model_path("cpu")
    assert path == pretrained_path("tiny", data_options=COURSE_DATA, **COURSE_TRAINING)
    assert path.parent == tmp_path
    # the run notebook 04 configures (device and checkpoint do not change the cache key)
    config = recipe(preset, device="cpu", checkpoint=str(path), seed=0, **settings)
    assert config.total_steps == COURSE_TRAINING["steps"]
    assert config.eval_interval == COURSE_TRAINING["eval_interval"]


def test_sync_batchnorm_is_plain_batchnorm_outside_a_data_parallel_step():
    from gruunet_edu.training.distributed import SyncBatchNorm2d, convert_sync_batchnorm

    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    synced = convert_sync_batchnorm(build_copy(plain))
    assert isinstance(synced[1], SyncBatchNorm2d)
    assert list(synced.state_dict()) == list(plain.state_dict())  # checkpoints interchangeable
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(synced(x), plain(x))
    torch.testing.assert_close(synced[1].running_mean, plain[1].running_mean)


def build_copy(module):
    import copy

    return copy.deepcopy(module)


def test_synthetic_data_trains_on_the_training_preset_by_default():
    from gruunet_edu.data import SyntheticConfig
    from gruunet_edu.training.quick import synthetic_data

    train_set, val_set = synthetic_data(32, pool=1, n_val=1, val_size=32)
    for dataset in (train_set, val_set):
        assert dataset.config.replace(size=256) == SyntheticConfig.training(size=256)
    own = SyntheticConfig.easy()
    train_set, _ = synthetic_data(32, pool=1, n_val=1, val_size=32, config=own)
    assert train_set.config.replace(size=256) == own.replace(size=256)
