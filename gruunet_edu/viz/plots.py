"""Figures of the course: samples, loss curves, predictions with their errors, an error gallery.

Every function returns a ``matplotlib.figure.Figure`` built with the object-oriented API (no
``pyplot`` state), so the figures work in a notebook, in a script and with the non-interactive
``Agg`` backend of the command line; save one with ``fig.savefig(path)`` or :func:`save_figure`.

Colours (defined once in :mod:`gruunet_edu.viz.render`, shared with the explorer): classes
background black, interior green, boundary magenta; instance labels get a fixed random colour each
(background black); in the error map true-positive pixels are grey, false-positive pixels
(predicted, not true) magenta and false-negative pixels (true, missed) green; outlines are green
for the truth and magenta for the prediction.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from gruunet_edu.viz.render import CLASS_COLOURS, CLASS_NAMES, PRED_COLOUR, TRUTH_COLOUR, class_cmap


def label_cmap(n: int = 256, seed: int = 3) -> ListedColormap:
    """A colour map for instance labels: 0 black, every other label a random bright colour."""
    rng = np.random.default_rng(seed)
    colours = 0.25 + 0.75 * rng.random((max(n, 2), 3))
    colours[0] = 0.0
    return ListedColormap(colours)


def _labels_rgb(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    cmap = label_cmap()
    rgb = cmap(((labels.astype(np.int64) - 1) % 255 + 1) * (labels > 0))[..., :3]
    return rgb.astype(np.float32)


def _image2d(image) -> np.ndarray:
    arr = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (C, H, W), got shape {arr.shape}")
    return arr


def _show_image(ax, image, title: str | None = None) -> None:
    from ..data.normalize import percentile_range

    arr = _image2d(image)
    lo, hi = percentile_range(arr) if arr.size else (0.0, 1.0)
    ax.imshow(arr, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    _clean(ax, title)


def _nuclei(n: int) -> str:
    return f"{n} nucleus" if n == 1 else f"{n} nuclei"


def _clean(ax, title: str | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of each object that touch another label or the background (bool (H, W)):
    :func:`~gruunet_edu.data.targets.inner_boundaries`, also for boolean masks."""
    from ..data.targets import inner_boundaries

    return inner_boundaries(np.asarray(labels).astype(np.int64, copy=False))


