"""Fixtures for the end-to-end JupyterLab test: a private JupyterLab server and headless Chromium.

The server is started from the environment that runs pytest (`python -m jupyterlab`), listens on a
free port on 127.0.0.1 only, requires a generated token, and gets its own temporary Jupyter
config/data/runtime and IPython directories, so no user-level settings, workspaces or extensions
leak in and nothing is written outside the temporary directory. Its root directory is a temporary
copy of the notebooks, so running them never modifies the repository's files.

The browser is Debian's Chromium (``/usr/bin/chromium``, or the path in ``$CHROMIUM``) driven by
Playwright for Python; no browser is ever downloaded. ``scripts/install-browser.sh`` installs it.
When Chromium or Playwright is missing the tests are skipped with the reason, except when the
environment variable ``CI`` is set: then they fail, so CI never skips them silently.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTIFACTS = REPO_ROOT / "artifacts" / "browser"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-browser.sh"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SERVER_START_TIMEOUT_S = 90.0
NOTEBOOK_RUN_TIMEOUT_S = 240.0
UI_TIMEOUT_MS = 30_000


def in_ci() -> bool:
    """True when the environment variable CI is set to anything but an empty/false value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip the test with `reason`, or fail it under CI so a missing browser is never silent."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so the browser test fails instead of skipping)")
    pytest.skip(reason)


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


def artifact_path(name: str) -> Path:
    """A path under artifacts/browser/ (git-ignored), with its folder created."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LabServer:
    """A running JupyterLab: where it is, how to log in, and where its files and log are."""

    process: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path  # --ServerApp.root_dir: the temporary copy of the notebooks
    home: Path  # temporary Jupyter/IPython dirs
    log_path: Path
    log_offset: int = field(default=0)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """A /lab URL opening `path` (relative to the root) in a fresh workspace, logged in."""
        return f"{self.base_url}/lab/tree/{path}?reset&token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API with the token; returns the decoded JSON (or None)."""
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def log(self) -> str:
        """The server's (and its kernels') output so far."""
        return self.log_path.read_text(errors="replace")

    def new_log(self) -> str:
        """The log written since the last call (kernel tracebacks from widget callbacks land here)."""
        text = self.log()
        fresh, self.log_offset = text[self.log_offset :], len(text)
        return fresh

    def stage(self, source: Path, name: str | None = None) -> str:
        """Copy a notebook (and nothing else) into the server root; returns its path there."""
        target = self.root / (name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return target.relative_to(self.root).as_posix()


def jupyter_env(home: Path) -> dict[str, str]:
    """The environment for the server: private Jupyter and IPython dirs, nothing user-level."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    for name, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
        ("JUPYTERLAB_SETTINGS_DIR", "config/lab/user-settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "config/lab/workspaces"),
        ("MPLCONFIGDIR", "matplotlib"),
    ]:
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / sub)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def lab_command(port: int, token: str, root: Path) -> list[str]:
    """`python -m jupyterlab ...` for this environment's interpreter (the project's .venv)."""
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_remote_access=False",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.log_level=INFO",
    ]


def wait_until_ready(server: LabServer, deadline: float) -> None:
    """Poll /api/status until the server answers; raise with its log if it dies or times out."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {server.process.returncode}:\n{server.log()[-4000:]}"
            )
        try:
            server.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer within the timeout:\n{server.log()[-4000:]}")


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains `text` (our kernels name our private runtime dir)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in cmdline and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
    return pids


