"""Student progress: checks record their outcome, progress() and the CLI show it, and recording
never breaks a check or changes what it prints."""

import json

import numpy as np
import pytest

from gruunet_edu import progress as progress_module
from gruunet_edu.cli import main
from gruunet_edu.data import percentile_normalize
from gruunet_edu.exercises import REGISTRY, Exercise, progress
from gruunet_edu.exercises.nb0_data import check_normalize, normalize_exercise
from gruunet_edu.exercises.nb1_convgru import update_exercise
from gruunet_edu.progress import (
    ENV,
    FILE_NAME,
    course_exercises,
    progress_path,
    read_log,
    without_code,
)


def wrong_normalize(image, low=1.0, high=99.8, eps=1e-6):
    return image.astype(np.float32)  # no normalisation at all


def crashing_normalize(image, low=1.0, high=99.8, eps=1e-6):
    secret_student_variable = image.shape[5]  # IndexError, quoted by the check's message
    return secret_student_variable


def unfinished_normalize(image, low=1.0, high=99.8, eps=1e-6):
    raise NotImplementedError("Student exercise")


@pytest.fixture
def log_file(tmp_path, monkeypatch):
    path = tmp_path / "notebooks" / FILE_NAME
    path.parent.mkdir()
    monkeypatch.setenv(ENV, str(path))
    monkeypatch.setattr(progress_module, "_warned", set())
    return path


def test_checks_record_status_message_time_and_attempts(log_file):
    check_normalize(wrong_normalize)
    entry = read_log(log_file)["exercises"]["normalize"]
    assert entry["status"] == "failed" and entry["attempts"] == 1 and entry["message"]
    assert entry["time"].endswith("Z")
    check_normalize(percentile_normalize)
    entry = read_log(log_file)["exercises"]["normalize"]
    assert entry["status"] == "passed" and entry["attempts"] == 2
    assert sorted(read_log(log_file)["exercises"]) == ["normalize"]
    assert not list(log_file.parent.glob(".*tmp"))  # the atomic writer left nothing behind


def test_never_the_students_code(log_file, capsys):
    check_normalize(crashing_normalize)
    printed = capsys.readouterr().out
    assert "secret_student_variable" in printed  # the check itself quotes the line...
    stored = log_file.read_text()
    assert "secret_student_variable" not in stored  # ...the progress file does not
    assert "at line" in read_log(log_file)["exercises"]["normalize"]["message"]
    assert without_code("raised E at line 3 ('x = \"a\"'): boom") == "raised E at line 3: boom"


def test_printed_output_unchanged(log_file, monkeypatch, capsys):
    outputs = []
    for setting in (str(log_file), "off"):
        monkeypatch.setenv(ENV, setting)
        for student in (percentile_normalize, wrong_normalize, unfinished_normalize):
            check_normalize(student)
        outputs.append(capsys.readouterr())
    assert outputs[0].out == outputs[1].out and outputs[0].err == outputs[1].err == ""


def test_progress_table_lists_every_exercise(log_file):
    check_normalize(percentile_normalize)
    update_exercise.check(unfinished_normalize)  # still raises NotImplementedError: unfinished
    assert read_log(log_file)["exercises"]["update"]["status"] == "unfinished"
    table = progress()
    names = [r.name for r in table.rows]
    assert names == [e.name for e in course_exercises()]
    assert set(names) == set(REGISTRY)  # every registered exercise, nothing hand-written
    assert names.index("normalize") < names.index("update")  # notebook order
    state = {r.name: r.state for r in table.rows}
    assert state["normalize"] == "done" and state["update"] == "not yet"
    assert state["convgru"] == "not yet"
    text = str(table)
    required = [r for r in table.rows if not r.bonus]
    bonus = [r for r in table.rows if r.bonus]
    # the course's 14 exercises and 7 bonus ones (other tests may register more)
    assert len(required) >= 14 and len(bonus) >= 7
    assert f"1 of {len(required)} exercises done, 0 of {len(bonus)} bonus" in text
    assert str(log_file) in text
    page = table._repr_html_()
    assert page.count("<tr><td>") == len(names) and "Percentile normalisation" in page


def test_not_right_yet_shows_the_last_message(log_file):
    check_normalize(wrong_normalize)
    row = next(r for r in progress().rows if r.name == "normalize")
    assert row.state == "not right yet"
    assert row.message == normalize_exercise.last.message


