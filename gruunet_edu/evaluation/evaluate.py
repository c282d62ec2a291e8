"""Evaluate a trained network on a list of samples: instances for every image, then metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from .inference import predict_instances
from .metrics import DEFAULT_TAUS, evaluate_dataset


def predict_samples(
    model: nn.Module,
    samples: Sequence[Any],
    device=None,
    diameter: float | str | None = None,
    tta: bool = False,
    **postprocess: Any,
) -> list[np.ndarray]:
    """Instance labels (uint16 (H, W)) for the image of every sample (anything with ``.image``).

    ``diameter`` None predicts every image at its own scale; a number of pixels or "auto" first
    resizes it to the training data's nucleus size, as ``gruunet-edu predict`` does
    (:func:`~.rescale.predict_instances_rescaled`). ``tta`` averages every prediction over the
    image's eight turns and flips (:mod:`~.tta`), as ``gruunet-edu predict`` does by default.
    """
    options = dict(device=device, tta=tta, **postprocess)
    if diameter is None:
        return [predict_instances(model, s.image, **options)[0] for s in samples]
    from .rescale import predict_instances_rescaled

    return [predict_instances_rescaled(model, s.image, diameter, **options)[0] for s in samples]


def evaluate_model(
    model: nn.Module,
    samples: Sequence[Any],
    device=None,
    taus=DEFAULT_TAUS,
    diameter: float | str | None = None,
    tta: bool = False,
    **postprocess: Any,
) -> tuple[dict, list[np.ndarray]]:
    """``(metrics, predictions)``: :func:`~.metrics.evaluate_dataset` of the model's instances
    against the samples' labels (pooled over all images), and the predicted label images.
    ``diameter`` and ``tta``: as in :func:`predict_samples` (by default each image once, at its
    own scale)."""
    if len(samples) == 0:
        raise ValueError("no samples to evaluate")
    preds = predict_samples(
        model, samples, device=device, diameter=diameter, tta=tta, **postprocess
    )
    metrics = evaluate_dataset([s.labels for s in samples], preds, taus)
    return metrics, preds
