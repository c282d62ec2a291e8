"""Principal components of a hidden state: every pixel is a C_h-vector, three directions as RGB.

For a state h (C_h, H, W) the N = H*W pixels are samples x_n in R^{C_h}. With mean m and
covariance Sigma = 1/N sum_n (x_n - m)(x_n - m)^T = V diag(lambda_1 >= lambda_2 >= ...) V^T,
the scores s_n = V_{:3}^T (x_n - m) are shown as red, green, blue, and

    explained variance ratio of component i = lambda_i / sum_j lambda_j    (decreasing in i).

A basis fitted on the states of all steps together ("shared") gives a colour the same meaning at
every step; the share of one step's variance along shared component i is then
var_n(s_{n,i}) / sum_c var_n(x_{n,c}), which need not decrease with i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PCAView", "principal_components", "pca_view"]

RGB_NAMES = ("red", "green", "blue")


@dataclass(frozen=True)
class PCAView:
    """Principal components of one state ``h_t`` (pixels are samples, channels are features).

    ``rgb`` (H, W, 3) in [0, 1]: the first three components as red, green, blue, all three
    scaled by the same factor so that red varies most; ``scores`` (H, W, 3) the raw projections;
    ``explained_variance_ratio`` (3,): the share of this state's variance along each component
    (decreasing when the basis was fitted on this state); ``components`` (3, C_h) unit vectors;
    ``basis_ratio`` (3,): the ratios of the fit itself (for a shared basis: of all steps
    together), always in decreasing order.
    """

    rgb: np.ndarray  # (H, W, 3)
    scores: np.ndarray  # (H, W, 3)
    explained_variance_ratio: np.ndarray  # (3,)
    components: np.ndarray  # (3, C_h)
    basis_ratio: np.ndarray  # (3,)

    def describe(self) -> str:
        """``"PC1 (red) 61%, PC2 (green) 20%, PC3 (blue) 9% of the variance"``."""
        parts = [
            f"PC{i + 1} ({RGB_NAMES[i]}) {ratio:.0%}"
            for i, ratio in enumerate(self.explained_variance_ratio)
        ]
        return ", ".join(parts) + " of the variance"


def principal_components(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (C,), first 3 components (3, C) and their explained variance ratios (3,).

    ``pixels`` is (N, C). Components beyond the rank (or beyond C) are zero vectors with ratio 0;
    each component's largest loading is positive, so the picture does not flicker between fits.
    """
    n, c = pixels.shape
    mean = pixels.mean(axis=0)
    centred = pixels - mean
    cov = centred.T @ centred / max(n, 1)  # (C, C)
    eigval, eigvec = np.linalg.eigh(cov)  # ascending
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
    total = eigval.sum()
    components = np.zeros((3, c))
    ratio = np.zeros(3)
    for i in range(min(3, c)):
        if total <= 0 or eigval[i] <= 1e-12 * total:
            break
        v = eigvec[:, i]
        if v[np.argmax(np.abs(v))] < 0:  # deterministic sign
            v = -v
        components[i] = v
        ratio[i] = eigval[i] / total
    return mean, components, ratio


def pca_view(
    state: np.ndarray,
    basis: tuple[np.ndarray, np.ndarray, float, np.ndarray] | None = None,
) -> PCAView:
    """The PCA picture of one state (C_h, H, W).

    ``basis=None`` fits the components on this state; otherwise ``basis`` is
    ``(mean, components, scale, ratio)`` fitted elsewhere (e.g. on all steps), and ``scale`` the
    score that maps to full colour, so several states share one colour scale.
    """
    c, h, w = state.shape
    pixels = state.reshape(c, h * w).T.astype(np.float64)  # (N, C)
    if basis is None:
        mean, components, ratio = principal_components(pixels)
        scores = (pixels - mean) @ components.T  # (N, 3)
        scale = float(np.abs(scores).max())
        basis_ratio = ratio
    else:
        mean, components, scale, basis_ratio = basis
        centred = pixels - mean
        scores = centred @ components.T  # (N, 3)
        total = centred.var(axis=0).sum()
        ratio = scores.var(axis=0) / total if total > 0 else np.zeros(3)
    rgb = 0.5 + 0.5 * scores / scale if scale > 0 else np.full_like(scores, 0.5)
    return PCAView(
        rgb=np.clip(rgb, 0.0, 1.0).reshape(h, w, 3).astype(np.float32),
        scores=scores.reshape(h, w, 3).astype(np.float32),
        explained_variance_ratio=np.asarray(ratio, dtype=np.float64),
        components=components.astype(np.float32),
        basis_ratio=np.asarray(basis_ratio, dtype=np.float64),
    )
