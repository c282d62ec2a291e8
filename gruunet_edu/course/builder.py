"""Build student notebooks from solution notebooks, without overwriting a student's edits.

``solutions/NN_name.py`` is the source. The builder

1. checks its tags and markers (:mod:`gruunet_edu.course.markers`),
2. keeps ``solutions/NN_name.ipynb`` in sync with the ``.py`` (outputs of unchanged cells kept),
3. writes ``notebooks/NN_name.py`` and ``notebooks/NN_name.ipynb`` (no outputs) and records the
   fingerprint of what it wrote in the ``.ipynb`` metadata (``gruunet_course``).

If a student notebook on disk no longer matches the fingerprint the builder recorded, somebody
edited it: the builder refuses to touch it unless ``force=True``, in which case the edited files are
first copied to ``NN_name.py.<timestamp>.bak`` / ``NN_name.ipynb.<timestamp>.bak`` and the copy is
reported (the ``.bak`` suffix keeps the copies out of the lessons, the pairing and nbval).

The solution ``.ipynb`` gets the same protection: the fingerprint of its cells is recorded when
the builder writes it, and an ``.ipynb`` whose cells were changed since (an instructor's edit in
an editor without jupytext) and differ from the ``.py`` is never rewritten from the ``.py``, by
``build`` or ``execute``; ``build --force`` rewrites it after keeping a ``.bak`` copy. The sync
itself is jupytext's: the ``.py``'s cells combined with the ``.ipynb``'s outputs.
"""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupytext.combine import combine_inputs_with_outputs

from . import markers
from .notebooks import (
    META_KEY,
    Lesson,
    finalise,
    fingerprint,
    first_difference,
    read,
    signatures,
    to_ipynb_text,
    to_py_text,
    write_text,
)


class BuildError(RuntimeError):
    """The build could not proceed (markup errors, or edited student notebooks without force)."""


@dataclass
class BuildReport:
    """What a build did: lines for the user, and problems that make it fail."""

    messages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def markup_problems(nb: nbformat.NotebookNode, path: str) -> list[str]:
    """All tag and marker problems of a solution notebook, each naming file and cell."""
    problems: list[str] = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        where = markers.cell_ref(path, i, cell.source)
        tags = list(cell.get("metadata", {}).get("tags", []))
        problems += markers.check_tags(tags, where)
        try:
            student = markers.strip_regions(cell.source, where, code=cell.cell_type == "code")
        except markers.MarkupError as err:
            problems.append(str(err))
            continue
        if cell.cell_type == "code" and "solution" not in tags:
            problems += markers.check_student_code(student, where, tags)
        if "exercise" in tags:
            if cell.cell_type != "code" or not markers.has_region(cell.source):
                problems.append(f"{where}: an 'exercise' cell needs a '{markers.BEGIN}' region")
            following = [c for c in cells[i + 1 :] if c.cell_type == "code"]
            nxt = following[0] if following else None
            if nxt is None or "check" not in nxt.get("metadata", {}).get("tags", []):
                problems.append(
                    f"{where}: the next code cell after an exercise must be tagged 'check'"
                )
        elif markers.has_region(cell.source) and "solution" not in tags:
            problems.append(f"{where}: a cell with a solution region must be tagged 'exercise'")
    return problems


