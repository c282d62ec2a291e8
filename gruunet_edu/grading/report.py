"""Writing the grades: ``grades.csv`` (one row per student, notebook and exercise) and
``grades.html`` (students x exercises, colour-coded, the message on hover)."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from gruunet_edu.grading.rows import (
    ERROR,
    FAILED,
    NOT_CHECKED,
    NOT_RUN,
    NOTEBOOK_ROW,
    PASSED,
    UNFINISHED,
    Row,
)
from gruunet_edu.progress import ExerciseInfo

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
