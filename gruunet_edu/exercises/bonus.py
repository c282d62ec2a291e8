"""Optional bonus exercises, one per notebook, each with its own check.

A bonus never blocks a notebook: nothing later depends on it, and its check prints what is wrong
(or "not done yet") like every other check. In a notebook::

    from gruunet_edu.exercises.bonus import check_touching_pairs
    check_touching_pairs(student_touching_pairs)

Bonuses: ``touching_pairs`` (00, which nuclei touch), ``gru_1x1`` (01, a 1x1-kernel ConvGRU equals
``torch.nn.GRUCell`` with copied weights), ``dense_parameters`` (02, the parameter count of a
dense block), ``o_shapes`` (03, the shape of the pooling stream at every step), ``class_weights``
(04, inverse-frequency class weights), ``half_nucleus`` (05, SEG and AP50 disagree on a prediction
covering half a nucleus), ``state_change`` (06, how far each FRDU step moves the state).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.exercises.core import Exercise, Mismatch, call, close, expect, seeded
from gruunet_edu.models.config import GRUUNetConfig
from gruunet_edu.models.dense import DenseBlock

__all__ = [
    "check_class_weights",
    "check_dense_parameters",
    "check_gru_1x1",
    "check_half_nucleus",
    "check_o_shapes",
    "check_state_change",
    "check_touching_pairs",
    "reference_class_weights",
    "reference_dense_parameters",
    "reference_gru_1x1",
    "reference_half_nucleus",
    "reference_o_shapes",
    "reference_state_change",
    "reference_touching_pairs",
]


def _solutions(name: str) -> str:
    return f"solutions/{name}.ipynb"


# --------------------------------------------------------------------------- 00: touching nuclei
def reference_touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (a, b), a < b, of nuclei with 4-neighbouring pixels (corners meeting do not touch)."""
    labels = np.asarray(labels)
    pairs: set[tuple[int, int]] = set()
    for a, b in ((labels[:-1, :], labels[1:, :]), (labels[:, :-1], labels[:, 1:])):
        both = (a != b) & (a > 0) & (b > 0)  # two different nuclei side by side
        for u, v in zip(a[both].tolist(), b[both].tolist(), strict=True):
            pairs.add((min(u, v), max(u, v)))
    return pairs


def _touching_cases() -> list[tuple[str, np.ndarray]]:
    side = np.zeros((6, 8), np.uint16)
    side[1:4, 1:4], side[1:4, 4:7] = 1, 2  # side by side
    above = np.zeros((7, 5), np.uint16)
    above[0:3, 1:4], above[3:6, 1:4] = 5, 9  # one above the other, labels not consecutive
    diagonal = np.zeros((6, 6), np.uint16)
    diagonal[0:2, 0:2], diagonal[2:4, 2:4] = 1, 2  # corners meet: not 4-neighbours
    apart = np.zeros((6, 9), np.uint16)
    apart[1:4, 1:3], apart[1:4, 5:8] = 1, 2
    chain = np.zeros((4, 9), np.uint16)
    chain[:, 0:3], chain[:, 3:6], chain[:, 6:9] = 3, 1, 2  # 3-1 and 1-2 touch, 3-2 do not
    return [
        ("two nuclei side by side", side),
        ("one nucleus above another (labels 5 and 9)", above),
        ("two nuclei whose corners meet diagonally", diagonal),
        ("two nuclei apart", apart),
        ("three nuclei in a row", chain),
    ]


def _check_touching_pairs(student: Any) -> int:
    for what, labels in _touching_cases():
        original = labels.copy()
        got = call(student, labels, what="your function")
        expect(np.array_equal(labels, original), "your function changed the label image in place")
        try:
            got = {tuple(int(v) for v in pair) for pair in got}
        except TypeError:
            raise Mismatch(
                f"return a set of pairs (a, b) of labels, got {type(got).__name__}"
            ) from None
        expected = reference_touching_pairs(labels)
        if any(a > b for a, b in got):
            raise Mismatch(f"{what}: write each pair with the smaller label first, (a, b), a < b")
        if any(0 in pair for pair in got):
            raise Mismatch(f"{what}: the background (label 0) is not a nucleus; leave it out")
        if got != expected:
            extra, missing = sorted(got - expected), sorted(expected - got)
            detail = f"{extra} should not be there" if extra else f"{missing} is missing"
            if what.startswith("two nuclei whose corners"):
                detail += " (only 4-neighbours touch: up, down, left, right)"
            raise Mismatch(f"{what}: you found {sorted(got)}; {detail}")
    return len(_touching_cases())


