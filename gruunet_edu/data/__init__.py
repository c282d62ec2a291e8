"""Data for the course: synthetic nuclei, readers for real data, targets, augmentation, datasets."""

from .augment import AugmentConfig, Augmenter
from .dataset import (
    SPLITS,
    NucleiDataset,
    SeededSampler,
    SyntheticNucleiDataset,
    make_loader,
    synthetic_samples,
)
from .normalize import percentile_normalize, percentile_range
from .readers import DataFormatError, Sample
from .synthetic import (
    SYNTHETIC_PRESETS,
    SyntheticConfig,
    make_nuclei,
    make_nuclei_sequence,
)
from .targets import (
    BACKGROUND,
    BOUNDARY,
    INTERIOR,
    TARGET_KINDS,
    boundary_weights,
    foreground,
    inner_boundaries,
    make_target,
    three_class,
)

__all__ = [
    "AugmentConfig",
    "Augmenter",
    "BACKGROUND",
    "BOUNDARY",
    "DataFormatError",
    "INTERIOR",
    "NucleiDataset",
    "SPLITS",
    "SYNTHETIC_PRESETS",
    "Sample",
    "SeededSampler",
    "SyntheticConfig",
    "SyntheticNucleiDataset",
    "TARGET_KINDS",
    "boundary_weights",
    "foreground",
    "inner_boundaries",
    "make_loader",
    "make_nuclei",
    "make_nuclei_sequence",
    "make_target",
    "percentile_normalize",
    "percentile_range",
    "synthetic_samples",
    "three_class",
]
