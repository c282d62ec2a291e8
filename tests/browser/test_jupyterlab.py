"""End-to-end: the course's widgets work in JupyterLab the way a student meets them.

Kernel-side tests cannot see the front end: a missing ``@jupyter-widgets/jupyterlab-manager``
extension, a widget model the page never receives ("Error displaying widget: model not found"), or
a slider whose callback never reaches the image. These tests start a private JupyterLab, open the
notebooks in headless Chromium, run all cells from the Run menu, and look at the page.

Two layers:

* fixture notebooks (``tests/browser/fixtures/``): the widget stack and the kernel on their own
  (progress bar, an explorer-like slider + image box, the kernel's Python) and a deliberately
  failing notebook that proves the error check sees failures;
* the course notebooks 01 (ConvGRU: progress bar / widget output) and 06 (hidden-state explorer).
  They are taken from ``notebooks/`` (what a student opens; exercises are unfinished there, so this
  also covers the fall-back-to-reference path), or from ``solutions/`` when ``notebooks/`` lacks
  them; ``GRUUNET_BROWSER_NOTEBOOKS=solutions`` picks the solved versions. Each is copied to a
  temporary server root, so the repository's files are never modified. A missing course notebook
  skips its test, except under CI (env ``CI`` set), where it fails.

Run only these tests with ``pytest -m browser``; skip them with ``pytest -m "not browser"``.
Screenshots are saved under ``artifacts/browser/``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from labdriver import FIXTURES, REPO_ROOT, Lab, in_ci

pytestmark = pytest.mark.browser

NOTEBOOK_DIRS = (
    [os.environ["GRUUNET_BROWSER_NOTEBOOKS"]]
    if os.environ.get("GRUUNET_BROWSER_NOTEBOOKS")
    else ["notebooks", "solutions"]
)
COURSE_RUN_TIMEOUT_S = 1800.0  # the course notebooks train a small model on a CPU (once, cached)
EXPLORER = ".gruunet-explorer"
WIDGET_OUTPUT = ".jp-OutputArea-output > .jupyter-widgets"
PROGRESS = f"{WIDGET_OUTPUT} .widget-hprogress"


def course_notebook(name: str) -> Path:
    """The course notebook `name` from the first folder that has it; skip (fail in CI) if none."""
    for folder in NOTEBOOK_DIRS:
        path = REPO_ROOT / folder / name
        if path.exists():
            return path
    reason = f"{name} not found in {' or '.join(f'{d}/' for d in NOTEBOOK_DIRS)}"
    if in_ci():
        pytest.fail(f"{reason}: the browser test needs it (CI is set, so this fails)")
    pytest.skip(reason)


def report(capsys: pytest.CaptureFixture[str], message: str) -> None:
    """Print straight to the terminal, also when pytest captures output."""
    with capsys.disabled():
        print(f"\n[browser] {message}")


def assert_no_errors(lab: Lab, path: str, saved: bool = True) -> None:
    """No output shows a traceback or a broken widget, in the page or in the saved notebook."""
    errors = lab.error_outputs()
    assert not errors, f"{path}: error outputs in the page:\n" + "\n---\n".join(errors)
    if saved:
        errors = lab.saved_errors(path)
        assert not errors, f"{path}: error outputs in the saved notebook: {errors}"


def assert_no_kernel_tracebacks(lab: Lab, what: str) -> None:
    """Widget callbacks that raise only show up in the kernel's log (the server's output)."""
    log = lab.server.new_log()
    assert "Traceback" not in log, f"{what}: the kernel logged a traceback:\n{log[-4000:]}"


def run_notebook(
    lab: Lab, capsys: pytest.CaptureFixture[str], path: str, timeout_s: float | None = None
) -> None:
    """Open a staged notebook, Run All Cells, report the time."""
    started = time.monotonic()
    lab.open_notebook(path)
    opened = time.monotonic() - started
    seconds = lab.run_all() if timeout_s is None else lab.run_all(timeout_s)
    report(capsys, f"{path}: kernel ready in {opened:.1f} s, all cells ran in {seconds:.1f} s")
    for text in lab.stderr_texts():  # warnings are allowed, but worth a look
        first = text.strip().splitlines()[0] if text.strip() else ""
        report(capsys, f"{path}: stderr output: {first[:160]}")


def slider_value(slider: Any) -> int:
    """The value a slider's handle reports (``aria-valuenow``)."""
    return round(float(slider.locator(".noUi-handle").first.get_attribute("aria-valuenow")))


def move_slider(lab: Lab, slider: Any) -> int:
    """Focus a slider's handle and press an arrow key, as a student would; returns the old value.

    Presses ArrowLeft when the slider is at its maximum (the explorer starts at the last step),
    ArrowRight otherwise.
    """
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    value = slider_value(slider)
    maximum = round(float(handle.get_attribute("aria-valuemax")))
    handle.focus()
    lab.page.keyboard.press("ArrowLeft" if value >= maximum else "ArrowRight")
    return value


def image_sources(lab: Lab, selector: str) -> list[str]:
    """The ``src`` of every image inside `selector`, in page order."""
    return list(
        lab.page.evaluate(
            "(sel) => [...document.querySelectorAll(sel + ' img')].map(i => i.src)", selector
        )
    )


def wait_for_new_images(
    lab: Lab, before: list[str], selector: str, timeout_s: float = 60.0
) -> list[str]:
    """Poll the images' sources until they differ from `before` (a kernel round trip)."""
    deadline = time.monotonic() + timeout_s
    after = before
    while time.monotonic() < deadline:
        lab.page.wait_for_timeout(300)
        after = image_sources(lab, selector)
        if after != before and lab.kernel_status() == "idle":
            return after
    return after


