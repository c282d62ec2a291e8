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
import asyncio
import csv
import hashlib
import html
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gruunet_edu.progress import FILE_NAME, ExerciseInfo, ProgressFileError, read_log

DEFAULT_TIME_LIMIT = 900  # seconds per notebook; the training notebooks take minutes on a CPU
NOTEBOOK_ROW = "(notebook)"  # the exercise column of a row about a whole notebook
KERNEL = "python3"

# Exercise statuses: the check's own (CheckResult.status) and two for checks that did not run.
PASSED, FAILED, ERROR, UNFINISHED = "passed", "failed", "error", "unfinished"
NOT_CHECKED = "not checked"  # the notebook ran to the end without this check
NOT_RUN = "not run"  # the run stopped (time limit, dead kernel) before this check
# Statuses of a whole notebook.
INVALID, UNKNOWN, TIME_LIMIT, RAISED, DIED, NO_CHECKS = (
    "invalid",
    "unknown notebook",
    "time limit",
    "raised",
    "kernel died",
    "no checks",
)
DUPLICATE = "duplicate"
NOT_EXECUTED = "not executed"  # no kernel could be started for it

# What the environment of a graded kernel keeps from the grader's (Python, torch, threads, GPUs).
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT", "LD_LIBRARY_PATH",
            "VIRTUAL_ENV", "CONDA_PREFIX", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "HIP_VISIBLE_DEVICES")  # fmt: skip


class GradingError(Exception):
    """The grading run as a whole cannot go on (no submissions folder...)."""


@dataclass(frozen=True)
class Row:
    """One line of the CSV."""

    student: str
    notebook: str
    exercise: str
    status: str
    message: str
    submission: str  # the file, relative to the submissions folder


@dataclass
class Run:
    """What executing one notebook gave."""

    stopped: str = ""  # "" (ran to the end), TIME_LIMIT, DIED or NOT_EXECUTED
    stopped_at: int = 0  # the code cell (1-based) that was running when it stopped
    errors: list[str] = field(default_factory=list)  # one line per cell that raised
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # the progress log entries
    note: str = ""  # a problem reading the progress file


@dataclass
class Report:
    rows: list[Row]
    exercises: list[ExerciseInfo]
    csv: Path
    html: Path


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


# ------------------------------------------------------------------------------- executing


class _OutOfTime(Exception):
    pass


def kernel_env(home: Path, progress_file: Path, environ: dict[str, str] | None = None) -> dict:
    """The environment of a graded kernel: a temporary HOME, the progress file, and only what
    Python, torch and the course need from the grader's."""
    from gruunet_edu.training.pretrained import CACHE_ENV, cache_dir

    source = os.environ if environ is None else environ
    env = {k: source[k] for k in KEPT_ENV if k in source}
    env.update({k: v for k, v in source.items() if k.startswith("GRUUNET_")})
    package_root = str(Path(__file__).resolve().parent.parent)  # importable from source, too
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        TMPDIR=str(home / "tmp"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_CONFIG_HOME=str(home / ".config"),
        PYTHONPATH=package_root,
        PYTHONNOUSERSITE="1",
        GRUUNET_PROGRESS=str(progress_file),
    )
    env.setdefault(CACHE_ENV, str(cache_dir()))  # the grader's model cache, with the real HOME
    env.pop("GRUUNET_DEBUG", None)
    return env


def _code_cell_number(nb: Any, cell: Any) -> int:
    code = [c for c in nb.cells if c.cell_type == "code"]
    return next((i + 1 for i, c in enumerate(code) if c is cell), 0)


def _errors(nb: Any) -> list[str]:
    """One line per code cell whose output is an error."""
    found = []
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                value = " ".join(str(out.get("evalue", "")).split())[:200]
                found.append(f"cell {i + 1} raised {out.get('ename', 'an error')}: {value}")
                break
    return found


