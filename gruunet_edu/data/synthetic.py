"""Synthetic 2D fluorescence nuclei: the course's sample data, no download needed.

A sample is an image (float32, about [0, 1]) and its instance labels (uint16, 0 = background,
1..N = nuclei). The image is built the way a widefield fluorescence image forms:

1. nuclei are irregular ellipses: in the nucleus frame (rotated by theta, axes a >= b) a pixel at
   normalised polar coordinates (rho, phi) is inside when

       rho < R(phi) = 1 + sum_k A_k cos(k phi + phi_k),    k = 2, 3, 4

   (a few low-frequency harmonics make the outline irregular; k = 1 would only shift the centre);
2. some nuclei are placed touching an earlier one (clusters), a few are small and very bright
   (mitotic-like, brighter than the detector's saturation), the rest are spread over the image.
   Every image draws its own size scale s (log-uniform in `scale`): radii are multiplied by s and
   the density divided by s^2, so one image holds small nuclei and another large ones, as
   images at other magnifications do. Brightness is log-uniform in `brightness`, so within one
   image dim nuclei at a tenth of the brightest lie next to bright ones; a share
   `alike_fraction` of the touching nuclei is instead about as bright as the nucleus it touches
   (within a factor `ALIKE_RATIO`), so that only the seam tells the pair apart (the training
   data, ``SyntheticConfig.training()``, draws them; the default task does not);
3. overlaps are resolved by drawing order (a later nucleus lies on top); every label is then reduced
   to its largest 4-connected piece, labels smaller than `min_area` or hidden under later nuclei
   to less than `min_visible` of the area they were drawn with are dropped (from the image too: a
   sliver that no annotator would outline is no nucleus), and the rest are renumbered 1..N, so
   each label is one connected component;
4. intensity = brightness x radial profile x chromatin-like texture x illumination, blurred by
   the point-spread function (a Gaussian; out-of-focus nuclei get a wider one), on top of an
   uneven background. Where two nuclei touch, a thin seam (the pixels of either nucleus next to
   the other) is darker by a factor 1 - `seam`, as the membranes between pressed nuclei are in a
   real image (after a PSF of sigma 1 a 2-pixel seam keeps about 2/3 of its depth: at 30-60 % it
   stays visible above the chromatin texture, where a human annotator would also split the pair);
   the illumination is a smooth multiplicative field (uneven excitation, vignetting) of
   amplitude `illumination`; small unlabelled specks (`debris`), some of them very bright, are
   added as well;
5. Poisson-Gaussian noise: shot noise with variance intensity / photons plus Gaussian read noise,
   drawn in the normal approximation of the Poisson counts (Foi et al., "Practical
   Poissonian-Gaussian noise modeling", IEEE TIP 2008); at the default 200 photons for intensity 1
   the background still collects about 16 photons, where the approximation is close;
6. with ``bit_depth`` 8 or 16, the image is what a camera stores: counts = offset + gain * I,
   rounded and clipped to the range (saturation -> 255 for 8 bit; for 16 bit a random full
   scale between 4095 and 65535, as 12- to 16-bit sensors give), as uint8 or uint16.

Everything is vectorised numpy/scipy (one small Python loop over nuclei, each working on its own
bounding box), so a 256 x 256 sample takes a few milliseconds on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from .synthetic_config import SYNTHETIC_PRESETS, SyntheticConfig

__all__ = [
    "SAMPLE_KINDS",
    "SYNTHETIC_PRESETS",
    "SyntheticConfig",
    "make_nuclei",
    "make_nuclei_sequence",
    "sample_kinds",
]

SeedLike = int | Sequence[int] | np.random.SeedSequence

_HARMONICS = np.array([2.0, 3.0, 4.0], dtype=np.float32)  # k in R(phi)
_TEXTURE_TILE = 96  # side of the periodic chromatin texture tile (px)


@dataclass
class _Nuclei:
    """Parameters of N nuclei (one entry per nucleus, in drawing order)."""

    cy: np.ndarray  # (N,) centre row
    cx: np.ndarray  # (N,) centre column
    a: np.ndarray  # (N,) semi-major axis
    b: np.ndarray  # (N,) semi-minor axis
    theta: np.ndarray  # (N,) orientation (rad)
    amps: np.ndarray  # (N, K) harmonic amplitudes A_k
    phases: np.ndarray  # (N, K) harmonic phases phi_k
    bright: np.ndarray  # (N,) brightness
    defocus: np.ndarray  # (N,) bool, out of focus
    tex_offset: np.ndarray  # (N, 2) offset into the texture tile

    def __len__(self) -> int:
        return len(self.cy)


def _resolve(config: SyntheticConfig | None, overrides: dict[str, Any]) -> SyntheticConfig:
    config = SyntheticConfig() if config is None else config
    return config.replace(**overrides) if overrides else config


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int | None = None):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


ALIKE_RATIO = 1.15  # alike nuclei differ in brightness by at most this factor


def _sample_nuclei(rng: np.random.Generator, cfg: SyntheticConfig) -> _Nuclei:
    """Draw the number, shape, brightness and position of the nuclei."""
    h, w = cfg.shape
    scale = float(_log_uniform(rng, *cfg.scale))  # this image's size factor
    # at least one nucleus (for density > 0), so that small images are never empty
    n = int(rng.poisson(cfg.density * h * w / 1e4 / scale**2))
    n = max(n, 1) if cfg.density > 0 else 0
    r_lo, r_hi = cfg.radius[0] * scale, cfg.radius[1] * scale
    mitotic = rng.random(n) < cfg.mitotic_fraction
    # size, elongation (area-preserving: a*b = r^2), orientation
    r = rng.uniform(r_lo, r_hi, n)
    # mitotic-like nuclei: about half this image's typical radius (never below what post-processing
    # keeps at the smallest scale)
    r[mitotic] = rng.uniform(0.45, 0.65, int(mitotic.sum())) * 0.5 * (r_lo + r_hi)
    e = rng.uniform(*cfg.elongation, n)
    e[mitotic] = np.minimum(e[mitotic], 1.25)
    a, b = r * np.sqrt(e), r / np.sqrt(e)
    theta = rng.uniform(0.0, np.pi, n)
    # irregular outline: amplitudes fall off with the harmonic number
    k = _HARMONICS.size
    amps = cfg.irregularity * rng.uniform(0.3, 1.0, (n, k)) / np.arange(1, k + 1) ** 0.5
    amps[mitotic] *= 0.5
    phases = rng.uniform(0.0, 2 * np.pi, (n, k))
    # brightness, log-uniform: as many nuclei between 0.1 and 0.2 as between 0.4 and 0.8;
    # mitotic-like nuclei (condensed chromatin) exceed the detector's saturation
    bright = _log_uniform(rng, *cfg.brightness, n)
    top = 1.0 if cfg.saturation is None else cfg.saturation
    bright[mitotic] = rng.uniform(*cfg.mitotic_brightness, int(mitotic.sum())) * top
    defocus = (rng.random(n) < cfg.defocus_fraction) & ~mitotic
    tex_offset = rng.integers(0, _TEXTURE_TILE, (n, 2))
    # positions: clustered (touching an earlier nucleus) or spread (few overlaps)
    cluster = rng.random(n) < cfg.cluster_fraction
    cand_y = rng.uniform(-0.5 * r_lo, h + 0.5 * r_lo, (n, 8))
    cand_x = rng.uniform(-0.5 * r_lo, w + 0.5 * r_lo, (n, 8))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    parent_u = rng.random(n)
    overlap = rng.uniform(0.0, 2.0 * cfg.touch_overlap, n).clip(0.0, 0.6)
    cy, cx = np.empty(n), np.empty(n)
    parent = np.full(n, -1)
    reach = a * (1.0 + amps.sum(1))  # outer radius of each nucleus
    for i in range(n):
        if i > 0 and cluster[i]:
            j = int(parent_u[i] * i)  # touch nucleus j: centres at about the sum of the radii
            parent[i] = j
            d = (1.0 - overlap[i]) * (r[i] + r[j])
            cy[i] = cy[j] + d * np.sin(angle[i])
            cx[i] = cx[j] + d * np.cos(angle[i])
        elif i > 0:
            # best of 8 candidates: the one farthest (relative to the radii) from all others
            dist = np.hypot(cand_y[i, :, None] - cy[:i], cand_x[i, :, None] - cx[:i])  # (8, i)
            ratio = (dist / (reach[i] + reach[:i])).min(1)  # (8,)
            best = int(np.argmax(ratio >= 1.0)) if (ratio >= 1.0).any() else int(np.argmax(ratio))
            cy[i], cx[i] = cand_y[i, best], cand_x[i, best]
        else:  # the first nucleus lies well inside the image
            cy[i] = np.clip(cand_y[i, 0], min(r[i], h / 2), max(h - r[i], h / 2))
            cx[i] = np.clip(cand_x[i, 0], min(r[i], w / 2), max(w - r[i], w / 2))
    if cfg.alike_fraction > 0:  # drawn last: the other draws stay those of alike_fraction 0
        touching = (parent >= 0) & ~mitotic & ~mitotic[parent]  # neither of the pair mitotic
        alike = (rng.random(n) < cfg.alike_fraction) & touching
        factor = _log_uniform(rng, 1 / ALIKE_RATIO, ALIKE_RATIO, n)
        for i in np.flatnonzero(alike):  # in order: a chain of touching nuclei stays alike
            bright[i] = bright[parent[i]] * factor[i]
    return _Nuclei(cy, cx, a, b, theta, amps, phases, bright, defocus, tex_offset)


def _texture_tile(rng: np.random.Generator, texture: float) -> np.ndarray:
    """A periodic chromatin-like texture: smoothed noise, mean 1 (T x T)."""
    noise = rng.standard_normal((_TEXTURE_TILE, _TEXTURE_TILE), dtype=np.float32)
    tex = ndimage.gaussian_filter(noise, 1.3, mode="wrap")
    tex *= texture / (tex.std() + 1e-6)
    return np.clip(1.0 + tex, 0.3, None).astype(np.float32)


def _background(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    """Smooth uneven background: mean level plus a smooth field (H, W)."""
    field = _smooth_field(rng, cfg.shape)
    return (cfg.background + cfg.background_variation * field).astype(np.float32)


def _rasterize(nuc: _Nuclei, shape: tuple[int, int], tile: np.ndarray):
    """Draw the nuclei in order; returns raw ids (0 or i+1), relative radius and texture maps, and
    the area every nucleus covered when it was drawn (before later nuclei hid part of it)."""
    h, w = shape
    drawn = np.zeros(len(nuc), np.int64)  # (n,) px inside the image
    ids = np.zeros(shape, np.int32)  # (H, W)
    rel = np.zeros(shape, np.float32)  # rho / R(phi), in [0, 1) inside a nucleus
    tex = np.ones(shape, np.float32)
    t = tile.shape[0]
    for i in range(len(nuc)):
        cy, cx = nuc.cy[i], nuc.cx[i]
        reach = nuc.a[i] * (1.0 + nuc.amps[i].sum()) + 1.0
        y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, h)
        x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]  # (h, 1)
        xx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]  # (1, w)
        c, s = np.float32(np.cos(nuc.theta[i])), np.float32(np.sin(nuc.theta[i]))
        u = (xx * c + yy * s) / np.float32(nuc.a[i])  # (h, w) along the major axis
        v = (yy * c - xx * s) / np.float32(nuc.b[i])  # along the minor axis
        rho = np.sqrt(u * u + v * v)
        phi = np.arctan2(v, u)
        # R(phi) = 1 + sum_k A_k cos(k phi + phi_k)
        radius = 1.0 + np.cos(phi[..., None] * _HARMONICS + nuc.phases[i].astype(np.float32)) @ (
            nuc.amps[i].astype(np.float32)
        )
        inside = rho < radius
        if not inside.any():
            continue
        ids[y0:y1, x0:x1][inside] = i + 1
        drawn[i] = int(inside.sum())
        rel[y0:y1, x0:x1][inside] = (rho / radius)[inside]
        # texture moves with the nucleus: index the periodic tile in nucleus coordinates
        ty = (np.arange(y0, y1) - int(cy) + nuc.tex_offset[i, 0]) % t
        tx = (np.arange(x0, x1) - int(cx) + nuc.tex_offset[i, 1]) % t
        tex[y0:y1, x0:x1][inside] = tile[np.ix_(ty, tx)][inside]
    return ids, rel, tex, drawn


def _cleanup(ids: np.ndarray, min_area: int, drawn: np.ndarray, min_visible: float) -> np.ndarray:
    """Keep the largest 4-connected piece of every label and drop labels below `min_area` or below
    ``min_visible`` of their area when drawn (``drawn``, (n,), from `_rasterize`)."""
    for i, sl in enumerate(ndimage.find_objects(ids)):
        if sl is None:
            continue
        region = ids[sl]
        mask = region == i + 1
        pieces, n = ndimage.label(mask)
        if n > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            mask &= pieces != int(np.argmax(sizes))
            region[mask] = 0  # drop the smaller pieces
            mask = region == i + 1
        area = int(mask.sum())
        if area < min_area or area < min_visible * drawn[i]:
            region[mask] = 0
    return ids


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a tilted plane plus two broad Gaussian bumps."""
    h, w = shape
    y = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]  # (H, 1)
    x = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]  # (1, W)
    gy, gx = rng.uniform(-1.0, 1.0, 2)
    field = gy * y + gx * x  # (H, W)
    for _ in range(2):
        my, mx = rng.uniform(-0.5, 0.5, 2)
        sigma = rng.uniform(0.2, 0.4)
        amp = rng.uniform(-1.0, 1.0)
        field = field + amp * np.exp(-((y - my) ** 2) / (2 * sigma**2)) * np.exp(
            -((x - mx) ** 2) / (2 * sigma**2)
        )
    return field.astype(np.float32)


