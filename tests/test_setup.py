"""The project's set-up files agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_requirements() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])


def _environment_pip_requirements() -> set[str]:
    """The `pip:` list of environment.yml, without the editable install of the project itself."""
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = set()
    for line in lines[start + 1 :]:
        match = re.match(r"^\s+- (.+)$", line)
        if not match:
            break
        req = match.group(1).strip()
        if not req.startswith("-"):
            reqs.add(req)
    return reqs


def test_environment_yml_matches_pyproject():
    pyproject = _pyproject_requirements()
    conda = _environment_pip_requirements()
    assert conda == pyproject, (
        f"only in pyproject.toml: {sorted(pyproject - conda)}; "
        f"only in environment.yml: {sorted(conda - pyproject)}"
    )


def test_environment_yml_installs_the_package():
    assert "--editable ." in (ROOT / "environment.yml").read_text()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme
    # .ci/run's one command is the README's quick-start test command, not a variant of it.
    commands = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make test    #" in quick_start
