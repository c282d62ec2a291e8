"""Hidden-state explorer: look inside GRUU-Net's recurrent state, one FRDU step at a time.

GRUU-Net (Wollmann et al., 2019) keeps one full-resolution state ``h_t`` (C_h channels): the stem
computes h_0, and FRDU step t = 1, ..., 2S-1 refines it with a convolutional GRU:

    z_t = sigmoid(W_z * x_t + U_z * h_{t-1} + b_z)            update gate
    r_t = sigmoid(W_r * x_t + U_r * h_{t-1} + b_r)            reset gate
    h~_t = LeakyReLU_0.2(W_h * x_t + U_h * (r_t . h_{t-1}) + b_h)
    h_t = (1 - z_t) . h_{t-1} + z_t . h~_t

Because every ``h_t`` has the shape of the final state, the network's head (residual block + 3x3
convolution, ``model.readout``) can read any of them: ``softmax(readout(h_t))`` is what the network
would predict if it stopped after step t.

:class:`HiddenStateExplorer` runs the model once (``forward(x, return_states=True)``), caches the
per-step arrays and answers "which array goes with this step / channel / view" as plain NumPy, so
it is unit-tested without a browser. Steps are numbered as in the paper's equations, t = 1 for the
first FRDU to t = 2S-1 for the last (``explorer.steps``). The pictures are made by
:mod:`gruunet_edu.viz.render`, the PCA by :mod:`gruunet_edu.viz.pca`, and
:mod:`gruunet_edu.viz.explorer_widget` wraps explorers in ipywidgets for JupyterLab.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from gruunet_edu.evaluation.inference import check_no_nan, eval_mode
from gruunet_edu.viz.pca import PCAView, pca_view, principal_components
from gruunet_edu.viz.readout import GATES, gate_means, readout_per_step
from gruunet_edu.viz.render import (
    CLASS_COLOURS,
    GATE_CMAP,
    OUTLINE_COLOUR,
    STATE_CMAP,
    colourise,
    outline,
    probs_to_rgb,
)

__all__ = ["GATES", "HiddenStateExplorer", "PCAView"]


def _as_batch(image: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Turn (H, W), (C, H, W) or (1, C, H, W) into a float32 (1, C, H, W) tensor."""
    x = torch.as_tensor(image)
    if not torch.is_floating_point(x):
        raise ValueError(f"the image must be floating point (got {x.dtype}); normalise it first")
    if x.ndim == 2:
        x = x[None, None]  # (1, 1, H, W)
    elif x.ndim == 3:
        x = x[None]  # (1, C, H, W)
    elif x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(
            f"the explorer looks at one image: expected (H, W), (C, H, W) or (1, C, H, W), "
            f"got shape {tuple(x.shape)}"
        )
    return x.float()


def _display_image(x: torch.Tensor) -> np.ndarray:
    """Grey (H, W) version of the input in [0, 1] for overlays (1st-99th percentile stretch)."""
    grey = x[0].mean(dim=0).numpy().astype(np.float32)  # (H, W)
    lo, hi = np.percentile(grey, [1.0, 99.0])
    if hi - lo < 1e-8:
        return np.zeros_like(grey)
    return np.clip((grey - lo) / (hi - lo), 0.0, 1.0)


