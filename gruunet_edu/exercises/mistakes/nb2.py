"""Known mistakes of notebook 02: the dense block's and the FRDU's forward pass.

Every table maps a mistake to what it gives (the block's output; the FRDU's o and h) and the
message, computed with the reference's own layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gruunet_edu.exercises.core import close
from gruunet_edu.models.dense import DenseBlock
from gruunet_edu.models.frdu import FRDU


@torch.no_grad()
def dense_variants(block: DenseBlock, x: torch.Tensor) -> dict[str, tuple]:
    def run(order: str = "forward", final: str = "norm_relu", pre_relu: bool = False):
        features = [x]
        for layer in block.layers:
            inp = torch.cat(features if order == "forward" else features[::-1], dim=1)
            features.append(layer(inp))
        joined = torch.cat(features if order == "forward" else features[::-1], dim=1)
        y = block.transition(F.relu(joined) if pre_relu else joined)
        if final == "none":
            return y
        if final == "relu":
            return F.relu(y)
        if final == "norm":
            return block.norm(y)
        return F.relu(block.norm(y))

    return {
        "reversed": (
            run("reversed"),
            "the concatenation order is wrong: each layer reads torch.cat([x, y_1, ..., "
            "y_(l-1)], dim=1), the block input first and new features appended at the end",
        ),
        "no_final": (
            run(final="none"),
            "the final BatchNorm and ReLU are missing: return self.relu(self.norm(y))",
        ),
        "no_norm": (
            run(final="relu"),
            "the final BatchNorm is missing: return self.relu(self.norm(y)), not self.relu(y)",
        ),
        "no_relu": (
            run(final="norm"),
            "the final ReLU is missing: return self.relu(self.norm(y)), not self.norm(y)",
        ),
        "pre_relu": (
            run(pre_relu=True),
            "there is an extra ReLU before the transition: the transition reads "
            "torch.cat(features, dim=1) itself (it has its own BatchNorm and ReLU inside)",
        ),
    }


@torch.no_grad()
def frdu_variants(ref: FRDU, o_prev: torch.Tensor, h_prev: torch.Tensor) -> dict[str, tuple]:
    """name -> (o, h, message) for the usual mistakes, computed with the reference's layers
    (in whatever mode, eval or train, ``ref`` is in)."""
    size = h_prev.shape[-2:]
    down = ref.down(h_prev)

    def run(
        merged: torch.Tensor,
        mode: str = "bilinear",
        swap_gru: bool = False,
        project_first: bool = True,
        align: bool | None = None,
    ):
        o = ref.dense(ref.merge(merged))
        if project_first:
            x = F.interpolate(ref.project(o), size=size, mode=mode, align_corners=align)
        else:
            x = ref.project(F.interpolate(o, size=size, mode=mode, align_corners=align))
        return o, (ref.gru(h_prev, x) if swap_gru else ref.gru(x, h_prev))

    bilinear = F.interpolate(h_prev, scale_factor=1 / ref.factor, mode="bilinear")
    average = F.avg_pool2d(h_prev, ref.factor)
    merged = torch.cat([o_prev, down], dim=1)
    merged_o = ref.merge(merged)
    variants = {
        "concat_order": (
            *run(torch.cat([down, o_prev], dim=1)),
            "the concatenation order is wrong: merge torch.cat([o_prev, down(h_prev)], dim=1), "
            "the pooling stream first",
        ),
        "bilinear_down": (
            *run(torch.cat([o_prev, bilinear], dim=1)),
            "the state is down-sampled with bilinear interpolation (the blog's code); this FRDU "
            "uses self.down(h_prev), a max-pool by self.factor",
        ),
        "average_down": (
            *run(torch.cat([o_prev, average], dim=1)),
            "the state is down-sampled with average pooling (F.avg_pool2d); this FRDU uses "
            "self.down(h_prev), a max-pool by self.factor",
        ),
        "nearest_up": (
            *run(merged, mode="nearest"),
            "x_t is up-sampled with 'nearest'; use mode='bilinear'",
        ),
        "align_corners": (
            *run(merged, align=True),
            "x_t is up-sampled with align_corners=True; leave align_corners at its default "
            "(False), as the package's FRDU does",
        ),
        "project_after": (
            *run(merged, project_first=False),
            "o is up-sampled first and projected afterwards: project to C_h channels before "
            "up-sampling, x = F.interpolate(self.project(o), ...), so the up-sampling and the "
            "GRU's convolutions work on C_h channels, not all of o's",
        ),
        "no_dense": (
            merged_o,
            ref.gru(F.interpolate(ref.project(merged_o), size=size, mode="bilinear"), h_prev),
            "o must be the dense block's output, o = self.dense(self.merge(...))",
        ),
        "merged_returned": (
            merged_o,
            run(merged)[1],
            "the returned o is the merge's output; return the dense block's output, "
            "o = self.dense(self.merge(...)), which also feeds the projection",
        ),
    }
    if close(bilinear, average):  # factor 2: bilinear sampling averages each 2x2 block
        message = (
            "the state is down-sampled by average pooling or bilinear interpolation (the blog's "
            "code; for factor 2 the two are the same); this FRDU uses self.down(h_prev), a "
            "max-pool by self.factor"
        )
        variants["bilinear_down"] = (*variants["bilinear_down"][:2], message)
        variants["average_down"] = (*variants["average_down"][:2], message)
    if h_prev.shape[1] == ref.project[0].out_channels:  # x and h have the same channels
        variants["gru_args"] = (
            *run(merged, swap_gru=True),
            "the ConvGRU's arguments are swapped: the input comes first, self.gru(x, h_prev)",
        )
    return variants
