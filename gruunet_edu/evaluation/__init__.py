"""Evaluation: metrics, post-processing of the 3-class output to instances, (tiled) inference."""

from gruunet_edu.evaluation.evaluate import evaluate_model, predict_samples
from gruunet_edu.evaluation.inference import predict_instances, predict_probabilities, prepare_image
from gruunet_edu.evaluation.metrics import (
    DEFAULT_TAUS,
    MatchResult,
    average_precision,
    dice_score,
    evaluate_dataset,
    evaluate_instances,
    iou_matrix,
    iou_score,
    match_instances,
    seg_measure,
)
from gruunet_edu.evaluation.postprocess import (
    logits_to_instances,
    probabilities_to_instances,
    remove_small_objects,
)
from gruunet_edu.evaluation.tiling import predict_tiled

__all__ = [
    "DEFAULT_TAUS",
    "MatchResult",
    "average_precision",
    "dice_score",
    "evaluate_dataset",
    "evaluate_instances",
    "evaluate_model",
    "iou_matrix",
    "iou_score",
    "logits_to_instances",
    "match_instances",
    "predict_instances",
    "predict_probabilities",
    "predict_samples",
    "predict_tiled",
    "prepare_image",
    "probabilities_to_instances",
    "remove_small_objects",
    "seg_measure",
]
