r"""Convolutional GRU cell: the recurrent unit that carries GRUU-Net's full-resolution state.

The four equations (``*`` is a 3x3 convolution with padding 1, ``.`` is elementwise)::

    z_t  = sigmoid(W_z * x_t + U_z * h_{t-1} + b_z)                  (1) update gate
    r_t  = sigmoid(W_r * x_t + U_r * h_{t-1} + b_r)                  (2) reset gate
    h~_t = LeakyReLU_0.2(W_h * x_t + U_h * (r_t . h_{t-1}) + b_h)    (3) candidate state
    h_t  = (1 - z_t) . h_{t-1} + z_t . h~_t                          (4) new state

This is a GRU (Cho et al. 2014) whose matrix products are convolutions (as in Ballas et al.
2016), with LeakyReLU instead of tanh for the candidate, as in GRUU-Net (Wollmann et al. 2019).

A note on equation (4): the blog post this course starts from writes it as
``h_t = z_t . h_{t-1} + (1 - z_t) . h~_t``, with z and 1 - z swapped, while its code computes (4).
Both describe the same family of models: replace z by 1 - z (i.e. negate W_z, U_z and b_z) and
one turns into the other. This package teaches the code's convention: z close to 1 means
"replace the state by the candidate", z close to 0 means "keep the old state".

Two implementations with identical maths:

- ``ConvGRUCell``: readable, one convolution per term of the equations (the blog's layout).
- ``FusedConvGRUCell``: the three convolutions of x fused into one with 3C outputs and the two
  state convolutions of (1), (2) fused into one with 2C outputs (U_h needs r_t . h_{t-1}, so it
  stays separate). Fewer, larger convolutions run faster, especially on CPU.

``copy_convgru_weights`` copies the parameters between any two cells, so both can be compared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.models.checks import validate_feature_map, validate_sizes


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True)


def check_step_inputs(cell: nn.Module, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
    """Check x (B, C_x, H, W) and h (B, C, H, W) of one step; return h.

    ``h=None`` is the zero initial state h_0 = 0 (as ``torch.nn.GRUCell`` does), so that the
    first step computes h_1 = z_1 . h~_1 (equation (4) with h_0 = 0).
    """
    owner = type(cell).__name__
    validate_feature_map(x, "x", cell.x_channels, owner)
    if h is None:
        return x.new_zeros(x.shape[0], cell.channels, *x.shape[-2:])  # h_0 = 0
    validate_feature_map(h, "h", cell.channels, owner, like=x)
    return h


def update_state(h_prev: torch.Tensor, h_cand: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Equation (4): h_t = (1 - z_t) . h_{t-1} + z_t . h~_t, elementwise (any matching shapes)."""
    return (1 - z) * h_prev + z * h_cand


