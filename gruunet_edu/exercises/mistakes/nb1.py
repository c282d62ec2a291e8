"""Known mistakes of notebook 01: the state update (eq. 4) and the whole ConvGRU cell.

Every table maps a mistake to (the new state it gives, the message); the cell's are computed with
the reference cell's own convolutions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gruunet_edu.models.convgru import ConvGRUCell, update_state

SWAPPED = (
    "z and 1 - z are swapped: with z = 0 the state must stay h_prev, with z = 1 it becomes the "
    "candidate (the blog's text writes it this way round; this course follows its code: "
    "h_new = (1 - z) * h_prev + z * h_cand)"
)


def update_variants(h_prev: torch.Tensor, h_cand: torch.Tensor, z: torch.Tensor) -> dict:
    per_pixel = (
        "the gate acts per pixel and per channel: use z itself, elementwise, not one number or "
        "one sample of it"
    )
    m = z.mean()
    return {
        "swapped": (z * h_prev + (1 - z) * h_cand, SWAPPED),
        "no_one_minus": (
            h_prev + z * h_cand,
            "the old state is not weighted by (1 - z): h_new = (1 - z) * h_prev + z * h_cand",
        ),
        "sum_only": (
            z * (h_prev + h_cand),
            "both terms are weighted by z: the old state gets (1 - z)",
        ),
        "mean_gate": ((1 - m) * h_prev + m * h_cand, per_pixel),
        "first_sample": ((1 - z[0]) * h_prev + z[0] * h_cand, per_pixel),
        "rounded": (
            torch.where(z > 0.5, h_cand, h_prev),
            "you rounded z to 0 or 1 (a hard choice); the new state is the weighted average "
            "(1 - z) * h_prev + z * h_cand for every z between 0 and 1",
        ),
        "half": (
            update_state(h_prev.half(), h_cand.half(), z.half()).float(),
            "the new state was computed in half precision (float16), which rounds to about 3 "
            "digits; keep float32",
        ),
        "sigmoid_again": (
            update_state(h_prev, h_cand, torch.sigmoid(z)),
            "z is already a gate in [0, 1] (a sigmoid was applied in eq. 1): do not apply a "
            "sigmoid again",
        ),
    }


@torch.no_grad()
def cell_variants(ref: ConvGRUCell, x: torch.Tensor, h: torch.Tensor) -> dict[str, tuple]:
    """Outputs of the usual mistakes, computed with the reference's convolutions."""
    z = torch.sigmoid(ref.conv_xz(x) + ref.conv_hz(h))
    r = torch.sigmoid(ref.conv_xr(x) + ref.conv_hr(h))
    xh, slope = ref.conv_xh(x), ref.slope
    pre = xh + ref.conv_hh(r * h)
    cand = F.leaky_relu(pre, slope)
    no_reset = F.leaky_relu(xh + ref.conv_hh(h), slope)

    def update(candidate: torch.Tensor, gate: torch.Tensor = z) -> torch.Tensor:
        return (1 - gate) * h + gate * candidate

    reset_in_update = (
        "the reset gate is applied to the wrong term: r belongs inside the candidate "
        "(eq. 3), the update (eq. 4) uses the plain h_prev"
    )
    variants = {
        "swapped": (z * h + (1 - z) * cand, SWAPPED),
        "no_reset": (
            update(no_reset),
            "the reset gate is missing: in eq. (3) U_h convolves r * h_prev, not h_prev",
        ),
        "reset_after_conv": (
            update(F.leaky_relu(xh + r * ref.conv_hh(h), slope)),
            "the reset gate is applied to the wrong term: it multiplies h_prev *before* the "
            "convolution U_h (conv_hh(r * h)), not its result (r * conv_hh(h))",
        ),
        "reset_in_update": ((1 - z) * (r * h) + z * cand, reset_in_update),
        "reset_moved_to_update": ((1 - z) * (r * h) + z * no_reset, reset_in_update),
        "gates_swapped": (
            (1 - r) * h + r * F.leaky_relu(xh + ref.conv_hh(z * h), slope),
            "z and r are swapped: z uses conv_xz and conv_hz, r uses conv_xr and conv_hr",
        ),
        "tanh": (
            update(torch.tanh(pre)),
            "the candidate uses tanh; GRUU-Net uses LeakyReLU with slope 0.2 "
            "(F.leaky_relu(..., self.slope))",
        ),
        "relu": (
            update(F.relu(pre)),
            "the candidate uses ReLU; GRUU-Net uses LeakyReLU with slope self.slope "
            "(F.leaky_relu(..., self.slope))",
        ),
        "no_activation": (
            update(pre),
            "the candidate has no activation: apply F.leaky_relu(..., self.slope) in eq. (3)",
        ),
        "sigmoid_candidate": (
            update(torch.sigmoid(pre)),
            "the candidate uses a sigmoid; sigmoids are for the gates, the candidate uses "
            "LeakyReLU (F.leaky_relu(..., self.slope))",
        ),
        "returns_candidate": (
            cand,
            "you return the candidate h_cand; return h_new = (1 - z) * h + z * h_cand (eq. 4)",
        ),
        "default_slope": (
            update(F.leaky_relu(pre)),
            "the candidate uses LeakyReLU slope 0.01 (F.leaky_relu's default); pass the "
            "cell's slope: F.leaky_relu(..., self.slope)",
        ),
    }
    if slope != 0.2:
        variants["fixed_slope"] = (
            update(F.leaky_relu(pre, 0.2)),
            f"the LeakyReLU slope is hard-wired to 0.2, but this cell has self.slope = {slope:g}: "
            "use F.leaky_relu(..., self.slope)",
        )
    return variants
