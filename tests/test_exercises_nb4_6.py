"""Checks of notebooks 04-06: the reference passes, each usual mistake gets its own message, and a
student's exception is reported in one sentence instead of being raised."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gruunet_edu.exercises import REGISTRY, use_student_or_reference
from gruunet_edu.exercises import nb4_training as nb4
from gruunet_edu.exercises import nb5_evaluation as nb5
from gruunet_edu.exercises import nb6_hidden_states as nb6
from gruunet_edu.training.losses import focal_loss, soft_dice_loss


def _failed(exercise, student, *fragments: str) -> str:
    result = exercise.evaluate(student)
    assert not result.passed and result.status == "failed", result.text()
    for fragment in fragments:
        assert fragment in result.message, result.message
    assert "\n" not in result.message
    return result.message


# ------------------------------------------------------------------------------ 04 soft Dice
def _onehot(target, k):
    return F.one_hot(target, k).permute(0, 3, 1, 2).float()


def _dice(probs=lambda x: torch.softmax(x, 1), dims=(0, 2, 3), num=True, den=True, out=None):
    def soft_dice_loss(logits, target, smooth=1.0):
        p, g = probs(logits), _onehot(target, logits.shape[1])
        dice = (2 * (p * g).sum(dims) + (smooth if num else 0.0)) / (
            p.sum(dims) + g.sum(dims) + (smooth if den else 0.0)
        )
        return out(dice) if out else 1 - dice.mean()

    return soft_dice_loss


def test_soft_dice_reference_passes():
    result = nb4.soft_dice_exercise.evaluate(soft_dice_loss)
    assert result.passed and result.checks > 0
    assert result.text().startswith("Soft Dice loss: All checks passed.")


@pytest.mark.parametrize(
    ("student", "fragments"),
    [
        (_dice(probs=lambda x: x), ("softmax is missing",)),
        (_dice(probs=torch.sigmoid), ("sigmoid",)),
        (_dice(probs=lambda x: torch.softmax(x, 3)), ("wrong class axis", "dim=3")),
        (_dice(probs=lambda x: torch.softmax(x, 0)), ("wrong class axis", "dim=0")),
        (_dice(num=False, den=False), ("smoothing is missing",)),
        (_dice(den=False), ("only in the numerator",)),
        (_dice(num=False), ("only in the denominator",)),
        (_dice(out=lambda d: 1 - d), ("wrong reduction", "one value per class")),
        (_dice(dims=(2, 3)), ("wrong reduction", "one Dice per image")),
        (_dice(out=lambda d: d.mean()), ("Dice coefficient itself",)),
        (_dice(out=lambda d: 1 - d[1:].mean()), ("background",)),
    ],
)
def test_soft_dice_mistakes(student, fragments):
    _failed(nb4.soft_dice_exercise, student, *fragments)


def test_soft_dice_without_gradient_is_rejected():
    def soft_dice_loss_detached(logits, target, smooth=1.0):
        return soft_dice_loss(logits.detach(), target, smooth)

    _failed(nb4.soft_dice_exercise, soft_dice_loss_detached, "no gradient")


def test_soft_dice_student_exception_is_reported():
    def soft_dice_loss_broken(logits, target, smooth=1.0):
        return (torch.softmax(logits, 1) * target).sum()  # shapes do not broadcast

    result = nb4.soft_dice_exercise.evaluate(soft_dice_loss_broken)
    assert result.status == "error" and not result.passed
    assert "RuntimeError" in result.message and "\n" not in result.message
    assert "(torch.softmax(logits, 1) * target).sum()" in result.message


def test_unfinished_soft_dice_falls_back_to_the_reference(capsys):
    def student(logits, target, smooth=1.0):
        raise NotImplementedError("Student exercise: write your code here")

    result = nb4.soft_dice_exercise.evaluate(student)
    assert result.status == "unfinished"
    assert use_student_or_reference(student, soft_dice_loss) is soft_dice_loss
    assert "Using the reference" in capsys.readouterr().out


# ------------------------------------------------------------------------------ 04 focal loss
def _focal(factor=lambda pt, g: (1 - pt) ** g, reduce=torch.mean, dim=1, sign=-1.0):
    def focal_loss(logits, target, gamma=2.0):
        log_pt = torch.log_softmax(logits, dim).gather(1, target[:, None]).squeeze(1)
        return reduce(sign * factor(log_pt.exp(), gamma) * log_pt)

    return focal_loss


def test_focal_reference_passes():
    assert nb4.focal_exercise.evaluate(focal_loss).passed


@pytest.mark.parametrize(
    ("student", "fragments"),
    [
        (_focal(factor=lambda pt, g: 1.0), ("plain cross-entropy",)),
        (_focal(factor=lambda pt, g: pt**g), ("p_t ** gamma",)),
        (_focal(factor=lambda pt, g: (1 - pt) * g), ("multiply by gamma",)),
        (_focal(sign=1.0), ("sign is flipped",)),
        (_focal(reduce=torch.sum), ("wrong reduction", "sum")),
        (_focal(reduce=lambda x: x), ("wrong reduction", "per pixel")),
        (_focal(dim=2), ("wrong class axis", "dim=2")),
    ],
)
def test_focal_mistakes(student, fragments):
    _failed(nb4.focal_exercise, student, *fragments)


def test_focal_must_return_a_tensor():
    _failed(
        nb4.focal_exercise,
        lambda logits, target, gamma=2.0: float(focal_loss(logits, target, gamma)),
        "expected a tensor",
    )


@pytest.mark.parametrize(
    ("exercise", "reference", "setting"),
    [
        (nb4.soft_dice_exercise, soft_dice_loss, "smooth"),
        (nb4.focal_exercise, focal_loss, "gamma"),
    ],
)
def test_loss_off_by_a_factor_names_both_values(exercise, reference, setting):
    """A mistake no variant reproduces gets the fallback message with both values."""

    def student(logits, target, **kwargs):
        return 1.1 * reference(logits, target, **kwargs)

    message = _failed(exercise, student, "the reference gives", "compare your formula")
    assert f"{setting}=" in message
    if setting == "gamma":  # the first setting is gamma=2.0, not the gamma=0 special case
        assert "gamma=2.0" in message


# ------------------------------------------------------------------------------ 05 IoU matrix
def _ids(labels):
    ids = np.unique(labels)
    return ids[ids != 0]


def _iou(gt, pred, kind="iou", ids=_ids):
    g_ids, p_ids = ids(gt), ids(pred)
    out = np.zeros((len(g_ids), len(p_ids)))
    for i, a in enumerate(g_ids):
        for j, b in enumerate(p_ids):
            inter = np.logical_and(gt == a, pred == b).sum()
            sa, sb = (gt == a).sum(), (pred == b).sum()
            out[i, j] = 2 * inter / (sa + sb) if kind == "dice" else inter / (sa + sb - inter or 1)
    return out


def test_instance_iou_reference_and_loop_pass():
    assert nb5.iou_exercise.evaluate(nb5.reference_instance_iou).passed
    assert nb5.iou_exercise.evaluate(_iou).passed


@pytest.mark.parametrize(
    ("student", "fragments"),
    [
        (lambda g, p: _iou(g, p, ids=np.unique), ("background",)),
        (lambda g, p: _iou(p, g), ("transposed",)),
        (lambda g, p: _iou(g, p, kind="dice"), ("Dice values",)),
        (
            lambda g, p: _iou(g, p, ids=lambda x: np.arange(1, x.max() + 1)),
            ("not consecutive", "np.unique"),
        ),
        (lambda g, p: "matrix", ("return a NumPy array",)),
    ],
)
def test_instance_iou_mistakes(student, fragments):
    _failed(nb5.iou_exercise, student, *fragments)


def test_instance_iou_student_exception_is_reported():
    result = nb5.iou_exercise.evaluate(lambda g, p: g / 0 + p.missing)
    assert result.status == "error" and "AttributeError" in result.message


# ------------------------------------------------------------------------------ 05 matching
def _counts(iou, tau, strict=False, swap=False):
    tp = int((iou > tau).sum() if strict else (iou >= tau).sum())
    fp, fn = iou.shape[1] - tp, iou.shape[0] - tp
    return (tp, fn, fp) if swap else (tp, fp, fn)


def test_match_counts_reference_passes_and_agrees_with_the_package():
    assert nb5.match_exercise.evaluate(nb5.reference_match_counts).passed
    gt = np.zeros((10, 10), np.uint16)
    gt[1:4, 1:4], gt[6:9, 6:9] = 1, 2
    pred = np.zeros_like(gt)
    pred[1:4, 1:5], pred[0:2, 7:10] = 5, 7
    iou = nb5.reference_instance_iou(gt, pred)
    assert nb5.reference_match_counts(iou, 0.5) == nb5.match_counts_of_labels(gt, pred, 0.5)


def test_a_tie_at_tau_is_one_match_and_no_count_is_negative():
    """A 2-pixel nucleus predicted as two 1-pixel objects: IoU exactly 0.5 with both."""
    gt = np.zeros((1, 4), np.uint16)
    gt[0, 1:3] = 1
    pred = np.zeros_like(gt)
    pred[0, 1], pred[0, 2] = 1, 2
    iou = nb5.reference_instance_iou(gt, pred)
    np.testing.assert_allclose(iou, [[0.5, 0.5]])
    assert nb5.reference_match_counts(iou, 0.5) == (1, 1, 0)
    assert nb5.match_counts_of_labels(gt, pred, 0.5) == (1, 1, 0)
    # counting every entry >= tau gives FN = -1: rejected, naming the tie
    _failed(nb5.match_exercise, _counts, "tie", "matched at most once")


@pytest.mark.parametrize(
    ("student", "fragments"),
    [
        (lambda iou, tau: _counts(iou, tau, strict=True), ("exactly equal to tau", ">=")),
        (lambda iou, tau: _counts(iou, tau, swap=True), ("FP and FN are swapped",)),
        (lambda iou, tau: _counts(iou, tau)[:2], ("three numbers",)),
        (lambda iou, tau: 3, ("three integers",)),
    ],
)
def test_match_counts_mistakes(student, fragments):
    _failed(nb5.match_exercise, student, *fragments)


# ------------------------------------------------------------------------------ 06 read-out
def _readout(transform=lambda logits: torch.softmax(logits, 1)[0], source=lambda s: s.h):
    def readout_per_step(model, states):
        model.eval()
        with torch.no_grad():
            return [transform(model.readout(source(s))).numpy() for s in states]

    return readout_per_step


def test_readout_reference_passes():
    assert nb6.readout_exercise.evaluate(nb6.reference_readout_per_step).passed
    assert nb6.readout_exercise.evaluate(_readout()).passed


@pytest.mark.parametrize(
    ("student", "fragments"),
    [
        (_readout(lambda x: x[0]), ("logits", "softmax")),
        (_readout(lambda x: torch.softmax(x, 2)[0]), ("wrong class axis", "dim=2")),
        (_readout(lambda x: torch.softmax(x, 1)), ("batch dimension",)),
        (_readout(lambda x: torch.softmax(x, 1)[0].argmax(0)), ("most likely class",)),
    ],
)
def test_readout_mistakes(student, fragments):
    _failed(nb6.readout_exercise, student, *fragments)


def test_readout_of_the_final_state_only_is_rejected():
    def readout_per_step(model, states):
        with torch.no_grad():
            final = torch.softmax(model.readout(states[-1].h), 1)[0].numpy()
        return [final for _ in states]

    _failed(nb6.readout_exercise, readout_per_step, "final prediction")


def test_readout_in_training_mode_is_rejected():
    def readout_per_step(model, states):
        probs = _readout()(model, states)  # right values, read in eval mode
        model.train()  # ...but the notebook's model is left in training mode
        return probs

    _failed(nb6.readout_exercise, readout_per_step, "training mode")


def test_readout_of_the_pooling_stream_is_one_sentence():
    result = nb6.readout_exercise.evaluate(_readout(source=lambda s: s.o))
    assert result.status == "error"
    assert "states[t].o" in result.message and "\n" not in result.message


# ------------------------------------------------------------------------------ 06 gate means
def _gates(reduce=lambda g: g.mean().item(), pick=lambda s, which: getattr(s, which)):
    def gate_means(states, which="z"):
        return np.array([reduce(pick(s, which)) for s in states])

    return gate_means


def test_gate_means_reference_passes():
    assert nb6.gate_exercise.evaluate(nb6.reference_gate_means).passed
    assert nb6.gate_exercise.evaluate(_gates()).passed


@pytest.mark.parametrize(
    ("student", "fragments"),
    [
        (_gates(reduce=lambda g: g.mean(dim=(0, 2, 3)).numpy()), ("one value per channel",)),
        (_gates(pick=lambda s, which: s.z), ("other gate",)),
        (_gates(reduce=lambda g: 1 - g.mean().item()), ("1 - z_t",)),
        (_gates(pick=lambda s, which: s.h), ("state h_t",)),
        (lambda states, which="z": 0.5, ("single number",)),
    ],
)
def test_gate_means_mistakes(student, fragments):
    _failed(nb6.gate_exercise, student, *fragments)


# ------------------------------------------------------------------------------ hints
@pytest.mark.parametrize(
    "name",
    ["soft_dice", "focal_loss", "instance_iou", "match_counts", "readout_per_step", "gate_means"],
)
def test_hints_are_progressive(name):
    exercise = REGISTRY[name]
    exercise.hints_shown = 0
    first, second = exercise.hint(), exercise.hint()
    assert "hint 1/" in first and "hint 2/" in second and first != second
    assert len(exercise.hints) >= 3
    exercise.hints_shown = 0


# ------------------------------------------------------------------------------ all six
@pytest.mark.parametrize(
    "name",
    ["soft_dice", "focal_loss", "instance_iou", "match_counts", "readout_per_step", "gate_means"],
)
def test_unfinished_and_crashing_answers_are_one_sentence(name):
    def unfinished(*args, **kwargs):
        raise NotImplementedError("Student exercise: write your code here")

    def crashing(*args, **kwargs):
        return [1, 2][5]

    exercise = REGISTRY[name]
    assert exercise.evaluate(unfinished).status == "unfinished"
    result = exercise.evaluate(crashing)
    assert result.status == "error" and "IndexError" in result.message
    assert "[1, 2][5]" in result.message and "\n" not in result.message


def test_public_match_pairs_each_object_once():
    from gruunet_edu.evaluation.metrics import match

    rows, cols = match(np.array([[0.5, 0.5], [0.0, 0.2]]), 0.5)
    assert rows.tolist() == [0] and len(cols) == 1
    rows, cols = match(np.zeros((0, 3)), 0.5)
    assert rows.size == 0 and cols.size == 0
    with pytest.raises(ValueError, match="n_true, n_pred"):
        match(np.zeros(3), 0.5)
