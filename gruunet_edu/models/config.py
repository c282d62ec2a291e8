"""One frozen configuration for GRU-U-Net and its four presets.

Every architectural choice of GRUU-Net (Wollmann et al., Medical Image Analysis 2019) that the
course compares is a field here, so that a model is fully described by its config (and a
checkpoint only needs ``config.to_dict()``). Presets:

- ``blog``:  exactly the network of the blog's PyTorch code: widths 64,128,256,512,512 | 256,128,
  64,32, scale factors 2..32..2, C_h = 32, 3 dense layers of growth 32 and bottleneck 2, *bilinear*
  down-sampling of the state and *no* projection before up-sampling (the 1x1 ConvNorm keeps all
  channels, up to 512, which are up-sampled to full resolution before the GRU's 3x3 convolutions).
- ``paper``: the same widths, with max-pool down-sampling of the state (the paper reports bilinear
  interpolation made training less stable) and a 1x1 projection to C_h channels *before*
  up-sampling (as FRRN does), which makes the full-resolution GRU several times cheaper.
- ``small`` and ``tiny``: narrow networks with fewer scales that train on a laptop CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PRESETS: tuple[str, ...] = ("blog", "paper", "small", "tiny")
STATE_DOWNSAMPLE_MODES: tuple[str, ...] = ("maxpool", "bilinear")

_BLOG: dict[str, Any] = dict(
    hidden_channels=32,
    encoder_widths=(64, 128, 256, 512, 512),
    decoder_widths=(256, 128, 64, 32),
    dense_layers=3,
    growth_rate=32,
    bottleneck=2,
    state_downsample="bilinear",
    project_before_upsample=False,
    fused_gru=False,
)

_PRESET_FIELDS: dict[str, dict[str, Any]] = {
    "blog": _BLOG,
    # the blog's widths with the paper's state down-sampling and projection (and the fused GRU)
    "paper": {
        **_BLOG,
        "state_downsample": "maxpool",
        "project_before_upsample": True,
        "fused_gru": True,
    },
    "small": dict(
        hidden_channels=16,
        encoder_widths=(32, 64, 128),
        decoder_widths=(64, 32),
        dense_layers=2,
        growth_rate=12,
        bottleneck=2,
        state_downsample="maxpool",
        project_before_upsample=True,
        fused_gru=True,
    ),
    "tiny": dict(
        hidden_channels=16,
        encoder_widths=(16, 32, 64),
        decoder_widths=(32, 16),
        dense_layers=1,
        growth_rate=8,
        bottleneck=2,
        state_downsample="maxpool",
        project_before_upsample=True,
        fused_gru=True,
    ),
}


def frdu_factors(num_scales: int) -> list[int]:
    """Scale factor of every FRDU: 2, 4, ..., 2**S (encoder), then 2**(S-1), ..., 2 (decoder)."""
    down = [2**i for i in range(1, num_scales + 1)]
    return down + down[-2::-1]


@dataclass(frozen=True)
class GRUUNetConfig:
    """Hyper-parameters of a GRUU-Net; build one with ``GRUUNetConfig.preset(name)``.

    The network has ``num_scales`` encoder FRDUs (scale factors 2, 4, ..., 2**S) and
    ``num_scales - 1`` decoder FRDUs (2**(S-1), ..., 2); each FRDU updates the full-resolution
    ConvGRU state h (``hidden_channels`` channels) once, so ``num_steps`` is the number of FRDUs.
    """

    in_channels: int = 1  # image channels (1 for fluorescence)
    num_classes: int = 3  # output classes (background / interior / boundary)
    hidden_channels: int = 32  # C_h: channels of the full-resolution GRU state h
    encoder_widths: tuple[int, ...] = (64, 128, 256, 512, 512)  # o channels at scales 2..2**S
    decoder_widths: tuple[int, ...] = (256, 128, 64, 32)  # o channels at 2**(S-1)..2
    dense_layers: int | tuple[int, ...] = 3  # dense layers per FRDU (int or one per FRDU)
    growth_rate: int = 32  # g: channels each dense layer adds
    bottleneck: int = 2  # b: a dense layer's 1x1 conv has b * g channels (DenseNet-BC)
    state_downsample: str = "maxpool"  # "maxpool" (paper) or "bilinear" (blog) for down(h)
    project_before_upsample: bool = True  # 1x1 to C_h at low res, then upsample (False: blog)
    fused_gru: bool = True  # fused gate convolutions (same maths, fewer kernel launches)
    stem_kernel: int = 5  # kernel size of the input convolution
    leaky_slope: float = 0.2  # negative slope of every LeakyReLU

    def __post_init__(self) -> None:
        # accept lists (e.g. from JSON) and store tuples, so the config is hashable
        object.__setattr__(self, "encoder_widths", tuple(int(w) for w in self.encoder_widths))
        object.__setattr__(self, "decoder_widths", tuple(int(w) for w in self.decoder_widths))
        if not isinstance(self.dense_layers, int):
            object.__setattr__(self, "dense_layers", tuple(int(k) for k in self.dense_layers))
        self._validate()

    def _validate(self) -> None:
        def positive(name: str, value: int) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GRUUNetConfig.{name} must be a positive int, got {value!r}")

        for name in ("in_channels", "num_classes", "hidden_channels", "growth_rate", "bottleneck"):
            positive(name, getattr(self, name))
        positive("stem_kernel", self.stem_kernel)
        if self.stem_kernel % 2 == 0:
            raise ValueError(f"GRUUNetConfig.stem_kernel must be odd, got {self.stem_kernel}")
        if len(self.encoder_widths) < 1:
            raise ValueError("GRUUNetConfig.encoder_widths needs at least one scale")
        for w in self.encoder_widths + self.decoder_widths:
            positive("encoder_widths/decoder_widths entries", w)
        if len(self.decoder_widths) != len(self.encoder_widths) - 1:
            raise ValueError(
                "GRUUNetConfig.decoder_widths must have len(encoder_widths) - 1 = "
                f"{len(self.encoder_widths) - 1} entries (one per decoder scale), "
                f"got {len(self.decoder_widths)}"
            )
        if isinstance(self.dense_layers, tuple):
            if len(self.dense_layers) != self.num_steps:
                raise ValueError(
                    f"GRUUNetConfig.dense_layers must be an int or have one entry per FRDU "
                    f"({self.num_steps}), got {len(self.dense_layers)}"
                )
            for k in self.dense_layers:
                positive("dense_layers entries", k)
        else:
            positive("dense_layers", self.dense_layers)
        if self.state_downsample not in STATE_DOWNSAMPLE_MODES:
            raise ValueError(
                f"GRUUNetConfig.state_downsample must be one of {STATE_DOWNSAMPLE_MODES}, "
                f"got {self.state_downsample!r}"
            )

    # ----------------------------------------------------------------- derived quantities
    @property
    def num_scales(self) -> int:
        """S: number of down-sampling scales (encoder FRDUs)."""
        return len(self.encoder_widths)

    @property
    def num_steps(self) -> int:
        """Number of FRDUs, i.e. of updates of the GRU state h (2S - 1)."""
        return len(self.encoder_widths) + len(self.decoder_widths)

    @property
    def size_multiple(self) -> int:
        """Input sizes that are multiples of this (2**S) need no padding."""
        return 2**self.num_scales

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels of o for every FRDU, in order (encoder then decoder)."""
        return self.encoder_widths + self.decoder_widths

    @property
    def frdu_factors(self) -> tuple[int, ...]:
        """Scale factor of every FRDU: (2, 4, ..., 2**S, 2**(S-1), ..., 2)."""
        return tuple(frdu_factors(self.num_scales))

    @property
    def dense_layers_per_step(self) -> tuple[int, ...]:
        """Number of dense layers of every FRDU, in order."""
        if isinstance(self.dense_layers, int):
            return (self.dense_layers,) * self.num_steps
        return self.dense_layers

    # ----------------------------------------------------------------- construction
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GRUUNetConfig:
        """The named preset ("blog", "paper", "small", "tiny"), with any field overridden."""
        if name not in _PRESET_FIELDS:
            raise ValueError(f"unknown preset {name!r}; choose one of {PRESETS}")
        return cls(**{**_PRESET_FIELDS[name], **overrides})

    def replace(self, **changes: Any) -> GRUUNetConfig:
        """A copy with some fields changed (the config itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists); inverse of ``from_dict``."""
        d = dataclasses.asdict(self)
        for key, value in d.items():
            if isinstance(value, tuple):
                d[key] = list(value)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GRUUNetConfig:
        """Rebuild a config from ``to_dict()`` output; unknown keys raise ValueError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown GRUUNetConfig fields {unknown}; known: {sorted(names)}")
        return cls(**d)
