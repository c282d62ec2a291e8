"""``execute``: run a solution notebook top to bottom and store its outputs for nbval.

The notebook runs with nbclient in the ``python3`` kernel, with the notebook's folder as working
directory (as JupyterLab and ``pytest --nbval`` do). The ``.py`` twin is the source and is not
touched: the ``.ipynb`` is first brought in sync with it, then executed, then written atomically
(an error in a cell leaves the old ``.ipynb`` in place and names the cell).
"""

from __future__ import annotations

import os
import time

import nbformat

from .builder import BuildReport, sync_solution
from .notebooks import KERNELSPEC, Lesson, finalise, to_ipynb_text, write_text


class ExecutionError(RuntimeError):
    """A cell of a solution notebook raised while it was executed."""


def execute_lesson(
    lesson: Lesson, *, timeout: int = 600, report: BuildReport | None = None
) -> BuildReport:
    """Execute ``solutions/NN.ipynb`` (synced from its ``.py`` first) and save the outputs."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    report = report or BuildReport()
    sync_solution(lesson, report, force=True)
    if not report.ok:
        return report
    nb = nbformat.read(lesson.solution_ipynb, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNELSPEC["name"],
        resources={"metadata": {"path": str(lesson.solution_ipynb.parent)}},
        store_widget_state=True,
    )
    env_backup = os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION")
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # quiet a debugger warning on stderr
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        summary = str(err).strip().splitlines()
        report.problems.append(
            f"{lesson.rel(lesson.solution_ipynb)} failed while executing: "
            f"{summary[-1] if summary else err}"
        )
        return report
    finally:
        if env_backup is None:
            os.environ.pop("PYDEVD_DISABLE_FILE_VALIDATION", None)
    seconds = time.perf_counter() - start
    widgets = nb.metadata.get("widgets")
    finalise(nb, extra_metadata={"widgets": widgets} if widgets else None)
    write_text(lesson.solution_ipynb, to_ipynb_text(nb))
    report.messages.append(f"executed {lesson.rel(lesson.solution_ipynb)} in {seconds:.1f} s")
    return report
