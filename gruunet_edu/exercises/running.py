"""Running the student's code inside a check, and what a check concludes from it.

A checker raises :class:`Mismatch` (the result differs; the message says how),
:class:`StudentError` (the student's code raised; one sentence about it) or :class:`Unfinished`
(the code still raises ``NotImplementedError``). :func:`call` runs student code and turns its
exceptions into the last two; :class:`RecordCalls` records the shapes passed to some torch
functions, to explain a failure precisely.
"""

from __future__ import annotations

import linecache
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gruunet_edu.exercises.messages import FailingOp, explain, one_line, shape_sentence


class Mismatch(Exception):
    """The student's result differs from the reference; the message says how."""


class StudentError(Exception):
    """The student's code raised; the message is one sentence about it (``brief``: without the
    plain-language explanation, for checkers that add a more specific one)."""

    brief: str = ""
    original: str = ""  # the exception's own message (e.g. torch's), for checkers that parse it
    kind: str = ""  # the exception's type name


class Unfinished(Exception):
    """The student's code still raises NotImplementedError (the exercise is not done)."""


# --------------------------------------------------------------------------- running student code


def _student_frame(tb: traceback.StackSummary) -> traceback.FrameSummary | None:
    """The innermost frame of the student's own code (a notebook cell or a file outside the
    package and outside torch/numpy), or None."""
    chosen = None
    for frame in tb:
        name = frame.filename.replace("\\", "/")
        if "/gruunet_edu/" in name or "/site-packages/" in name or "/lib/python" in name:
            continue
        chosen = frame
    return chosen


def call(fn: Callable[..., Any], *args: Any, what: str = "your code", **kwargs: Any) -> Any:
    """Call student code; NotImplementedError -> :class:`Unfinished`, any other exception ->
    :class:`StudentError` with one sentence naming the exception and the student's line."""
    failing = FailingOp()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"), failing:
            warnings.simplefilter("ignore")  # the check reports the problem itself
            return fn(*args, **kwargs)
    except NotImplementedError:
        raise Unfinished(f"{what} still raises NotImplementedError") from None
    except (Mismatch, StudentError, Unfinished):
        raise
    except Exception as err:  # the student's mistake, reported in one sentence
        frame = _student_frame(traceback.extract_tb(err.__traceback__))
        where, line = "", ""
        if frame is not None:
            line = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
            where = f" at line {frame.lineno} ({line!r})" if line else f" at line {frame.lineno}"
        msg = one_line(err) or "(no message)"
        plain = shape_sentence(failing.op, failing.shapes, err, failing.dim)
        if plain:  # a shape error in one plain sentence: the line, the tensors, their shapes
            at = f" at line {frame.lineno} ({line!r})" if frame is not None and line else ""
            brief = f"{type(err).__name__}{at}: {plain}"
            error = StudentError(brief)
            error.brief, error.original, error.kind = brief, str(err), type(err).__name__
            raise error from None
        brief = f"Calling {what} raised {type(err).__name__}{where}: {msg}"
        error = StudentError(brief + explain(err))
        error.original, error.kind = str(err), type(err).__name__
        error.brief = brief if brief[-1] in ".!?" else brief + "."
        raise error from None


class RecordCalls(torch.overrides.TorchFunctionMode):
    """Record the tensor shapes passed to some torch functions while student code runs::

        with RecordCalls({"cat"}) as rec:
            call(student, x)
        rec.calls  # [("cat", [(2, 8, 4, 4), (2, 16, 8, 8)]), ...]

    Used to explain a failure precisely (e.g. which resolution was concatenated).
    """

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names
        self.calls: list[tuple[str, list[tuple[int, ...]]]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in self.names:
            flat: list[Any] = []
            for a in args:
                flat.extend(a if isinstance(a, list | tuple) else [a])
            shapes = [tuple(t.shape) for t in flat if isinstance(t, torch.Tensor)]
            self.calls.append((name, shapes))
        return func(*args, **kwargs)
