"""Prediction at the nucleus size the network was trained on: rescale before, and back after.

A convolutional network learns nuclei of the sizes it saw. A user's images at another
magnification hold nuclei of another diameter D; as Cellpose does (Stringer et al., Nature
Methods 2021), the image is resized by

    f = D_train / D

before prediction, and the class probabilities are resized back to the image's own shape, so the
instances, their sizes and ``min_size`` are in the image's own pixels. D_train is the median
equivalent diameter (2 sqrt(area / pi)) of the nuclei of the default synthetic training data,
``TRAINING_DIAMETER``.

Without a given D, :func:`estimate_diameter` takes the median equivalent diameter of the objects
a first prediction at the image's own scale finds; when it is within a factor ``tolerance``
(default ``AUTO_TOLERANCE``) of D_train the first prediction is kept, otherwise the image is
predicted again at the estimated scale. The sample data spans diameters of about 10 to 30 px
(10th to 90th percentile), so a network trained on it has seen every size in that range, yet it
is best at the median: predicting again at D_train helps well inside the range too
(``benchmarks/bench_train.py`` prints both; the ``own scale`` rows predict without resizing).
For the tiny preset's 600 steps, averaged over three seeds, it adds 0.033 AP50 on the synthetic
test set and 0.133 on the shift test set, whose nuclei are about 25 px across (predicted once,
in the run the README quotes). The tolerance
(``benchmarks/bench_rescale.py`` scores each on tuning images, not the test sets) skips the
second pass where it changes little: 1.0 to 1.2 score alike on images drawn like the training
data; on the shift kind 1.0 scored 0.02 AP50 above 1.1 in the run the README quotes (one
seed), and 1.3 and the former 1.6 score lower.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.transform import resize
from torch import nn

from .inference import predict_probabilities, prepare_image

# Median equivalent diameter (px) of the nuclei of the default synthetic data
# (SyntheticConfig(): radius 6-13 px times a per-image scale of 0.8-1.9), measured on 64 images
# of 256 x 256 px; tests/test_rescale.py checks it against the generator.
TRAINING_DIAMETER = 19.0
MIN_OBJECTS = 5  # fewer objects than this: no estimate (keep the image's own scale)
# "auto" predicts again, resized, when the estimate is off D_train by more than this factor
AUTO_TOLERANCE = 1.1


def equivalent_diameters(labels: np.ndarray) -> np.ndarray:
    """2 sqrt(area / pi) of every object of an instance label image (float64 (N,))."""
    areas = np.bincount(np.asarray(labels).ravel())[1:]
    areas = areas[areas > 0]
    return 2.0 * np.sqrt(areas / np.pi)


def estimate_diameter(labels: np.ndarray, min_objects: int = MIN_OBJECTS) -> float | None:
    """Median equivalent diameter of the objects (px), or None with fewer than `min_objects`."""
    d = equivalent_diameters(labels)
    return float(np.median(d)) if d.size >= min_objects else None


def _check_diameter(diameter: float) -> float:
    if not (isinstance(diameter, int | float) and np.isfinite(diameter) and diameter > 0):
        raise ValueError(f"diameter must be a positive number of pixels, got {diameter!r}")
    return float(diameter)


@torch.no_grad()
def predict_probabilities_at(
    model: nn.Module, image, factor: float, device=None, tta: bool = False
) -> np.ndarray:  # (K, H, W) float32 at the image's own size
    """Class probabilities of the image resized by `factor`, resized back to (H, W) (``tta``:
    as in :func:`~.inference.predict_probabilities`)."""
    arr = prepare_image(image, getattr(getattr(model, "config", None), "in_channels", 1))
    if abs(factor - 1.0) < 1e-3:
        return predict_probabilities(model, arr, device=device, normalize=False, tta=tta)
    _, h, w = arr.shape
    size = (max(8, round(h * factor)), max(8, round(w * factor)))
    scaled = resize(arr, (arr.shape[0], *size), order=1, anti_aliasing=factor < 1, mode="reflect")
    probs = predict_probabilities(
        model, scaled.astype(np.float32), device=device, normalize=False, tta=tta
    )
    back = resize(probs, (probs.shape[0], h, w), order=1, anti_aliasing=factor > 1, mode="edge")
    back = np.clip(back, 0.0, None).astype(np.float32)
    back /= back.sum(0, keepdims=True) + np.float32(1e-12)  # still a distribution per pixel
    return back


def predict_instances_rescaled(
    model: nn.Module,
    image,
    diameter: float | str | None = "auto",
    device=None,
    tolerance: float = AUTO_TOLERANCE,
    training_diameter: float = TRAINING_DIAMETER,
    tta: bool = False,
    **postprocess,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Instances of an image whose nuclei may be of another size than the training data's.

    Args:
        diameter: typical nucleus diameter in the image (px); "auto" estimates it from a first
            prediction (see the module docstring); None predicts at the image's own scale.
        tolerance: with "auto", rescale only when the estimate differs from
            `training_diameter` by more than this factor (either way).
        tta: average every prediction over the image's eight turns and flips
            (:mod:`~gruunet_edu.evaluation.tta`).
        **postprocess: keyword arguments of ``probabilities_to_instances`` (e.g. ``min_size``).

    Returns:
        ``(labels uint16 (H, W), probabilities (K, H, W), info)``, with ``info`` holding the
        ``diameter`` used (None: not known), whether it was ``estimated`` and the ``factor`` the
        image was resized by.
    """
    from .postprocess import probabilities_to_instances
    from .prepare import check_no_nan

    check_no_nan(image)  # before any resizing spreads the NaN pixels
    info: dict = {"diameter": None, "estimated": False, "factor": 1.0}
    if diameter is None:
        probs = predict_probabilities_at(model, image, 1.0, device, tta)
        return probabilities_to_instances(probs, **postprocess), probs, info
    if isinstance(diameter, str):
        if diameter != "auto":
            raise ValueError(
                f"diameter must be a number of pixels, 'auto' or None, got {diameter!r}"
            )
        probs = predict_probabilities_at(model, image, 1.0, device, tta)
        labels = probabilities_to_instances(probs, **postprocess)
        estimate = estimate_diameter(labels)
        info.update(diameter=estimate, estimated=True)
        if estimate is None or abs(np.log(estimate / training_diameter)) <= np.log(tolerance):
            return labels, probs, info
        diameter = estimate
    factor = training_diameter / _check_diameter(diameter)
    info.update(diameter=float(diameter), factor=factor)
    probs = predict_probabilities_at(model, image, factor, device, tta)
    return probabilities_to_instances(probs, **postprocess), probs, info