def execute(nb: Any, lesson: str, time_limit: float, workdir: Path) -> Run:
    """Execute ``nb`` (a copy) in a fresh kernel in a temporary course folder under ``workdir``.

    Runs an event loop of its own: call it from a thread without one (:func:`grade` does)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    course = workdir / "course" / "notebooks"
    home = workdir / "home"
    for folder in (course, home / "tmp"):
        folder.mkdir(parents=True, exist_ok=True)
    progress_file = course / FILE_NAME
    nbformat.write(nb, course / f"{lesson}.ipynb")  # the copy the student would have opened

    run = Run()
    deadline: list[float] = []
    current: list[Any] = [None]

    def timeout_func(cell: Any) -> int:
        if not deadline:
            deadline.append(time.monotonic() + time_limit)
        current[0] = cell
        left = deadline[0] - time.monotonic()
        if left <= 0:
            raise _OutOfTime
        return max(1, math.ceil(left))

    client = NotebookClient(
        nb,
        timeout=math.ceil(time_limit),
        timeout_func=timeout_func,
        kernel_name=KERNEL,
        allow_errors=True,
        interrupt_on_timeout=False,
        shutdown_kernel="immediate",
        startup_timeout=120,
        record_timing=False,
        resources={"metadata": {"path": str(course)}},
    )
    try:
        # A loop of its own, closed with its pending tasks (grade() runs this in a worker
        # thread, so it works inside a notebook's running loop, too).
        execution = client.async_execute(
            env=kernel_env(home, progress_file),
            cwd=str(course),
            stdout=subprocess.DEVNULL,  # the kernel's own log lines; cell outputs come via ZMQ
            stderr=subprocess.DEVNULL,
        )
        asyncio.run(execution)
    except (CellTimeoutError, _OutOfTime):
        run.stopped = TIME_LIMIT
    except DeadKernelError:
        run.stopped = DIED
    if run.stopped:
        run.stopped_at = _code_cell_number(nb, current[0])
    run.errors = _errors(nb)
    try:
        run.results = read_log(progress_file)["exercises"]
    except ProgressFileError as err:
        run.note = f"the checks' progress file was damaged by the notebook ({err})"
    return run


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


# ------------------------------------------------------------------------------- writing

COLUMNS = ("student", "notebook", "exercise", "status", "message", "submission")


def write_csv(rows: list[Row], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([getattr(r, c) for c in COLUMNS])
    return path


# status -> (label in a cell, CSS class)
CELL = {
    PASSED: ("done", "done"),
    FAILED: ("not right", "wrong"),
    ERROR: ("error", "wrong"),
    UNFINISHED: ("not yet", "todo"),
    NOT_CHECKED: ("no check", "missing"),
    NOT_RUN: ("not run", "missing"),
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 4px 7px; text-align: center; white-space: nowrap; }
th.nb { background: #eceff1; }
th.ex { font-weight: normal; writing-mode: vertical-rl; transform: rotate(180deg); }
td.student { text-align: left; font-weight: bold; }
td.done { background: #a5d6a7; } td.wrong { background: #ef9a9a; }
td.todo { background: #fff59d; } td.missing { background: #cfd8dc; }
td.none { color: #999; } td.problems { text-align: left; white-space: normal; max-width: 28em; }
td[title] { cursor: help; } .legend span { padding: 2px 8px; margin-right: 6px; }
"""


def write_html(rows: list[Row], exercises: list[ExerciseInfo], path: Path) -> Path:
    """Students x exercises, colour-coded; hovering a cell shows the check's message."""
    esc = html.escape
    students = sorted({r.student for r in rows})
    by_cell = {(r.student, r.exercise): r for r in rows if r.exercise != NOTEBOOK_ROW}
    problems: dict[str, list[Row]] = {}
    for r in rows:
        if r.exercise == NOTEBOOK_ROW:
            problems.setdefault(r.student, []).append(r)
    lessons: dict[str, list[ExerciseInfo]] = {}
    for ex in exercises:
        lessons.setdefault(ex.notebook, []).append(ex)
    counted = [e for e in exercises if not e.bonus]

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>gruunet-edu grades</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>gruunet-edu: class overview</h1>",
        f"<p>{len(students)} students, {len({r.submission for r in rows})} notebooks graded. "
        "Hover over a cell for the check's message.</p>",
        '<p class="legend"><span style="background:#a5d6a7">done</span>'
        '<span style="background:#ef9a9a">not right yet / error</span>'
        '<span style="background:#fff59d">not yet (unfinished)</span>'
        '<span style="background:#cfd8dc">check missing or not run</span>'
        '<span style="color:#999">&mdash; not submitted</span></p>',
        "<table><thead><tr><th rowspan=2>student</th><th rowspan=2>done</th>",
    ]
    out += [f'<th class="nb" colspan={len(exs)}>{esc(nb)}</th>' for nb, exs in lessons.items()]
    out.append("<th rowspan=2>notebook problems</th></tr><tr>")
    for exs in lessons.values():
        for ex in exs:
            label = ex.name + (" (bonus)" if ex.bonus else "")
            out.append(f'<th class="ex" title="{esc(ex.title)}">{esc(label)}</th>')
    out.append("</tr></thead><tbody>")
    for student in students:
        done = sum(
            by_cell.get((student, e.name)) is not None
            and by_cell[(student, e.name)].status == PASSED
            for e in counted
        )
        out.append(f'<tr><td class="student">{esc(student)}</td><td>{done}/{len(counted)}</td>')
        for exs in lessons.values():
            for ex in exs:
                r = by_cell.get((student, ex.name))
                if r is None:
                    out.append('<td class="none" title="not submitted">&mdash;</td>')
                    continue
                label, css = CELL.get(r.status, (r.status, "wrong"))
                tip = f"{ex.title}: {r.message}" if r.message else ex.title
                out.append(f'<td class="{css}" title="{esc(tip)}">{esc(label)}</td>')
        notes = [
            f'<span title="{esc(p.message)}">'
            f"{esc(p.notebook if p.notebook != '?' else p.submission)}: {esc(p.status)}</span>"
            for p in problems.get(student, [])
        ]
        out.append(f'<td class="problems">{"; ".join(notes)}</td></tr>')
    out.append("</tbody></table></body></html>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- command line


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value:g}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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
    "GradingError",
    "Report",
    "Row",
    "add_parser",
    "file_hashes",
    "grade",
    "grade_notebook",
]
