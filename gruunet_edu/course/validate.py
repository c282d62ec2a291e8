"""``check``: everything CI needs to trust the notebooks, without running them.

For every lesson it reports, naming file and cell:

* unknown tags, unbalanced / nested / misspelt solution markers (solution notebooks);
* a ``.py`` / ``.ipynb`` pair out of sync (jupytext's reading of both, outputs and ids ignored);
* a student notebook missing, stale against its solution, or edited by hand, or carrying outputs;
* a solution ``.ipynb`` that was not executed top to bottom (no outputs for nbval to compare);
* an ``.ipynb`` without the ``python3`` kernelspec (JupyterLab 4 would ask "Select Kernel").
"""

from __future__ import annotations

import nbformat

from . import markers
from .builder import make_student, markup_problems, recorded_fingerprint
from .notebooks import Lesson, fingerprint, first_difference, has_kernelspec, read


def _pair_problems(py, ipynb, rel) -> list[str]:
    problems = []
    if not py.exists() or not ipynb.exists():
        missing = py if not py.exists() else ipynb
        return [f"{rel(missing)} is missing (every notebook is a .py + .ipynb pair)"]
    try:
        nb_py, nb_ipynb = read(py), nbformat.read(ipynb, as_version=4)
    except Exception as err:  # report any unreadable file in one line
        return [f"{rel(ipynb)} or {rel(py)} cannot be read: {err}"]
    diff = first_difference(nb_py, nb_ipynb)
    if diff:
        problems.append(f"{rel(py)} and {rel(ipynb)} are out of sync: {diff}")
    if not has_kernelspec(nb_ipynb):
        problems.append(
            f"{rel(ipynb)} lacks the python3 kernelspec metadata (JupyterLab would ask to select "
            "a kernel); rebuild it with `python -m gruunet_edu.course build`"
        )
    return problems


def check_lesson(lesson: Lesson, *, require_outputs: bool = True) -> list[str]:
    """All problems of one lesson (empty list when it is consistent)."""
    rel = lesson.rel
    problems: list[str] = []
    if not lesson.solution_py.exists():
        return [f"{rel(lesson.student_ipynb)} has no solution {rel(lesson.solution_py)}"]
    solution = read(lesson.solution_py)
    markup = markup_problems(solution, rel(lesson.solution_py))
    problems += markup
    problems += _pair_problems(lesson.solution_py, lesson.solution_ipynb, rel)
    problems += _pair_problems(lesson.student_py, lesson.student_ipynb, rel)

    if require_outputs and lesson.solution_ipynb.exists():
        nb = nbformat.read(lesson.solution_ipynb, as_version=4)
        counts = [c.get("execution_count") for c in nb.cells if c.cell_type == "code"]
        if counts and (None in counts or counts != sorted(counts)):
            problems.append(
                f"{rel(lesson.solution_ipynb)} was not executed top to bottom (nbval needs its "
                "outputs): run `python -m gruunet_edu.course execute "
                f"{lesson.name}`"
            )
    if markup or not lesson.student_ipynb.exists():
        return problems
    expected = make_student(solution, rel(lesson.solution_py))
    for path in (lesson.student_py, lesson.student_ipynb):
        if not path.exists():
            continue
        current = read(path)
        diff = first_difference(expected, current)
        if diff:
            if recorded_fingerprint(lesson) == fingerprint(current):
                why = "stale: its solution changed since it was generated"
            else:
                why = "edited by hand (it differs from what was generated)"
            problems.append(
                f"{rel(path)} is {why}; {diff}; run `python -m gruunet_edu.course build`"
            )
    student = nbformat.read(lesson.student_ipynb, as_version=4)
    for i, cell in enumerate(student.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            where = markers.cell_ref(rel(lesson.student_ipynb), i, cell.source)
            problems.append(
                f"{where}: student notebooks are committed without outputs; "
                "run `python -m gruunet_edu.course build`"
            )
            break
    return problems


def check(lessons: list[Lesson], *, require_outputs: bool = True) -> list[str]:
    """Problems of all lessons."""
    problems: list[str] = []
    for lesson in lessons:
        problems += check_lesson(lesson, require_outputs=require_outputs)
    return problems