def stop_server(server: LabServer) -> None:
    """Shut down the kernels and the server's process group; kill what is left after a grace time."""
    with contextlib.suppress(Exception):
        for kernel in server.api("/api/kernels") or []:
            server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    pgid = server.process.pid  # the server leads its own session (start_new_session=True)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        server.process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)  # anything the server started in its group
    # Kernels run in sessions of their own; they exit when their parent is gone, but do not wait.
    if sys.platform.startswith("linux"):
        for pid in processes_mentioning(str(server.home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def lab_server(
    chromium_executable: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabServer]:
    """A JupyterLab server on 127.0.0.1 with token auth, private dirs and a temporary root."""
    pytest.importorskip("jupyterlab")
    base = tmp_path_factory.mktemp("jupyterlab")
    root, home = base / "root", base / "home"
    root.mkdir()
    env = jupyter_env(home)
    log_path = base / "server.log"
    token = secrets.token_hex(24)
    port = free_port()
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            lab_command(port, token, root),
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown can stop all of it
        )
    server = LabServer(process, port, token, root, home, log_path)
    try:
        wait_until_ready(server, time.monotonic() + SERVER_START_TIMEOUT_S)
        yield server
    finally:
        stop_server(server)
        shutil.copy2(log_path, artifact_path("jupyterlab-server.log"))


# --------------------------------------------------------------------------------------------
# a page of JupyterLab and what a student does in it
# --------------------------------------------------------------------------------------------

ERROR_WIDGET_TEXT = ("Error displaying widget", "model not found")
ERROR_LINE = re.compile(r"^\s*\w*(Error|Exception):", re.MULTILINE)


@dataclass
class Lab:
    """Drives one JupyterLab page the way a student does: open, Run All, look, move sliders."""

    page: Any
    server: LabServer
    console: list[str] = field(default_factory=list)

    def open_notebook(self, path: str) -> None:
        """Open a notebook (path relative to the server root) and wait for its kernel."""
        self.page.goto(self.server.url(path), wait_until="domcontentloaded")
        panel = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first
        panel.locator(".jp-Cell").first.wait_for(state="attached", timeout=60_000)
        dialog = self.page.locator(".jp-Dialog")
        # A notebook without kernelspec metadata opens a "Select Kernel" dialog: a student is stuck.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if dialog.count() > 0 and dialog.first.is_visible():
                text = dialog.first.inner_text()
                raise AssertionError(f"JupyterLab opened a dialog for {path}: {text!r}")
            if self.kernel_status() == "idle":
                return
            self.page.wait_for_timeout(250)
        raise AssertionError(f"kernel for {path} not idle after 60 s: {self.kernel_status()!r}")

    def kernel_status(self) -> str:
        """The notebook toolbar's kernel state ("idle", "busy", "starting", ...) or ""."""
        indicator = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) [data-status]")
        if indicator.count() == 0:
            return ""
        return indicator.first.get_attribute("data-status") or ""

    def run_all(self, timeout_s: float = NOTEBOOK_RUN_TIMEOUT_S) -> float:
        """Run > Run All Cells from the menu bar; wait until every cell ran. Returns seconds."""
        started = time.monotonic()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator('.lm-Menu-item[data-command="notebook:run-all-cells"]').click()
        self.page.wait_for_timeout(500)
        deadline = started + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            pending = self.pending_cells()
            if pending == 0 and self.kernel_status() == "idle":
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.5:  # idle and nothing queued, twice over
                    return time.monotonic() - started
            else:
                quiet_since = None
            self.page.wait_for_timeout(250)
        raise AssertionError(
            f"notebook still running after {timeout_s:.0f} s "
            f"({self.pending_cells()} cells pending, kernel {self.kernel_status()!r})"
        )

    def pending_cells(self) -> int:
        """Code cells queued or running (prompt ``[*]``)."""
        return int(
            self.page.evaluate(
                """() => [...document.querySelectorAll(
                        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                      .filter(p => p.textContent.includes('*')).length"""
            )
        )

    def scroll_through(self) -> None:
        """Scroll every cell into view once, so lazily rendered outputs are in the page."""
        cells = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
        for index in range(cells.count()):
            with contextlib.suppress(Exception):
                cells.nth(index).scroll_into_view_if_needed(timeout=2_000)

    def error_outputs(self) -> list[str]:
        """Texts of outputs that show an error: tracebacks, error lines, broken widgets."""
        self.scroll_through()
        texts: list[str] = self.page.evaluate(
            """() => {
                const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                const found = [];
                const sel = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';
                for (const el of panel.querySelectorAll(sel)) {
                    if (/Traceback|Error/.test(el.innerText)) found.push(el.innerText);
                }
                for (const el of panel.querySelectorAll('.jp-OutputArea-output')) {
                    const t = el.innerText;
                    if (/Error displaying widget|model not found|Traceback \\(most recent/.test(t))
                        found.push(t);
                }
                return found;
            }"""
        )
        return sorted(set(texts))

    def explorer_images(self, selector: str = ".gruunet-explorer") -> list[str]:
        """The bytes (base64) of every image inside the explorer's widgets, in page order."""
        return list(
            self.page.evaluate(
                """async (selector) => {
                    const imgs = [...document.querySelectorAll(selector + ' img')];
                    const out = [];
                    for (const img of imgs) {
                        const response = await fetch(img.src);
                        const bytes = new Uint8Array(await response.arrayBuffer());
                        let s = '';
                        for (const b of bytes) s += String.fromCharCode(b);
                        out.push(btoa(s));
                    }
                    return out;
                }""",
                selector,
            )
        )

    def screenshot(self, locator: Any, name: str) -> Path:
        """Save a PNG of `locator` (or of the whole page if it is None) under artifacts/browser/."""
        path = artifact_path(name)
        if locator is None:
            self.page.screenshot(path=str(path), full_page=True)
        else:
            locator.scroll_into_view_if_needed()
            locator.screenshot(path=str(path))
        return path


def image_digest(images: list[str]) -> list[int]:
    """Lengths of the decoded images: a compact summary for assertion messages."""
    return [len(base64.b64decode(image)) for image in images]


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