touching_pairs_exercise = Exercise(
    name="touching_pairs",
    title="Bonus: touching nuclei",
    checker=_check_touching_pairs,
    reference=reference_touching_pairs,
    hints=(
        "Compare every pixel with its neighbour below (labels[:-1, :] vs labels[1:, :]) and "
        "with its neighbour to the right (labels[:, :-1] vs labels[:, 1:]).",
        "A touching pair is where both are > 0 and differ; collect (min, max) of the two labels "
        "in a set.",
    ),
    solution_notebook=_solutions("00_setup_and_data"),
)
check_touching_pairs = touching_pairs_exercise.check


# --------------------------------------------------------------------------- 01: GRUCell as 1x1
def reference_gru_1x1(x: torch.Tensor, h: torch.Tensor, gru: nn.GRUCell) -> torch.Tensor:
    """``torch.nn.GRUCell`` at every pixel, written as 1x1 convolutions (its convention).

    PyTorch's GRUCell (Cho et al. 2014's convention, gates stacked r, z, n):
        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r . (W_hn h + b_hn)),  h' = (1 - z) . n + z . h
    so its z is this course's 1 - z, its reset acts after the state convolution, and its
    candidate uses tanh. x (B, C_x, H, W), h (B, C, H, W) -> h' (B, C, H, W).
    """
    c = gru.hidden_size
    w_i = gru.weight_ih[:, :, None, None]  # (3C, C_x, 1, 1)
    w_h = gru.weight_hh[:, :, None, None]  # (3C, C, 1, 1)
    gi = F.conv2d(x, w_i, gru.bias_ih)  # (B, 3C, H, W): [r | z | n] input terms
    gh = F.conv2d(h, w_h, gru.bias_hh)  # (B, 3C, H, W): [r | z | n] state terms
    r = torch.sigmoid(gi[:, :c] + gh[:, :c])
    z = torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c])
    n = torch.tanh(gi[:, 2 * c :] + r * gh[:, 2 * c :])
    return (1 - z) * n + z * h


def _per_pixel_gru(x: torch.Tensor, h: torch.Tensor, gru: nn.GRUCell) -> torch.Tensor:
    b, cx, hh, ww = x.shape
    xs = x.permute(0, 2, 3, 1).reshape(-1, cx)
    hs = h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])
    return gru(xs, hs).reshape(b, hh, ww, -1).permute(0, 3, 1, 2)


def _gru_variants(x, h, gru) -> dict[str, torch.Tensor]:
    """Typical mistakes, to name the one a student made."""
    c = gru.hidden_size
    gi = F.conv2d(x, gru.weight_ih[:, :, None, None], gru.bias_ih)
    gh = F.conv2d(h, gru.weight_hh[:, :, None, None], gru.bias_hh)
    r = torch.sigmoid(gi[:, :c] + gh[:, :c])
    z = torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c])
    n = torch.tanh(gi[:, 2 * c :] + r * gh[:, 2 * c :])
    z_sw, r_sw = (
        torch.sigmoid(gi[:, :c] + gh[:, :c]),
        torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c]),
    )
    n_sw = torch.tanh(gi[:, 2 * c :] + r_sw * gh[:, 2 * c :])
    w_hn = gru.weight_hh[2 * c :, :, None, None]
    n_before = torch.tanh(gi[:, 2 * c :] + F.conv2d(r * h, w_hn, gru.bias_hh[2 * c :]))
    return {
        "z and 1 - z are swapped: in PyTorch's convention z keeps the old state, "
        "h' = (1 - z) * n + z * h (the course's z is PyTorch's 1 - z)": z * n + (1 - z) * h,
        "the gates are stacked r, z, n in weight_ih and weight_hh (you took z first)": (1 - z_sw)
        * n_sw
        + z_sw * h,
        "GRUCell applies the reset after the state convolution, n = tanh(W_in x + b_in + r * "
        "(W_hn h + b_hn)); you reset h before it (that is the course's ConvGRU)": (1 - z) * n_before
        + z * h,
    }


