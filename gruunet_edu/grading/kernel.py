"""Executing one submitted notebook: a fresh kernel, a clean environment, a time limit."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from gruunet_edu.grading.rows import DIED, KEPT_ENV, KERNEL, TIME_LIMIT, Run
from gruunet_edu.progress import FILE_NAME, ProgressFileError, read_log


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
