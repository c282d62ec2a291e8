"""Readers for nucleus segmentation data on disk (filled in below)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DataFormatError(ValueError):
    """A data folder or file does not have the expected layout or content."""


@dataclass
class Sample:
    """One image with its instance labels.

    image: (H, W) or (C, H, W) array (any real dtype, normalised later by the dataset).
    labels: (H, W) integer array, 0 = background, 1..N = nuclei.
    name: where the sample came from (a file name or a synthetic id).
    """

    image: np.ndarray
    labels: np.ndarray
    name: str = ""
