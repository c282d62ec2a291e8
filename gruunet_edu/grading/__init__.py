"""Grading a class: run every submitted notebook, read its check results, write a table.

``gruunet-edu grade SUBMISSIONS --out REPORT`` finds every ``.ipynb`` under SUBMISSIONS, recognises
which course notebook it is from its metadata (``metadata.gruunet_course.source``, written by the
course builder into every student notebook; failing that, from the ``gruunet_edu.exercises.nb*``
module it imports), and executes it:

- in a fresh kernel (the ``python3`` kernel of this Python), with a time limit per notebook
  counted from its first cell; cells that raise do not stop the run (as in nbgrader), a notebook
  that runs out of time is stopped and its kernel killed;
- on a copy, in a temporary course folder, with ``HOME`` pointed at an empty temporary folder
  and an environment that holds only what Python, torch and the course need (nothing else of the
  grader's environment or home directory); ``$GRUUNET_CACHE`` stays the grader's, so the
  pretrained model the later notebooks share is trained at most once;
- with the checks' progress file (:mod:`gruunet_edu.progress`) in that folder: after the run it
  holds the outcome of every check the notebook ran.

The submission itself is only read. The student is the first folder below SUBMISSIONS
(``SUBMISSIONS/alice/anything.ipynb``) or, for notebooks directly in it, the file name without the
notebook's name (``alice_01_convgru.ipynb`` -> ``alice``).

Output: ``REPORT/grades.csv`` with one row per (student, notebook, exercise) and a row per
problem of a whole notebook (exercise ``(notebook)``: not valid JSON, not a course notebook,
stopped at the time limit, a cell raised, the kernel died, no check ran); and
``REPORT/grades.html``, students x exercises, colour-coded, the message on hover.

The submitted code runs on the grader's machine with the grader's permissions: the temporary
folder keeps it away from the grader's files by default, not by force.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gruunet_edu.grading.kernel import execute, kernel_env
from gruunet_edu.grading.report import CELL, COLUMNS, STYLE, write_csv, write_html
from gruunet_edu.grading.rows import (
    DEFAULT_TIME_LIMIT,
    DIED,
    DUPLICATE,
    ERROR,
    FAILED,
    INVALID,
    KEPT_ENV,
    KERNEL,
    NO_CHECKS,
    NOT_CHECKED,
    NOT_EXECUTED,
    NOT_RUN,
    NOTEBOOK_ROW,
    PASSED,
    RAISED,
    TIME_LIMIT,
    UNFINISHED,
    UNKNOWN,
    GradingError,
    Report,
    Row,
    Run,
)
from gruunet_edu.progress import ExerciseInfo

# ------------------------------------------------------------------------------- recognising


def lesson_of(nb: Any, lessons: set[str], modules: dict[str, str]) -> str | None:
    """The course notebook ``nb`` is a copy of (e.g. "01_convgru"), or None.

    ``lessons``: the known notebook names; ``modules``: exercise module -> notebook name."""
    source = (nb.get("metadata", {}).get("gruunet_course") or {}).get("source", "")
    if isinstance(source, str) and Path(source).stem in lessons:
        return Path(source).stem
    cells = nb.get("cells", [])
    code = "\n".join(c.get("source", "") for c in cells if c.get("cell_type") == "code")
    for module, lesson in modules.items():
        if re.search(rf"\bgruunet_edu\.exercises\.{module}\b", code):
            return lesson
    return None


def student_of(path: Path, root: Path, lesson: str | None) -> str:
    """The first folder below ``root``, or the file name without the notebook's name."""
    rel = path.relative_to(root)
    if len(rel.parts) > 1:
        return rel.parts[0]
    stem = path.stem
    if lesson:
        rest = re.sub(re.escape(lesson), "", stem, flags=re.IGNORECASE).strip(" -_.")
        if rest:
            return rest
    return stem


def submissions_in(root: Path) -> list[Path]:
    """Every notebook below ``root`` (not JupyterLab's checkpoint copies), in a stable order."""
    return sorted(
        p
        for p in root.rglob("*.ipynb")
        if p.is_file() and ".ipynb_checkpoints" not in p.relative_to(root).parts
    )


# ------------------------------------------------------------------------------- grading


