"""Figures (samples, loss curves, predictions, errors), diagrams and the hidden-state explorer.

plots: the course's figures; render: class colours and arrays to pictures; pca: principal
components of a state; explorer: the per-step arrays (no widgets); explorer_widget: the ipywidgets
front end; diagrams: the FRDU and whole-network data-flow figures drawn from a config.
"""

from gruunet_edu.viz.explorer import HiddenStateExplorer
from gruunet_edu.viz.explorer_widget import ExplorerWidget, explorer_widget
from gruunet_edu.viz.plots import (
    error_examples,
    error_gallery,
    error_map,
    label_cmap,
    plot_history,
    prediction_figure,
    save_figure,
    show_classes,
    show_sample,
)

__all__ = [
    "ExplorerWidget",
    "HiddenStateExplorer",
    "error_examples",
    "error_gallery",
    "error_map",
    "explorer_widget",
    "label_cmap",
    "plot_history",
    "prediction_figure",
    "save_figure",
    "show_classes",
    "show_sample",
]
