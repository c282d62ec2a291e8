"""Hidden-state explorer: look inside GRUU-Net's recurrent state, one FRDU step at a time.

GRUU-Net (Wollmann et al., 2019) keeps one full-resolution state ``h_t`` (C_h channels) that every
Full-Resolution Dense Unit refines with a convolutional GRU:

    z_t = sigmoid(W_z * x_t + U_z * h_{t-1} + b_z)            update gate
    r_t = sigmoid(W_r * x_t + U_r * h_{t-1} + b_r)            reset gate
    h~_t = LeakyReLU_0.2(W_h * x_t + U_h * (r_t . h_{t-1}) + b_h)
    h_t = (1 - z_t) . h_{t-1} + z_t . h~_t

Because every ``h_t`` has the shape of the final state, the network's head (residual block + 1x1
convolution, ``model.readout``) can read any of them: ``softmax(readout(h_t))`` is what the network
would predict if it stopped after step t.

:class:`HiddenStateExplorer` runs the model once (``forward(x, return_states=True)``), caches the
per-step arrays and answers "which array goes with this step / channel / view" as plain NumPy, so
it is unit-tested without a browser. :func:`explorer_widget` wraps it in ipywidgets for JupyterLab:
a step slider, a channel / PCA view of ``h_t``, the gates ``z_t`` and ``r_t``, the read-out and an
overlay on the image, all rendered as PNG bytes in ``ipywidgets.Image`` panels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..evaluation.inference import check_no_nan

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets

__all__ = ["HiddenStateExplorer", "PCAView", "explorer_widget", "array_to_png"]

GATES = ("z", "r")
VIEWS = ("channel", "PCA")
# Colours of the three classes in overlays: background (unused), interior, boundary.
CLASS_COLOURS = np.array([[0.0, 0.0, 0.0], [0.1, 0.9, 0.3], [1.0, 0.2, 0.8]], dtype=np.float32)


@dataclass(frozen=True)
class PCAView:
    """Principal components of one state ``h_t`` (pixels are samples, channels are features).

    ``rgb`` (H, W, 3) in [0, 1]: the first three components as red, green, blue, all three
    scaled by the same factor so that red varies most; ``scores`` (H, W, 3) the raw projections;
    ``explained_variance_ratio`` (3,) in decreasing order; ``components`` (3, C_h) unit vectors.
    """

    rgb: np.ndarray  # (H, W, 3)
    scores: np.ndarray  # (H, W, 3)
    explained_variance_ratio: np.ndarray  # (3,)
    components: np.ndarray  # (3, C_h)


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
    ``z_t``, ``r_t`` and read-outs are cached as float32 NumPy arrays. ``step`` counts FRDUs
    from 0.
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

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits, states = model(x.to(self.device), return_states=True)
        finally:
            model.train(was_training)
        if len(states) == 0:
            raise ValueError("the model returned no states")
        self.states = states  # list[FRDUStep], tensors (1, C, H, W)
        self.final_probs = torch.softmax(logits.float(), dim=1)[0].cpu().numpy()  # (K, H, W)
        # Per-step caches, (S, C_h, H, W) float32 on the CPU.
        self._h = np.stack([s.h[0].float().cpu().numpy() for s in states])
        self._z = np.stack([s.z[0].float().cpu().numpy() for s in states])
        self._r = np.stack([s.r[0].float().cpu().numpy() for s in states])
        self._readouts: dict[int, np.ndarray] = {}
        self._pca: dict[tuple[int, str], PCAView] = {}
        self._shared_basis: tuple[np.ndarray, np.ndarray, float] | None = None

    # ------------------------------------------------------------------ sizes and validation
    @property
    def num_steps(self) -> int:
        """Number of FRDU steps (= number of captured states)."""
        return int(self._h.shape[0])

    @property
    def num_channels(self) -> int:
        """Channels C_h of the full-resolution state."""
        return int(self._h.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial size (H, W) of the image and of every state."""
        return (int(self._h.shape[2]), int(self._h.shape[3]))

    def _check_step(self, step: int) -> int:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ValueError(f"step must be an integer, got {step!r}")
        if not 0 <= step < self.num_steps:
            raise ValueError(
                f"step {step} is out of range: this model has {self.num_steps} FRDU steps, "
                f"use 0 to {self.num_steps - 1}"
            )
        return int(step)

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
        """A short description such as ``"step 2/7: encoder FRDU, pooling factor 8"``."""
        step = self._check_step(step)
        config = getattr(self.model, "config", None)
        factors = tuple(getattr(config, "frdu_factors", ()) or ())
        text = f"step {step}/{self.num_steps - 1}"
        if len(factors) == self.num_steps:
            num_enc = int(np.argmax(factors)) + 1
            part = "encoder" if step < num_enc else "decoder"
            text += f": {part} FRDU, pooling factor {factors[step]}"
        return text

    # ------------------------------------------------------------------ arrays per widget value
    def state(self, step: int) -> Any:
        """The captured ``FRDUStep`` (tensors h, z, r, o) of one step."""
        return self.states[self._check_step(step)]

    def channel_image(self, step: int, channel: int) -> np.ndarray:
        """One channel of the state: ``h_t[channel]``, (H, W) float32 (= states[step].h[0, c])."""
        step, channel = self._check_step(step), self._check_channel(channel)
        return self._h[step, channel]

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
        step = self._check_step(step)
        if basis not in ("step", "shared"):
            raise ValueError(f"basis must be 'step' or 'shared', got {basis!r}")
        key = (step, basis)
        if key not in self._pca:
            c, h, w = self._h.shape[1:]
            pixels = self._h[step].reshape(c, h * w).T.astype(np.float64)  # (N, C)
            if basis == "step":
                mean, components, ratio = _principal_components(pixels)
                scores = (pixels - mean) @ components.T  # (N, 3)
                scale = np.abs(scores).max()
            else:
                mean, components, scale = self._shared()
                centred = pixels - mean
                scores = centred @ components.T  # (N, 3)
                total = centred.var(axis=0).sum()
                ratio = scores.var(axis=0) / total if total > 0 else np.zeros(3)
            rgb = 0.5 + 0.5 * scores / scale if scale > 0 else np.full_like(scores, 0.5)
            self._pca[key] = PCAView(
                rgb=np.clip(rgb, 0.0, 1.0).reshape(h, w, 3).astype(np.float32),
                scores=scores.reshape(h, w, 3).astype(np.float32),
                explained_variance_ratio=np.asarray(ratio, dtype=np.float64),
                components=components.astype(np.float32),
            )
        return self._pca[key]

    def _shared(self) -> tuple[np.ndarray, np.ndarray, float]:
        """Mean, components and colour scale fitted on the states of all steps together."""
        if self._shared_basis is None:
            s, c, h, w = self._h.shape
            pixels = self._h.transpose(0, 2, 3, 1).reshape(s * h * w, c)  # (S*N, C)
            stride = max(1, pixels.shape[0] // 200_000)
            pixels = pixels[::stride].astype(np.float64)
            mean, components, _ = _principal_components(pixels)
            scale = float(np.abs((pixels - mean) @ components.T).max())
            self._shared_basis = (mean, components, scale)
        return self._shared_basis

    def pca_rgb(self, step: int, basis: str = "step") -> np.ndarray:
        """The state at ``step`` as RGB: first 3 principal components, (H, W, 3) in [0, 1]."""
        return self.pca(step, basis).rgb

    def gate_image(self, step: int, which: str = "z", channel: int | None = None) -> np.ndarray:
        """Update gate ``z_t`` or reset gate ``r_t`` at ``step``, (H, W) in [0, 1].

        ``channel=None`` averages over the C_h channels; an integer picks one channel.
        """
        step = self._check_step(step)
        if which not in GATES:
            raise ValueError(f"which must be 'z' (update gate) or 'r' (reset gate), got {which!r}")
        gates = self._z if which == "z" else self._r
        if channel is None:
            return gates[step].mean(axis=0)
        return gates[step, self._check_channel(channel)]

    def gate_means(self, which: str = "z") -> np.ndarray:
        """Mean of the gate over channels and pixels at every step, (S,)."""
        if which not in GATES:
            raise ValueError(f"which must be 'z' (update gate) or 'r' (reset gate), got {which!r}")
        gates = self._z if which == "z" else self._r
        return gates.mean(axis=(1, 2, 3))

    def readout(self, step: int) -> np.ndarray:
        """Class probabilities if the network stopped after ``step``: softmax(model.readout(h_t)).

        Returns (K, H, W) float32; computed on first use and cached.
        """
        step = self._check_step(step)
        if step not in self._readouts:
            h = self.states[step].h.to(self.device)
            was_training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad():
                    logits = self.model.readout(h)  # (1, K, H, W)
            finally:
                self.model.train(was_training)
            probs = torch.softmax(logits.float(), dim=1)[0].cpu().numpy()
            self._readouts[step] = probs.astype(np.float32)
        return self._readouts[step]

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
        """Foreground Dice of the read-out after every step, (S,)."""
        return np.array([self.dice(t) for t in range(self.num_steps)])

    def overlay(self, step: int, alpha: float = 0.45) -> np.ndarray:
        """The read-out at ``step`` on the grey image: interior green, boundary magenta, (H, W, 3).

        With ground truth, its foreground outline is drawn in yellow.
        """
        probs = self.readout(step)  # (K, H, W)
        grey = np.repeat(self.image[..., None], 3, axis=2)  # (H, W, 3)
        k = min(probs.shape[0], len(CLASS_COLOURS))
        colour = np.tensordot(probs[1:k].transpose(1, 2, 0), CLASS_COLOURS[1:k], axes=1)
        weight = alpha * probs[1:k].sum(axis=0)[..., None]  # (H, W, 1)
        out = (1.0 - weight) * grey + weight * colour
        if self.truth is not None:
            out[_outline(self.truth > 0)] = (1.0, 0.9, 0.1)
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
            steps = list(range(self.num_steps))
        steps = [self._check_step(s) for s in steps]
        fig, axes = plt.subplots(
            len(rows), len(steps), figsize=(size * len(steps), size * len(rows)), squeeze=False
        )
        titles = {"pca": "h_t (PCA)", "z": "z_t (mean)", "r": "r_t (mean)", "overlay": "read-out"}
        for j, step in enumerate(steps):
            for i, row in enumerate(rows):
                ax = axes[i, j]
                ax.imshow(self._panel(step, row))
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"step {step}", fontsize=9)
                if j == 0:
                    ax.set_ylabel(titles.get(row, row), fontsize=9)
        fig.tight_layout()
        return fig

    def _panel(self, step: int, row: str) -> np.ndarray:
        """The RGB (H, W, 3) picture of one view at one step; used by plot_steps."""
        if row == "pca":
            return self.pca_rgb(step, "shared")
        if row in GATES:
            return _colourise(self.gate_image(step, row), 0.0, 1.0, "magma")
        if row == "overlay":
            return self.overlay(step)
        if row == "readout":
            return _probs_to_rgb(self.readout(step))
        if row.startswith("channel") and row[len("channel") :].isdigit():
            c = self._check_channel(int(row[len("channel") :]))
            vmax = self.channel_range(c) or 1.0
            return _colourise(self.channel_image(step, c), -vmax, vmax, "RdBu_r")
        raise ValueError(f"unknown row {row!r}: use pca, channel<N>, z, r, readout or overlay")