def error_map(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3): grey where both are foreground, magenta false positive, green false
    negative."""
    t, p = np.asarray(truth) != 0, np.asarray(pred) != 0
    if t.shape != p.shape:
        raise ValueError(f"shapes differ: truth {t.shape}, prediction {p.shape}")
    rgb = np.zeros((*t.shape, 3), dtype=np.float32)
    rgb[t & p] = 0.6
    rgb[p & ~t] = PRED_COLOUR
    rgb[t & ~p] = TRUTH_COLOUR
    return rgb


def show_sample(
    image,
    labels=None,
    target=None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Image, and if given its instance labels and its 3-class target, side by side."""
    panels = [("image", image)]
    if labels is not None:
        panels.append(("instance labels", labels))
    if target is not None:
        panels.append(("target: background / interior / boundary", target))
    fig = Figure(figsize=figsize or (3.2 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, data) in zip(axes, panels, strict=True):
        if name == "image":
            _show_image(ax, data, name)
        elif name == "instance labels":
            lab = np.asarray(data)
            ax.imshow(_labels_rgb(lab), interpolation="nearest")
            _clean(ax, f"{name} ({_nuclei(len(np.unique(lab[lab > 0])))})")
        else:
            ax.imshow(np.asarray(data), cmap=class_cmap(), vmin=0, vmax=2, interpolation="nearest")
            _clean(ax, name)
    if title:
        fig.suptitle(title)
    return fig


def show_classes(
    image,
    maps: dict[str, Any],
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """The image and class maps (values 0, 1, 2: e.g. a target and a prediction) side by side.

    Every class map uses the course's class colours on a fixed range (0 background black,
    1 interior green, 2 boundary magenta), with a legend, so two maps can be compared by eye.
    """
    fig = Figure(figsize=figsize or (3.2 * (len(maps) + 1), 3.8), layout="constrained")
    axes = fig.subplots(1, len(maps) + 1, squeeze=False)[0]
    _show_image(axes[0], image, "image")
    for ax, (name, data) in zip(axes[1:], maps.items(), strict=True):
        arr = np.asarray(data.detach().cpu() if hasattr(data, "detach") else data)
        if arr.ndim != 2:
            raise ValueError(f"class map {name!r} must be (H, W), got shape {arr.shape}")
        ax.imshow(arr, cmap=class_cmap(), vmin=0, vmax=2, interpolation="nearest")
        _clean(ax, name)
    fig.legend(
        handles=_class_handles(), loc="outside lower center", ncol=3, fontsize=9, frameon=False
    )
    if title:
        fig.suptitle(title)
    return fig


def _class_handles() -> list:
    from matplotlib.patches import Patch

    return [
        Patch(facecolor=tuple(colour), edgecolor="grey", label=name)
        for colour, name in zip(CLASS_COLOURS.tolist(), CLASS_NAMES, strict=True)
    ]


def _history_dict(history: Any) -> dict:
    return history.to_dict() if hasattr(history, "to_dict") else dict(history)


def plot_history(history, title: str | None = None) -> Figure:
    """Loss curves (training and validation loss per epoch) and the validation Dice."""
    h = _history_dict(history)
    steps = np.asarray(h.get("step", []), dtype=float)

    def series(key: str) -> np.ndarray:
        return np.asarray([np.nan if v is None else v for v in h.get(key, [])], dtype=float)

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_loss, ax_dice = fig.subplots(1, 2)
    ax_loss.plot(steps, series("train_loss"), "o-", label="training loss")
    val_loss = series("val_loss")
    if np.isfinite(val_loss).any():
        ax_loss.plot(steps, val_loss, "s-", label="validation loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    dice = series("val_dice")
    if np.isfinite(dice).any():
        ax_dice.plot(steps, dice, "o-", color="tab:green")
        ax_dice.axhline(0.9, color="grey", ls="--", lw=1, label="Dice 0.9")
        ax_dice.set_ylim(0, 1.02)
        ax_dice.legend(loc="lower right")
    else:
        ax_dice.text(0.5, 0.5, "no validation data", ha="center", va="center")
    ax_dice.set_xlabel("step")
    ax_dice.set_ylabel("Dice (foreground)")
    ax_dice.set_title("validation Dice")
    ax_dice.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def _outline_overlay(image, truth, pred) -> np.ndarray:
    from ..data.normalize import percentile_normalize

    arr = _image2d(image)
    if arr.ndim == 3:
        arr = arr.mean(-1)
    grey = percentile_normalize(arr, clip=True) if arr.size else arr
    rgb = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    if truth is not None:
        rgb[boundaries(truth)] = TRUTH_COLOUR
    if pred is not None:
        rgb[boundaries(pred)] = PRED_COLOUR
    return rgb


def prediction_figure(
    image,
    truth,
    pred,
    title: str | None = None,
    metrics: dict | None = None,
) -> Figure:
    """Four panels: image, true instances, predicted instances, errors.

    The error panel shows false-positive pixels magenta and false-negative pixels green; objects
    that found no match at IoU >= 0.5 are outlined (missed true objects green, spurious
    predictions magenta). ``truth`` may be None (prediction only: image, prediction, overlay).
    """
    pred = np.asarray(pred)
    if truth is None:
        fig = Figure(figsize=(10, 3.6), layout="constrained")
        ax = fig.subplots(1, 3)
        _show_image(ax[0], image, "image")
        ax[1].imshow(_labels_rgb(pred), interpolation="nearest")
        _clean(ax[1], f"prediction ({_nuclei(len(np.unique(pred[pred > 0])))})")
        ax[2].imshow(_outline_overlay(image, None, pred), interpolation="nearest")
        _clean(ax[2], "outlines on the image")
        if title:
            fig.suptitle(title)
        return fig
    from ..evaluation.metrics import evaluate_instances, match_instances

    truth = np.asarray(truth)
    match = match_instances(truth, pred, 0.5)
    metrics = metrics if metrics is not None else evaluate_instances(truth, pred)
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    ax = fig.subplots(1, 4)
    _show_image(ax[0], image, "image")
    ax[1].imshow(_labels_rgb(truth), interpolation="nearest")
    _clean(ax[1], f"truth ({_nuclei(match.n_true)})")
    ax[2].imshow(_labels_rgb(pred), interpolation="nearest")
    _clean(ax[2], f"prediction ({_nuclei(match.n_pred)})")
    errors = error_map(truth, pred)
    errors[boundaries(np.where(np.isin(truth, match.missed), truth, 0))] = TRUTH_COLOUR
    errors[boundaries(np.where(np.isin(pred, match.spurious), pred, 0))] = PRED_COLOUR
    ax[3].imshow(errors, interpolation="nearest")
    _clean(
        ax[3],
        f"errors: {match.fn} missed (green), {match.fp} spurious (magenta)",
    )
    summary = (
        f"Dice {metrics['dice']:.3f}   AP50 {metrics['ap50']:.3f}   "
        f"mean AP {metrics['mean_ap']:.3f}   SEG {metrics['seg']:.3f}"
    )
    fig.suptitle(f"{title}: {summary}" if title else summary)
    return fig


def _classify_error(kind: str, label: int, truth: np.ndarray, pred: np.ndarray) -> str:
    """Name an unmatched object: a merge, a split, a miss or a false detection."""
    if kind == "missed":  # a true object: look at the predicted objects over it
        own, other, alone, shared, several = truth, pred, "missed", "merged", "split"
    else:  # a predicted object: look at the true objects under it
        own, other, alone, shared, several = pred, truth, "false detection", "split", "merged"
    partners = np.unique(other[own == label])
    partners = partners[partners > 0]
    if partners.size == 0:
        return alone
    if any(len(np.unique(own[(other == p) & (own > 0)])) > 1 for p in partners):
        return shared
    return several if partners.size > 1 else "poor overlap"


def error_examples(images, truths, preds, tau: float = 0.5) -> list[dict]:
    """Every unmatched object at IoU >= ``tau``: ``{"index", "kind", "label", "box", "name"}``.

    ``kind`` is "missed" (a true object) or "spurious" (a predicted one); ``name`` says what
    happened: missed, false detection, merged, split or poor overlap.
    """
    from ..evaluation.metrics import match_instances

    out = []
    for i, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        truth, pred = np.asarray(truth), np.asarray(pred)
        m = match_instances(truth, pred, tau)
        for kind, labels, source in (("missed", m.missed, truth), ("spurious", m.spurious, pred)):
            for label in labels:
                ys, xs = np.nonzero(source == label)
                box = (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)
                name = _classify_error(kind, label, truth, pred)
                out.append(
                    {"index": i, "kind": kind, "label": int(label), "box": box, "name": name}
                )
    return out


def error_gallery(
    images,
    truths,
    preds,
    max_examples: int = 12,
    context: int = 12,
    columns: int = 6,
    tau: float = 0.5,
) -> Figure:
    """Crops around the errors of a data set (objects left unmatched at IoU >= ``tau``).

    Each crop shows the image with the true outlines (green) and the predicted ones (magenta),
    titled with what went wrong (missed, false detection, merged, split, poor overlap).
    """
    images, truths, preds = list(images), list(truths), list(preds)
    examples = error_examples(images, truths, preds, tau)
    # one error per (image, object pair): keep the order but drop duplicates of the same region
    seen: set[tuple[int, tuple[int, ...]]] = set()
    chosen = []
    for ex in examples:
        key = (ex["index"], ex["box"])
        if key not in seen:
            seen.add(key)
            chosen.append(ex)
    chosen = chosen[:max_examples]
    if not chosen:
        fig = Figure(figsize=(4, 1.5), layout="constrained")
        ax = fig.subplots()
        ax.text(0.5, 0.5, f"no errors at IoU >= {tau}", ha="center", va="center")
        ax.set_axis_off()
        return fig
    cols = min(columns, len(chosen))
    rows = (len(chosen) + cols - 1) // cols
    fig = Figure(figsize=(2.2 * cols, 2.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, ex in zip(axes, chosen, strict=False):
        image, truth, pred = images[ex["index"]], truths[ex["index"]], preds[ex["index"]]
        overlay = _outline_overlay(image, truth, pred)
        y0, x0, y1, x1 = ex["box"]
        h, w = overlay.shape[:2]
        y0, x0 = max(0, y0 - context), max(0, x0 - context)
        y1, x1 = min(h, y1 + context), min(w, x1 + context)
        ax.imshow(overlay[y0:y1, x0:x1], interpolation="nearest")
        _clean(ax, f"{ex['name']} (image {ex['index']})")
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    fig.suptitle("errors: truth green, prediction magenta")
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a figure as PNG (folders created), returning the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
