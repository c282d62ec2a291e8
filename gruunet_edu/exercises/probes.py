"""Diagnosis helpers for checkers: side effects, gradients, train mode, the first differing step.

A check that only compares outputs lets through answers whose values agree but whose gradients
do not (a ``.detach()``), answers that change the caller's inputs, and paths that barely move the
output on freshly initialised weights in eval mode. These helpers make such mistakes visible:

- :func:`snapshot` / :func:`expect_unchanged`: the student's code left its inputs as they were;
- :func:`expect_gradients`: the gradients w.r.t. the inputs and parameters equal the reference's
  ("no gradient flows through h" when one is missing);
- :func:`train_mode`: a copy of a reference in train mode with BatchNorm statistics and affine
  weights spread out, so that every path (up-sampling mode, projection order) matters;
- :func:`first_difference`: run student and reference modules with hooks on their sub-layers and
  name the first layer whose input differs ("the input of self.merge differs").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from gruunet_edu.exercises.core import (
    Mismatch,
    _count,
    as_tensor,
    call,
    close,
    expect_shape,
    max_difference,
    vary_batchnorm,
)

# --------------------------------------------------------------------------- side effects


def snapshot(values: Sequence[Any]) -> list[Any]:
    """Deep copies of tensors, arrays and lists (of them), to compare with afterwards."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.append(v.detach().clone())
        elif isinstance(v, np.ndarray):
            out.append(v.copy())
        elif isinstance(v, list | tuple | dict):
            out.append(copy.deepcopy(v))
        else:
            out.append(v)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a.detach(), b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return a is b


def expect_unchanged(values: Sequence[Any], originals: Sequence[Any], names: Sequence[str]) -> None:
    """Mismatch naming the first input the student's code changed (in place, or a list emptied)."""
    _count()
    for value, original, name in zip(values, originals, names, strict=True):
        if not _same(value, original):
            raise Mismatch(
                f"your code changed its input {name} (in place); the caller still needs it, so "
                "compute a new array or tensor instead (e.g. work on a copy)"
            )


# --------------------------------------------------------------------------- gradients


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def expect_gradients(
    student: Callable[..., Any],
    reference: Callable[..., torch.Tensor],
    inputs: dict[str, torch.Tensor],
    what: str,
    student_module: torch.nn.Module | None = None,
    reference_module: torch.nn.Module | None = None,
    output: Callable[[Any], torch.Tensor] | None = None,
    reference_output: Callable[[Any], torch.Tensor] | None = None,
    atol: float = 1e-4,
    missing: Callable[[str], str | None] | None = None,
) -> None:
    """Compare the gradients of a fixed random projection of the output w.r.t. every input in
    ``inputs`` (and every parameter of the two modules) with the reference's.

    ``student(*inputs)`` and ``reference(*inputs)`` are called with fresh leaf copies;
    ``output`` / ``reference_output`` turn the two return values into the tensor to
    differentiate (e.g. join an FRDU's pair (o, h)). ``missing(name)`` may return a more specific
    message for a layer ``name`` ("self.frdus.2.gru") that gets no gradient.
    """
    _count()
    names = list(inputs)
    s_in = [_leaf(inputs[n]) for n in names]
    r_in = [_leaf(inputs[n]) for n in names]
    for m in (student_module, reference_module):
        if m is not None:
            m.zero_grad(set_to_none=True)
    with torch.enable_grad():
        got = call(student, *s_in, what=what)
        got = output(got) if output is not None else got
        expected = reference(*r_in)
        expected = reference_output(expected) if reference_output is not None else expected
        if not isinstance(got, torch.Tensor) or not got.requires_grad:
            raise Mismatch(
                f"no gradient flows through {what}: its result is cut off from autograd (is "
                "there a torch.no_grad(), .detach(), .item() or a NumPy round trip inside?)"
            )
        weight = torch.randn(expected.shape, generator=torch.Generator().manual_seed(0))
        (expected * weight).sum().backward()
        call(
            lambda: (got * weight.to(got.dtype)).sum().backward(),
            what=f"the backward pass through {what}",
        )
    grads = []
    for name, s, r in zip(names, s_in, r_in, strict=True):
        grads.append((name, name, s.grad, r.grad if r.grad is not None else torch.zeros_like(r)))
    if student_module is not None and reference_module is not None:
        ref_params = dict(reference_module.named_parameters())
        for pname, p in student_module.named_parameters():
            r = ref_params.get(pname)
            if r is None or r.grad is None or not r.grad.any():
                continue
            grads.append((f"self.{pname.rsplit('.', 1)[0]}", pname, p.grad, r.grad))
    for name, _key, got_grad, ref_grad in grads:  # missing gradients first: the clearer cause
        if ref_grad.any() and (got_grad is None or not got_grad.any()):
            specific = missing(name) if missing is not None else None
            if specific:
                raise Mismatch(specific)
            raise Mismatch(
                f"no gradient flows through {name}: your code detaches it somewhere (.detach(), "
                "torch.no_grad(), .data or a NumPy round trip), so training could not learn "
                "through it"
            )
    for name, _key, got_grad, ref_grad in grads:
        if got_grad is None or not close(got_grad, ref_grad, atol=atol, rtol=1e-3):
            diff = max_difference(got_grad, ref_grad) if got_grad is not None else float("nan")
            raise Mismatch(
                f"the values are right but the gradient reaching {name} is not (largest "
                f"difference {diff:.3g}): part of the computation is detached or done in place"
            )