def _seams(ids: np.ndarray) -> np.ndarray:
    """Pixels of a nucleus with a 4-neighbour in another nucleus (bool (H, W))."""
    seam = np.zeros(ids.shape, bool)
    for axis in (0, 1):
        a = ids[1:, :] if axis == 0 else ids[:, 1:]
        b = ids[:-1, :] if axis == 0 else ids[:, :-1]
        touch = (a != b) & (a > 0) & (b > 0)
        if axis == 0:
            seam[1:, :] |= touch
            seam[:-1, :] |= touch
        else:
            seam[:, 1:] |= touch
            seam[:, :-1] |= touch
    return seam


def _debris(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    """Unlabelled specks: small Gaussian spots, log-uniform brightness up to saturation (H, W)."""
    h, w = cfg.shape
    out = np.zeros((h, w), np.float32)
    n = int(rng.poisson(cfg.debris * h * w / 1e4))
    if n == 0:
        return out
    fine = rng.random(n) < 0.6  # 60 % sharp specks, the rest larger, softer blobs
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    amp = _log_uniform(rng, 0.05, 1.5, n).astype(np.float32)
    for sigma, part in ((0.8, fine), (1.8, ~fine)):
        if not part.any():
            continue
        spots = np.zeros((h, w), np.float32)
        np.add.at(spots, (ys[part], xs[part]), amp[part] * np.float32(2 * np.pi * sigma**2))
        out += ndimage.gaussian_filter(spots, sigma)  # peak about amp
    return out


def _render(
    ids: np.ndarray,
    rel: np.ndarray,
    tex: np.ndarray,
    nuc: _Nuclei,
    background: np.ndarray,
    cfg: SyntheticConfig,
    rng: np.random.Generator,
    illumination: np.ndarray | None = None,
) -> np.ndarray:
    """Intensity image from the drawn nuclei: texture, seams, illumination, PSF blur, background,
    debris, noise (H, W)."""
    fg = ids > 0
    bright = np.concatenate([[0.0], nuc.bright]).astype(np.float32)[ids]  # (H, W)
    # flat top with a soft fall-off towards the rim, times the chromatin texture
    signal = np.where(fg, bright * (1.0 - 0.3 * rel**4) * tex, np.float32(0.0))
    if cfg.seam[1] > 0:
        depth = np.float32(rng.uniform(*cfg.seam))  # this image's seam contrast
        signal[_seams(ids)] *= np.float32(1.0) - depth
    if illumination is not None:
        signal *= illumination
    defocused = np.concatenate([[False], nuc.defocus])[ids]
    image = background.copy()
    if cfg.blur > 0:
        image += ndimage.gaussian_filter(np.where(defocused, 0.0, signal), cfg.blur)
    else:
        image += np.where(defocused, 0.0, signal)
    if defocused.any():
        image += ndimage.gaussian_filter(np.where(defocused, signal, 0.0), cfg.defocus_blur)
    if cfg.debris > 0:
        image += _debris(rng, cfg)
    image = np.clip(image, 0.0, None)
    if cfg.noise > 0:
        # Poisson-Gaussian noise, variance = I / photons + read^2 (shot noise + read noise), in its
        # normal approximation (Foi et al. 2008): 4x faster than drawing Poisson counts
        photons = 200.0 / cfg.noise**2
        read = 0.01 * cfg.noise
        sd = np.sqrt(image / np.float32(photons) + np.float32(read**2))
        image = image + sd * rng.standard_normal(image.shape, dtype=np.float32)
    if cfg.saturation is not None:
        image = np.clip(image, 0.0, cfg.saturation)
    return image.astype(np.float32, copy=False)


def _illumination(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray | None:
    """Multiplicative illumination field 1 + illumination * field, at least 0.2 (H, W)."""
    if cfg.illumination <= 0:
        return None
    field = 1.0 + np.float32(cfg.illumination) * _smooth_field(rng, cfg.shape)
    return np.clip(field, 0.2, None).astype(np.float32)


def _digitize(image: np.ndarray, cfg: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Camera counts of an image in [0, saturation]: uint8 or uint16 (see the module docstring)."""
    if cfg.bit_depth is None:
        return image
    assert cfg.saturation is not None
    full = 255.0 if cfg.bit_depth == 8 else float(rng.uniform(4095.0, 65535.0))
    offset = float(rng.uniform(0.0, 0.04)) * full  # camera offset (dark level)
    counts = np.rint(offset + image * np.float32((full - offset) / cfg.saturation))
    dtype = np.uint8 if cfg.bit_depth == 8 else np.uint16
    return np.clip(counts, 0, np.iinfo(dtype).max).astype(dtype)


def _consecutive(ids: np.ndarray) -> np.ndarray:
    """Renumber the ids present to 1..N (uint16)."""
    present = np.flatnonzero(np.bincount(ids.ravel(), minlength=1))
    present = present[present > 0]
    lut = np.zeros(int(ids.max()) + 1, np.uint16)
    lut[present] = np.arange(1, present.size + 1, dtype=np.uint16)
    return lut[ids]


def make_nuclei(
    seed: SeedLike = 0,
    config: SyntheticConfig | None = None,
    **overrides: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic fluorescence image with its instance labels.

    Args:
        seed: an int, a sequence of ints (e.g. ``(seed, index)``) or a SeedSequence; the same seed
            always gives the same sample.
        config: `SyntheticConfig` (default: ``SyntheticConfig()``).
        **overrides: fields of the config to change, e.g. ``size=128, density=6``.

    Returns:
        image: float32 (H, W), background about 0.05-0.15, nuclei up to 1 (saturated); with
            ``bit_depth`` 8 or 16, uint8 or uint16 camera counts instead.
        labels: uint16 (H, W), 0 = background, nuclei 1..N (consecutive, each one 4-connected
            component; drawing order: a higher id was drawn later, on top).
    """
    cfg = _resolve(config, overrides)
    rng = np.random.default_rng(seed)
    nuc = _sample_nuclei(rng, cfg)
    tile = _texture_tile(rng, cfg.texture)
    background = _background(rng, cfg)
    illumination = _illumination(rng, cfg)
    ids, rel, tex, drawn = _rasterize(nuc, cfg.shape, tile)
    ids = _cleanup(ids, cfg.min_area, drawn, cfg.min_visible)
    image = _render(ids, rel, tex, nuc, background, cfg, rng, illumination)
    labels = _consecutive(ids)
    return _digitize(image, cfg, rng), labels


def make_nuclei_sequence(
    seed: SeedLike = 0,
    frames: int = 8,
    config: SyntheticConfig | None = None,
    drift: float = 1.5,
    **overrides: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """A short time-lapse: the same nuclei drifting a few pixels per frame.

    Every nucleus gets a constant velocity ~ N(0, drift) px/frame per axis plus a small random
    jitter and rotation each frame; background and texture stay, noise is new in every frame.

    Returns:
        images: float32 (T, H, W) (uint8 / uint16 with ``bit_depth``).
        labels: uint16 (T, H, W); a nucleus keeps its id in every frame. Ids are consecutive over
            the whole sequence (a nucleus that has left the image in one frame is missing there).
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    cfg = _resolve(config, overrides)
    rng = np.random.default_rng(seed)
    nuc = _sample_nuclei(rng, cfg)
    tile = _texture_tile(rng, cfg.texture)
    background = _background(rng, cfg)
    illumination = _illumination(rng, cfg)
    n = len(nuc)
    velocity = rng.normal(0.0, drift, (n, 2))
    h, w = cfg.shape
    dtype = {None: np.float32, 8: np.uint8, 16: np.uint16}[cfg.bit_depth]
    images = np.empty((frames, h, w), dtype)
    ids = np.empty((frames, h, w), np.int32)
    for t in range(frames):
        if t > 0:
            nuc.cy = nuc.cy + velocity[:, 0] + rng.normal(0.0, 0.2 * drift, n)
            nuc.cx = nuc.cx + velocity[:, 1] + rng.normal(0.0, 0.2 * drift, n)
            nuc.theta = nuc.theta + rng.normal(0.0, 0.05, n)
        frame_ids, rel, tex, drawn = _rasterize(nuc, cfg.shape, tile)
        ids[t] = _cleanup(frame_ids, cfg.min_area, drawn, cfg.min_visible)
        frame = _render(ids[t], rel, tex, nuc, background, cfg, rng, illumination)
        images[t] = _digitize(frame, cfg, np.random.default_rng([t, 1]))
    labels = _consecutive(ids)
    return images, labels


# What the sample data covers, one kind per image (shown in notebook 00): config overrides.
SAMPLE_KINDS: dict[str, dict[str, Any]] = {
    "dim next to saturated": dict(mitotic_fraction=0.15, illumination=0.0, scale=(1.0, 1.0)),
    "large nuclei": dict(scale=(2.0, 2.0), density=8.0),
    "touching alike, seams": dict(
        density=9.0, cluster_fraction=0.85, seam=(0.35, 0.35), scale=(1.0, 1.0), alike_fraction=1.0
    ),
    "uneven illumination": dict(illumination=0.8, scale=(1.0, 1.0)),
    "debris": dict(debris=8.0, scale=(1.0, 1.0)),
    "8-bit camera": dict(bit_depth=8),
    "16-bit camera": dict(bit_depth=16),
}


def sample_kinds(
    seed: int = 0, size: int | tuple[int, int] = 160
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One (image, labels) per entry of `SAMPLE_KINDS`: what the sample data holds, kind by kind."""
    return {
        name: make_nuclei((seed, i), SyntheticConfig(), size=size, **changes)
        for i, (name, changes) in enumerate(SAMPLE_KINDS.items())
    }
