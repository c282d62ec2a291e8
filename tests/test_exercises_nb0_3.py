"""Exercise checks of notebooks 00-03: the reference passes, each typical mistake gets its message.

Every wrong implementation below is one a student could write; the test asserts that the check
rejects it with the sentence that names that mistake (not just "differs").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from gruunet_edu.data import percentile_normalize, three_class
from gruunet_edu.exercises import PASSED, Exercise, hint, use_student_or_reference
from gruunet_edu.exercises.nb0_data import normalize_exercise, three_class_exercise
from gruunet_edu.exercises.nb1_convgru import convgru_exercise, reference_update, update_exercise
from gruunet_edu.exercises.nb2_frdu import dense_block_exercise, frdu_exercise
from gruunet_edu.exercises.nb3_gruunet import factors_exercise, gruunet_exercise, reference_factors
from gruunet_edu.models import FRDU, ConvGRUCell, DenseBlock, GRUUNet


def _passes(exercise, student) -> None:
    result = exercise.evaluate(student)
    assert result.passed, result.text()
    assert PASSED in result.text()


def _fails(exercise, student, *fragments: str, status: str = "failed") -> str:
    result = exercise.evaluate(student)
    assert not result.passed
    assert result.status == status, result.text()
    for fragment in fragments:
        assert fragment in result.message, result.message
    return result.text()


# ------------------------------------------------------------------------------ notebook 00


def test_normalize_reference_passes():
    _passes(normalize_exercise, percentile_normalize)


def test_normalize_min_max_is_named():
    _fails(normalize_exercise, lambda x: (x - x.min()) / (x.max() - x.min()), "minimum and maximum")


def test_normalize_clipping_is_named():
    def clipped(x):
        lo, hi = np.percentile(x, [1, 99.8])
        return np.clip((x - lo) / (hi - lo + 1e-6), 0, 1).astype(np.float32)

    _fails(normalize_exercise, clipped, "clipped")


def test_normalize_missing_eps_is_named():
    def no_eps(x):
        lo, hi = np.percentile(x, [1, 99.8])
        return ((x - lo) / (hi - lo)).astype(np.float32)

    _fails(normalize_exercise, no_eps, "constant image", "eps")


def test_normalize_wrong_shape_is_named():
    _fails(normalize_exercise, lambda x: percentile_normalize(x).ravel(), "has shape")


def test_three_class_reference_passes():
    _passes(three_class_exercise, three_class)


def _with_boundary(labels, boundary):
    target = (labels > 0).astype(np.uint8)
    target[boundary] = 2
    return target


def test_three_class_foreground_boundary_is_named():
    def foreground_only(labels):
        fg = labels > 0
        return _with_boundary(labels, fg & ~ndimage.binary_erosion(fg, border_value=1))

    _fails(three_class_exercise, foreground_only, "touch", "not the foreground mask")


def test_three_class_outer_boundary_is_named():
    def outer(labels):
        fg = labels > 0
        return _with_boundary(labels, ~fg & ndimage.binary_dilation(fg))

    _fails(three_class_exercise, outer, "outside the nuclei")


def test_three_class_eight_neighbours_is_named():
    from skimage.segmentation import find_boundaries

    def eight(labels):
        return _with_boundary(labels, find_boundaries(labels, mode="inner", connectivity=2))

    _fails(three_class_exercise, eight, "8 neighbours")


def test_three_class_swapped_classes_is_named():
    def swapped(labels):
        t = three_class(labels)
        return np.where(t == 1, 2, np.where(t == 2, 1, 0)).astype(np.uint8)

    _fails(three_class_exercise, swapped, "classes 1 and 2 are swapped")


# ------------------------------------------------------------------------------ notebook 01


def test_update_reference_passes():
    _passes(update_exercise, reference_update)


def test_update_swapped_z_is_named():
    _fails(update_exercise, lambda h, c, z: z * h + (1 - z) * c, "z and 1 - z are swapped")


def test_update_wrong_shape_is_named():
    _fails(update_exercise, lambda h, c, z: ((1 - z) * h + z * c).sum(0), "has shape")


class GoodCell(ConvGRUCell):
    def forward(self, x, h, return_gates=False):
        z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))
        r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))
        cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
        new = (1 - z) * h + z * cand
        return (new, z, r) if return_gates else new


def _cell(z_fn=None, r_fn=None, cand_fn=None, update_fn=None, output_fn=None):
    """A ConvGRU with one step replaced; each replacement gets (self, x, h, z, r, ...)."""

    class Cell(ConvGRUCell):
        def forward(self, x, h, return_gates=False):
            z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))
            if z_fn:
                z = z_fn(self, x, h)
            r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))
            if r_fn:
                r = r_fn(self, x, h)
            pre = self.conv_xh(x) + self.conv_hh(r * h)
            cand = cand_fn(self, x, h, r) if cand_fn else F.leaky_relu(pre, self.slope)
            new = update_fn(h, cand, z, r) if update_fn else (1 - z) * h + z * cand
            if output_fn:
                new = output_fn(new)
            return (new, z, r) if return_gates else new

    return Cell


def test_convgru_reference_and_student_solution_pass():
    _passes(convgru_exercise, ConvGRUCell)
    _passes(convgru_exercise, GoodCell)


def test_convgru_swapped_update_is_named():
    cell = _cell(update_fn=lambda h, c, z, r: z * h + (1 - z) * c)
    _fails(convgru_exercise, cell, "z and 1 - z are swapped")


def test_convgru_missing_reset_is_named():
    cell = _cell(cand_fn=lambda s, x, h, r: F.leaky_relu(s.conv_xh(x) + s.conv_hh(h), s.slope))
    _fails(convgru_exercise, cell, "reset gate is missing")


def test_convgru_reset_after_convolution_is_named():
    cell = _cell(cand_fn=lambda s, x, h, r: F.leaky_relu(s.conv_xh(x) + r * s.conv_hh(h), s.slope))
    _fails(convgru_exercise, cell, "reset gate is applied to the wrong term", "before")


def test_convgru_reset_in_update_is_named():
    cell = _cell(update_fn=lambda h, c, z, r: (1 - z) * (r * h) + z * c)
    _fails(convgru_exercise, cell, "reset gate is applied to the wrong term", "eq. 4")


def test_convgru_gates_out_of_range_are_named():
    cell = _cell(z_fn=lambda s, x, h: s.conv_xz(x) + s.conv_hz(h))  # no sigmoid
    _fails(convgru_exercise, cell, "gate z has values outside [0, 1]")


def test_convgru_z_and_r_swapped_is_named():
    cell = _cell(
        z_fn=lambda s, x, h: torch.sigmoid(s.conv_xr(x) + s.conv_hr(h)),
        r_fn=lambda s, x, h: torch.sigmoid(s.conv_xz(x) + s.conv_hz(h)),
    )
    _fails(convgru_exercise, cell, "z and r are swapped")


def test_convgru_tanh_candidate_is_named():
    cell = _cell(cand_fn=lambda s, x, h, r: torch.tanh(s.conv_xh(x) + s.conv_hh(r * h)))
    _fails(convgru_exercise, cell, "tanh")


def test_convgru_wrong_output_shape_is_named():
    cell = _cell(output_fn=lambda new: torch.cat([new, new], dim=1))
    _fails(convgru_exercise, cell, "has shape", "(B, channels, H, W)")


def test_convgru_exception_is_one_sentence():
    class Broken(ConvGRUCell):
        def forward(self, x, h, return_gates=False):
            return self.conv_hz(x)  # x has x_channels, not channels

    text = _fails(
        convgru_exercise,
        Broken,
        "RuntimeError at line",
        "return self.conv_hz(x)",
        "(2, 3, 8, 8)",
        "expects an input with 4 channels",
        status="error",
    )
    assert "Traceback" not in text
    assert text.count(". ") <= 2  # one sentence about the error, then the hint
    assert 'hint("convgru")' in text


def test_convgru_unfinished_is_not_an_error():
    class Unfinished(ConvGRUCell):
        def forward(self, x, h, return_gates=False):
            raise NotImplementedError("Student exercise: write equations (1) to (4)")

    _fails(convgru_exercise, Unfinished, "NotImplementedError", status="unfinished")


def test_unexpected_return_type_is_one_sentence():
    class ReturnsList(ConvGRUCell):
        def forward(self, x, h, return_gates=False):
            return [h]

    _fails(convgru_exercise, ReturnsList, "returned a list", status="failed")
    _fails(update_exercise, lambda h, c, z: [(1 - z) * h + z * c], "returned a list")


def test_a_check_that_cannot_handle_a_value_reports_one_sentence():
    def checker(student):
        return len(student())  # TypeError for an int: a gap in the checker, not a crash

    exercise = Exercise("test_gap", "Gap", checker, reference=None)
    result = exercise.evaluate(lambda: 3)
    assert result.status == "error"
    assert result.message.startswith("The check could not use what your code returned (TypeError")


def test_check_prints_and_never_raises(capsys):
    class Broken(ConvGRUCell):
        def forward(self, x, h, return_gates=False):
            raise ZeroDivisionError("oops")

    assert convgru_exercise.check(Broken) is None
    out = capsys.readouterr().out
    assert "ZeroDivisionError" in out and "oops" in out


# ------------------------------------------------------------------------------ notebook 02


def test_dense_block_reference_passes():
    _passes(dense_block_exercise, DenseBlock)


def test_dense_block_reversed_concatenation_is_named():
    class Reversed(DenseBlock):
        def forward(self, x):
            features = [x]
            for layer in self.layers:
                features.append(layer(torch.cat(features[::-1], dim=1)))
            return self.relu(self.norm(self.transition(torch.cat(features[::-1], dim=1))))

    _fails(dense_block_exercise, Reversed, "concatenation order")


def test_dense_block_not_dense_is_named():
    class Chain(DenseBlock):
        def forward(self, x):
            y = x
            for layer in self.layers:
                y = layer(y)
            return self.relu(self.norm(self.transition(y)))

    _fails(dense_block_exercise, Chain, "in_features + (l - 1) * growth_rate")


def test_dense_block_missing_final_norm_is_named():
    class NoFinal(DenseBlock):
        def forward(self, x):
            features = [x]
            for layer in self.layers:
                features.append(layer(torch.cat(features, dim=1)))
            return self.transition(torch.cat(features, dim=1))

    _fails(dense_block_exercise, NoFinal, "final BatchNorm and ReLU")


def _frdu(down=None, merge_order="o_first", up_mode="bilinear", swap_outputs=False):
    class Unit(FRDU):
        def forward(self, o_prev, h_prev):
            small = down(self, h_prev) if down else self.down(h_prev)
            pair = [o_prev, small] if merge_order == "o_first" else [small, o_prev]
            o = self.dense(self.merge(torch.cat(pair, dim=1)))
            x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode=up_mode)
            h = self.gru(x, h_prev)
            return (h, o) if swap_outputs else (o, h)

    return Unit


def test_frdu_reference_and_solution_pass():
    _passes(frdu_exercise, FRDU)
    _passes(frdu_exercise, _frdu())


def test_frdu_wrong_concat_order_is_named():
    _fails(frdu_exercise, _frdu(merge_order="h_first"), "concatenation order")


def test_frdu_wrong_downsample_factor_is_named():
    unit = _frdu(down=lambda self, h: F.max_pool2d(h, 2))  # right only for factor 2
    _fails(frdu_exercise, unit, "down-sampled by 2 instead of self.factor = 4")


def test_frdu_bilinear_downsample_is_named():
    def bilinear(self, h):
        return F.interpolate(h, scale_factor=1 / self.factor, mode="bilinear")

    _fails(frdu_exercise, _frdu(down=bilinear), "bilinear interpolation")


def test_frdu_swapped_outputs_are_named():
    _fails(frdu_exercise, _frdu(swap_outputs=True), "outputs are swapped")


def test_frdu_missing_upsampling_is_named():
    class NoUp(FRDU):
        def forward(self, o_prev, h_prev):
            o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
            return o, self.gru(self.project(o), h_prev)

    _fails(frdu_exercise, NoUp, "up-sampled to h_prev's full resolution")


# ------------------------------------------------------------------------------ notebook 03


def test_factors_reference_passes():
    _passes(factors_exercise, reference_factors)


@pytest.mark.parametrize(
    "wrong, fragment",
    [
        (lambda s: [2**i for i in range(1, s + 1)], "only the encoder"),
        (lambda s: [2**i for i in range(1, s + 1)] + [2**i for i in range(s, 0, -1)], "twice"),
        (
            lambda s: [2**i for i in range(0, s)] + [2**i for i in range(s - 2, -1, -1)],
            "starts at 1",
        ),
    ],
)
def test_factors_mistakes_are_named(wrong, fragment):
    _fails(factors_exercise, wrong, fragment)


def _net(carry_state=True, residual=True, pool=True):
    class Net(GRUUNet):
        def forward(self, x):
            h = self.stem(x)
            o, h0 = h, h
            for t, frdu in enumerate(self.frdus):
                if pool:
                    if t < self.config.num_scales:
                        o = F.max_pool2d(o, 2)
                    else:
                        o = F.interpolate(o, scale_factor=2, mode="bilinear")
                o, h = frdu(o, h if carry_state else h0)
            return self.readout(h) if residual else self.head(h)

    return Net


def test_gruunet_reference_and_solution_pass():
    _passes(gruunet_exercise, GRUUNet)
    _passes(gruunet_exercise, _net())


def test_gruunet_state_not_carried_is_named():
    _fails(gruunet_exercise, _net(carry_state=False), "state is not carried")


def test_gruunet_residual_skipped_is_named():
    _fails(gruunet_exercise, _net(residual=False), "residual block is skipped")


def test_gruunet_missing_pooling_is_named():
    _fails(gruunet_exercise, _net(pool=False), "one scale down", "one scale up")


# ------------------------------------------------------------------------------ helpers


def test_hints_are_progressive(capsys):
    update_exercise.hints_shown = 0
    hint("update")
    hint("update")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("State update (eq. 4), hint 1/3")
    assert out[1].startswith("State update (eq. 4), hint 2/3")
    hint("update", 3)
    assert "hint 3/3" in capsys.readouterr().out
    hint("update")
    hint("update")
    assert "last hint" in capsys.readouterr().out.splitlines()[-1]
    hint("no_such_exercise")
    assert "No exercise called 'no_such_exercise'" in capsys.readouterr().out


def test_unfinished_exercise_falls_back_to_reference(capsys):
    def student(h_prev, h_cand, z):
        raise NotImplementedError("Student exercise")

    assert use_student_or_reference(student, reference_update) is reference_update
    assert "Using the reference update_state (student is not done yet)" in capsys.readouterr().out
    assert use_student_or_reference(GoodCell, ConvGRUCell) is GoodCell
    assert "Using your GoodCell" in capsys.readouterr().out
    wrong = _cell(update_fn=lambda h, c, z, r: z * h + (1 - z) * c)
    assert use_student_or_reference(wrong, ConvGRUCell) is ConvGRUCell
    assert "does not pass its checks yet" in capsys.readouterr().out


# ------------------------------------------------------------------------------ the framework


@pytest.mark.parametrize("module", ["nb0_data", "nb1_convgru", "nb2_frdu", "nb3_gruunet"])
def test_every_known_mistake_moves_the_checked_output_far_beyond_the_tolerance(module):
    import importlib

    spread = importlib.import_module(f"gruunet_edu.exercises.{module}").variant_spread()
    assert spread
    for key, (difference, tolerance) in spread.items():
        assert difference > 0 and difference >= 100 * tolerance, (key, difference, tolerance)


def _rng_states():
    import random

    return torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def _same_rng(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _draws_then(fn, fail=False):
    """Wrap ``fn`` so it draws from torch's, NumPy's and Python's generators (and may raise)."""
    import functools
    import random

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        torch.rand(3)
        np.random.rand(3)
        random.random()
        if fail:
            raise ValueError("a mistake")
        return fn(*args, **kwargs)

    return wrapped


