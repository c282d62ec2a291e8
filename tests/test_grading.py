"""Grading a folder of submitted notebooks: the right table, and submissions left untouched.

The submissions are tiny notebooks built here that call the real checks of notebook 00 (cheap):
a solved one, an unfinished one, a half-done one, one that is not valid JSON, one that never ends,
one that raises, one that kills its kernel, one whose exercises were deleted, and one that is not
a course notebook.
"""

import csv
import json

import nbformat
import pytest

from gruunet_edu import grading
from gruunet_edu.cli import main
from gruunet_edu.grading import (
    NOTEBOOK_ROW,
    file_hashes,
    grade,
    kernel_env,
    lesson_of,
    student_of,
)
from gruunet_edu.progress import course_exercises

pytestmark = pytest.mark.slow

LESSON = "00_setup_and_data"
METADATA = {
    "gruunet_course": {"source": f"solutions/{LESSON}.py"},
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
}
IMPORTS = (
    "from gruunet_edu.data import percentile_normalize, three_class\n"
    "from gruunet_edu.exercises.nb0_data import check_normalize, check_three_class"
)
UNFINISHED = "def {name}(x):\n    raise NotImplementedError('Student exercise')"
CHECK_NORMALIZE = "check_normalize(normalize)"
CHECK_THREE_CLASS = "check_three_class(student_three_class)"
SOLVED_NORMALIZE = "normalize = percentile_normalize"
SOLVED_THREE_CLASS = "student_three_class = three_class"
WRONG_THREE_CLASS = "def student_three_class(labels):\n    return (labels > 0).astype('uint8')"


def notebook(*cells: str, metadata: dict | None = None) -> str:
    nb = nbformat.v4.new_notebook(metadata=metadata if metadata is not None else METADATA)
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb)


def submissions(root):
    """One folder per student (alice ... henry) with a notebook under any name; one student
    (ida) as a bare file beside them."""
    files = {
        "alice/my work.ipynb": notebook(IMPORTS, SOLVED_NORMALIZE, CHECK_NORMALIZE,
                                        SOLVED_THREE_CLASS, CHECK_THREE_CLASS),
        "bob/00.ipynb": notebook(IMPORTS, UNFINISHED.format(name="normalize"), CHECK_NORMALIZE,
                                 UNFINISHED.format(name="student_three_class"),
                                 CHECK_THREE_CLASS),
        "carol/copy.ipynb": notebook(IMPORTS, SOLVED_NORMALIZE, CHECK_NORMALIZE,
                                     WRONG_THREE_CLASS, CHECK_THREE_CLASS),
        "dave/broken.ipynb": notebook(IMPORTS, CHECK_NORMALIZE)[:200],
        "erin/loop.ipynb": notebook(IMPORTS, SOLVED_NORMALIZE, CHECK_NORMALIZE,
                                    "while True:\n    pass", SOLVED_THREE_CLASS,
                                    CHECK_THREE_CLASS),
        "frank/raise.ipynb": notebook(IMPORTS, SOLVED_NORMALIZE, CHECK_NORMALIZE,
                                      "raise RuntimeError('my cell is broken')",
                                      SOLVED_THREE_CLASS, CHECK_THREE_CLASS),
        "grace/deleted.ipynb": notebook(IMPORTS, SOLVED_NORMALIZE),
        "henry/other.ipynb": notebook("print('hello')", metadata={}),
        "jon/exit.ipynb": notebook(IMPORTS, SOLVED_NORMALIZE, CHECK_NORMALIZE,
                                   "import os\nos._exit(1)", SOLVED_THREE_CLASS,
                                   CHECK_THREE_CLASS),
        f"ida_{LESSON}.ipynb": notebook(IMPORTS, SOLVED_NORMALIZE, CHECK_NORMALIZE),
    }  # fmt: skip
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = submissions(tmp_path_factory.mktemp("submissions"))
    before = file_hashes(root)
    out = tmp_path_factory.mktemp("report")
    report = grade(root, out, time_limit=30, log=None, jobs=2)
    return root, before, report


def table(report):
    return {(r.student, r.exercise): (r.status, r.message) for r in report.rows}


def test_submissions_unchanged(graded):
    root, before, _ = graded
    assert file_hashes(root) == before
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == sorted(
        p.rsplit("/", 1)[-1] for p in before
    )  # nothing added beside them either


def test_solved_unfinished_and_half_done(graded):
    t = table(graded[2])
    assert t[("alice", "normalize")][0] == "passed"
    assert t[("alice", "three_class")][0] == "passed"
    assert ("alice", NOTEBOOK_ROW) not in t
    assert t[("bob", "normalize")][0] == "unfinished"
    assert t[("bob", "three_class")][0] == "unfinished"
    assert t[("carol", "normalize")][0] == "passed"
    status, message = t[("carol", "three_class")]
    assert status == "failed" and message  # the check's own explanation
    assert t[("ida", "normalize")][0] == "passed"  # student from the file name


def test_broken_json_loop_and_raise_get_a_row(graded):
    t = table(graded[2])
    assert t[("dave", NOTEBOOK_ROW)][0] == "invalid"
    assert [k for k in t if k[0] == "dave"] == [("dave", NOTEBOOK_ROW)]
    # the endless loop is stopped; the check before it counts, the one after it did not run
    status, message = t[("erin", NOTEBOOK_ROW)]
    assert status == "time limit" and "cell 4" in message
    assert t[("erin", "normalize")][0] == "passed"
    assert t[("erin", "three_class")][0] == "not run"
    # a raising cell is reported, and the cells after it still ran
    status, message = t[("frank", NOTEBOOK_ROW)]
    assert status == "raised" and "RuntimeError" in message and "cell 4" in message
    assert t[("frank", "three_class")][0] == "passed"