def check_explorer(lab: Lab, screenshot: str, change_timeout_s: float = 60.0) -> Path:
    """The explorer rendered, and moving its step slider changes the displayed image.

    Returns the path of the screenshot of the explorer, taken after the slider moved.
    """
    explorer = lab.page.locator(EXPLORER).first
    explorer.wait_for(state="visible")
    text = explorer.inner_text()
    for bad in ("Error displaying widget", "model not found"):
        assert bad not in text, f"the explorer shows {bad!r}: {text[:500]!r}"
    assert explorer.locator(".widget-slider").count() >= 1, "no slider in the explorer"
    step = explorer.locator(".gruunet-explorer-step").first
    assert step.count() == 1, "no step slider (class gruunet-explorer-step) in the explorer"

    # The explorer's images are blob: URLs; every new value gets a new URL.
    before_src = image_sources(lab, EXPLORER)
    assert before_src, "no image in the explorer"
    before_bytes = lab.explorer_images(EXPLORER)
    assert all(before_bytes), "an explorer image is empty"
    state_panel = f"{EXPLORER} .gruunet-explorer-panel-state"
    state_before = lab.explorer_images(state_panel)

    lab.server.new_log()
    value = move_slider(lab, step)
    after_src = wait_for_new_images(lab, before_src, EXPLORER, change_timeout_s)
    assert slider_value(step) != value, f"the step slider did not move from {value}"
    assert after_src != before_src, "moving the step slider did not change any image's src"
    assert len(after_src) == len(before_src), "the number of images changed"
    after_bytes = lab.explorer_images(EXPLORER)
    assert after_bytes != before_bytes, "the images' src changed but not their content"
    assert state_before, "no h_t panel (class gruunet-explorer-panel-state) in the explorer"
    assert lab.explorer_images(state_panel) != state_before, "the h_t panel did not change"
    assert_no_kernel_tracebacks(lab, "moving the step slider")
    return lab.screenshot(explorer, screenshot)


# --------------------------------------------------------------------------------------------
# fixture notebooks: the widget stack, the kernel and the error check on their own
# --------------------------------------------------------------------------------------------


def test_widget_stack_and_kernel(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """Progress bar and slider-driven image work; the kernel runs this environment's Python."""
    path = lab.server.stage(FIXTURES / "widget_smoke.ipynb")
    run_notebook(lab, capsys, path)
    assert_no_errors(lab, path)

    stdout = lab.page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]'
    )
    prefix_line = stdout.filter(has_text="kernel prefix:").first.inner_text()
    kernel_prefix = Path(prefix_line.split("kernel prefix:", 1)[1].strip())
    assert kernel_prefix.resolve() == Path(sys.prefix).resolve(), (
        f"the python3 kernel runs {kernel_prefix}, not this environment ({sys.prefix}): "
        "check `jupyter kernelspec list`"
    )

    progress = lab.page.locator(PROGRESS)
    assert progress.count() >= 1, "the tqdm.auto progress bar did not render as a widget"
    shot = check_explorer(lab, "widget_smoke.png")
    report(capsys, f"screenshot: {shot}")
    assert_no_errors(lab, path, saved=False)


def test_error_outputs_are_detected(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """The error check sees a failing cell (in the page and in the saved file), not warnings."""
    path = lab.server.stage(FIXTURES / "error_cell.ipynb")
    run_notebook(lab, capsys, path)
    errors = lab.error_outputs()
    assert len(errors) == 1, f"expected exactly the failing cell, found: {errors}"
    assert "ValueError" in errors[0] and "deliberate failure" in errors[0]
    assert lab.saved_errors(path) == ["cell 2: ValueError: deliberate failure for the browser test"]
    assert lab.prompts()[-1] == "", "the cell after the failure ran (Run All should stop there)"


def test_explorer_check_notices_a_dead_slider(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """The explorer check fails when moving the step slider changes no image."""
    path = lab.server.stage(FIXTURES / "dead_explorer.ipynb")
    run_notebook(lab, capsys, path)
    assert_no_errors(lab, path, saved=False)
    with pytest.raises(AssertionError, match="did not change any image"):
        check_explorer(lab, "dead_explorer.png", change_timeout_s=5.0)


# --------------------------------------------------------------------------------------------
# the course notebooks
# --------------------------------------------------------------------------------------------


def test_hidden_states_notebook(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """06: all cells run; the explorer renders and its step slider changes the images."""
    source = course_notebook("06_hidden_states.ipynb")
    path = lab.server.stage(source)
    run_notebook(lab, capsys, path, COURSE_RUN_TIMEOUT_S)
    assert_no_errors(lab, path)
    assert lab.page.locator(EXPLORER).count() >= 1, "no element with class gruunet-explorer"
    shot = check_explorer(lab, "06_hidden_states-explorer.png")
    report(capsys, f"screenshot: {shot}")
    assert_no_errors(lab, path, saved=False)


def test_convgru_notebook(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    """01: all cells run; a progress bar or another widget output renders without errors."""
    source = course_notebook("01_convgru.ipynb")
    path = lab.server.stage(source)
    run_notebook(lab, capsys, path, COURSE_RUN_TIMEOUT_S)
    assert_no_errors(lab, path)
    lab.scroll_through()
    widgets = lab.page.locator(WIDGET_OUTPUT)
    assert widgets.count() >= 1, "01_convgru.ipynb shows no widget output (progress bar, ...)"
    text = "\n".join(widgets.all_inner_texts())
    assert "Error displaying widget" not in text and "model not found" not in text, text[:500]
    report(
        capsys,
        f"01_convgru.ipynb: {widgets.count()} widget outputs, "
        f"{lab.page.locator(PROGRESS).count()} progress bars",
    )
    lab.screenshot(None, "01_convgru.png")
