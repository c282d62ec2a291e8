"""The exercise-check framework: run the student's code against the reference, explain what differs.

Each notebook module (``nb1_convgru`` ...) defines :class:`Exercise` objects. In a notebook::

    from gruunet_edu.exercises import hint, use_student_or_reference
    from gruunet_edu.exercises.nb1_convgru import check_convgru

    check_convgru(StudentConvGRU)      # prints "ConvGRU cell: All checks passed." or what is wrong
    hint("convgru")                    # the next hint, one more each call
    ConvGRU = use_student_or_reference(StudentConvGRU, ConvGRUCell)   # says which one it uses

A check never raises for a mistake in the student's code: an exception inside it is reported in
one sentence (exception type, message, the student's line), an unfinished exercise (``raise
NotImplementedError``) is reported as "not done yet", and the notebook goes on.

A checker is a function ``checker(student) -> None`` that raises :class:`Mismatch` with a specific
message at the first problem it finds; :func:`call` runs student code and turns its exceptions
into :class:`StudentError` (both live in :mod:`gruunet_edu.exercises.running` and are
imported from here). :meth:`Exercise.evaluate` returns a :class:`CheckResult` without
printing (used by the tests); :meth:`Exercise.check` prints it. Every check leaves torch's,
NumPy's and Python's global random state as it found it (:func:`preserved_rng`).

One way to write a check: the reference (saved once in the package), a table of known mistakes
with their messages, and the inputs to try; :func:`diagnose` compares with the reference, then
the table, then an ``explain`` step (:mod:`gruunet_edu.exercises.probes`: the first layer whose
input differs, gradients, side effects, train mode). :mod:`gruunet_edu.exercises.messages` turns
torch's shape errors into one sentence.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import pkgutil
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gruunet_edu.exercises.messages import one_line, plural, sentence
from gruunet_edu.exercises.running import Mismatch, StudentError, Unfinished, call
from gruunet_edu.exercises.running import RecordCalls as RecordCalls  # re-exported
from gruunet_edu.progress import record as record_progress

_one_line = one_line  # older name, kept for importers

PASSED = "All checks passed."


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one exercise."""

    exercise: str
    title: str
    passed: bool
    status: str  # "passed", "failed", "error" or "unfinished"
    message: str
    checks: int = 0  # number of checks that ran (passed ones when ``passed``)

    def __str__(self) -> str:
        return self.text()

    def text(self) -> str:
        """What the notebook prints."""
        message = self.message
        first = message.split(" ", 1)[0]
        if first.isalpha() and (len(first) > 1 or first == "a"):  # not "z", "frdu_..."
            message = message[:1].upper() + message[1:]
        message = sentence(message)
        if self.passed:
            return f"{self.title}: {PASSED} ({plural(self.checks, 'check')})"
        if self.status == "unfinished":
            return f"{self.title}: not done yet ({self.message.rstrip('.')})."
        follow = f'Ask for a hint with hint("{self.exercise}").'
        if self.status == "error":
            return f"{self.title}: your code raised an error. {message}\n{follow}"
        return f"{self.title}: not right yet. {message}\n{follow}"