def _check_gru_1x1(student: Any) -> int:
    checks = 0
    for cx, c, size in ((3, 4, (5, 6)), (1, 2, (3, 3))):
        with seeded(cx * 10 + c):
            gru = nn.GRUCell(cx, c)
            x = torch.randn(2, cx, *size)
            h = torch.randn(2, c, *size)
        with torch.no_grad():
            expected = _per_pixel_gru(x, h, gru)
            got = call(student, x, h, gru, what="your function")
        expect(isinstance(got, torch.Tensor), f"return a tensor, got {type(got).__name__}")
        expect(
            tuple(got.shape) == tuple(h.shape),
            f"the new state has shape {tuple(got.shape)}, expected {tuple(h.shape)} (like h)",
        )
        if not close(got, expected):
            with torch.no_grad():
                for message, variant in _gru_variants(x, h, gru).items():
                    if close(got, variant):
                        raise Mismatch(message)
            raise Mismatch(
                "your result differs from torch.nn.GRUCell applied at every pixel; check the "
                "gate order (r, z, n), the biases b_ih and b_hh, and tanh for the candidate"
            )
        checks += 1
    return checks


gru_1x1_exercise = Exercise(
    name="gru_1x1",
    title="Bonus: a 1x1 ConvGRU is torch.nn.GRUCell",
    checker=_check_gru_1x1,
    reference=reference_gru_1x1,
    hints=(
        "gru.weight_ih is (3C, C_x): reshape it to a 1x1 kernel with [:, :, None, None] and use "
        "F.conv2d(x, kernel, gru.bias_ih); the same for weight_hh, bias_hh and h.",
        "The 3C output channels are stacked r, z, n: slice [:, :C], [:, C:2C], [:, 2C:].",
        "n = tanh(gi_n + r * gh_n), then h' = (1 - z) * n + z * h (PyTorch's convention).",
    ),
    solution_notebook=_solutions("01_convgru"),
)
check_gru_1x1 = gru_1x1_exercise.check


# --------------------------------------------------------------------------- 02: dense block size
def reference_dense_parameters(
    in_features: int, out_features: int, num_layers: int, growth_rate: int, bn_size: int
) -> int:
    """Parameters of :class:`~gruunet_edu.models.dense.DenseBlock` (bias-free convolutions).

    layer l (input c_l = in + l*g):  BN(c_l) + 1x1 c_l -> b*g + BN(b*g) + 3x3 b*g -> g
    transition (input in + k*g):     BN + 1x1 -> out, then BN(out)
    (a k x k convolution from a to b channels: k*k*a*b; a BatchNorm over c channels: 2c)
    """
    total = 0
    for layer in range(num_layers):
        c = in_features + layer * growth_rate
        inner = bn_size * growth_rate
        total += 2 * c + c * inner + 2 * inner + 9 * inner * growth_rate
    c = in_features + num_layers * growth_rate
    return total + 2 * c + c * out_features + 2 * out_features


def _param_count(module: nn.Module, kind: type | None = None) -> int:
    return sum(
        p.numel()
        for m in module.modules()
        if kind is None or isinstance(m, kind)
        for p in m.parameters(recurse=False)
    )


def _check_dense_parameters(student: Any) -> int:
    cases = ((16, 16, 1, 8, 2), (64, 64, 3, 32, 2), (160, 128, 2, 12, 4), (512, 512, 3, 32, 2))
    for args in cases:
        block = DenseBlock(*args)
        expected = _param_count(block)
        got = call(student, *args, what="your function")
        try:
            got = int(got)
        except (TypeError, ValueError):
            raise Mismatch(f"return a whole number, got {type(got).__name__}") from None
        if got == expected:
            continue
        what = "in={}, out={}, k={}, g={}, b={}".format(*args)
        if got == expected - _param_count(block, nn.BatchNorm2d):
            raise Mismatch(
                f"{what}: you counted only the convolutions ({got}); every BatchNorm2d over c "
                "channels adds 2c parameters (weight and bias)"
            )
        raise Mismatch(f"{what}: you count {got} parameters, the block has {expected}")
    return len(cases)


dense_parameters_exercise = Exercise(
    name="dense_parameters",
    title="Bonus: the size of a dense block",
    checker=_check_dense_parameters,
    reference=reference_dense_parameters,
    hints=(
        "Layer l reads in_features + l * growth_rate channels; its 1x1 has bn_size * growth_rate "
        "outputs, its 3x3 growth_rate outputs; no conv has a bias.",
        "A k x k convolution from a to b channels without bias has k * k * a * b parameters; a "
        "BatchNorm2d over c channels has 2c.",
    ),
    solution_notebook=_solutions("02_dense_block_and_frdu"),
)
check_dense_parameters = dense_parameters_exercise.check


