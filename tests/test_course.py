"""The course builder and checker: markup errors fail, edits are kept, stale notebooks are found."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest

from gruunet_edu.course import build, check, lessons
from gruunet_edu.course.__main__ import main
from gruunet_edu.course.notebooks import Lesson

ROOT = Path(__file__).resolve().parents[1]

SOLUTION = '''\
# %% [markdown]
# # Demo lesson

# %%
import math

# %% tags=["exercise"]
def double(x):
    """Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    #> raise NotImplementedError("Student exercise: double it")
    ### END SOLUTION


# %% tags=["check"]
print(double(2))

# %% [markdown] tags=["solution"]
# The answer is 4.
'''


def _repo(tmp_path: Path, source: str = SOLUTION) -> Path:
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_demo.py").write_text(source, encoding="utf-8")
    return tmp_path


def _lesson(root: Path) -> Lesson:
    return lessons(root)[0]


def _fake_execute(lesson: Lesson) -> None:
    """Give every code cell of the solution .ipynb an execution count and an output."""
    nb = nbformat.read(lesson.solution_ipynb, as_version=4)
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    nbformat.write(nb, lesson.solution_ipynb)


def _built(tmp_path: Path) -> tuple[Path, Lesson]:
    root = _repo(tmp_path)
    report = build(lessons(root))
    assert report.ok, report.problems
    lesson = _lesson(root)
    _fake_execute(lesson)
    return root, lesson


def test_build_writes_student_notebooks_without_solutions(tmp_path):
    root, lesson = _built(tmp_path)
    student = lesson.student_py.read_text()
    assert "return 2 * x" not in student
    assert 'raise NotImplementedError("Student exercise: double it")' in student
    assert "The answer is 4" not in student
    assert "BEGIN SOLUTION" not in student
    nb = nbformat.read(lesson.student_ipynb, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert check(lessons(root)) == []


def test_unknown_tag_fails_build_and_check(tmp_path):
    root = _repo(tmp_path, SOLUTION.replace('tags=["check"]', 'tags=["chek"]'))
    report = build(lessons(root))
    assert not report.ok
    assert any("unknown tag 'chek'" in p and "did you mean 'check'" in p for p in report.problems)
    assert not (root / "notebooks" / "01_demo.ipynb").exists()
    assert any("unknown tag 'chek'" in p for p in check(lessons(root)))


@pytest.mark.parametrize(
    "removed, expected",
    [
        (["    ### END SOLUTION\n"], "never closed"),
        (
            [
                "    ### BEGIN SOLUTION\n",
                '    #> raise NotImplementedError("Student exercise: double it")\n',
            ],
            "without '### BEGIN SOLUTION'",
        ),
    ],
)
def test_unbalanced_marker_fails_build(tmp_path, removed, expected):
    source = SOLUTION
    for line in removed:
        source = source.replace(line, "", 1)
    root = _repo(tmp_path, source)
    report = build(lessons(root))
    assert not report.ok
    assert any(expected in p and "01_demo.py" in p for p in report.problems)
    assert not (root / "notebooks").exists()


def test_misspelt_marker_fails_build(tmp_path):
    root = _repo(tmp_path, SOLUTION.replace("### END SOLUTION", "### END SOLUTOIN"))
    report = build(lessons(root))
    assert any("unrecognised marker" in p for p in report.problems)


def test_exercise_without_check_cell_fails(tmp_path):
    root = _repo(tmp_path, SOLUTION.replace('tags=["check"]', ""))
    report = build(lessons(root))
    assert any("must be tagged 'check'" in p for p in report.problems)


def test_edited_student_notebook_is_not_overwritten(tmp_path):
    root, lesson = _built(tmp_path)
    edited = lesson.student_py.read_text().replace(
        'raise NotImplementedError("Student exercise: double it")', "return x + x  # my answer"
    )
    lesson.student_py.write_text(edited)
    # the solution changes, so a rebuild would want to rewrite the student notebook
    lesson.solution_py.write_text(SOLUTION.replace("Twice x.", "Two times x."))

    report = build(lessons(root))
    assert not report.ok
    assert any("not overwriting notebooks/01_demo.py" in p for p in report.problems)
    assert lesson.student_py.read_text() == edited  # untouched

    report = build(lessons(root), force=True)
    assert report.ok, report.problems
    backups = list((root / "notebooks").glob("01_demo.py.*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == edited
    assert any(backups[0].name in m for m in report.messages)
    assert "my answer" not in lesson.student_py.read_text()


def test_check_detects_pair_out_of_sync(tmp_path):
    root, lesson = _built(tmp_path)
    nb = nbformat.read(lesson.solution_ipynb, as_version=4)
    nb.cells[0].source = "# A different title"
    nbformat.write(nb, lesson.solution_ipynb)
    problems = check(lessons(root))
    assert any(
        "solutions/01_demo.py and solutions/01_demo.ipynb are out of sync" in p for p in problems
    )


def test_check_detects_stale_student_notebook(tmp_path):
    root, lesson = _built(tmp_path)
    old = {p: p.read_bytes() for p in (lesson.student_py, lesson.student_ipynb)}
    lesson.solution_py.write_text(SOLUTION.replace("print(double(2))", "print(double(3))"))
    assert build(lessons(root)).ok
    _fake_execute(lesson)
    assert check(lessons(root)) == []
    for path, data in old.items():  # the student notebook generated before the change
        path.write_bytes(data)
    problems = check(lessons(root))
    assert any("notebooks/01_demo.py is stale" in p for p in problems)
    assert any("notebooks/01_demo.ipynb is stale" in p for p in problems)


def test_check_tells_a_hand_edit_from_a_stale_student_notebook(tmp_path):
    root, lesson = _built(tmp_path)
    text = lesson.student_py.read_text()
    assert "print(double(2))" in text
    lesson.student_py.write_text(text.replace("print(double(2))", "print(double(5))"))
    problems = check(lessons(root))
    assert any("notebooks/01_demo.py is edited by hand" in p for p in problems), problems
    assert not any("is stale" in p for p in problems), problems


def test_check_detects_missing_kernelspec(tmp_path):
    root, lesson = _built(tmp_path)
    data = json.loads(lesson.student_ipynb.read_text())
    del data["metadata"]["kernelspec"]
    lesson.student_ipynb.write_text(json.dumps(data))
    problems = check(lessons(root))
    assert any("01_demo.ipynb lacks the python3 kernelspec" in p for p in problems)


def test_check_detects_solution_without_outputs(tmp_path):
    root = _repo(tmp_path)
    build(lessons(root))
    problems = check(lessons(root))
    assert any("was not executed top to bottom" in p for p in problems)


def test_command_line_exit_codes(tmp_path, capsys):
    root, lesson = _built(tmp_path)
    assert main(["--root", str(root), "check"]) == 0
    lesson.solution_py.write_text(SOLUTION.replace('tags=["check"]', 'tags=["chek"]'))
    assert main(["--root", str(root), "check"]) == 1
    assert "unknown tag 'chek'" in capsys.readouterr().err
    assert main(["--root", str(root), "build"]) == 1


def test_repository_notebooks_are_consistent():
    """The committed course passes its own check (pairs, student notebooks, outputs)."""
    assert check(lessons(ROOT, ["00", "01", "02", "03"])) == []


# ------------------------------------------------------------------ the solution .ipynb is kept


def _edit_solution_ipynb(lesson: Lesson, new_title: str = "# Demo lesson, edited") -> str:
    nb = nbformat.read(lesson.solution_ipynb, as_version=4)
    nb.cells[0].source = new_title
    nbformat.write(nb, lesson.solution_ipynb)
    return lesson.solution_ipynb.read_text()


def test_build_never_rewrites_an_edited_solution_ipynb(tmp_path):
    root, lesson = _built(tmp_path)
    edited = _edit_solution_ipynb(lesson)
    lesson.solution_py.write_text(SOLUTION.replace("Twice x.", "Two times x."))  # a git pull
    report = build(lessons(root))
    assert not report.ok
    assert any("not overwriting solutions/01_demo.ipynb" in p for p in report.problems)
    assert lesson.solution_ipynb.read_text() == edited

    report = build(lessons(root), force=True)
    assert report.ok, report.problems
    backups = list((root / "solutions").glob("01_demo.ipynb.*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == edited
    assert any(backups[0].name in m for m in report.messages)
    assert "Two times x." in lesson.solution_ipynb.read_text()


def test_execute_refuses_an_edited_solution_ipynb_before_starting_a_kernel(tmp_path):
    from gruunet_edu.course import execute_lesson

    root, lesson = _built(tmp_path)
    edited = _edit_solution_ipynb(lesson)
    report = execute_lesson(lesson)
    assert any("not overwriting solutions/01_demo.ipynb" in p for p in report.problems)
    assert lesson.solution_ipynb.read_text() == edited


def test_a_changed_py_updates_the_ipynb_with_jupytext_keeping_unchanged_outputs(tmp_path):
    root, lesson = _built(tmp_path)
    lesson.solution_py.write_text(SOLUTION.replace("print(double(2))", "print(double(3))"))
    report = build(lessons(root))
    assert report.ok, report.problems
    code = [
        c for c in nbformat.read(lesson.solution_ipynb, as_version=4).cells if c.cell_type == "code"
    ]
    assert code[0].outputs and code[1].outputs  # import math, def double: unchanged, kept
    assert (
        code[2].source == "print(double(3))" and code[2].outputs == []
    )  # changed: no stale output


def test_an_ipynb_saved_with_its_py_by_jupytext_is_accepted(tmp_path):
    root, lesson = _built(tmp_path)
    _edit_solution_ipynb(lesson, "# Both saved")
    lesson.solution_py.write_text(SOLUTION.replace("# # Demo lesson", "# # Both saved"))
    report = build(lessons(root))
    assert report.ok, report.problems
    assert "Both saved" in lesson.solution_ipynb.read_text()


def test_backup_copies_do_not_break_check_or_build(tmp_path):
    root, lesson = _built(tmp_path)
    _edit_solution_ipynb(lesson)
    lesson.student_py.write_text(lesson.student_py.read_text() + "\n# %%\nmy_work = 1\n")
    assert build(lessons(root), force=True).ok
    _fake_execute(lesson)
    assert list((root / "notebooks").glob("*.bak")) and list((root / "solutions").glob("*.bak"))
    (root / "notebooks" / "01_demo.copy.ipynb").write_bytes(lesson.student_ipynb.read_bytes())
    assert [les.name for les in lessons(root)] == ["01_demo"]
    assert check(lessons(root)) == []
    assert build(lessons(root)).ok


def test_execute_restores_the_users_pydevd_setting(tmp_path, monkeypatch):
    import nbclient

    from gruunet_edu.course import execute_lesson

    root, lesson = _built(tmp_path)
    seen = []

    class FakeClient:
        def __init__(self, nb, **kwargs):
            self.nb = nb

        def execute(self):
            seen.append(os.environ.get("PYDEVD_DISABLE_FILE_VALIDATION"))

    monkeypatch.setattr(nbclient, "NotebookClient", FakeClient)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "0")
    assert execute_lesson(lesson).ok
    assert seen == ["1"] and os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] == "0"
    monkeypatch.delenv("PYDEVD_DISABLE_FILE_VALIDATION")
    assert execute_lesson(lesson).ok
    assert "PYDEVD_DISABLE_FILE_VALIDATION" not in os.environ


def test_collapsed_answer_cells_stay_collapsed_in_the_solution_notebook(tmp_path):
    source = SOLUTION.replace(
        '# %% [markdown] tags=["solution"]',
        '# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}',
    )
    root = _repo(tmp_path, source)
    assert build(lessons(root)).ok
    lesson = _lesson(root)
    answer = nbformat.read(lesson.solution_ipynb, as_version=4).cells[-1]
    assert answer.metadata.tags == ["solution"]
    assert answer.metadata.jupyter == {"source_hidden": True}
    student = nbformat.read(lesson.student_ipynb, as_version=4)
    assert all("The answer is 4" not in c.source for c in student.cells)