@dataclass
class Exercise:
    """One exercise: a name for ``hint(name)``, its checker, the reference and progressive hints."""

    name: str
    title: str
    checker: Callable[[Any], int | None]
    reference: Any
    hints: Sequence[str] = ()
    solution_notebook: str = ""
    bonus: bool = False  # optional: nothing later in the notebook depends on it
    hints_shown: int = 0
    last: CheckResult | None = field(default=None, repr=False)
    last_student: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        REGISTRY[self.name] = self

    def evaluate(self, student: Any) -> CheckResult:
        """Run the checker on the student's code; never raises for the student's mistakes."""
        counter = _Counter()
        try:
            with counter, preserved_rng():
                n = self.checker(student)
            result = CheckResult(self.name, self.title, True, "passed", PASSED, n or counter.n)
        except Unfinished as err:
            result = CheckResult(self.name, self.title, False, "unfinished", str(err))
        except StudentError as err:
            result = CheckResult(self.name, self.title, False, "error", str(err))
        except Mismatch as err:
            result = CheckResult(self.name, self.title, False, "failed", str(err))
        except Exception as err:  # e.g. a value of an unexpected type: still one sentence
            message = (
                f"The check could not use what your code returned ({type(err).__name__}: "
                f"{one_line(err)}); compare its types and shapes with the exercise's description"
            )
            result = CheckResult(self.name, self.title, False, "error", message)
        self.last, self.last_student = result, student
        record_progress(result)  # the student's progress file; never raises, prints nothing
        return result

    def check(self, student: Any) -> None:
        """Check the student's code and print the outcome (returns None: nothing is echoed)."""
        print(self.evaluate(student).text())

    def hint(self, level: int | None = None) -> str:
        """The next hint (or hint number ``level``, 1-based); progressive on repeated calls."""
        if not self.hints:
            return f"{self.title}: no hints for this exercise."
        if level is None:
            self.hints_shown = min(self.hints_shown + 1, len(self.hints) + 1)
            level = self.hints_shown
        if level > len(self.hints):
            where = f" in {self.solution_notebook}" if self.solution_notebook else ""
            return (
                f"{self.title}: that was the last hint ({len(self.hints)}). The worked solution "
                f"is{where}; later cells use the reference meanwhile."
            )
        level = max(level, 1)
        return f"{self.title}, hint {level}/{len(self.hints)}: {self.hints[level - 1]}"


REGISTRY: dict[str, Exercise] = {}


class _Counter:
    """Counts :func:`expect` calls made while a checker runs (the "N checks" in the report)."""

    active: list[_Counter] = []

    def __init__(self) -> None:
        self.n = 0

    def __enter__(self) -> _Counter:
        _Counter.active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _Counter.active.remove(self)


def _count() -> None:
    if _Counter.active:
        _Counter.active[-1].n += 1


# --------------------------------------------------------------------------- comparisons


def expect(condition: bool, message: str) -> None:
    """Raise :class:`Mismatch` with ``message`` unless ``condition`` holds (counts one check)."""
    _count()
    if not condition:
        raise Mismatch(message)


def as_tensor(value: Any, what: str) -> torch.Tensor:
    """The student's value as a tensor, or a Mismatch saying what was returned instead."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if value is None:
        raise Mismatch(f"{what} returned None: is a `return` statement missing?")
    if value is Ellipsis:
        raise Mismatch(f"{what} returned `...`: replace the placeholder with your code")
    raise Mismatch(f"{what} returned a {type(value).__name__}, expected a tensor")


def as_numpy(value: Any) -> Any:
    """A returned tensor as a NumPy array (detached, on the CPU); anything else as it is."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value


def expect_shape(value: Any, shape: Sequence[int], what: str, meaning: str = "") -> None:
    """Check the shape of an array or tensor."""
    _count()
    got = tuple(value.shape)
    if got != tuple(shape):
        also = f" = {meaning}" if meaning else ""
        raise Mismatch(f"{what} has shape {got}, expected {tuple(shape)}{also}")


