"""Messages of the exercise checks: plain sentences for torch's shape errors, and grammar.

``call`` (in :mod:`gruunet_edu.exercises.core`) runs student code under :class:`FailingOp`, which
remembers the innermost torch function that raised and the shapes of its tensor inputs;
:func:`shape_sentence` turns that into one sentence ("torch.cat received tensors of shapes
(1, 8, 8, 8), (1, 4, 16, 16); ..."), so a student never reads "Expected size for first two
dimensions of batch2 tensor". :func:`plural` and :func:`sentence` keep "1 match" and one full
stop.
"""

from __future__ import annotations

from typing import Any

import torch


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 match", "2 matches", "0 checks": a count with its noun in the right number."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {words or (word + 'es' if word.endswith(('s', 'sh', 'ch', 'x')) else word + 's')}"


def sentence(text: str) -> str:
    """``text`` ending in exactly one full stop (or its own ? or !); "" stays ""."""
    text = text.rstrip()
    if not text:
        return text
    while text.endswith("..") and not text.endswith("..."):
        text = text[:-1]
    return text if text[-1] in ".!?" else text + "."


def one_line(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def explain(err: Exception) -> str:
    """A plain-language follow-up for the most common tensor errors."""
    text = str(err)
    if "Sizes of tensors must match" in text:
        return (
            ". torch.cat joins tensors along one dimension; all other dimensions (batch, height, "
            "width) must agree, so check the resolution of what you concatenate."
        )
    if "expected input" in text and "channels" in text:
        return (
            ". A convolution received a tensor with the wrong number of channels: check what "
            "you concatenate and in which layer."
        )
    if "running_mean should contain" in text:
        return (
            ". A BatchNorm received a tensor with the wrong number of channels: check what you "
            "concatenate and in which layer."
        )
    if "modified by an inplace operation" in text:
        return (
            ". An in-place operation (+=, .mul_(), inplace=True) overwrote a tensor that the "
            "gradient still needs: write a new tensor instead, e.g. z = z * 2."
        )
    if "must match the size of tensor" in text:
        return ". Two tensors you combine elementwise differ in shape: print their .shape."
    return ""


class FailingOp(torch.overrides.TorchFunctionMode):
    """Remember the innermost torch function that raised, with the shapes of its tensor inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.op: str = ""
        self.shapes: list[tuple[int, ...]] = []
        self.dim: int | None = None

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        try:
            return func(*args, **(kwargs or {}))
        except Exception:
            if not self.op:
                self.op = getattr(func, "__name__", "") or str(func)
                flat: list[Any] = []
                for a in list(args) + list((kwargs or {}).values()):
                    flat.extend(a if isinstance(a, list | tuple) else [a])
                self.shapes = [tuple(t.shape) for t in flat if isinstance(t, torch.Tensor)]
                dim = (kwargs or {}).get("dim", args[1] if len(args) > 1 else 0)
                self.dim = dim if isinstance(dim, int) else None
            raise


def shape_sentence(
    op: str, shapes: list[tuple[int, ...]], err: Exception, dim: int | None = None
) -> str:
    """One plain sentence for a torch shape error: which operation, the shapes it got, the shape
    it needed ("" when the error is not a shape error)."""
    text = str(err)
    if not shapes:
        return ""
    op = op.strip("_")
    if op == "cat" and "Sizes of tensors must match" in text:
        listed = ", ".join(str(s) for s in shapes)
        only_channels = len({len(s) for s in shapes}) == 1 and all(
            s[:1] + s[2:] == shapes[0][:1] + shapes[0][2:] for s in shapes
        )
        if only_channels and dim is not None and dim % len(shapes[0]) != 1:
            return (
                f"torch.cat joined tensors of shapes {listed} along dimension {dim}; they differ "
                "only in the channels, dimension 1, so join them with dim=1."
            )
        return (
            f"torch.cat received tensors of shapes {listed}; apart from the channel dimension 1 "
            "(batch, height, width) they must agree, so bring them to the same resolution first."
        )
    if op.startswith("conv") and "expected input" in text and len(shapes) >= 2:
        inp, weight = shapes[0], shapes[1]
        return (
            f"a convolution with weight {weight} expects an input with {weight[1]} channels, "
            f"but got a tensor of shape {inp} ({inp[1] if len(inp) > 1 else '?'} channels): check "
            "what you pass to that layer (and what you concatenated before it)."
        )
    if op == "batch_norm" and len(shapes) >= 2:
        inp, stats = shapes[0], shapes[1]
        return (
            f"a BatchNorm for {stats[0] if stats else '?'} channels got a tensor of shape {inp}: "
            "check what you pass to that layer (and what you concatenated before it)."
        )
    if "must match the size of tensor" in text and len(shapes) >= 2:
        return (
            f"{op} combines tensors of shapes {shapes[0]} and {shapes[1]} elementwise; they must "
            "have the same shape (print their .shape)."
        )
    if op in {"matmul", "mm", "bmm"} and len(shapes) >= 2:
        return (
            f"{op} got tensors of shapes {shapes[0]} and {shapes[1]}, which do not fit together; "
            "the layers here are convolutions applied to (B, C, H, W) tensors."
        )
    return ""
