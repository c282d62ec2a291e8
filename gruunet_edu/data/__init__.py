"""Data for the course: synthetic nuclei, readers for real data, targets, augmentation, datasets."""

from .augment import AugmentConfig, Augmenter
from .dataset import (
    SPLITS,
    NucleiDataset,
    SyntheticNucleiDataset,
    make_loader,
    shift_samples,
    synthetic_samples,
    synthetic_test_sets,
)
from .normalize import percentile_normalize, percentile_range
from .readers import (
    LAYOUTS,
    DataFormatError,
    Sample,
    detect_layout,
    read_ctc,
    read_dataset,
    read_dsb,
    read_image,
    read_labels,
    read_pairs,
)
from .sample_data import write_sample_dataset
from .sampler import StepBatchSampler
from .synthetic import (
    SAMPLE_KINDS,
    SYNTHETIC_PRESETS,
    SyntheticConfig,
    make_nuclei,
    make_nuclei_sequence,
    sample_kinds,
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
    "SAMPLE_KINDS",
    "AugmentConfig",
    "Augmenter",
    "BACKGROUND",
    "BOUNDARY",
    "DataFormatError",
    "INTERIOR",
    "LAYOUTS",
    "NucleiDataset",
    "SPLITS",
    "SYNTHETIC_PRESETS",
    "Sample",
    "SyntheticConfig",
    "StepBatchSampler",
    "SyntheticNucleiDataset",
    "TARGET_KINDS",
    "boundary_weights",
    "detect_layout",
    "foreground",
    "inner_boundaries",
    "make_loader",
    "make_nuclei",
    "make_nuclei_sequence",
    "make_target",
    "percentile_normalize",
    "percentile_range",
    "read_ctc",
    "read_dataset",
    "read_dsb",
    "read_image",
    "read_labels",
    "read_pairs",
    "sample_kinds",
    "shift_samples",
    "synthetic_samples",
    "synthetic_test_sets",
    "three_class",
    "write_sample_dataset",
]