def close(a: Any, b: Any, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    """Same shape and values within tolerance (tensors or arrays)."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).detach()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).detach()
    if a.shape != b.shape:
        return False
    return bool(torch.allclose(a.double(), b.double(), atol=atol, rtol=rtol))


def max_difference(a: Any, b: Any) -> float:
    """Largest absolute difference of two same-shape tensors or arrays."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).detach().double()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).detach().double()
    return float((a - b).abs().max()) if a.numel() else 0.0


def diagnose(
    got: Any,
    reference: Any,
    variants: dict[str, tuple[Any, str]] | Callable[[], dict[str, tuple[Any, str]]],
    what: str,
    atol: float = 1e-5,
    explain: Callable[[], str | None] | None = None,
    compared: str = "",
) -> None:
    """Pass when ``got`` matches ``reference``; otherwise name the mistake.

    The table of known mistakes comes first: ``variants`` maps a mistake's name to (the output
    that mistake produces, the message); it may be a function returning that dict, called only
    when ``got`` is wrong. Then ``explain()`` may find the cause another way (e.g. the first
    layer whose input differs, :func:`gruunet_edu.exercises.probes.first_difference`). Only
    when neither names it does the message say what differs, on which input (``compared``).
    """
    _count()
    if close(got, reference, atol=atol):
        return
    if callable(variants):
        variants = variants()
    for _name, (output, message) in variants.items():
        if output is not None and close(got, output, atol=atol):
            raise Mismatch(message)
    if explain is not None:
        message = explain()
        if message:
            raise Mismatch(message)
    plural_what = what.split()[-1].endswith("s") and not what.split()[-1].endswith("ss")
    verb = "differ" if plural_what else "differs"
    on = f" {compared}" if compared else ""
    raise Mismatch(
        f"{what} {verb} from the reference{on} (largest difference "
        f"{max_difference(got, reference):.3g}); compare your code with the equations above"
    )


def instantiate(student: Any, reference_module: torch.nn.Module, *args: Any, what: str) -> Any:
    """A student module with the reference's weights: ``student`` may be a class (built with
    ``*args``) or an instance of the right size. Reference weights are copied into it."""
    if inspect.isclass(student):
        module = call(student, *args, what=f"{student.__name__}{args}")
    else:
        module = student
    if not isinstance(module, torch.nn.Module):
        raise Mismatch(f"expected an nn.Module class, got {type(module).__name__}")
    try:
        module.load_state_dict(reference_module.state_dict())
    except RuntimeError:
        raise Mismatch(
            f"{what} does not have the reference's layers (load_state_dict failed): keep the "
            "layers the class inherits and only write forward()"
        ) from None
    return module.train(reference_module.training)


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Leave torch's, NumPy's and Python's global random state exactly as found, whatever the
    block does (also when it raises): a notebook's later random numbers do not depend on
    whether, or how, a check ran. Every :meth:`Exercise.evaluate` runs inside one."""
    torch_state = torch.random.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    try:
        yield
    finally:
        torch.random.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        np.random.set_state(numpy_state)
        random.setstate(python_state)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch, NumPy and ``random`` inside the block without changing the caller's random
    state (the notebook's later random numbers do not depend on whether a check ran)."""
    with preserved_rng():
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        yield


def vary_batchnorm(module: torch.nn.Module, affine: bool = False) -> None:
    """Non-trivial BatchNorm statistics (and with ``affine`` weights and biases) in every
    BatchNorm2d of ``module``, drawn from torch's global generator, so every layer matters."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                if affine:
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.2, 0.2)


def exercise_of(name_or_reference: Any) -> Exercise | None:
    """The registered exercise with this name or this reference (importing the nb* modules)."""
    for _ in range(2):
        for ex in REGISTRY.values():
            if ex.name == name_or_reference or ex.reference is name_or_reference:
                return ex
        import_all()
    return None


def import_all() -> None:
    """Import every checker module (``exercises.nb*`` and the bonus exercises), so that the
    registry holds the whole course whatever the notebook imported so far."""
    package = importlib.import_module("gruunet_edu.exercises")
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("nb") or info.name == "bonus":
            try:
                importlib.import_module(f"gruunet_edu.exercises.{info.name}")
            except Exception:  # a broken module must not break hints for the others
                continue


# --------------------------------------------------------------------------- notebook helpers


def hint(name: str, level: int | None = None) -> None:
    """Print the next hint for exercise ``name`` (or hint number ``level``)."""
    ex = exercise_of(name)
    if ex is None:
        known = ", ".join(sorted(REGISTRY)) or "none loaded"
        print(f"No exercise called {name!r}; exercises: {known}.")
        return
    print(ex.hint(level))


def use_student_or_reference(
    student: Any, reference: Any, exercise: str | None = None, verbose: bool = True
) -> Any:
    """Return the student's implementation if it passes its exercise's checks, else the reference.

    Says which one is used, so a notebook with unfinished exercises still runs top to bottom.
    The last check result of the exercise is reused; the checks run now if there is none.
    """
    ex = exercise_of(exercise if exercise is not None else reference)
    ref_name = getattr(reference, "__name__", type(reference).__name__).removeprefix("reference_")
    stu_name = getattr(student, "__name__", type(student).__name__)
    if ex is None:
        raise ValueError(f"no exercise registered for {exercise or ref_name}")
    result = ex.last if ex.last_student is student and ex.last else ex.evaluate(student)
    if result.passed:
        if verbose:
            print(f"Using your {stu_name} (it passes all checks).")
        return student
    if verbose:
        why = "is not done yet" if result.status == "unfinished" else "does not pass its checks yet"
        print(f"Using the reference {ref_name} ({stu_name} {why}).")
    return reference