def grade_notebook(
    path: Path,
    root: Path,
    exercises: list[ExerciseInfo],
    time_limit: float,
    modules: dict[str, str],
) -> list[Row]:
    """The rows of one submission."""
    import nbformat

    rel = path.relative_to(root).as_posix()
    lessons = {e.notebook for e in exercises}

    def problem(student: str, lesson: str, status: str, message: str) -> Row:
        return Row(student, lesson, NOTEBOOK_ROW, status, message, rel)

    try:
        nb = nbformat.reads(path.read_bytes().decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # not UTF-8, not JSON, not a notebook
        reason = " ".join(str(err).split())[:200]
        student = student_of(path, root, None)
        return [problem(student, "?", INVALID, f"not a valid notebook: {reason}")]
    lesson = lesson_of(nb, lessons, modules)
    student = student_of(path, root, lesson)
    if lesson is None:
        return [
            problem(
                student,
                "?",
                UNKNOWN,
                "not a course notebook: no gruunet_course metadata and no exercise module imported",
            )
        ]
    with tempfile.TemporaryDirectory(prefix="gruunet-grade-") as tmp:
        try:
            run = execute(nb, lesson, time_limit, Path(tmp))
        except Exception as err:  # the kernel did not start, ...
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            run = Run(stopped=NOT_EXECUTED, note=f"could not be executed ({reason})")
    rows = []
    if run.stopped == NOT_EXECUTED:
        rows.append(problem(student, lesson, NOT_EXECUTED, run.note))
        run.note = ""
    elif run.stopped == TIME_LIMIT:
        rows.append(
            problem(
                student,
                lesson,
                TIME_LIMIT,
                f"stopped after {time_limit:g} s in code cell {run.stopped_at}; the cells after "
                "it did not run (an endless loop?)",
            )
        )
    elif run.stopped == DIED:
        rows.append(
            problem(student, lesson, DIED, f"the kernel died in code cell {run.stopped_at}")
        )
    if run.errors:
        more = f" (and {len(run.errors) - 1} more cells)" if len(run.errors) > 1 else ""
        rows.append(problem(student, lesson, RAISED, run.errors[0] + more))
    if run.note:
        rows.append(problem(student, lesson, INVALID, run.note))
    mine = [e for e in exercises if e.notebook == lesson]
    if not run.stopped and not any(e.name in run.results for e in mine):
        rows.append(
            problem(student, lesson, NO_CHECKS, "no exercise check ran: were the checks deleted?")
        )
    for ex in mine:
        entry = run.results.get(ex.name)
        if entry is not None:
            status = str(entry.get("status", ERROR))
            message = str(entry.get("message", ""))
        elif run.stopped:
            status, message = NOT_RUN, "the notebook stopped before this check"
        else:
            status, message = NOT_CHECKED, "its check never ran: was the check cell deleted?"
        rows.append(Row(student, lesson, ex.name, status, message, rel))
    return rows


def grade(
    submissions: Path,
    out: Path,
    time_limit: float = DEFAULT_TIME_LIMIT,
    log: Callable[[str], None] | None = print,
    jobs: int = 1,
) -> Report:
    """Grade every notebook under ``submissions``; write ``out/grades.csv`` and ``grades.html``.

    ``jobs`` notebooks run at the same time (each in its own kernel); the rows keep file order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from gruunet_edu.progress import course_exercises

    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise GradingError(f"{submissions}: no such folder (expected a folder of notebooks)")
    files = submissions_in(submissions)
    if not files:
        raise GradingError(f"{submissions}: no .ipynb files in this folder or below it")
    exercises = course_exercises()
    modules = _exercise_modules()

    def one(path: Path) -> tuple[list[Row], float]:
        start = time.monotonic()
        found = grade_notebook(path, submissions, exercises, time_limit, modules)
        return found, time.monotonic() - start

    rows: list[Row] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for i, (path, (found, seconds)) in enumerate(zip(files, pool.map(one, files), strict=True)):
            rows.extend(found)
            if log is not None:
                passed = sum(r.status == PASSED for r in found)
                checked = sum(r.exercise != NOTEBOOK_ROW for r in found)
                problems = [r.status for r in found if r.exercise == NOTEBOOK_ROW]
                extra = f"; {', '.join(problems)}" if problems else ""
                log(
                    f"[{i + 1}/{len(files)}] {path.relative_to(submissions)}: "
                    f"{found[0].student}, {found[0].notebook}: {passed}/{checked} passed{extra} "
                    f"({seconds:.0f} s)"
                )
    rows.extend(_duplicates(rows))
    out.mkdir(parents=True, exist_ok=True)
    report = Report(rows, exercises, out / "grades.csv", out / "grades.html")
    write_csv(rows, report.csv)
    write_html(rows, exercises, report.html)
    return report


def _duplicates(rows: list[Row]) -> list[Row]:
    """A row for each student who submitted the same notebook more than once (the overview
    shows the last file; the CSV has them all)."""
    files: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r.notebook != "?" and r.submission not in files.get((r.student, r.notebook), []):
            files.setdefault((r.student, r.notebook), []).append(r.submission)
    return [
        Row(
            student,
            notebook,
            NOTEBOOK_ROW,
            DUPLICATE,
            f"submitted {len(names)} times ({', '.join(names)}); the overview shows {names[-1]}",
            names[-1],
        )
        for (student, notebook), names in files.items()
        if len(names) > 1
    ]


def _exercise_modules() -> dict[str, str]:
    """Exercise module name (``nb1_convgru``) -> notebook name (``01_convgru``)."""
    from gruunet_edu.exercises.core import REGISTRY
    from gruunet_edu.progress import _notebook_of

    found = {}
    for ex in REGISTRY.values():
        module = getattr(ex.checker, "__module__", "").rsplit(".", 1)[-1]
        if module.startswith("nb"):
            found[module] = _notebook_of(ex)
    return found


def file_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` (to show that grading leaves submissions alone)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------- command line


def _positive(text: str, parse: Callable[[str], Any], what: str, positive: str) -> Any:
    """``parse(text)`` if it is a number above 0, else an argparse error naming ``what`` (any
    value) or ``positive`` (a value not above 0)."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not value > 0:
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        raise argparse.ArgumentTypeError(f"expected {positive}, got {shown}")
    return value


def _positive_seconds(text: str) -> float:
    return _positive(text, float, "a number of seconds", "a positive number of seconds")


def _positive_int(text: str) -> int:
    return _positive(text, int, "a positive integer", "a positive integer")


def cmd_grade(args: argparse.Namespace) -> int:
    submissions, out = Path(args.submissions), Path(args.out)
    try:
        if out.resolve() == submissions.resolve():
            raise GradingError("--out must not be the submissions folder itself")
        report = grade(submissions, out, args.time_limit, jobs=args.jobs)
    except GradingError as err:
        print(f"gruunet-edu grade: error: {err}", file=sys.stderr)
        return 1
    students = len({r.student for r in report.rows})
    problems = sum(r.exercise == NOTEBOOK_ROW for r in report.rows)
    print(f"{students} students; {problems} notebook problems (see the CSV).")
    print(f"Table:    {report.csv}")
    print(f"Overview: {report.html}")
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``grade`` subcommand (``sub``: the CLI's subparsers)."""
    p = sub.add_parser(
        "grade",
        help="run a folder of submitted notebooks and tabulate which exercises pass",
        description="Execute every submitted notebook (.ipynb, any name; the course notebook is "
        "recognised from its metadata) in a fresh kernel, in a temporary folder with a "
        "temporary HOME, and read the results of its exercise checks. Writes OUT/grades.csv "
        "(student, notebook, exercise, status, message, submission) and OUT/grades.html "
        "(students x exercises). Submissions are never modified. The submitted code runs on "
        "this machine with your permissions.",
    )
    p.add_argument(
        "submissions",
        help="folder of notebooks: SUBMISSIONS/STUDENT/*.ipynb, or SUBMISSIONS/STUDENT_NAME.ipynb",
    )
    p.add_argument("--out", required=True, help="report folder (created if needed)")
    p.add_argument(
        "--time-limit",
        type=_positive_seconds,
        default=DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help="per notebook, from its first cell (default: %(default)s)",
    )
    p.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        metavar="N",
        help="notebooks run at the same time, each in its own kernel (default: %(default)s)",
    )
    p.set_defaults(func=cmd_grade)
    return p


__all__ = [
    "CELL",
    "COLUMNS",
    "FAILED",
    "GradingError",
    "KEPT_ENV",
    "KERNEL",
    "Report",
    "Row",
    "STYLE",
    "UNFINISHED",
    "add_parser",
    "file_hashes",
    "grade",
    "grade_notebook",
    "kernel_env",
]
