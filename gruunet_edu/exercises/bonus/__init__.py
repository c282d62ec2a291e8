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

from gruunet_edu.exercises.bonus.class_weights import (
    check_class_weights,
    class_weights_exercise,
    reference_class_weights,
)
from gruunet_edu.exercises.bonus.dense_parameters import (
    check_dense_parameters,
    dense_parameters_exercise,
    reference_dense_parameters,
)
from gruunet_edu.exercises.bonus.gru_1x1 import check_gru_1x1, gru_1x1_exercise, reference_gru_1x1
from gruunet_edu.exercises.bonus.half_nucleus import (
    check_half_nucleus,
    half_nucleus_exercise,
    reference_half_nucleus,
)
from gruunet_edu.exercises.bonus.o_shapes import (
    check_o_shapes,
    o_shapes_exercise,
    reference_o_shapes,
)
from gruunet_edu.exercises.bonus.state_change import (
    check_state_change,
    reference_state_change,
    state_change_exercise,
)
from gruunet_edu.exercises.bonus.touching_pairs import (
    check_touching_pairs,
    reference_touching_pairs,
    touching_pairs_exercise,
)

__all__ = [
    "check_class_weights",
    "check_dense_parameters",
    "check_gru_1x1",
    "check_half_nucleus",
    "check_o_shapes",
    "check_state_change",
    "check_touching_pairs",
    "class_weights_exercise",
    "dense_parameters_exercise",
    "gru_1x1_exercise",
    "half_nucleus_exercise",
    "o_shapes_exercise",
    "reference_class_weights",
    "reference_dense_parameters",
    "reference_gru_1x1",
    "reference_half_nucleus",
    "reference_o_shapes",
    "reference_state_change",
    "reference_touching_pairs",
    "state_change_exercise",
    "touching_pairs_exercise",
]