class HiddenStateExplorer:
    """Per-step arrays of a GRUU-Net forward pass on one image, without any widgets.

    Args:
        model: a GRUU-Net (``forward(x, return_states=True)`` and ``readout(h)``).
        image: the input, (H, W), (C, H, W) or (1, C, H, W), floating point and normalised as
            for training (e.g. ``percentile_normalize``); sizes that are not a multiple of the
            model's ``size_multiple`` are padded and cropped back by the model.
        truth: optional instance labels or 3-class map (H, W) for per-step Dice and outlines.
        device: where to run the forward pass (default: where the model's parameters are).

    The forward pass runs once, in eval mode and without gradients; the states ``h_t``, gates
    ``z_t``, ``r_t`` and read-outs are cached as float32 NumPy arrays. ``step`` is t of the
    equations: 1 for the first FRDU, ``num_steps`` (= 2S-1) for the last; h_0 is the stem.
    """

    def __init__(
        self,
        model: nn.Module,
        image: np.ndarray | torch.Tensor,
        truth: np.ndarray | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not hasattr(model, "readout"):
            raise ValueError("the explorer needs a GRUU-Net: the model has no readout(h) method")
        check_no_nan(image, "the explorer's image")
        self.model = model
        x = _as_batch(image)  # (1, C, H, W)
        if device is None:
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
        self.device = torch.device(device)
        self.image = _display_image(x)  # (H, W) in [0, 1]
        if truth is not None:
            truth = np.asarray(truth)
            if truth.shape != self.image.shape:
                raise ValueError(
                    f"truth has shape {truth.shape} but the image is {self.image.shape}"
                )
        self.truth = truth

        with eval_mode(model), torch.no_grad():
            logits, states = model(x.to(self.device), return_states=True)
        if len(states) == 0:
            raise ValueError("the model returned no states")
        self.states = states  # list[FRDUStep], tensors (1, C, H, W)
        self.final_probs = torch.softmax(logits.float(), dim=1)[0].cpu().numpy()  # (K, H, W)
        # Per-step caches, (T, C_h, H, W) float32 on the CPU; row t-1 holds step t.
        self._h = np.stack([s.h[0].float().cpu().numpy() for s in states])
        self._z = np.stack([s.z[0].float().cpu().numpy() for s in states])
        self._r = np.stack([s.r[0].float().cpu().numpy() for s in states])
        self._readouts: dict[int, np.ndarray] = {}
        self._pca: dict[tuple[int, str], PCAView] = {}
        self._shared_basis: tuple[np.ndarray, np.ndarray, float, np.ndarray] | None = None

    # ------------------------------------------------------------------ sizes and validation
    @property
    def num_steps(self) -> int:
        """T = 2S-1: the number of FRDU steps (= captured states); steps are 1 ... T."""
        return int(self._h.shape[0])

    @property
    def steps(self) -> range:
        """The step numbers t = 1, ..., 2S-1 (h_0 is the stem, not an FRDU step)."""
        return range(1, self.num_steps + 1)

    @property
    def num_channels(self) -> int:
        """Channels C_h of the full-resolution state."""
        return int(self._h.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial size (H, W) of the image and of every state."""
        return (int(self._h.shape[2]), int(self._h.shape[3]))

    def _check_step(self, step: int) -> int:
        """Validate a step number t in 1 ... T and return its row index t - 1."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ValueError(f"step must be an integer, got {step!r}")
        if not 1 <= step <= self.num_steps:
            raise ValueError(
                f"step {step} is out of range: this model has {self.num_steps} FRDU steps, "
                f"t = 1 to {self.num_steps} (h_0 is the stem, not a step)"
            )
        return int(step) - 1

    def _check_channel(self, channel: int) -> int:
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
            raise ValueError(f"channel must be an integer, got {channel!r}")
        if not 0 <= channel < self.num_channels:
            raise ValueError(
                f"channel {channel} is out of range: the state has {self.num_channels} channels, "
                f"use 0 to {self.num_channels - 1}"
            )
        return int(channel)

    def step_name(self, step: int) -> str:
        """A short description such as ``"step t = 3 of 5: encoder FRDU, pooling factor 8"``."""
        i = self._check_step(step)
        config = getattr(self.model, "config", None)
        factors = tuple(getattr(config, "frdu_factors", ()) or ())
        text = f"step t = {i + 1} of {self.num_steps}"
        if len(factors) == self.num_steps:
            num_enc = int(np.argmax(factors)) + 1
            part = "encoder" if i < num_enc else "decoder"
            text += f": {part} FRDU, pooling factor {factors[i]}"
        return text

    # ------------------------------------------------------------------ arrays per widget value
    def state(self, step: int) -> Any:
        """The captured ``FRDUStep`` (tensors h, z, r, o) of one step."""
        return self.states[self._check_step(step)]  # states[t - 1] holds step t

    def channel_image(self, step: int, channel: int) -> np.ndarray:
        """One channel of the state: ``h_t[channel]``, (H, W) float32 (= states[t - 1].h[0, c])."""
        i, channel = self._check_step(step), self._check_channel(channel)
        return self._h[i, channel]

    def channel_range(self, channel: int) -> float:
        """max |h_t[channel]| over all steps: a fixed colour scale while the slider moves."""
        channel = self._check_channel(channel)
        return float(np.abs(self._h[:, channel]).max())

    def pca(self, step: int, basis: str = "step") -> PCAView:
        """PCA of the state at ``step``: every pixel is a C_h-vector, projected on 3 components.

        ``basis="step"`` fits the components on this step's state alone; ``basis="shared"`` fits
        them once on all steps, so a colour means the same direction of state space at every
        step (and one colour scale is used for all steps). Signs are fixed (largest loading
        positive) so the picture does not flicker.
        """
        i = self._check_step(step)
        if basis not in ("step", "shared"):
            raise ValueError(f"basis must be 'step' or 'shared', got {basis!r}")
        key = (i, basis)
        if key not in self._pca:
            shared = self._shared() if basis == "shared" else None
            self._pca[key] = pca_view(self._h[i], shared)  # (C_h, H, W) -> PCAView
        return self._pca[key]

    def _shared(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
        """Mean, components, colour scale and ratios fitted on the states of all steps together."""
        if self._shared_basis is None:
            s, c, h, w = self._h.shape
            pixels = self._h.transpose(0, 2, 3, 1).reshape(s * h * w, c)  # (T*N, C)
            stride = max(1, pixels.shape[0] // 200_000)
            pixels = pixels[::stride].astype(np.float64)
            mean, components, ratio = principal_components(pixels)
            scale = float(np.abs((pixels - mean) @ components.T).max())
            self._shared_basis = (mean, components, scale, ratio)
        return self._shared_basis

    def pca_rgb(self, step: int, basis: str = "step") -> np.ndarray:
        """The state at ``step`` as RGB: first 3 principal components, (H, W, 3) in [0, 1]."""
        return self.pca(step, basis).rgb

    def gate_image(self, step: int, which: str = "z", channel: int | None = None) -> np.ndarray:
        """Update gate ``z_t`` or reset gate ``r_t`` at ``step``, (H, W) in [0, 1].

        ``channel=None`` averages over the C_h channels; an integer picks one channel.
        """
        i = self._check_step(step)
        if which not in GATES:
            raise ValueError(f"which must be 'z' (update gate) or 'r' (reset gate), got {which!r}")
        gates = self._z if which == "z" else self._r
        if channel is None:
            return gates[i].mean(axis=0)
        return gates[i, self._check_channel(channel)]

    def gate_means(self, which: str = "z") -> np.ndarray:
        """Mean of the gate over channels and pixels at every step t = 1 ... T, shape (T,)."""
        return gate_means(self.states, which).astype(np.float32)

    def readout(self, step: int) -> np.ndarray:
        """Class probabilities if the network stopped after ``step``: softmax(model.readout(h_t)).

        Returns (K, H, W) float32; computed on first use and cached.
        """
        i = self._check_step(step)
        if i not in self._readouts:
            (probs,) = readout_per_step(self.model, [self.states[i]])  # (K, H, W)
            self._readouts[i] = probs.astype(np.float32)
        return self._readouts[i]

    def segmentation(self, step: int) -> np.ndarray:
        """Most likely class per pixel of the read-out at ``step``, (H, W) int64."""
        return self.readout(step).argmax(axis=0)

    def dice(self, step: int) -> float:
        """Foreground Dice of the read-out at ``step`` against ``truth`` (needs ``truth``)."""
        from ..evaluation.metrics import dice_score

        if self.truth is None:
            raise ValueError("no ground truth: create the explorer with truth=labels to get Dice")
        return dice_score(self.segmentation(step), self.truth)  # non-zero = foreground

    def dice_per_step(self) -> np.ndarray:
        """Foreground Dice of the read-out after every step t = 1 ... T, shape (T,)."""
        return np.array([self.dice(t) for t in self.steps])

    def overlay(self, step: int, alpha: float = 0.45) -> np.ndarray:
        """The read-out at ``step`` on the grey image, (H, W, 3) in [0, 1].

        Each pixel is blended towards the class colours (interior green, boundary magenta) by
        ``alpha`` times its foreground probability; with ground truth, the true foreground
        outline is drawn in yellow (``render.OUTLINE_COLOUR``).
        """
        probs = self.readout(step)  # (K, H, W)
        grey = np.repeat(self.image[..., None], 3, axis=2)  # (H, W, 3)
        k = min(probs.shape[0], len(CLASS_COLOURS))
        colour = np.tensordot(probs[1:k].transpose(1, 2, 0), CLASS_COLOURS[1:k], axes=1)
        weight = alpha * probs[1:k].sum(axis=0)[..., None]  # (H, W, 1)
        out = (1.0 - weight) * grey + weight * colour
        if self.truth is not None:
            out[outline(self.truth > 0)] = OUTLINE_COLOUR
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------------ static figure
    def plot_steps(
        self,
        steps: list[int] | None = None,
        rows: tuple[str, ...] = ("pca", "z", "r", "overlay"),
        size: float = 1.8,
    ) -> Any:
        """A matplotlib grid: one column per step, one row per view ("pca", "channel0", "z", "r",
        "readout" or "overlay"). Returns the figure (static, for pages where widgets do not run)."""
        import matplotlib.pyplot as plt

        if steps is None:
            steps = list(self.steps)
        for s in steps:
            self._check_step(s)
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        fig, axes = plt.subplots(
            len(rows),
            len(steps),
            figsize=(size * len(steps) + 1.0, size * len(rows)),
            squeeze=False,
            layout="constrained",
        )
        titles = {"pca": "h_t (PCA)", "z": "z_t (mean)", "r": "r_t (mean)", "overlay": "read-out"}
        for j, step in enumerate(steps):
            for i, row in enumerate(rows):
                ax = axes[i, j]
                ax.imshow(self._panel(step, row))
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"t = {step}", fontsize=9)
                if j == 0:
                    ax.set_ylabel(titles.get(row, row), fontsize=9)
        for i, row in enumerate(rows):  # a colour bar for every row that shows numbers
            scale = self._panel_scale(row)
            if scale is not None:
                vmin, vmax, cmap = scale
                mappable = ScalarMappable(Normalize(vmin, vmax), cmap)
                fig.colorbar(mappable, ax=list(axes[i]), shrink=0.9, aspect=10, pad=0.01)
        return fig

    def _panel_scale(self, row: str) -> tuple[float, float, str] | None:
        """(vmin, vmax, colour map) of a row of ``plot_steps``; None for RGB rows."""
        if row in GATES:
            return 0.0, 1.0, GATE_CMAP
        if row.startswith("channel") and row[len("channel") :].isdigit():
            vmax = self.channel_range(int(row[len("channel") :])) or 1.0
            return -vmax, vmax, STATE_CMAP
        return None

    def _panel(self, step: int, row: str) -> np.ndarray:
        """The RGB (H, W, 3) picture of one view at one step; used by plot_steps."""
        if row == "pca":
            return self.pca_rgb(step, "shared")
        if row in GATES:
            return colourise(self.gate_image(step, row), 0.0, 1.0, GATE_CMAP)
        if row == "overlay":
            return self.overlay(step)
        if row == "readout":
            return probs_to_rgb(self.readout(step))
        if row.startswith("channel") and row[len("channel") :].isdigit():
            c = self._check_channel(int(row[len("channel") :]))
            vmax = self.channel_range(c) or 1.0
            return colourise(self.channel_image(step, c), -vmax, vmax, STATE_CMAP)
        raise ValueError(f"unknown row {row!r}: use pca, channel<N>, z, r, readout or overlay")
