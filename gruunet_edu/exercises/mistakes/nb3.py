"""Known mistakes of notebook 03: the GRUU-Net forward pass.

The table maps a mistake to (the logits it gives, the message), computed with the reference
network's own layers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from gruunet_edu.exercises.core import close
from gruunet_edu.models.gruunet import GRUUNet


@torch.no_grad()
def net_variants(net: GRUUNet, x: torch.Tensor) -> dict[str, tuple]:
    s = net.config.num_scales

    def run(
        carry_state: bool = True,
        up: str = "bilinear",
        align: bool | None = None,
        pool: Any = F.max_pool2d,
        readout: str = "readout",
        keep_stem: bool = False,
    ):
        h = net.stem(x)
        o, h0 = h, h
        for t, frdu in enumerate(net.frdus):
            if t < s:
                o = pool(o, 2)
            elif up == "area":
                o = F.interpolate(o, scale_factor=2, mode="area")
            else:
                o = F.interpolate(o, scale_factor=2, mode=up, align_corners=align)
            o, h_new = frdu(o, h if carry_state else h0)
            h = h0 if keep_stem else h_new
        if readout == "head":
            return net.head(h)
        if readout == "no_skip":
            return net.head(net.residual(h))
        return net.readout(h)

    not_carried = (
        "the state is not carried: every FRDU must receive the h returned by the previous "
        "one (o, h = frdu(o, h)), and the readout gets the last FRDU's h"
    )
    nearest, area = run(up="nearest"), run(up="area")
    same = close(nearest, area)  # 'area' up-sampling by 2 copies pixels, as 'nearest' does
    return {
        "state_not_carried": (run(carry_state=False), not_carried),
        "stem_state_read": (run(keep_stem=True), not_carried),
        "nearest_up": (
            nearest,
            "the decoder up-samples o with 'nearest'"
            + (" (or 'area', which copies pixels the same way)" if same else "")
            + "; use mode='bilinear'",
        ),
        "area_up": (area, "the decoder up-samples o with mode='area'; use mode='bilinear'"),
        "align_corners": (
            run(align=True),
            "the decoder up-samples o with align_corners=True; leave it at its default (False), "
            "as the package's GRUUNet does",
        ),
        "average_pool": (
            run(pool=F.avg_pool2d),
            "the encoder down-samples o with average pooling (F.avg_pool2d); use "
            "F.max_pool2d(o, 2)",
        ),
        "no_residual": (
            run(readout="head"),
            "the residual block is skipped: finish with self.readout(h), which applies the "
            "residual block and then the head",
        ),
        "softmax": (
            torch.softmax(run(), dim=1),
            "forward returns probabilities (a softmax); return the logits, self.readout(h): "
            "the loss applies the softmax itself",
        ),
        "no_skip": (
            run(readout="no_skip"),
            "the residual block's skip connection is missing: the head reads "
            "h + self.residual(h) (or call self.readout(h), which does both)",
        ),
    }