def _drawing_module(cls, fail=False):
    class Drawing(cls):
        def forward(self, *args, **kwargs):
            return _draws_then(super().forward, fail)(*args, **kwargs)

    return Drawing


_REFERENCES = [
    (normalize_exercise, percentile_normalize, False),
    (three_class_exercise, three_class, False),
    (update_exercise, reference_update, False),
    (convgru_exercise, ConvGRUCell, True),
    (dense_block_exercise, DenseBlock, True),
    (frdu_exercise, FRDU, True),
    (factors_exercise, reference_factors, False),
    (gruunet_exercise, GRUUNet, True),
]


@pytest.mark.parametrize(("exercise", "reference", "is_module"), _REFERENCES)
def test_a_check_leaves_the_global_random_state_as_found(exercise, reference, is_module):
    import random

    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    for fail in (False, True):
        student = _drawing_module(reference, fail) if is_module else _draws_then(reference, fail)
        before = _rng_states()
        result = exercise.evaluate(student)
        assert _same_rng(before, _rng_states()), exercise.name
        assert result.passed != fail, result.text()


def test_a_torch_shape_error_is_one_plain_sentence():
    class CatOnBatch(DenseBlock):
        def forward(self, x):
            features = [x]
            for layer in self.layers:
                features.append(layer(torch.cat(features, 0)))
            return self.relu(self.norm(self.transition(torch.cat(features, 1))))

    text = _fails(
        dense_block_exercise, CatOnBatch, "torch.cat(features, 0)", "dimension 0", "dim=1"
    )
    assert "Sizes of tensors" not in text and "Traceback" not in text


def test_messages_have_one_full_stop_and_counts_agree():
    from gruunet_edu.exercises.core import CheckResult, plural, sentence

    assert plural(1, "match") == "1 match" and plural(2, "match") == "2 matches"
    assert plural(1, "check") == "1 check" and plural(0, "check") == "0 checks"
    assert sentence("the gate is wrong (largest difference 0.2)") == (
        "the gate is wrong (largest difference 0.2)."
    )
    assert sentence("done..") == "done." and sentence("Why?") == "Why?"
    one = CheckResult("x", "X", True, "passed", PASSED, 1)
    assert one.text().endswith("(1 check)")
    failed = CheckResult("x", "X", False, "failed", "the logits differ (shape (1, 2))", 0)
    assert "(shape (1, 2)).\n" in failed.text()


def test_wrong_types_name_what_the_next_cells_need():
    _fails(update_exercise, lambda h, c, z: ((1 - z) * h + z * c).numpy(), "torch tensor")
    _fails(normalize_exercise, lambda x, *a, **k: torch.as_tensor(percentile_normalize(x)), "NumPy")
    _fails(factors_exercise, lambda s: tuple(reference_factors(s)), "a list")
