"""The parameters of the synthetic nuclei images (:class:`SyntheticConfig`) and their presets.

What each parameter does to an image is described in :mod:`gruunet_edu.data.synthetic`, which
draws the images.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

# Share of touching nuclei drawn as bright as the one they touch in the training data
# (`SyntheticConfig.training`); chosen on the three-seed means of the lever table in the README.
TRAINING_ALIKE_FRACTION = 0.75


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of the synthetic nuclei images (all lengths in pixels)."""

    size: int | tuple[int, int] = 256  # image side, or (height, width)
    density: float = 5.0  # mean number of nuclei per 100 x 100 px
    radius: tuple[float, float] = (6.0, 13.0)  # range of the mean nucleus radius sqrt(a*b)
    scale: tuple[float, float] = (0.8, 1.9)  # per-image size factor (log-uniform; density / s^2)
    elongation: tuple[float, float] = (1.0, 1.7)  # range of the axis ratio a/b
    irregularity: float = (
        0.07  # typical amplitude A_k of the outline harmonics (fraction of radius)
    )
    cluster_fraction: float = 0.4  # fraction of nuclei placed touching an earlier one
    touch_overlap: float = 0.15  # mean overlap of touching nuclei (fraction of the sum of radii)
    seam: tuple[float, float] = (0.3, 0.6)  # darkening of the seam where nuclei touch (range)
    alike_fraction: float = 0.0  # fraction of touching nuclei as bright as the one they touch
    mitotic_fraction: float = 0.05  # fraction of small, round, saturating bright nuclei
    brightness: tuple[float, float] = (0.09, 0.85)  # nucleus brightness above background (log-u.)
    mitotic_brightness: tuple[float, float] = (1.2, 3.0)  # mitotic brightness (x saturation)
    texture: float = 0.25  # contrast of the chromatin-like inner texture
    blur: float = 1.0  # Gaussian PSF sigma for in-focus nuclei
    defocus_fraction: float = 0.15  # fraction of out-of-focus nuclei
    defocus_blur: float = 2.5  # Gaussian PSF sigma for out-of-focus nuclei
    background: float = 0.08  # mean background level
    background_variation: float = 0.04  # amplitude of the smooth, uneven background
    illumination: float = 0.3  # amplitude of the smooth multiplicative illumination field
    debris: float = 1.0  # mean number of unlabelled specks per 100 x 100 px
    noise: float = 1.0  # noise level: photons = 200 / noise**2, read noise = 0.01 * noise; 0 = none
    saturation: float | None = 1.0  # detector saturation (image clipped to [0, saturation])
    min_area: int = 15  # labels with fewer pixels are removed (image and labels)
    min_visible: float = 0.5  # labels hidden by later nuclei to below this fraction are removed
    bit_depth: int | None = None  # None: float32 image; 8 or 16: uint8 / uint16 camera counts

    def __post_init__(self) -> None:
        def _range(name: str, lo_min: float) -> None:
            lo, hi = getattr(self, name)
            if not (lo_min <= lo <= hi):
                raise ValueError(
                    f"SyntheticConfig.{name} must be (low, high) with "
                    f"{lo_min} <= low <= high, got {(lo, hi)}"
                )

        h, w = self.shape
        if h < 1 or w < 1:
            raise ValueError(f"SyntheticConfig.size must be positive, got {self.size}")
        _range("radius", 1.0)
        _range("scale", 0.05)
        _range("elongation", 1.0)
        _range("brightness", 1e-4)
        _range("mitotic_brightness", 0.0)
        _range("seam", 0.0)
        if self.seam[1] > 1.0:
            raise ValueError(f"SyntheticConfig.seam must lie in [0, 1], got {self.seam}")
        if self.bit_depth not in (None, 8, 16):
            raise ValueError(
                f"SyntheticConfig.bit_depth must be None, 8 or 16, got {self.bit_depth}"
            )
        if self.bit_depth is not None and self.saturation is None:
            raise ValueError("SyntheticConfig.bit_depth needs a saturation level (the full scale)")
        for name in ("cluster_fraction", "mitotic_fraction", "defocus_fraction", "alike_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticConfig.{name} must be in [0, 1]")
        for name in (
            "density",
            "noise",
            "blur",
            "defocus_blur",
            "irregularity",
            "texture",
            "illumination",
            "debris",
            "touch_overlap",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"SyntheticConfig.{name} must be >= 0")

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape (height, width)."""
        if isinstance(self.size, int | np.integer):
            return int(self.size), int(self.size)
        h, w = self.size
        return int(h), int(w)

    def replace(self, **changes: Any) -> SyntheticConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def default(cls, **overrides: Any) -> SyntheticConfig:
        """The default task: what the held-out test set is drawn from (training adds alike
        neighbours to it, see :meth:`training`)."""
        return cls(**overrides)

    @classmethod
    def training(cls, **overrides: Any) -> SyntheticConfig:
        """What the course trains on: the default task, with `TRAINING_ALIKE_FRACTION` of the
        touching nuclei about as bright as the nucleus they touch (``alike_fraction``).

        In the default task two touching nuclei mostly differ in brightness, and a network
        trained on it learns to split a pair at the step in brightness more than at the darker
        seam between them; pairs of alike brightness, where only the seam tells them apart, are
        then merged. Training on alike neighbours teaches the seam. The test sets keep the
        default task (and the shift task), so they measure whether it carries over.
        """
        return cls(**{"alike_fraction": TRAINING_ALIKE_FRACTION, **overrides})

    @classmethod
    def easy(cls, **overrides: Any) -> SyntheticConfig:
        """Sparse, round, bright, clean nuclei of one size: few touch."""
        params = dict(
            density=2.5,
            radius=(7.0, 13.0),
            scale=(1.0, 1.0),
            brightness=(0.3, 0.8),
            seam=(0.0, 0.0),
            illumination=0.0,
            debris=0.0,
            elongation=(1.0, 1.3),
            irregularity=0.04,
            cluster_fraction=0.1,
            mitotic_fraction=0.0,
            defocus_fraction=0.0,
            texture=0.15,
            background_variation=0.02,
            noise=0.4,
        )
        return cls(**{**params, **overrides})

    @classmethod
    def hard(cls, **overrides: Any) -> SyntheticConfig:
        """Crowded, elongated, dim and noisy nuclei, many touching."""
        params = dict(
            density=7.0,
            radius=(5.0, 14.0),
            elongation=(1.0, 2.3),
            irregularity=0.1,
            cluster_fraction=0.6,
            brightness=(0.12, 0.8),
            mitotic_fraction=0.08,
            texture=0.4,
            defocus_fraction=0.3,
            defocus_blur=3.0,
            background_variation=0.08,
            noise=2.5,
        )
        return cls(**{**params, **overrides})

    @classmethod
    def shift(cls, **overrides: Any) -> SyntheticConfig:
        """The shift test: parameter ranges the default (training) task does not draw from.

        Modelled on fluorescence images of the 2018 Data Science Bowl kind: nuclei of one typical
        radius of 10-15 px per image, crowded, many dim ones (down to 1/16 of the brightest) next
        to a few tiny saturated ones that set the top of the percentile range, a stronger uneven
        illumination, a wider PSF, rounder and smoother outlines, fainter texture, fewer photons,
        and 8- or 16-bit camera counts (``bit_depth``; the test set draws both).
        """
        params = dict(
            density=4.5,
            radius=(10.0, 15.0),
            scale=(0.95, 1.15),
            elongation=(1.0, 1.45),
            irregularity=0.05,
            cluster_fraction=0.5,
            touch_overlap=0.2,
            seam=(0.05, 0.2),
            mitotic_fraction=0.04,
            brightness=(0.05, 0.8),
            mitotic_brightness=(2.0, 4.0),
            texture=0.12,
            blur=1.6,
            defocus_fraction=0.1,
            defocus_blur=3.5,
            background=0.05,
            background_variation=0.02,
            illumination=0.45,
            debris=0.5,
            noise=1.6,
            bit_depth=8,
        )
        return cls(**{**params, **overrides})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> SyntheticConfig:
        """One of `SYNTHETIC_PRESETS` ("easy", "default", "training", "hard", "shift") with field
        overrides."""
        if name not in SYNTHETIC_PRESETS:
            raise ValueError(
                f"unknown synthetic preset {name!r}; choose one of {SYNTHETIC_PRESETS}"
            )
        return getattr(cls, name)(**overrides)


SYNTHETIC_PRESETS = ("easy", "default", "training", "hard", "shift")