class _ConvGRU(nn.Module):
    """What both implementations share: the sizes, the input checks and what ``forward`` returns.

    A subclass creates the convolutions and computes equations (1) to (4) in :meth:`step`.
    """

    def __init__(self, x_channels: int, channels: int, slope: float = 0.2) -> None:
        super().__init__()
        validate_sizes(type(self).__name__, x_channels=x_channels, channels=channels)
        self.x_channels = x_channels
        self.channels = channels
        self.slope = slope

    def forward(
        self, x: torch.Tensor, h: torch.Tensor | None = None, return_gates: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step: x (B, C_x, H, W), h (B, C, H, W) -> h_new (B, C, H, W) [, z, r].

        ``h=None`` starts from the zero state. A wrong shape or dtype raises ValueError.
        """
        h = check_step_inputs(self, x, h)
        h_new, z, r = self.step(x, h)
        if return_gates:
            return h_new, z, r
        return h_new

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Equations (1) to (4) on checked inputs: (h_new, z, r), each (B, C, H, W)."""
        raise NotImplementedError


class ConvGRUCell(_ConvGRU):
    """Readable ConvGRU: one 3x3 convolution per term (W_z, U_z, W_r, U_r, W_h, U_h).

    Args:
        x_channels: channels of the input x_t.
        channels: C, channels of the state h.
        slope: negative slope of the LeakyReLU in equation (3).
    """

    def __init__(self, x_channels: int, channels: int, slope: float = 0.2) -> None:
        super().__init__(x_channels, channels, slope)
        # Each conv carries a bias; b_z of eq. (1) is the sum of conv_xz.bias and conv_hz.bias.
        self.conv_xz = _conv3x3(x_channels, channels)  # W_z
        self.conv_hz = _conv3x3(channels, channels)  # U_z
        self.conv_xr = _conv3x3(x_channels, channels)  # W_r
        self.conv_hr = _conv3x3(channels, channels)  # U_r
        self.conv_xh = _conv3x3(x_channels, channels)  # W_h
        self.conv_hh = _conv3x3(channels, channels)  # U_h

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One step on checked inputs x (B, C_x, H, W), h (B, C, H, W): (h_new, z, r)."""
        z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))  # eq. (1), (B, C, H, W)
        r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))  # eq. (2), (B, C, H, W)
        h_cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)  # eq. (3)
        h_new = update_state(h, h_cand, z)  # eq. (4), (B, C, H, W)
        return h_new, z, r


class FusedConvGRUCell(_ConvGRU):
    """Fused ConvGRU: the same equations with the gate convolutions fused.

    ``conv_x`` computes [W_z * x, W_r * x, W_h * x] (3C outputs, in that order), ``conv_h``
    computes [U_z * h, U_r * h] (2C outputs) and ``conv_hh`` computes U_h * (r . h).
    Arguments as for :class:`ConvGRUCell`.
    """

    def __init__(self, x_channels: int, channels: int, slope: float = 0.2) -> None:
        super().__init__(x_channels, channels, slope)
        self.conv_x = _conv3x3(x_channels, 3 * channels)  # [W_z; W_r; W_h]
        self.conv_h = _conv3x3(channels, 2 * channels)  # [U_z; U_r]
        self.conv_hh = _conv3x3(channels, channels)  # U_h

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One step on checked inputs x (B, C_x, H, W), h (B, C, H, W): (h_new, z, r)."""
        xz, xr, xh = self.conv_x(x).chunk(3, dim=1)  # W_z*x, W_r*x, W_h*x: 3 x (B, C, H, W)
        hz, hr = self.conv_h(h).chunk(2, dim=1)  # U_z*h, U_r*h: 2 x (B, C, H, W)
        z = torch.sigmoid(xz + hz)  # eq. (1)
        r = torch.sigmoid(xr + hr)  # eq. (2)
        h_cand = F.leaky_relu(xh + self.conv_hh(r * h), self.slope)  # eq. (3)
        h_new = torch.lerp(h, h_cand, z)  # eq. (4): h + z . (h~ - h) = (1 - z) . h + z . h~
        return h_new, z, r


AnyConvGRU = ConvGRUCell | FusedConvGRUCell


def _as_terms(cell: AnyConvGRU) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) of every term of the equations, as views into the cell's parameters."""
    if isinstance(cell, ConvGRUCell):
        return {
            name: (getattr(cell, f"conv_{name}").weight, getattr(cell, f"conv_{name}").bias)
            for name in ("xz", "xr", "xh", "hz", "hr", "hh")
        }
    if isinstance(cell, FusedConvGRUCell):
        c = cell.channels
        wx, bx, wh, bh = cell.conv_x.weight, cell.conv_x.bias, cell.conv_h.weight, cell.conv_h.bias
        return {
            "xz": (wx[:c], bx[:c]),
            "xr": (wx[c : 2 * c], bx[c : 2 * c]),
            "xh": (wx[2 * c :], bx[2 * c :]),
            "hz": (wh[:c], bh[:c]),
            "hr": (wh[c:], bh[c:]),
            "hh": (cell.conv_hh.weight, cell.conv_hh.bias),
        }
    raise TypeError(f"expected ConvGRUCell or FusedConvGRUCell, got {type(cell).__name__}")


@torch.no_grad()
def copy_convgru_weights(src: AnyConvGRU, dst: AnyConvGRU) -> AnyConvGRU:
    """Copy the parameters of ``src`` into ``dst`` (readable or fused, any combination).

    After the copy both cells compute the same function. Returns ``dst`` (changed in place).
    """
    if (src.x_channels, src.channels) != (dst.x_channels, dst.channels):
        raise ValueError(
            f"cells differ in size: src has x_channels={src.x_channels}, channels={src.channels}; "
            f"dst has x_channels={dst.x_channels}, channels={dst.channels}"
        )
    src_terms, dst_terms = _as_terms(src), _as_terms(dst)
    for name, (w_src, b_src) in src_terms.items():
        w_dst, b_dst = dst_terms[name]
        w_dst.copy_(w_src)
        b_dst.copy_(b_src)
    dst.slope = src.slope
    return dst


def make_convgru(
    x_channels: int, channels: int, slope: float = 0.2, fused: bool = True
) -> nn.Module:
    """A fused or readable ConvGRU cell."""
    cls = FusedConvGRUCell if fused else ConvGRUCell
    return cls(x_channels, channels, slope)
