"""Notebook 01: ``update_state(h_prev, h_cand, z)`` and ``StudentConvGRU.forward``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gruunet_edu.models import ConvGRUCell

# ------------------------------------------------------------------------------ update


def swapped(h_prev, h_cand, z):
    return z * h_prev + (1 - z) * h_cand


def lerp_swapped(h_prev, h_cand, z):
    return torch.lerp(h_cand, h_prev, z)


def no_one_minus(h_prev, h_cand, z):
    return h_prev + z * h_cand


def both_z(h_prev, h_cand, z):
    return z * (h_prev + h_cand)


def in_place(h_prev, h_cand, z):
    h_prev.mul_(1 - z).add_(z * h_cand)
    return h_prev


def detached(h_prev, h_cand, z):
    return ((1 - z) * h_prev + z * h_cand).detach()


def no_grad(h_prev, h_cand, z):
    with torch.no_grad():
        return (1 - z) * h_prev + z * h_cand


def numpy_result(h_prev, h_cand, z):
    z, h_prev, h_cand = z.numpy(), h_prev.numpy(), h_cand.numpy()
    return (1 - z) * h_prev + z * h_cand


def mean_gate(h_prev, h_cand, z):
    return (1 - z.mean()) * h_prev + z.mean() * h_cand


def thresholded(h_prev, h_cand, z):
    return torch.where(z > 0.5, h_cand, h_prev)


def float64(h_prev, h_cand, z):
    return ((1 - z) * h_prev + z * h_cand).double()


def sigmoid_again(h_prev, h_cand, z):
    z = torch.sigmoid(z)
    return (1 - z) * h_prev + z * h_cand


def returns_tuple(h_prev, h_cand, z):
    return (1 - z) * h_prev + z * h_cand, z


def first_sample_gate(h_prev, h_cand, z):
    return (1 - z[0]) * h_prev + z[0] * h_cand


def average(h_prev, h_cand, z):
    return 0.5 * (h_prev + h_cand)


def half_precision(h_prev, h_cand, z):
    return ((1 - z.half()) * h_prev.half() + z.half() * h_cand.half()).float()


def lerp(h_prev, h_cand, z):
    return torch.lerp(h_prev, h_cand, z)


def difference_form(h_prev, h_cand, z):
    return h_prev + z * (h_cand - h_prev)


# ------------------------------------------------------------------------------ ConvGRU cell


def _cell(body):
    class Cell(ConvGRUCell):
        def forward(self, x, h, return_gates=False):
            h_new, z, r = body(self, x, h)
            return (h_new, z, r) if return_gates else h_new

    Cell.__name__ = f"Cell_{body.__name__}"
    return Cell


def _gates(self, x, h):
    z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))
    r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))
    return z, r


@_cell
def c_swapped(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return z * h + (1 - z) * cand, z, r


@_cell
def c_no_reset(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_reset_after(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + r * self.conv_hh(h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_reset_in_update(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(h), self.slope)
    return (1 - z) * (r * h) + z * cand, z, r


@_cell
def c_gates_swapped(self, x, h):
    r, z = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_tanh(self, x, h):
    z, r = _gates(self, x, h)
    cand = torch.tanh(self.conv_xh(x) + self.conv_hh(r * h))
    return (1 - z) * h + z * cand, z, r


@_cell
def c_relu(self, x, h):
    z, r = _gates(self, x, h)
    cand = torch.relu(self.conv_xh(x) + self.conv_hh(r * h))
    return (1 - z) * h + z * cand, z, r


@_cell
def c_fixed_slope(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), 0.2)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_default_slope(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h))
    return (1 - z) * h + z * cand, z, r


@_cell
def c_detach_h(self, x, h):
    h = h.detach()
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_no_grad_gates(self, x, h):
    with torch.no_grad():
        z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_in_place(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    h.mul_(1 - z).add_(z * cand)
    return h, z, r


@_cell
def c_x_only_gates(self, x, h):
    z = torch.sigmoid(self.conv_xz(x))
    r = torch.sigmoid(self.conv_xr(x))
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_sum_of_sigmoids(self, x, h):
    z = torch.sigmoid(self.conv_xz(x)) + torch.sigmoid(self.conv_hz(h))
    r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_sigmoid_candidate(self, x, h):
    z, r = _gates(self, x, h)
    cand = torch.sigmoid(self.conv_xh(x) + self.conv_hh(r * h))
    return (1 - z) * h + z * cand, z, r


@_cell
def c_returns_candidate(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return cand, z, r


@_cell
def c_copy_paste_gate(self, x, h):
    z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))
    r = torch.sigmoid(self.conv_xr(x) + self.conv_hz(h))  # copied from the line above
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
    return (1 - z) * h + z * cand, z, r


class c_gates_order(ConvGRUCell):  # noqa: N801
    def forward(self, x, h, return_gates=False):
        z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))
        r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))
        cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)
        h_new = (1 - z) * h + z * cand
        return (h_new, r, z) if return_gates else h_new


@_cell
def c_update_gate_in_candidate(self, x, h):
    z, r = _gates(self, x, h)
    cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(z * h), self.slope)
    return (1 - z) * h + z * cand, z, r


@_cell
def c_lerp(self, x, h):
    gate_z = torch.sigmoid(self.conv_hz(h) + self.conv_xz(x))
    gate_r = torch.sigmoid(self.conv_hr(h) + self.conv_xr(x))
    pre = self.conv_xh(x) + self.conv_hh(gate_r * h)
    cand = torch.where(pre > 0, pre, self.slope * pre)
    return torch.lerp(h, cand, gate_z), gate_z, gate_r


@_cell
def c_functional(self, x, h):
    def conv(layer, t):
        return F.conv2d(t, layer.weight, layer.bias, padding=1)

    z = (conv(self.conv_xz, x) + conv(self.conv_hz, h)).sigmoid()
    r = (conv(self.conv_xr, x) + conv(self.conv_hr, h)).sigmoid()
    cand = F.leaky_relu(
        conv(self.conv_xh, x) + conv(self.conv_hh, h * r), negative_slope=self.slope
    )
    return h + z * (cand - h), z, r


WRONG = {
    "update": [
        ("z and 1 - z swapped", swapped, "z and 1 - z are swapped"),
        ("lerp the wrong way round", lerp_swapped, "z and 1 - z are swapped"),
        ("no 1 - z", no_one_minus, "not weighted by (1 - z)"),
        ("both terms weighted by z", both_z, "both terms are weighted by z"),
        ("in place", in_place, "changed its input"),
        ("detached", detached, "no gradient flows"),
        ("torch.no_grad", no_grad, "no gradient flows"),
        ("NumPy result", numpy_result, "torch tensor"),
        ("one number for the gate", mean_gate, "per pixel"),
        ("gate rounded to 0 or 1", thresholded, "rounded"),
        ("float64", float64, "float32"),
        ("sigmoid applied again", sigmoid_again, "sigmoid"),
        ("returns a tuple", returns_tuple, "returned a tuple"),
        ("first sample's gate", first_sample_gate, "per pixel"),
        ("plain average", average, "z = 0"),
        ("half precision", half_precision, "half precision"),
    ],
    "convgru": [
        ("z and 1 - z swapped", c_swapped, "z and 1 - z are swapped"),
        ("no reset", c_no_reset, "reset gate is missing"),
        ("reset after the convolution", c_reset_after, "before"),
        ("reset in the update", c_reset_in_update, "eq. 4"),
        ("z and r swapped", c_gates_swapped, "z and r are swapped"),
        ("tanh", c_tanh, "tanh"),
        ("relu", c_relu, "ReLU"),
        ("slope hard-wired", c_fixed_slope, "self.slope"),
        ("default LeakyReLU slope", c_default_slope, "slope 0.01"),
        ("state detached", c_detach_h, "no gradient flows through h"),
        ("gates under no_grad", c_no_grad_gates, "no gradient flows through self.conv_"),
        ("in-place state update", c_in_place, "changed its input h"),
        ("gates ignore the state", c_x_only_gates, "ignores the state"),
        ("sum of sigmoids", c_sum_of_sigmoids, "sigmoid of the summed convolutions"),
        ("gates returned in the wrong order", c_gates_order, "(h_new, z, r)"),
        ("z instead of r in the candidate", c_update_gate_in_candidate, "conv_hh"),
        ("sigmoid candidate", c_sigmoid_candidate, "candidate uses a sigmoid"),
        ("returns the candidate", c_returns_candidate, "you return the candidate"),
        ("r uses U_z", c_copy_paste_gate, "self.conv_hr is never called"),
    ],
}

RIGHT = {
    "update": [("torch.lerp", lerp), ("h + z (h_cand - h)", difference_form)],
    "convgru": [("lerp and where", c_lerp), ("functional convolutions", c_functional)],
}
