"""Figures (samples, loss curves, predictions, errors) and the hidden-state explorer."""

from gruunet_edu.viz.explorer import HiddenStateExplorer, explorer_widget
from gruunet_edu.viz.plots import (
    error_examples,
    error_gallery,
    error_map,
    label_cmap,
    plot_history,
    prediction_figure,
    save_figure,
    show_sample,
)

__all__ = [
    "HiddenStateExplorer",
    "error_examples",
    "error_gallery",
    "error_map",
    "explorer_widget",
    "label_cmap",
    "plot_history",
    "prediction_figure",
    "save_figure",
    "show_sample",
]