def make_student(solution: nbformat.NotebookNode, path: str) -> nbformat.NotebookNode:
    """The student notebook for a solution notebook (raises MarkupError on bad markup)."""
    problems = markup_problems(solution, path)
    if problems:
        raise markers.MarkupError("\n".join(problems))
    nb = copy.deepcopy(solution)
    cells = []
    for i, cell in enumerate(nb.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        if "solution" in tags:
            continue
        where = markers.cell_ref(path, i, cell.source)
        cell.source = markers.strip_regions(cell.source, where, code=cell.cell_type == "code")
        kept = [t for t in tags if t != "student"]
        cell.metadata = nbformat.from_dict({"tags": kept} if kept else {})
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    finalise(nb)
    nb.metadata[META_KEY] = {"source": path, "fingerprint": fingerprint(nb)}
    return nb


def recorded_fingerprint(lesson: Lesson) -> str | None:
    """The fingerprint the builder stored in the student .ipynb, if any."""
    if not lesson.student_ipynb.exists():
        return None
    try:
        meta = nbformat.read(lesson.student_ipynb, as_version=4).metadata
    except Exception:  # unreadable JSON counts as "edited"
        return None
    return (meta.get(META_KEY) or {}).get("fingerprint")


def edited_files(lesson: Lesson, new_fingerprint: str) -> list[str]:
    """Student files whose cells differ both from what was generated and from the new version."""
    recorded = recorded_fingerprint(lesson)
    edited = []
    for path in (lesson.student_py, lesson.student_ipynb):
        if not path.exists():
            continue
        try:
            current = fingerprint(read(path))
        except Exception:
            edited.append(lesson.rel(path))
            continue
        if current not in (recorded, new_fingerprint):
            edited.append(lesson.rel(path))
    return edited


def backup(path: Path) -> Path:
    """Copy ``path`` to ``NAME.<timestamp>.bak`` beside it (never replacing an earlier copy)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{stamp}.bak")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{stamp}-{n}.bak")
    shutil.copy2(path, target)
    return target


def _backup(lesson: Lesson) -> list[str]:
    return [
        lesson.rel(backup(path))
        for path in (lesson.student_py, lesson.student_ipynb)
        if path.exists()
    ]


def sync_solution(lesson: Lesson, report: BuildReport, *, force: bool = False) -> bool:
    """Make ``solutions/NN.ipynb`` match ``solutions/NN.py`` (the source), keeping outputs.

    Returns False (with a problem in the report) when the ``.ipynb`` holds an edit of its own
    that the ``.py`` does not have; ``force=True`` then keeps a ``.bak`` copy and rewrites it.
    """
    src = read(lesson.solution_py)
    target = lesson.solution_ipynb
    wanted = fingerprint(src)
    note = "; it has no outputs until `python -m gruunet_edu.course execute`"
    extra: dict = {META_KEY: {"fingerprint": wanted}}
    if target.exists():
        old = nbformat.read(target, as_version=4)
        current = fingerprint(old)
        recorded = (old.metadata.get(META_KEY) or {}).get("fingerprint")
        if current == wanted and recorded == wanted and old.metadata.get("kernelspec"):
            return True
        if current not in (wanted, recorded):
            diff = first_difference(src, old)
            if not force:
                report.problems.append(
                    f"not overwriting {lesson.rel(target)}: its cells were edited since it was "
                    f"built and differ from {lesson.rel(lesson.solution_py)}, the source ({diff}). "
                    f"Bring the edit into the .py (`jupytext --to py:percent -o - "
                    f"{lesson.rel(target)}` prints it as one), or rebuild with --force, which "
                    "keeps a .bak copy of the .ipynb"
                )
                return False
            report.messages.append(f"kept the edited version as {lesson.rel(backup(target))}")
        kept = set(signatures(old))
        src = combine_inputs_with_outputs(src, old)  # jupytext: .py cells, .ipynb outputs
        for sig, cell in zip(signatures(src), src.cells, strict=True):
            if cell.cell_type == "code" and sig not in kept:  # a changed cell: no stale output
                cell.outputs, cell.execution_count = [], None
        if old.metadata.get("widgets"):
            extra["widgets"] = old.metadata["widgets"]
        src.metadata.setdefault("language_info", old.metadata.get("language_info", {}))
        note = (
            "; cells that changed have no outputs until `python -m gruunet_edu.course execute`"
            if current != wanted
            else " (fingerprint recorded)"
        )
    finalise(src, extra_metadata=extra)
    write_text(target, to_ipynb_text(src))
    report.messages.append(
        f"updated {lesson.rel(target)} from {lesson.rel(lesson.solution_py)}{note}"
    )
    return True


def build_lesson(
    lesson: Lesson, *, force: bool = False, report: BuildReport | None = None
) -> BuildReport:
    """Sync the solution pair and (re)write the student pair of one lesson."""
    report = report or BuildReport()
    if not lesson.solution_py.exists():
        report.problems.append(
            f"{lesson.rel(lesson.student_ipynb)} has no solution {lesson.rel(lesson.solution_py)}"
        )
        return report
    source = read(lesson.solution_py)
    try:
        student = make_student(source, lesson.rel(lesson.solution_py))
    except markers.MarkupError as err:
        report.problems.extend(str(err).splitlines())
        return report
    sync_solution(lesson, report, force=force)

    new_fp = student.metadata[META_KEY]["fingerprint"]
    texts = {lesson.student_py: to_py_text(student), lesson.student_ipynb: to_ipynb_text(student)}
    current = {p: p.read_text(encoding="utf-8") if p.exists() else None for p in texts}
    if all(current[p] == t for p, t in texts.items()):
        report.messages.append(f"{lesson.rel(lesson.student_ipynb)} is up to date")
        return report
    edited = edited_files(lesson, new_fp)
    if edited:
        if not force:
            report.problems.append(
                f"not overwriting {', '.join(edited)}: it was edited since it was generated from "
                f"{lesson.rel(lesson.solution_py)}. Save your work elsewhere, or rebuild with "
                "--force (which keeps a timestamped .bak copy)"
            )
            return report
        saved = _backup(lesson)
        report.messages.append(f"kept the edited version as {', '.join(saved)}")
    for path, text in texts.items():
        if current[path] != text:
            write_text(path, text)
    report.messages.append(
        f"wrote {lesson.rel(lesson.student_py)} and {lesson.rel(lesson.student_ipynb)} "
        f"({len(student.cells)} cells)"
    )
    return report


def build(lessons: list[Lesson], *, force: bool = False) -> BuildReport:
    """Build every lesson; markup problems and refusals are collected in the report."""
    report = BuildReport()
    for lesson in lessons:
        build_lesson(lesson, force=force, report=report)
    return report