def test_bonus_exercises_come_from_the_registry(log_file):
    bonus = Exercise("bonus_test", "A bonus exercise", lambda s: None, None)
    bonus.bonus = True
    try:
        bonus.check(None)
        listed = {e.name: e for e in course_exercises()}
        assert listed["bonus_test"].bonus
        table = progress()
        n_bonus = sum(e.bonus for e in listed.values())
        assert f"1 of {n_bonus} bonus exercises" in table.summary()
        assert table.counts()[1] == len(listed) - n_bonus
    finally:
        del REGISTRY["bonus_test"]


def test_damaged_file_is_a_message_and_a_fresh_start(log_file, capsys):
    log_file.write_text('{"exercises": {"normalize": ')
    table = progress()
    assert "not valid JSON" in table.note and "fresh start" in table.note
    assert all(r.state == "not yet" for r in table.rows)
    check_normalize(percentile_normalize)
    check_normalize(percentile_normalize)
    captured = capsys.readouterr()
    assert captured.out.count("All checks passed") == 2
    assert captured.err.count("starting afresh") == 1  # warned once
    assert read_log(log_file)["exercises"]["normalize"]["attempts"] == 2
    assert log_file.with_name(FILE_NAME + ".damaged").read_text().startswith('{"exercises"')
    log_file.write_text(json.dumps({"exercises": ["a list"]}))
    assert "not a progress file" in progress().note


def test_unwritable_location_warns_once_and_the_check_goes_on(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(ENV, str(blocker / FILE_NAME))  # its folder is a file: cannot write
    monkeypatch.setattr(progress_module, "_warned", set())
    check_normalize(percentile_normalize)
    check_normalize(wrong_normalize)
    captured = capsys.readouterr()
    assert "All checks passed" in captured.out and "not right yet" in captured.out
    assert captured.err.count("progress is not saved") == 1


def test_where_the_file_goes(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert progress_path() is None  # under pytest: off, so test runs never write
    monkeypatch.chdir(tmp_path)
    assert progress_path({}) == tmp_path / FILE_NAME  # a notebook's kernel: its folder
    assert progress_path({ENV: "off"}) is None
    assert progress_path({ENV: str(tmp_path)}) == tmp_path / FILE_NAME
    assert progress_path({ENV: str(tmp_path / "p.json")}) == tmp_path / "p.json"
    check_normalize(percentile_normalize)
    assert not (tmp_path / FILE_NAME).exists()


def test_missing_file_is_a_fresh_start(log_file):
    table = progress()
    assert "No progress recorded yet" in table.note
    assert table.counts()[0] == 0


def test_cli(log_file, tmp_path, capsys, monkeypatch):
    check_normalize(percentile_normalize)
    capsys.readouterr()
    assert main(["progress", str(log_file)]) == 0
    out = capsys.readouterr().out
    assert "normalize" in out and "done" in out and "exercises done" in out
    assert main(["progress", str(log_file.parent), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["state"] for r in rows}["normalize"] == "done"
    monkeypatch.delenv(ENV)
    monkeypatch.chdir(tmp_path)  # the course folder: notebooks/gruunet-progress.json is found
    monkeypatch.setattr(progress_module, "progress_path", lambda: tmp_path / FILE_NAME)
    assert main(["progress"]) == 0
    assert str(log_file) in capsys.readouterr().out


_RECORD_MANY = """
import sys
from pathlib import Path
from types import SimpleNamespace
import gruunet_edu.training.checkpoint  # the writer's imports (torch) before "ready"
from gruunet_edu.progress import record
path, name, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
for i in range(n):
    record(SimpleNamespace(exercise=name, status="failed", title=name, message=f"try {i}"), path)
print("done")
"""


def _recorder(path, name, n):
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-c", _RECORD_MANY, str(path), name, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_kernel_waits_while_another_holds_the_lock(tmp_path):
    import time

    from gruunet_edu.progress import locked

    path = tmp_path / FILE_NAME
    with locked(path):
        proc = _recorder(path, "convgru", 1)
        assert proc.stdout.readline().strip() == "ready"  # imported: it records now
        time.sleep(1.0)  # ample time to write a small file
        assert proc.poll() is None and not path.exists()  # it waits for its turn
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip() == "done" and err == ""
    assert read_log(path)["exercises"]["convgru"]["attempts"] == 1


def test_kernels_recording_at_once_lose_no_update(tmp_path):
    path = tmp_path / FILE_NAME
    procs = [_recorder(path, name, 30) for name in ("convgru", "frdu", "convgru", "frdu")]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and err == "", err
        assert out.split() == ["ready", "done"]
    entries = read_log(path)["exercises"]
    assert entries["convgru"]["attempts"] == 60 and entries["frdu"]["attempts"] == 60
    assert not list(tmp_path.glob(".*tmp"))
