"""``execute``: run a solution notebook top to bottom and store its outputs for nbval.

The notebook runs with nbclient in the ``python3`` kernel, with the notebook's folder as working
directory (as JupyterLab and ``pytest --nbval`` do). The ``.py`` twin is the source and is not
touched: the ``.ipynb`` is first brought in sync with it, then executed, then written atomically
(an error in a cell leaves the old ``.ipynb`` in place and names the cell). An ``.ipynb`` whose
cells were edited apart from the ``.py`` is not executed: the edit would be lost (see
:func:`~gruunet_edu.course.builder.sync_solution`). ``PYDEVD_DISABLE_FILE_VALIDATION`` is set while
the kernel starts and then restored to the user's own value.
"""

from __future__ import annotations

import os
import time

import nbformat

from .builder import BuildReport, sync_solution
from .notebooks import (
    KERNELSPEC,
    META_KEY,
    Lesson,
    finalise,
    fingerprint,
    to_ipynb_text,
    write_text,
)

PYDEVD_ENV = "PYDEVD_DISABLE_FILE_VALIDATION"


class ExecutionError(RuntimeError):
    """A cell of a solution notebook raised while it was executed."""


def execute_lesson(
    lesson: Lesson, *, timeout: int = 600, report: BuildReport | None = None
) -> BuildReport:
    """Execute ``solutions/NN.ipynb`` (synced from its ``.py`` first) and save the outputs."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    report = report or BuildReport()
    if not sync_solution(lesson, report):  # an edit of the .ipynb alone is never lost
        return report
    nb = nbformat.read(lesson.solution_ipynb, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNELSPEC["name"],
        resources={"metadata": {"path": str(lesson.solution_ipynb.parent)}},
        store_widget_state=True,
    )
    env_backup = os.environ.get(PYDEVD_ENV)
    os.environ[PYDEVD_ENV] = "1"  # quiet a debugger warning on stderr
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
    finally:  # the user's own value (or its absence) comes back
        if env_backup is None:
            os.environ.pop(PYDEVD_ENV, None)
        else:
            os.environ[PYDEVD_ENV] = env_backup
    seconds = time.perf_counter() - start
    extra = {META_KEY: {"fingerprint": fingerprint(nb)}}  # what build compares edits with
    if nb.metadata.get("widgets"):
        extra["widgets"] = nb.metadata["widgets"]
    finalise(nb, extra_metadata=extra)
    write_text(lesson.solution_ipynb, to_ipynb_text(nb))
    report.messages.append(f"executed {lesson.rel(lesson.solution_ipynb)} in {seconds:.1f} s")
    return report