def tensor_result(
    value: Any, what: str, shape: Sequence[int] | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The student's value as it is, if it is a torch tensor of ``dtype`` (and ``shape``); else a
    Mismatch saying what was returned and what the next cells need."""
    if isinstance(value, np.ndarray):
        raise Mismatch(
            f"{what} returned a NumPy array; return a torch tensor (the next cells call torch "
            "functions on it): use torch operations only"
        )
    if isinstance(value, tuple | list):
        raise Mismatch(
            f"{what} returned a {type(value).__name__}; return only the tensor asked for"
        )
    if not isinstance(value, torch.Tensor):
        as_tensor(value, what)  # None, `...`: their own sentence
        raise Mismatch(f"{what} returned a {type(value).__name__}, expected a torch tensor")
    if shape is not None:
        expect_shape(value, shape, f"the result of {what}")
    _count()
    if value.dtype != dtype:
        raise Mismatch(
            f"{what} returned {str(value.dtype).removeprefix('torch.')} values; keep "
            f"{str(dtype).removeprefix('torch.')}, the dtype of the inputs and of the network's "
            "weights (no .double() or .float64)"
        )
    return value


# --------------------------------------------------------------------------- train mode


def train_mode(reference: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A copy of ``reference`` in train mode, BatchNorm statistics and affine weights spread out.

    In train mode BatchNorm normalises with the batch's statistics, so paths whose effect on
    freshly initialised weights in eval mode is tiny (nearest vs bilinear up-sampling, where a
    projection happens) move the output by far more than the tolerance.
    """
    module = copy.deepcopy(reference)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vary_batchnorm(module, affine=True)
    return module.train()


# --------------------------------------------------------------------------- first difference


def _record(module: torch.nn.Module, names: Sequence[str]) -> tuple[list, list]:
    calls: list[tuple[str, tuple, Any]] = []
    handles = []
    subs = dict(module.named_modules())
    for name in names:
        sub = subs.get(name)
        if sub is None:
            continue

        def hook(_m, args, out, name=name):  # noqa: ANN001
            calls.append((name, tuple(a.detach() for a in args if hasattr(a, "detach")), out))

        handles.append(sub.register_forward_hook(hook))
    return calls, handles


def first_difference(
    student_module: torch.nn.Module,
    reference_module: torch.nn.Module,
    inputs: Sequence[torch.Tensor],
    layers: dict[str, str],
    atol: float = 1e-5,
    run: Callable[[torch.nn.Module], Any] | None = None,
) -> str | None:
    """The first sub-layer (in the reference's order) that is never called or whose input
    differs, as a sentence; None when all inputs agree.

    ``layers`` maps a sub-module name (``"merge"``, ``"frdus.2"``) to what its input should be
    in the notebook's words ("torch.cat([o_prev, self.down(h_prev)], dim=1)").
    """
    names = list(layers)
    ref_calls, ref_handles = _record(reference_module, names)
    stu_calls, stu_handles = _record(student_module, names)
    try:
        with torch.no_grad():
            (run or (lambda m: m(*inputs)))(reference_module)
            try:
                call(run or (lambda m: m(*inputs)), student_module)
            except Exception:  # noqa: BLE001 - the check reports the error itself
                pass
    finally:
        for h in ref_handles + stu_handles:
            h.remove()
    seen: dict[str, int] = {}
    for name, args, _out in ref_calls:
        index = seen.get(name, 0)
        seen[name] = index + 1
        mine = [c for c in stu_calls if c[0] == name]
        if index >= len(mine):
            return f"self.{name} is never called (it should receive {layers[name]})"
        got = mine[index][1]
        if len(got) != len(args) or not all(
            close(a, b, atol=atol) for a, b in zip(got, args, strict=True)
        ):
            shape = tuple(got[0].shape) if got else ()
            want = tuple(args[0].shape) if args else ()
            also = f" (shape {shape}, expected {want})" if shape != want else ""
            return (
                f"the input of self.{name} differs from the reference{also}: it should be "
                f"{layers[name]}"
            )
    return None


class LayerLog:
    """Record which sub-layers of a module run, in order, with their input shapes::

        with LayerLog(frdu, ["merge", "dense", "project", "gru"]) as log:
            call(frdu, o_prev, h_prev)
        log.entered  # [("merge", (1, 12, 8, 8)), ("dense", ...), ...]

    When the student's code raises, ``log.entered[-1]`` is the layer that was running and
    :meth:`missing` names the layers that should have run before it.
    """

    def __init__(self, module: torch.nn.Module, names: Sequence[str]) -> None:
        self.module, self.names = module, list(names)
        self.entered: list[tuple[str, tuple[int, ...]]] = []
        self._handles: list[Any] = []

    def __enter__(self) -> LayerLog:
        subs = dict(self.module.named_modules())
        for name in self.names:
            if name in subs:

                def pre(_m, args, name=name):  # noqa: ANN001
                    shape = tuple(args[0].shape) if args and hasattr(args[0], "shape") else ()
                    self.entered.append((name, shape))

                self._handles.append(subs[name].register_forward_pre_hook(pre))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()

    def ran(self, name: str) -> int:
        """How often layer ``name`` ran."""
        return sum(1 for n, _ in self.entered if n == name)

    @property
    def last(self) -> str:
        """The layer that ran last ("" when none did)."""
        return self.entered[-1][0] if self.entered else ""

    def missing(self) -> list[str]:
        """Layers (in the given order) before the last one entered that never ran."""
        if not self.entered:
            return []
        upto = self.names.index(self.last) if self.last in self.names else len(self.names)
        return [n for n in self.names[:upto] if self.ran(n) == 0]
