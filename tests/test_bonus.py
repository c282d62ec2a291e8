"""Bonus exercises: the reference passes, typical mistakes get specific messages, none raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.exercises import bonus
from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.dense import DenseBlock
from gruunet_edu.models.gruunet import GRUUNet

EXERCISES = {
    "touching_pairs": (bonus.touching_pairs_exercise, bonus.reference_touching_pairs),
    "gru_1x1": (bonus.gru_1x1_exercise, bonus.reference_gru_1x1),
    "dense_parameters": (bonus.dense_parameters_exercise, bonus.reference_dense_parameters),
    "o_shapes": (bonus.o_shapes_exercise, bonus.reference_o_shapes),
    "class_weights": (bonus.class_weights_exercise, bonus.reference_class_weights),
    "half_nucleus": (bonus.half_nucleus_exercise, bonus.reference_half_nucleus),
    "state_change": (bonus.state_change_exercise, bonus.reference_state_change),
}


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_passes(name):
    exercise, reference = EXERCISES[name]
    result = exercise.evaluate(reference)
    assert result.passed, result.message
    assert result.title.startswith("Bonus")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_unfinished_and_crashing_code_is_reported_not_raised(name, capsys):
    exercise, _ = EXERCISES[name]

    def unfinished(*args, **kwargs):
        raise NotImplementedError("Student exercise: write your code here")

    def crashing(*args, **kwargs):
        return [][1]

    assert exercise.evaluate(unfinished).status == "unfinished"
    result = exercise.evaluate(crashing)
    assert result.status == "error" and "IndexError" in result.message
    exercise.check(unfinished)  # prints, never raises
    assert exercise.title in capsys.readouterr().out


def _message(exercise, student) -> str:
    result = exercise.evaluate(student)
    assert not result.passed
    return result.message


def test_touching_pairs_mistakes():
    ex = bonus.touching_pairs_exercise

    def eight_neighbours(labels):
        pairs = bonus.reference_touching_pairs(labels)
        a, b = labels[:-1, :-1], labels[1:, 1:]
        both = (a != b) & (a > 0) & (b > 0)
        pairs |= {(min(u, v), max(u, v)) for u, v in zip(a[both], b[both], strict=True)}
        return pairs

    assert "4-neighbours" in _message(ex, eight_neighbours)
    assert "smaller label first" in _message(
        ex, lambda labels: {(b, a) for a, b in bonus.reference_touching_pairs(labels)}
    )
    assert "background" in _message(
        ex, lambda labels: bonus.reference_touching_pairs(labels) | {(0, 1)}
    )
    assert "set of pairs" in _message(ex, lambda labels: 3)
    # the reference on a label image with a gap in the labels
    labels = np.zeros((3, 6), np.uint16)
    labels[:, :3], labels[:, 3:] = 4, 11
    assert bonus.reference_touching_pairs(labels) == {(4, 11)}


def _cho_convention(x, h, gru):
    c = gru.hidden_size
    gi = F.conv2d(x, gru.weight_ih[:, :, None, None], gru.bias_ih)
    gh = F.conv2d(h, gru.weight_hh[:, :, None, None], gru.bias_hh)
    r = torch.sigmoid(gi[:, :c] + gh[:, :c])
    z = torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c])
    n = torch.tanh(gi[:, 2 * c :] + r * gh[:, 2 * c :])
    return n, z, h


def test_gru_1x1_matches_grucell_and_names_mistakes():
    torch.manual_seed(0)
    gru = nn.GRUCell(3, 5)
    x, h = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4)
    with torch.no_grad():
        ours = bonus.reference_gru_1x1(x, h, gru)
        theirs = gru(x.permute(0, 2, 3, 1).reshape(-1, 3), h.permute(0, 2, 3, 1).reshape(-1, 5))
    torch.testing.assert_close(ours, theirs.reshape(2, 4, 4, 5).permute(0, 3, 1, 2))

    ex = bonus.gru_1x1_exercise

    def swapped(x, h, gru):
        n, z, h = _cho_convention(x, h, gru)
        return z * n + (1 - z) * h

    def wrong_order(x, h, gru):
        c = gru.hidden_size
        gi = F.conv2d(x, gru.weight_ih[:, :, None, None], gru.bias_ih)
        gh = F.conv2d(h, gru.weight_hh[:, :, None, None], gru.bias_hh)
        z = torch.sigmoid(gi[:, :c] + gh[:, :c])
        r = torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c])
        n = torch.tanh(gi[:, 2 * c :] + r * gh[:, 2 * c :])
        return (1 - z) * n + z * h

    def reset_before(x, h, gru):
        c = gru.hidden_size
        gi = F.conv2d(x, gru.weight_ih[:, :, None, None], gru.bias_ih)
        gh = F.conv2d(h, gru.weight_hh[:, :, None, None], gru.bias_hh)
        r = torch.sigmoid(gi[:, :c] + gh[:, :c])
        z = torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c])
        w_hn = gru.weight_hh[2 * c :, :, None, None]
        n = torch.tanh(gi[:, 2 * c :] + F.conv2d(r * h, w_hn, gru.bias_hh[2 * c :]))
        return (1 - z) * n + z * h

    assert "z and 1 - z are swapped" in _message(ex, swapped)
    assert "stacked r, z, n" in _message(ex, wrong_order)
    assert "reset after the state convolution" in _message(ex, reset_before)
    assert "shape" in _message(ex, lambda x, h, gru: h[:, :1])
    assert "differs from torch.nn.GRUCell" in _message(ex, lambda x, h, gru: h * 0.5)


def test_dense_parameters_formula_and_mistakes():
    for args in ((8, 8, 1, 4, 2), (32, 24, 3, 16, 4)):
        block = DenseBlock(*args)
        assert bonus.reference_dense_parameters(*args) == sum(p.numel() for p in block.parameters())
    ex = bonus.dense_parameters_exercise

    def convs_only(c_in, c_out, k, g, b):
        block = DenseBlock(c_in, c_out, k, g, b)
        return sum(m.weight.numel() for m in block.modules() if isinstance(m, nn.Conv2d))

    assert "BatchNorm2d" in _message(ex, convs_only)
    assert "whole number" in _message(ex, lambda *args: "many")
    assert "the block has" in _message(ex, lambda *args: 1)


def test_o_shapes_agree_with_the_model():
    config = GRUUNetConfig.preset("tiny", hidden_channels=4)
    model = GRUUNet(config).eval()
    with torch.no_grad():
        _, states = model(torch.rand(1, 1, 44, 60), return_states=True)
    assert bonus.reference_o_shapes(config, 44, 60) == [tuple(s.o.shape[1:]) for s in states]
    ex = bonus.o_shapes_exercise

    def floor(c, h, w):
        return [(ch, h // f, w // f) for ch, f in zip(c.widths, c.frdu_factors, strict=True)]

    assert "round up" in _message(ex, floor)
    assert "channels, expected" in _message(
        ex, lambda c, h, w: [(c.hidden_channels, -(-h // f), -(-w // f)) for f in c.frdu_factors]
    )
    assert "one per FRDU step" in _message(
        ex, lambda c, h, w: bonus.reference_o_shapes(c, h, w)[: c.num_scales]
    )


def test_class_weights_mistakes():
    targets = np.array([[0, 0, 0, 1], [0, 0, 1, 2]], np.uint8)  # 5, 2, 1 pixels of 8
    np.testing.assert_allclose(bonus.reference_class_weights(targets), [8 / 15, 8 / 6, 8 / 3])
    ex = bonus.class_weights_exercise

    def normalised(t, k=3):
        w = bonus.reference_class_weights(t, k)
        return w / w.sum()

    def infinite(t, k=3):
        counts = np.bincount(t.ravel(), minlength=k)
        with np.errstate(divide="ignore"):
            return t.size / (k * counts)

    assert "scale" in _message(ex, normalised)
    assert "weight 0" in _message(ex, infinite)
    assert "shape (3,)" in _message(ex, lambda t, k=3: np.ones(2))


def test_half_nucleus_is_where_seg_and_ap50_disagree():
    from gruunet_edu.evaluation.metrics import evaluate_instances

    labels = np.zeros((10, 10), np.uint16)
    labels[2:6, 2:8] = 7  # 24 pixels: half is IoU exactly 0.5
    pred = bonus.reference_half_nucleus(labels, 7)
    assert int(pred.sum()) == 12 and not (pred.astype(bool) & (labels == 0)).any()
    metrics = evaluate_instances(labels, pred)
    assert metrics["ap50"] == 1.0  # matched at IoU >= 0.5
    assert metrics["seg"] == 0.0  # SEG needs more than half of the nucleus covered
    with pytest.raises(ValueError, match="no nucleus with label 3"):
        bonus.reference_half_nucleus(labels, 3)
    ex = bonus.half_nucleus_exercise
    assert "has 1 pixels" not in _message(ex, lambda lab, k: (lab == k).astype(int))
    assert "half of the nucleus" in _message(ex, lambda lab, k: (lab == k).astype(int))
    assert "outside nucleus" in _message(
        ex, lambda lab, k: np.roll(bonus.reference_half_nucleus(lab, k), 3, axis=1)
    )
    assert "exactly one object" in _message(ex, lambda lab, k: np.zeros_like(lab))


def test_state_change_mistakes():
    class Step:
        def __init__(self, h):
            self.h = h

    states = [Step(torch.full((1, 2, 3, 3), float(v))) for v in (0, 1, 3, 3)]
    np.testing.assert_allclose(bonus.reference_state_change(states), [1, 2, 0])
    ex = bonus.state_change_exercise

    def signed(states):
        return np.array(
            [float((b.h - a.h).mean()) for a, b in zip(states[:-1], states[1:], strict=True)]
        )

    assert "absolute value" in _message(ex, signed)
    assert "shape" in _message(ex, lambda states: np.zeros(len(states)))
    assert "must be 0" in _message(
        ex, lambda states: np.array([float(s.h.abs().mean()) for s in states[1:]])
    )
