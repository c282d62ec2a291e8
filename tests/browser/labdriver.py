"""Driving a private JupyterLab server and a page of it in headless Chromium (Playwright).

Used by the fixtures in conftest.py and by test_jupyterlab.py. Nothing here downloads a browser:
the browser is Debian's Chromium (``/usr/bin/chromium`` or ``$CHROMIUM``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
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
NOTEBOOK_RUN_TIMEOUT_S = 300.0
KERNEL_START_TIMEOUT_S = 120.0
UI_TIMEOUT_MS = 30_000


def in_ci() -> bool:
    """True when the environment variable CI is set to anything but an empty/false value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip the test with `reason`, or fail it under CI so a missing browser is never silent."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so the browser test fails instead of skipping)")
    pytest.skip(reason)


def artifact_path(name: str) -> Path:
    """A path under artifacts/browser/ (git-ignored), with its folder created."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


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
        """The log written since the last call (kernel tracebacks from widget callbacks go here)."""
        text = self.log()
        fresh, self.log_offset = text[self.log_offset :], len(text)
        return fresh

    def shutdown_kernels(self) -> None:
        """End all sessions and kernels (each test starts its notebook's kernel afresh)."""
        with contextlib.suppress(Exception):
            for session in self.api("/api/sessions") or []:
                self.api(f"/api/sessions/{session['id']}", method="DELETE")
        with contextlib.suppress(Exception):
            for kernel in self.api("/api/kernels") or []:
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE")

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
    # No "get notified about news?" toast over the notebook, no update checks (no network).
    notification = home / "config/lab/user-settings/@jupyterlab/apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


def lab_command(port: int, token: str, root: Path) -> list[str]:
    """`python -m jupyterlab ...` for this environment's interpreter (the project's .venv)."""
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.allow_remote_access=False",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.log_level=INFO",
        *as_root,  # containers and CI runners often run as root
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
    """Shut down the kernels and the server's process group; kill what is left after a while."""
    server.shutdown_kernels()
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


# --------------------------------------------------------------------------------------------
# a page of JupyterLab and what a student does in it
# --------------------------------------------------------------------------------------------

ERROR_WIDGET_TEXT = ("Error displaying widget", "model not found")
ERROR_LINE = re.compile(r"^\s*[A-Za-z_][\w.]*(Error|Exception)\b(?!.*Warning)", re.MULTILINE)


@dataclass
class Lab:
    """Drives one JupyterLab page the way a student does: open, Run All, look, move sliders."""

    page: Any
    server: LabServer
    console: list[str] = field(default_factory=list)

    def open_notebook(self, path: str) -> None:
        """Open a notebook (path relative to the server root) and wait until its kernel is ready.

        The toolbar shows "idle" for a moment before the kernel even starts, so "ready" means: the
        server has a kernel with a connection (this page) and the page shows it idle for a second.
        """
        self.page.goto(self.server.url(path), wait_until="domcontentloaded")
        panel = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").first
        panel.locator(".jp-Cell").first.wait_for(state="attached", timeout=60_000)
        dialog = self.page.locator(".jp-Dialog")
        # A notebook without kernelspec metadata opens a "Select Kernel" dialog: a student is stuck.
        deadline = time.monotonic() + KERNEL_START_TIMEOUT_S
        idle_since = None
        while time.monotonic() < deadline:
            if dialog.count() > 0 and dialog.first.is_visible():
                text = dialog.first.inner_text()
                raise AssertionError(f"JupyterLab opened a dialog for {path}: {text!r}")
            if self.kernel_status() == "idle" and self.server_kernel_connected():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 1.0:
                    return
            else:
                idle_since = None
            self.page.wait_for_timeout(250)
        raise AssertionError(
            f"kernel for {path} not ready after {KERNEL_START_TIMEOUT_S:.0f} s: "
            f"page shows {self.kernel_status()!r}, server kernels {self.server.api('/api/kernels')}"
        )

    def server_kernel_connected(self) -> bool:
        """Whether the server runs a kernel that is idle and has a client connected."""
        with contextlib.suppress(Exception):
            for kernel in self.server.api("/api/kernels") or []:
                if kernel.get("connections", 0) >= 1 and kernel.get("execution_state") == "idle":
                    return True
        return False

    def kernel_status(self) -> str:
        """The notebook toolbar's kernel state ("idle", "busy", "starting", ...) or ""."""
        indicator = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) [data-status]")
        if indicator.count() == 0:
            return ""
        return indicator.first.get_attribute("data-status") or ""

    def prompts(self) -> list[str]:
        """The input prompts of all code cells, e.g. ``["1", "2", "*", " "]``."""
        return list(
            self.page.evaluate(
                """() => [...document.querySelectorAll(
                        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                      .map(p => p.textContent.replace(/^\\[|\\]:?\\s*$/g, '').trim())"""
            )
        )

    def menu(self, top: str, item: re.Pattern[str]) -> None:
        """Click a menu bar entry, then the item whose label matches `item`."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
        menu = self.page.locator(".lm-Menu-content").last
        menu.locator(".lm-Menu-itemLabel", has_text=item).first.click()

    def run_all(self, timeout_s: float = NOTEBOOK_RUN_TIMEOUT_S) -> float:
        """Run > Run All Cells from the menu bar; wait until the run finished. Returns seconds.

        Finished: a cell ran, none is queued or running, and the kernel stayed idle for 3 s. (After
        an error JupyterLab drops the rest of the queue, so not every cell need be numbered.)
        """
        started = time.monotonic()
        self.menu("Run", re.compile(r"^Run All Cells$"))
        deadline = started + timeout_s
        quiet_since = None
        prompts: list[str] = []
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(250)
            prompts = self.prompts()
            ran = any(p.isdigit() for p in prompts) and "*" not in prompts
            if ran and self.kernel_status() == "idle":
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 3.0:
                    return time.monotonic() - started
            else:
                quiet_since = None
        raise AssertionError(
            f"notebook still running after {timeout_s:.0f} s "
            f"(prompts {prompts}, kernel {self.kernel_status()!r})"
        )

    def scroll_through(self) -> None:
        """Scroll every cell into view once, so lazily rendered outputs are in the page."""
        cells = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
        for index in range(cells.count()):
            with contextlib.suppress(Exception):
                cells.nth(index).scroll_into_view_if_needed(timeout=2_000)

    def error_outputs(self) -> list[str]:
        """Texts of outputs in the page that show an error: tracebacks, broken widgets.

        Warnings also go to stderr, so a stderr output counts only if it holds a traceback or a
        line starting with an exception name (``ValueError: ...``).
        """
        self.scroll_through()
        texts: list[str] = self.page.evaluate(
            """([widgetErrors, errorLine]) => {
                const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                const found = [];
                const widgetRe = new RegExp(widgetErrors.join('|'));
                const lineRe = new RegExp(errorLine, 'm');
                for (const el of panel.querySelectorAll('.jp-OutputArea-output')) {
                    const t = el.innerText;
                    const stderr = el.dataset.mimeType === 'application/vnd.jupyter.stderr';
                    if (widgetRe.test(t) || /Traceback \\(most recent call last\\)/.test(t)
                        || (stderr && lineRe.test(t))) found.push(t);
                }
                return found;
            }""",
            [list(ERROR_WIDGET_TEXT), ERROR_LINE.pattern],
        )
        return sorted(set(texts))

    def stderr_texts(self) -> list[str]:
        """Texts of all stderr outputs (warnings included), for the test's report."""
        return list(
            self.page.evaluate(
                """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) '
                    + '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
                    .map(el => el.innerText)"""
            )
        )

    def saved_errors(self, path: str) -> list[str]:
        """Save the notebook (File > Save) and return its error outputs as ``"ename: evalue"``.

        Reads the saved file through the server's contents API, so this sees every cell's
        outputs, including cells not rendered in the page.
        """
        self.menu("File", re.compile(r"^Save( Notebook)?$"))
        tab = self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and tab.count() > 0:
            self.page.wait_for_timeout(250)
        model = self.server.api(f"/api/contents/{path}?content=1")
        errors = []
        for index, cell in enumerate(model["content"]["cells"]):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    errors.append(f"cell {index}: {output['ename']}: {output['evalue']}")
        return errors

    def explorer_images(self, selector: str = ".gruunet-explorer") -> list[str]:
        """The bytes (base64) of every image that `selector` matches or contains, in page order.

        An ``ipywidgets.Image``'s CSS classes sit on the ``<img>`` itself, so a panel's class
        selects its image directly.
        """
        return list(
            self.page.evaluate(
                """async (selector) => {
                    const imgs = [...document.querySelectorAll(selector)].flatMap(
                        (el) => (el.tagName === 'IMG' ? [el] : [...el.querySelectorAll('img')]));
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