# --------------------------------------------------------------------------- 03: shapes of o
def reference_o_shapes(
    config: GRUUNetConfig, height: int, width: int
) -> list[tuple[int, int, int]]:
    """(C_t, ceil(H / f_t), ceil(W / f_t)) of the pooling stream o_t for t = 1 ... 2S-1."""
    return [
        (c, -(-height // f), -(-width // f))
        for c, f in zip(config.widths, config.frdu_factors, strict=True)
    ]


def _check_o_shapes(student: Any) -> int:
    cases = (
        (GRUUNetConfig.preset("tiny"), 64, 96),
        (GRUUNetConfig.preset("paper"), 256, 256),
        (GRUUNetConfig.preset("tiny"), 100, 60),
    )
    for config, height, width in cases:
        expected = reference_o_shapes(config, height, width)
        got = call(student, config, height, width, what="your function")
        try:
            got = [tuple(int(v) for v in shape) for shape in got]
        except TypeError:
            raise Mismatch(f"return a list of (C, h, w) tuples, got {type(got).__name__}") from None
        what = f"{height}x{width} input"
        expect(
            len(got) == len(expected),
            f"{what}: {len(got)} shapes, expected one per FRDU step t = 1 ... {len(expected)}",
        )
        for t, (g, e) in enumerate(zip(got, expected, strict=True), start=1):
            if g == e:
                continue
            if g[0] != e[0]:
                raise Mismatch(f"{what}, step t = {t}: {g[0]} channels, expected {e[0]}")
            raise Mismatch(
                f"{what}, step t = {t}: size {g[1:]} but o_t is at 1/{config.frdu_factors[t - 1]}"
                f" of the input, {e[1:]} (sizes that do not divide round up: the input is padded)"
            )
    return len(cases)


o_shapes_exercise = Exercise(
    name="o_shapes",
    title="Bonus: the pooling stream's shapes",
    checker=_check_o_shapes,
    reference=reference_o_shapes,
    hints=(
        "config.widths gives C_t and config.frdu_factors the factor f_t of every step, in order.",
        "The model pads the input to a multiple of 2^S and crops back to ceil(H / f): in Python "
        "-(-H // f).",
    ),
    solution_notebook=_solutions("03_gruunet"),
)
check_o_shapes = o_shapes_exercise.check


# --------------------------------------------------------------------------- 04: class weights
def reference_class_weights(targets: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """w_k = N / (K * n_k) for the N pixels of ``targets`` (class maps), 0 for absent classes.

    With these weights every present class contributes the same total weight, N / K.
    """
    targets = np.asarray(targets)
    counts = np.bincount(targets.ravel().astype(np.int64), minlength=num_classes)[:num_classes]
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = targets.size / (num_classes * counts[present])
    return weights


def _check_class_weights(student: Any) -> int:
    rng = np.random.default_rng(4)
    skewed = rng.choice(3, size=(2, 16, 16), p=[0.7, 0.25, 0.05]).astype(np.uint8)
    balanced = np.tile(np.array([0, 1, 2], np.uint8), 12).reshape(6, 6)
    absent = np.zeros((4, 4), np.uint8)
    absent[:2] = 1  # no boundary pixel at all
    cases = (("a skewed batch", skewed), ("balanced classes", balanced), ("no boundary", absent))
    for what, targets in cases:
        expected = reference_class_weights(targets)
        got = np.asarray(call(student, targets.copy(), 3, what="your function"), dtype=float)
        expect(
            got.shape == (3,), f"{what}: return one weight per class, shape (3,), got {got.shape}"
        )
        if close(got, expected):
            continue
        counts = np.bincount(targets.ravel(), minlength=3)
        if np.any(~np.isfinite(got)):
            raise Mismatch(f"{what}: a class with no pixels must get weight 0, not inf or nan")
        if close(got / got.sum(), expected / expected.sum()):
            raise Mismatch(
                f"{what}: the ratios are right but the scale is not: with w_k = N / (K n_k) every "
                "present class weighs N / K in total"
            )
        raise Mismatch(
            f"{what}: pixel counts {counts.tolist()}: weights {got}, expected {expected}"
        )
    return len(cases)


class_weights_exercise = Exercise(
    name="class_weights",
    title="Bonus: inverse-frequency class weights",
    checker=_check_class_weights,
    reference=reference_class_weights,
    hints=(
        "np.bincount(targets.ravel(), minlength=K) counts the pixels n_k of every class.",
        "w_k = N / (K * n_k) with N = targets.size; where n_k == 0 leave w_k = 0.",
    ),
    solution_notebook=_solutions("04_training"),
)
check_class_weights = class_weights_exercise.check


# --------------------------------------------------------------------------- 05: half a nucleus
def reference_half_nucleus(labels: np.ndarray, label: int) -> np.ndarray:
    """A prediction with one object (label 1): the first half (n // 2 pixels, in row-major order)
    of nucleus ``label``, so its IoU with that nucleus is (n // 2) / n."""
    labels = np.asarray(labels)
    ys, xs = np.nonzero(labels == label)
    if ys.size == 0:
        raise ValueError(f"there is no nucleus with label {label}")
    pred = np.zeros(labels.shape, dtype=np.int32)
    half = ys.size // 2
    pred[ys[:half], xs[:half]] = 1
    return pred


def _check_half_nucleus(student: Any) -> int:
    labels = np.zeros((12, 14), np.uint16)
    labels[1:5, 1:7] = 3  # 24 pixels
    labels[6:11, 3:12] = 8  # 45 pixels
    checks = 0
    for label in (3, 8):
        original = labels.copy()
        got = np.asarray(call(student, labels, label, what="your function"))
        expect(np.array_equal(labels, original), "your function changed the label image in place")
        expect(
            got.shape == labels.shape, f"the prediction has shape {got.shape}, not {labels.shape}"
        )
        ids = np.unique(got[got > 0])
        n = int((labels == label).sum())
        expect(
            ids.size == 1,
            f"label {label}: the prediction must hold exactly one object, got {ids.size}",
        )
        obj = got == ids[0]
        expect(
            not (obj & (labels != label)).any(),
            f"label {label}: your object covers pixels outside nucleus {label}",
        )
        expect(
            int(obj.sum()) == n // 2,
            f"label {label}: your object has {int(obj.sum())} pixels; half of the nucleus's {n} "
            f"pixels is {n // 2} (n // 2)",
        )
        checks += 1
    return checks


half_nucleus_exercise = Exercise(
    name="half_nucleus",
    title="Bonus: half a nucleus",
    checker=_check_half_nucleus,
    reference=reference_half_nucleus,
    hints=(
        "ys, xs = np.nonzero(labels == label) lists the nucleus's pixels.",
        "Make pred = np.zeros(labels.shape, int) and set pred[ys[:n // 2], xs[:n // 2]] = 1.",
    ),
    solution_notebook=_solutions("05_evaluation"),
)
check_half_nucleus = half_nucleus_exercise.check


# --------------------------------------------------------------------------- 06: state change
def reference_state_change(states: list[Any]) -> np.ndarray:
    """mean |h_t - h_{t-1}| over channels and pixels for t = 2 ... T (``states[t - 1].h`` is h_t).

    Returns (T - 1,); entry i belongs to step t = i + 2 (h_0, the stem, is not captured).
    """
    hs = [s.h.float() for s in states]
    return np.array([float((b - a).abs().mean()) for a, b in zip(hs[:-1], hs[1:], strict=True)])


class _Step:
    def __init__(self, h: torch.Tensor) -> None:
        self.h = h


def _check_state_change(student: Any) -> int:
    with seeded(6):
        hs = [torch.randn(1, 4, 8, 8) * (t + 1) for t in range(5)]
    hs[3] = hs[2].clone()  # step t = 4 changes nothing
    states = [_Step(h) for h in hs]
    got = np.asarray(call(student, states, what="your function"), dtype=float)
    expected = reference_state_change(states)
    expect(
        got.shape == expected.shape,
        f"return one number per step t = 2 ... {len(states)}, shape {expected.shape}; got "
        f"{got.shape}",
    )
    if close(got, expected):
        return 1
    signed = np.array(
        [float((b.h - a.h).mean()) for a, b in zip(states[:-1], states[1:], strict=True)]
    )
    if close(got, signed):
        raise Mismatch("take the absolute value before the mean: changes up and down would cancel")
    if abs(got[2]) > 1e-6:
        raise Mismatch(
            "step t = 4 repeats h_3 exactly, so its change must be 0; compare h_t with h_{t-1}"
        )
    raise Mismatch(f"your changes {np.round(got, 4)} differ from {np.round(expected, 4)}")


state_change_exercise = Exercise(
    name="state_change",
    title="Bonus: how far each step moves the state",
    checker=_check_state_change,
    reference=reference_state_change,
    hints=(
        "Pair every state with the one before: zip(states[:-1], states[1:]).",
        "For each pair: (b.h - a.h).abs().mean().item(); return np.array of the list.",
    ),
    solution_notebook=_solutions("06_hidden_states"),
)
check_state_change = state_change_exercise.check