def _principal_components(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (C,), first 3 components (3, C) and their explained variance ratios (3,).

    Components beyond the rank (or beyond C) are zero vectors with ratio 0.
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


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with at least one 4-neighbour outside it."""
    padded = np.pad(mask, 1, mode="edge")
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    return mask & ~inner


def _colourise(array: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """Map a (H, W) array to RGB (H, W, 3) in [0, 1] with a matplotlib colormap."""
    import matplotlib

    span = vmax - vmin if vmax > vmin else 1.0
    scaled = np.clip((np.asarray(array, dtype=np.float32) - vmin) / span, 0.0, 1.0)
    return matplotlib.colormaps[cmap](scaled)[..., :3].astype(np.float32)


def _probs_to_rgb(probs: np.ndarray) -> np.ndarray:
    """Class probabilities (K, H, W) as RGB: background black, interior green, boundary magenta."""
    k = min(probs.shape[0], len(CLASS_COLOURS))
    return np.clip(np.tensordot(probs[:k].transpose(1, 2, 0), CLASS_COLOURS[:k], axes=1), 0, 1)


def array_to_png(array: np.ndarray, min_size: int = 192) -> bytes:
    """Encode a (H, W) in [0, 1] or (H, W, 3) RGB in [0, 1] array as PNG bytes.

    Small images are enlarged by an integer factor (nearest neighbour) to at least ``min_size``
    pixels so single pixels stay visible in the browser.
    """
    from PIL import Image

    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"expected (H, W) or (H, W, 3), got shape {arr.shape}")
    factor = max(1, int(np.ceil(min_size / max(1, max(arr.shape[:2])))))
    if factor > 1:
        arr = np.repeat(np.repeat(arr, factor, axis=0), factor, axis=1)
    data = (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(data).save(buffer, format="PNG")
    return buffer.getvalue()


PANELS = ("image", "state", "z", "r", "readout", "overlay")


def explorer_widget(explorer: HiddenStateExplorer, panel_size: int = 200) -> ipywidgets.VBox:
    """The interactive explorer for JupyterLab.

    Controls: ``step`` slider over FRDU steps, ``view`` toggle ("channel" or "PCA" of h_t),
    ``channel`` slider (used in channel view; gates then show that channel too, otherwise their
    mean over channels). Panels (``ipywidgets.Image``, PNG): image, h_t, z_t, r_t, read-out,
    overlay. Every control and panel carries a CSS class (``gruunet-explorer-step``,
    ``gruunet-explorer-panel-state``, ...); the whole box has ``gruunet-explorer``.

    The returned VBox has attributes ``step``, ``view``, ``channel``, ``info`` and ``panels``
    (dict name -> Image) so code and tests can drive it like a user would.
    """
    import ipywidgets as widgets

    step = widgets.IntSlider(
        value=explorer.num_steps - 1,
        min=0,
        max=explorer.num_steps - 1,
        description="step",
        continuous_update=True,
    )
    view = widgets.ToggleButtons(options=list(VIEWS), value="PCA", description="view")
    channel = widgets.IntSlider(
        value=0, min=0, max=explorer.num_channels - 1, description="channel", disabled=True
    )
    info = widgets.HTML(value="")
    for w, name in ((step, "step"), (view, "view"), (channel, "channel"), (info, "info")):
        w.add_class(f"gruunet-explorer-{name}")

    captions = {
        "image": "input",
        "state": "h_t",
        "z": "update gate z_t",
        "r": "reset gate r_t",
        "readout": "read-out softmax(head(h_t))",
        "overlay": "read-out on the image",
    }
    panels: dict[str, widgets.Image] = {}
    boxes = []
    for name in PANELS:
        image = widgets.Image(format="png", layout=widgets.Layout(width=f"{panel_size}px"))
        image.add_class("gruunet-explorer-panel")
        image.add_class(f"gruunet-explorer-panel-{name}")
        label = widgets.HTML(value=f"<b>{captions[name]}</b>")
        label.add_class(f"gruunet-explorer-caption-{name}")
        panels[name] = image
        boxes.append(widgets.VBox([label, image]))
    captions_html = {name: box.children[0] for name, box in zip(PANELS, boxes, strict=True)}

    panels["image"].value = array_to_png(explorer.image)

    def update(_change: Any = None) -> None:
        t = int(step.value)
        if view.value == "PCA":
            pca = explorer.pca(t, "shared")
            state_rgb = pca.rgb
            ratio = ", ".join(f"{v:.0%}" for v in pca.explained_variance_ratio)
            state_caption = f"h_t, PCA to RGB ({ratio} of variance)"
            gate_channel = None
        else:
            c = int(channel.value)
            vmax = explorer.channel_range(c) or 1.0
            state_rgb = _colourise(explorer.channel_image(t, c), -vmax, vmax, "RdBu_r")
            state_caption = f"h_t, channel {c} (|h| up to {vmax:.2f})"
            gate_channel = c
        panels["state"].value = array_to_png(state_rgb)
        captions_html["state"].value = f"<b>{state_caption}</b>"
        where = "mean over channels" if gate_channel is None else f"channel {gate_channel}"
        for gate in GATES:
            g = explorer.gate_image(t, gate, gate_channel)
            panels[gate].value = array_to_png(_colourise(g, 0.0, 1.0, "magma"))
            name = "update gate z_t" if gate == "z" else "reset gate r_t"
            captions_html[gate].value = f"<b>{name}</b> ({where}, mean {g.mean():.2f})"
        panels["readout"].value = array_to_png(_probs_to_rgb(explorer.readout(t)))
        panels["overlay"].value = array_to_png(explorer.overlay(t))
        text = explorer.step_name(t)
        if explorer.truth is not None:
            text += f"; foreground Dice of the read-out: {explorer.dice(t):.3f}"
        info.value = text

    def on_view(_change: Any) -> None:
        channel.disabled = view.value != "channel"
        update()

    step.observe(update, names="value")
    channel.observe(update, names="value")
    view.observe(on_view, names="value")
    update()

    controls = widgets.HBox([step, view, channel])
    grid = widgets.GridBox(
        boxes,
        layout=widgets.Layout(grid_template_columns=f"repeat(3, {panel_size + 10}px)"),
    )
    box = widgets.VBox([controls, info, grid])
    box.add_class("gruunet-explorer")
    box.step = step
    box.view = view
    box.channel = channel
    box.info = info
    box.panels = panels
    box.update = update
    return box