def test_deleted_exercises_and_foreign_notebooks(graded):
    t = table(graded[2])
    assert t[("grace", NOTEBOOK_ROW)][0] == "no checks"
    assert t[("grace", "normalize")][0] == "not checked"
    assert t[("henry", NOTEBOOK_ROW)][0] == "unknown notebook"


def test_a_dead_kernel_gets_a_row(graded):
    t = table(graded[2])
    status, message = t[("jon", NOTEBOOK_ROW)]
    assert status == "kernel died" and "cell 4" in message
    assert t[("jon", "normalize")][0] == "passed" and t[("jon", "three_class")][0] == "not run"


def test_a_notebook_that_cannot_be_executed_gets_a_row(tmp_path, monkeypatch):
    (tmp_path / "amy.ipynb").write_text(notebook(CHECK_NORMALIZE))

    def no_kernel(*args, **kwargs):
        raise RuntimeError("No such kernel named python3")

    monkeypatch.setattr(grading, "execute", no_kernel)
    rows = grade(tmp_path, tmp_path / "report", log=None).rows
    assert [(r.exercise, r.status) for r in rows][0] == (NOTEBOOK_ROW, "not executed")
    assert "No such kernel" in rows[0].message
    assert {r.status for r in rows[1:]} == {"not run"}


def test_csv_and_html(graded):
    report = graded[2]
    with report.csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:5] == ["student", "notebook", "exercise", "status", "message"]
    assert len(rows) == len(report.rows)
    assert {r["notebook"] for r in rows if r["student"] == "alice"} == {LESSON}
    page = report.html.read_text()
    assert page.count('<td class="student">') == 10
    carol = page.split('<td class="student">carol</td>', 1)[1].split("</tr>", 1)[0]
    assert carol.count('class="done"') == 1 and carol.count('class="wrong"') == 1
    message = dict(table(report))[("carol", "three_class")][1]
    assert 'title="Three-class target: ' in carol and message[:20] in carol  # on hover


def test_a_second_copy_is_flagged(tmp_path):
    for name in ("alice/first.ipynb", "alice/second.ipynb"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(notebook("x = 1"))
    rows = grade(tmp_path, tmp_path / "report", time_limit=20, log=None, jobs=2).rows
    flagged = [r for r in rows if r.status == "duplicate"]
    assert len(flagged) == 1 and "alice/second.ipynb" in flagged[0].message
    in_order = [r.submission for r in rows if r.status == "not checked"]  # 2 jobs, file order
    n = len([e for e in course_exercises() if e.notebook == LESSON])  # with its bonus exercise
    assert in_order == ["alice/first.ipynb"] * n + ["alice/second.ipynb"] * n


def test_recognised_from_metadata_then_imports():
    lessons = {LESSON, "01_convgru"}
    modules = {"nb0_data": LESSON, "nb1_convgru": "01_convgru"}
    by_metadata = nbformat.reads(notebook("x = 1"), as_version=4)
    assert lesson_of(by_metadata, lessons, modules) == LESSON
    by_import = nbformat.reads(
        notebook("from gruunet_edu.exercises.nb1_convgru import check_convgru", metadata={}),
        as_version=4,
    )
    assert lesson_of(by_import, lessons, modules) == "01_convgru"
    assert lesson_of(nbformat.reads(notebook("1", metadata={}), 4), lessons, modules) is None


def test_student_names(tmp_path):
    assert student_of(tmp_path / "alice" / "x.ipynb", tmp_path, LESSON) == "alice"
    assert student_of(tmp_path / f"bob-{LESSON}.ipynb", tmp_path, LESSON) == "bob"
    assert student_of(tmp_path / "carol.ipynb", tmp_path, LESSON) == "carol"


def test_kernel_environment_keeps_the_graders_away(tmp_path):
    grader = {
        "HOME": "/home/grader",
        "PATH": "/usr/bin",
        "API_TOKEN": "secret",
        "GRUUNET_DEVICE": "cpu",
        "GRUUNET_PROGRESS": "off",
        "GRUUNET_CACHE": "/models",
    }
    env = kernel_env(tmp_path / "home", tmp_path / "p.json", environ=grader)
    assert env["HOME"] == str(tmp_path / "home") and "API_TOKEN" not in env
    assert env["PATH"] == "/usr/bin" and env["GRUUNET_DEVICE"] == "cpu"
    assert env["GRUUNET_PROGRESS"] == str(tmp_path / "p.json")
    assert env["GRUUNET_CACHE"] == "/models"  # the shared pretrained model, trained once
    assert "/home/grader" not in "".join(env.values())


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["grade", "--help"])
    assert exit_info.value.code == 0 and "--time-limit" in capsys.readouterr().out
    assert main(["grade", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    assert "no .ipynb files" in capsys.readouterr().err
    (tmp_path / "x.ipynb").write_text(json.dumps({"not": "a notebook"}))
    assert main(["grade", str(tmp_path), "--out", str(tmp_path)]) == 1
    assert "must not be the submissions folder" in capsys.readouterr().err


def test_every_exercise_module_names_its_notebook():
    import importlib
    import pkgutil

    import gruunet_edu.exercises as package
    from gruunet_edu.grading import _exercise_modules

    modules = [m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("nb")]
    for name in modules:
        importlib.import_module(f"gruunet_edu.exercises.{name}")
    found = _exercise_modules()  # recognises a notebook without metadata by what it imports
    assert sorted(found) == sorted(modules)
    assert found["nb4_training"] == "04_training"
