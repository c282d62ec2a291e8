"""Fixtures for the end-to-end JupyterLab test: a private JupyterLab server and headless Chromium.

The server is started from the environment that runs pytest (`python -m jupyterlab`), listens on a
free port on 127.0.0.1 only, requires a generated token, and gets its own temporary Jupyter
config/data/runtime and IPython directories, so no user-level settings, workspaces or extensions
leak in. Its root directory is a temporary copy of the notebooks, so running them never modifies
the repository's files; the only things written outside the temporary directory are the
screenshots and the server log in ``artifacts/browser/`` and what the notebooks themselves cache
(the pretrained model in ``$GRUUNET_CACHE``).

The browser is Debian's Chromium (``/usr/bin/chromium``, or the path in ``$CHROMIUM``) driven by
Playwright for Python; no browser is ever downloaded. ``scripts/install-browser.sh`` installs it.
When Chromium or Playwright is missing the tests are skipped with the reason, except when the
environment variable ``CI`` is set: then they fail, so CI never skips them silently.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from labdriver import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    INSTALL_SCRIPT,
    REPO_ROOT,
    SERVER_START_TIMEOUT_S,
    UI_TIMEOUT_MS,
    Lab,
    LabServer,
    artifact_path,
    free_port,
    jupyter_env,
    lab_command,
    skip_or_fail,
    stop_server,
    wait_until_ready,
)

# --------------------------------------------------------------------------------------------
# failure bookkeeping: fixtures save a screenshot and the server log when the test failed
# --------------------------------------------------------------------------------------------


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    """Remember each phase's report on the item (``item.rep_call.failed`` in fixture teardown)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def test_failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test that used this fixture failed in setup or in its body."""
    for when in ("setup", "call"):
        report = getattr(request.node, f"rep_{when}", None)
        if report is not None and report.failed:
            return True
    return False


# --------------------------------------------------------------------------------------------
# the browser
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of the Chromium binary; skips (or fails under CI) when it is not installed."""
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        skip_or_fail(
            f"Chromium not found at {path}: run {INSTALL_SCRIPT.relative_to(REPO_ROOT)} "
            "(installs Debian's chromium as root) or set CHROMIUM to a Chromium binary"
        )
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Any]:
    """A headless Chromium launched by Playwright from the system binary (never downloaded)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


# --------------------------------------------------------------------------------------------
# the JupyterLab server
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lab_server(
    chromium_executable: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabServer]:
    """A JupyterLab server on 127.0.0.1 with token auth, private dirs and a temporary root.

    Stopped at the end of the session, also when a test failed or the run was interrupted
    (Ctrl+C, or SIGTERM from a timeout, which is turned into KeyboardInterrupt for this).
    """
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        skip_or_fail("JupyterLab is not installed in this environment (pip install -e '.[dev]')")
    for stale in ARTIFACTS.glob("FAILED-*"):  # screenshots and logs of an earlier run
        stale.unlink(missing_ok=True)
    base = tmp_path_factory.mktemp("jupyterlab")
    root, home = base / "root", base / "home"
    root.mkdir()
    env = jupyter_env(home)
    log_path = base / "server.log"
    token = secrets.token_hex(24)
    restore = interrupt_on_sigterm()
    server = None
    try:
        for attempt in range(3):  # the free port may be taken before the server binds it
            port = free_port()
            with log_path.open("ab") as log_file:
                process = subprocess.Popen(
                    lab_command(port, token, root),
                    cwd=root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: teardown stops all of it
                )
            server = LabServer(process, port, token, root, home, log_path)
            try:
                wait_until_ready(server, time.monotonic() + SERVER_START_TIMEOUT_S)
                break
            except RuntimeError:
                stop_server(server)
                if attempt == 2 or "already in use" not in server.log():
                    raise
        yield server
    finally:
        if server is not None:
            stop_server(server)
        with contextlib.suppress(OSError):
            shutil.copy2(log_path, artifact_path("jupyterlab-server.log"))
        restore()


def interrupt_on_sigterm() -> Callable[[], None]:
    """Turn SIGTERM into KeyboardInterrupt (so fixtures' teardown runs); returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        return lambda: None  # someone else handles it

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------------------------
# a page of JupyterLab
# --------------------------------------------------------------------------------------------


@pytest.fixture
def lab(browser: Any, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A fresh browser context with one JupyterLab page; saves a screenshot if the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    driver = Lab(page, lab_server)
    page.on("console", lambda msg: driver.console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: driver.console.append(f"pageerror: {exc}"))
    lab_server.new_log()
    try:
        yield driver
    finally:
        if test_failed(request):
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            with contextlib.suppress(Exception):
                shot = driver.screenshot(None, f"FAILED-{name}.png")
                print(f"\nscreenshot of the failed page: {shot}")
            with contextlib.suppress(Exception):
                artifact_path(f"FAILED-{name}-console.txt").write_text("\n".join(driver.console))
        context.close()
        lab_server.shutdown_kernels()
