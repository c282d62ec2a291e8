"""The statuses of a graded exercise or notebook, and the rows the grader writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gruunet_edu.progress import ExerciseInfo

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
