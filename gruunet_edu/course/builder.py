"""Build student notebooks from solution notebooks, without overwriting a student's edits.

``solutions/NN_name.py`` is the source. The builder

1. checks its tags and markers (:mod:`gruunet_edu.course.markers`),
2. keeps ``solutions/NN_name.ipynb`` in sync with the ``.py`` (outputs of unchanged cells kept),
3. writes ``notebooks/NN_name.py`` and ``notebooks/NN_name.ipynb`` (no outputs) and records the
   fingerprint of what it wrote in the ``.ipynb`` metadata (``gruunet_course``).

If a student notebook on disk no longer matches the fingerprint the builder recorded, somebody
edited it: the builder refuses to touch it unless ``force=True``, in which case the edited files are
first copied to ``NN_name.<timestamp>.bak.py`` / ``.bak.ipynb`` and the copy is reported.
"""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import dataclass, field

import nbformat

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


def _backup(lesson: Lesson) -> list[str]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    saved = []
    for path in (lesson.student_py, lesson.student_ipynb):
        if path.exists():
            target = path.with_name(f"{path.stem}.{stamp}.bak{path.suffix}")
            shutil.copy2(path, target)
            saved.append(lesson.rel(target))
    return saved


def sync_solution(lesson: Lesson, report: BuildReport, *, force: bool = False) -> None:
    """Make ``solutions/NN.ipynb`` match ``solutions/NN.py`` (the source), keeping outputs."""
    src = read(lesson.solution_py)
    target = lesson.solution_ipynb
    if target.exists():
        old = nbformat.read(target, as_version=4)
        if first_difference(old, src) is None and old.metadata.get("kernelspec"):
            return
        if not force and target.stat().st_mtime > lesson.solution_py.stat().st_mtime + 1:
            report.problems.append(
                f"{lesson.rel(target)} is newer than {lesson.rel(lesson.solution_py)} and their "
                f"cells differ ({first_difference(old, src)}); the .py is the source: sync it "
                f"with `jupytext --sync {lesson.rel(target)}` or rebuild with --force"
            )
            return
        outputs = {sig: cell for sig, cell in zip(signatures(old), old.cells, strict=True)}
        for sig, cell in zip(signatures(src), src.cells, strict=True):
            if cell.cell_type == "code" and sig in outputs:
                cell.outputs = outputs[sig].get("outputs", [])
                cell.execution_count = outputs[sig].get("execution_count")
        src.metadata.setdefault("language_info", old.metadata.get("language_info", {}))
        note = "; cells that changed have no outputs until `python -m gruunet_edu.course execute`"
    else:
        note = "; it has no outputs until `python -m gruunet_edu.course execute`"
    finalise(src)
    write_text(target, to_ipynb_text(src))
    report.messages.append(
        f"updated {lesson.rel(target)} from {lesson.rel(lesson.solution_py)}{note}"
    )


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
