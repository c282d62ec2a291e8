"""Student progress: every exercise check records its outcome in a small JSON file.

Each time a check runs (``check_convgru(MyConvGRU)`` ...), the outcome is written to
``gruunet-progress.json`` in the kernel's working folder, which in JupyterLab is the notebook's
folder, so the seven notebooks share one file. Per exercise it keeps the status, the check's
message, the time and the number of attempts, never the student's code (an error message that
quotes a line of it keeps only the line number)::

    {"format": "gruunet-edu progress", "version": 1,
     "exercises": {"convgru": {"status": "failed", "message": "...", "time": "2026-...Z",
                               "attempts": 3, "title": "ConvGRU cell"}, ...}}

``progress()`` in a notebook (``from gruunet_edu.exercises import progress``) shows every exercise
of the course, derived from the exercise registry, as done / not yet / not right yet with the last
message: an HTML table in JupyterLab, text elsewhere; ``gruunet-edu progress`` prints the same in a
terminal.

Where the file goes: ``$GRUUNET_PROGRESS`` if set (a file, a folder for ``gruunet-progress.json``
in it, or ``off``); otherwise the working folder, except under pytest (``PYTEST_CURRENT_TEST`` is
set, also in the kernels nbval starts), where recording is off unless ``$GRUUNET_PROGRESS`` names
a file: test runs never write into the repository.

Recording never breaks a check and never adds to its printed output: a folder that cannot be
written to or a damaged file gives one line on stderr (once per kernel) and the check goes on. A
damaged file is kept beside the new one as ``gruunet-progress.json.damaged``; reading it for a
table says so and starts afresh. Two kernels that record at the same time (two notebooks open)
take turns: the read-modify-write of the file holds an exclusive lock on
``gruunet-progress.json.lock`` (``fcntl.flock`` on Linux and macOS, ``msvcrt.locking`` on
Windows; the system drops it when a kernel dies), so neither update is lost.

Importing this module costs only the standard library (the command line imports it to build its
parser); the atomic writer (``training.checkpoint.write_atomically``) and the exercise modules
are imported when a check is recorded or the exercises are listed.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FILE_NAME = "gruunet-progress.json"
ENV = "GRUUNET_PROGRESS"
OFF = {"off", "0", "no", "false", "none", ""}
FORMAT = "gruunet-edu progress"
VERSION = 1

# A check's status (CheckResult.status) as the student reads it.
STATES = {
    "passed": "done",
    "unfinished": "not yet",
    "failed": "not right yet",
    "error": "not right yet",
}
NOT_CHECKED = "not yet"  # an exercise whose check never ran


class ProgressFileError(Exception):
    """The progress file exists but is not a progress file (bad JSON or an unexpected layout)."""


# ------------------------------------------------------------------------------- where


def progress_path(environ: dict[str, str] | None = None) -> Path | None:
    """The progress file checks write to, or None when recording is off."""
    env = os.environ if environ is None else environ
    value = env.get(ENV)
    if value is None:
        if "PYTEST_CURRENT_TEST" in env:  # a test run, or a kernel started by nbval
            return None
        return Path.cwd() / FILE_NAME
    if value.strip().lower() in OFF:
        return None
    path = Path(value).expanduser()
    return path / FILE_NAME if path.is_dir() else path


# ------------------------------------------------------------------------------- reading


def empty_log() -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "exercises": {}}


def read_log(path: Path) -> dict[str, Any]:
    """The progress log in ``path``; an empty one when the file is missing.

    Raises :class:`ProgressFileError` when the file is not valid JSON or not a progress log.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return empty_log()
    except UnicodeDecodeError as err:
        raise ProgressFileError(f"{path} is not a text file ({err.reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProgressFileError(
            f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    exercises = data.get("exercises") if isinstance(data, dict) else None
    if not isinstance(exercises, dict) or not all(
        isinstance(e, dict) and isinstance(e.get("status"), str) for e in exercises.values()
    ):
        raise ProgressFileError(
            f"{path} is not a progress file (expected {{'exercises': {{name: {{'status': ...}}}}}})"
        )
    return data


# ------------------------------------------------------------------------------- recording

_warned: set[str] = set()

# core.call() quotes the student's line: "... at line 7 ('h = z * h_prev'): ..."
_QUOTED_LINE = re.compile(r"( at line \d+) \((?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\)")


def without_code(message: str) -> str:
    """The check's message without the quoted line of student code (the line number stays)."""
    return _QUOTED_LINE.sub(r"\1", message)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        print(f"gruunet-edu: {message}", file=sys.stderr)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_log(path: Path, log: dict[str, Any]) -> None:
    """Write the log atomically (readers never see half a file)."""
    from gruunet_edu.training.checkpoint import write_atomically

    data = (json.dumps(log, indent=1, sort_keys=True) + "\n").encode("utf-8")
    write_atomically(path, lambda handle: handle.write(data))


LOCK_TIMEOUT = 10.0  # seconds to wait for another kernel's write before giving up


def _try_lock(handle: Any) -> bool:
    """Take the exclusive lock of an open file without waiting; whether it was free."""
    try:
        if os.name == "nt":
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _unlock(handle: Any) -> None:
    if os.name == "nt":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` (on ``<path>.lock`` beside it) for a read-modify-write.

    Waits up to ``timeout`` seconds for another process's turn, then raises TimeoutError.
    """
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a+b") as handle:
        deadline = time.monotonic() + timeout
        while not _try_lock(handle):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{lock_path} stayed locked for {timeout:.0f} s")
            time.sleep(0.01)
        try:
            yield
        finally:
            _unlock(handle)


def record(result: Any, path: Path | None = None) -> None:
    """Record one check's outcome (a ``CheckResult``); never raises, prints nothing on success."""
    try:
        path = path if path is not None else progress_path()
        if path is None:
            return
        with locked(path):  # another kernel's record waits: no update is lost
            _update(path, result)
    except Exception as err:  # a read-only folder, a full disk...: the check itself goes on
        where = path if path is not None else FILE_NAME
        _warn_once(
            f"write:{where}",
            f"progress is not saved ({type(err).__name__}: {err}). Set {ENV} to a file you can "
            f"write, or to 'off'.",
        )


def _update(path: Path, result: Any) -> None:
    """Read the log, enter the result, write the log (the caller holds the lock)."""
    try:
        log = read_log(path)
    except ProgressFileError as err:
        damaged = path.with_name(path.name + ".damaged")
        os.replace(path, damaged)
        _warn_once(f"damaged:{path}", f"{err}; kept it as {damaged.name}, starting afresh.")
        log = empty_log()
    entries = log["exercises"]
    previous = entries.get(result.exercise, {})
    attempts = previous.get("attempts", 0)
    entries[result.exercise] = {
        "status": result.status,
        "title": result.title,
        "message": without_code(result.message),
        "time": _now(),
        "attempts": (attempts if isinstance(attempts, int) else 0) + 1,
    }
    write_log(path, log)


# ------------------------------------------------------------------------------- the exercises


@dataclass(frozen=True)
class ExerciseInfo:
    """One exercise of the course, as listed by the registry."""

    name: str
    title: str
    notebook: str  # e.g. "01_convgru"
    bonus: bool = False


def course_exercises() -> list[ExerciseInfo]:
    """Every exercise of the course, in notebook order: imports all checker modules (the
    ``exercises.nb*`` ones and the bonus exercises) and reads the registry (a module that fails
    to import is left out)."""
    from gruunet_edu.exercises.core import REGISTRY, import_all

    import_all()
    listed = [
        ExerciseInfo(ex.name, ex.title, _notebook_of(ex), ex.bonus) for ex in REGISTRY.values()
    ]
    return sorted(listed, key=lambda e: (e.notebook, e.bonus))  # stable: registry order within


def _notebook_of(exercise: Any) -> str:
    if exercise.solution_notebook:
        return Path(exercise.solution_notebook).stem
    return getattr(exercise.checker, "__module__", "").rsplit(".", 1)[-1]


# ------------------------------------------------------------------------------- showing


@dataclass
class ProgressRow:
    notebook: str
    name: str
    title: str
    state: str  # "done", "not yet", "not right yet"
    message: str
    time: str
    bonus: bool = False


@dataclass
class Progress:
    """The progress table: ``str()`` gives text, ``_repr_html_`` an HTML table in JupyterLab."""

    rows: list[ProgressRow]
    path: Path | None
    note: str = ""  # e.g. "the file was damaged; starting afresh"
    extra: list[str] = field(default_factory=list)  # recorded names no longer in the course

    def counts(self, bonus: bool = False) -> tuple[int, int]:
        rows = [r for r in self.rows if r.bonus == bonus]
        return sum(r.state == "done" for r in rows), len(rows)

    def summary(self) -> str:
        done, total = self.counts()
        text = f"{done} of {total} exercises done"
        bonus_done, bonus_total = self.counts(bonus=True)
        if bonus_total:
            text += f", {bonus_done} of {bonus_total} bonus exercises"
        return text + "."

    def _header(self) -> list[str]:
        lines = []
        if self.note:
            lines.append(self.note)
        if self.path is None:
            lines.append(f"Progress recording is off ({ENV}=off, or a test run).")
        return lines

    def __str__(self) -> str:
        table = [("notebook", "exercise", "status", "last message", "when")]
        for r in self.rows:
            name = r.name + (" (bonus)" if r.bonus else "")
            table.append((r.notebook, name, r.state, _shorten(r.message, 70), r.time))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = self._header()
        for i, row in enumerate(table):
            cells = zip(row, widths, strict=True)
            lines.append("  ".join(cell.ljust(w) for cell, w in cells).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(self.summary())
        if self.path is not None:
            lines.append(f"(from {self.path})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colours = {"done": "#c8e6c9", "not yet": "#eeeeee", "not right yet": "#ffcdd2"}
        out = [f"<p>{html.escape(line)}</p>" for line in self._header()]
        out.append('<table class="gruunet-progress">')
        out.append(
            "<thead><tr><th>notebook</th><th>exercise</th><th>status</th>"
            "<th>last message</th><th>when</th></tr></thead><tbody>"
        )
        for r in self.rows:
            name = html.escape(r.title) + (" <em>(bonus)</em>" if r.bonus else "")
            out.append(
                f"<tr><td>{html.escape(r.notebook)}</td>"
                f'<td title="{html.escape(r.name)}">{name}</td>'
                f'<td style="background:{colours.get(r.state, "#ffffff")}">'
                f"{html.escape(r.state)}</td>"
                f'<td style="text-align:left">{html.escape(r.message)}</td>'
                f"<td>{html.escape(r.time)}</td></tr>"
            )
        out.append("</tbody></table>")
        out.append(f"<p>{html.escape(self.summary())}</p>")
        return "\n".join(out)


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _local_time(stamp: str) -> str:
    try:
        return (
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            .astimezone()
            .strftime("%Y-%m-%d %H:%M")
        )
    except (ValueError, AttributeError):
        return ""


def progress_table(path: Path | None = None) -> Progress:
    """Every exercise of the course with its recorded state (from ``path`` or the default
    progress file). A missing file means nothing done yet; a damaged one is reported in
    ``Progress.note`` and read as empty."""
    path = path if path is not None else progress_path()
    note = ""
    log = empty_log()
    if path is not None:
        try:
            log = read_log(path)
        except ProgressFileError as err:
            note = f"{err}; showing a fresh start (the next check starts a new file)."
        if not path.exists() and not note:
            note = f"No progress recorded yet in {path}: run a check in a notebook."
    entries = log["exercises"]
    rows = []
    exercises = course_exercises()
    for ex in exercises:
        entry = entries.get(ex.name)
        if entry is None:
            rows.append(ProgressRow(ex.notebook, ex.name, ex.title, NOT_CHECKED, "", "", ex.bonus))
            continue
        state = STATES.get(entry["status"], "not right yet")
        message = "All checks passed." if state == "done" else str(entry.get("message", ""))
        time = _local_time(entry.get("time", ""))
        rows.append(ProgressRow(ex.notebook, ex.name, ex.title, state, message, time, ex.bonus))
    known = {ex.name for ex in exercises}
    return Progress(rows, path, note, sorted(set(entries) - known))


def progress(path: str | os.PathLike | None = None) -> Progress:
    """Show your progress through the course (the last expression of a cell displays it)::

    from gruunet_edu.exercises import progress
    progress()
    """
    return progress_table(Path(path) if path is not None else None)


# ------------------------------------------------------------------------------- command line


def _find(path: str | None) -> Path | None:
    """The file ``gruunet-edu progress`` reads: PATH (a file or a folder), else the default one,
    else ``notebooks/gruunet-progress.json`` when run from the course folder."""
    if path is not None:
        p = Path(path).expanduser()
        return p / FILE_NAME if p.is_dir() else p
    default = progress_path()
    if default is not None and not default.exists():
        beside = Path.cwd() / "notebooks" / FILE_NAME
        if beside.exists():
            return beside
    return default


def cmd_progress(args: argparse.Namespace) -> int:
    table = progress_table(_find(args.path))
    if args.json:
        print(json.dumps([r.__dict__ for r in table.rows], indent=1))
    else:
        print(table)
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``progress`` subcommand (``sub``: the CLI's subparsers)."""
    p = sub.add_parser(
        "progress",
        help="show which exercises you have done (recorded by the notebooks' checks)",
        description="Show every exercise of the course as done / not yet / not right yet, with "
        f"the last check's message, from the {FILE_NAME} the checks write beside the notebooks.",
    )
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help=f"the progress file or its folder (default: ${ENV}, ./{FILE_NAME} or "
        f"./notebooks/{FILE_NAME})",
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=cmd_progress)
    return p
