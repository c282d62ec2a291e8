"""Reading, writing and comparing notebook pairs (``.py`` percent twin + ``.ipynb``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

# The kernel every notebook names (without it JupyterLab 4 asks "Select Kernel" first).
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
JUPYTEXT_FORMATS = "ipynb,py:percent"
# Key in the student .ipynb metadata recording what the builder generated.
META_KEY = "gruunet_course"
SOLUTIONS_DIR = "solutions"
STUDENT_DIR = "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*"


@dataclass(frozen=True)
class Lesson:
    """One lesson: its solution pair and its student pair (paths may not exist yet)."""

    root: Path
    name: str  # e.g. "01_convgru"

    @property
    def solution_py(self) -> Path:
        return self.root / SOLUTIONS_DIR / f"{self.name}.py"

    @property
    def solution_ipynb(self) -> Path:
        return self.root / SOLUTIONS_DIR / f"{self.name}.ipynb"

    @property
    def student_py(self) -> Path:
        return self.root / STUDENT_DIR / f"{self.name}.py"

    @property
    def student_ipynb(self) -> Path:
        return self.root / STUDENT_DIR / f"{self.name}.ipynb"

    def rel(self, path: Path) -> str:
        """Path relative to the repository root, for messages."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def find_root(start: Path | None = None) -> Path:
    """The repository root: ``start`` (default: cwd) or its first parent with solutions/."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / SOLUTIONS_DIR).is_dir():
            return candidate
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / SOLUTIONS_DIR).is_dir():
        return package_root
    raise FileNotFoundError(f"no '{SOLUTIONS_DIR}/' folder found above {here}")


def lessons(root: Path, names: list[str] | None = None) -> list[Lesson]:
    """All lessons with a solution ``.py`` (or an ``.ipynb`` only), sorted; optionally filtered.

    ``names`` may be full names ("01_convgru") or prefixes ("01").
    """
    found = set()
    for folder in (root / SOLUTIONS_DIR, root / STUDENT_DIR):
        for path in folder.glob(NOTEBOOK_GLOB):
            # "01_convgru.py", not a copy such as "01_convgru.py.20260101-120000.bak" or
            # "01_convgru.backup.ipynb": a lesson's name has no dot
            if path.suffix in (".py", ".ipynb") and "." not in path.stem:
                found.add(path.stem)
    result = [Lesson(root, n) for n in sorted(found)]
    if names:
        wanted = [n.removesuffix(".py").removesuffix(".ipynb") for n in names]
        wanted = [Path(n).name for n in wanted]
        result = [les for les in result if any(les.name.startswith(w) for w in wanted)]
        if not result:
            raise FileNotFoundError(f"no lesson matches {', '.join(names)}")
    return result


def read(path: Path) -> nbformat.NotebookNode:
    """Read a ``.py`` (percent) or ``.ipynb`` notebook with jupytext."""
    return jupytext.read(path)


def normalise_source(source: str) -> str:
    """Source text as compared between twins: trailing spaces and blank edge lines ignored."""
    lines = [ln.rstrip() for ln in source.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def cell_signature(cell: nbformat.NotebookNode) -> tuple[str, str, tuple[str, ...]]:
    """What a pair must agree on for one cell: type, source, tags (outputs and ids ignored)."""
    cell_type = "markdown" if cell.cell_type == "raw" else cell.cell_type
    tags = tuple(sorted(cell.get("metadata", {}).get("tags", [])))
    return (cell_type, normalise_source(cell.source), tags)


def signatures(nb: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """Cell signatures of a notebook."""
    return [cell_signature(c) for c in nb.cells]


def fingerprint(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of the cell signatures: equal for a ``.py`` and an ``.ipynb`` in sync."""
    payload = json.dumps(signatures(nb), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def first_difference(a: nbformat.NotebookNode, b: nbformat.NotebookNode) -> str | None:
    """A sentence describing the first cell where two notebooks differ, or None if in sync."""
    sa, sb = signatures(a), signatures(b)
    for i, (ca, cb) in enumerate(zip(sa, sb, strict=False)):
        if ca != cb:
            what = "type" if ca[0] != cb[0] else ("tags" if ca[1] == cb[1] else "source")
            first = next((ln for ln in (ca[1] or cb[1]).splitlines() if ln.strip()), "")
            return f"cell {i + 1} differs in its {what} (starts {first.strip()[:50]!r})"
    if len(sa) != len(sb):
        return f"they have {len(sa)} and {len(sb)} cells"
    return None


def finalise(nb: nbformat.NotebookNode, *, extra_metadata: dict | None = None) -> None:
    """Give a notebook the kernelspec, the jupytext pairing and stable cell ids (in place).

    Cell metadata keeps only the tags and ``jupyter`` (e.g. ``{"source_hidden": true}``, how
    JupyterLab stores a collapsed cell)."""
    jt = {"formats": JUPYTEXT_FORMATS}
    metadata = {"kernelspec": dict(KERNELSPEC), "jupytext": jt}
    language_info = nb.metadata.get("language_info")
    if language_info:
        metadata["language_info"] = language_info
    if extra_metadata:
        metadata.update(extra_metadata)
    nb.metadata = nbformat.from_dict(metadata)
    nb.nbformat, nb.nbformat_minor = 4, 5
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        if cell.cell_type != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        meta = cell.get("metadata", {})
        kept = {key: meta[key] for key in ("tags", "jupyter") if meta.get(key)}
        cell["metadata"] = nbformat.from_dict(kept)  # tags, and JupyterLab's collapsed state


def to_py_text(nb: nbformat.NotebookNode) -> str:
    """The ``.py:percent`` text of a notebook."""
    return jupytext.writes(nb, fmt="py:percent")


def to_ipynb_text(nb: nbformat.NotebookNode) -> str:
    """The ``.ipynb`` JSON text of a notebook (nbformat layout, trailing newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def has_kernelspec(nb: nbformat.NotebookNode) -> bool:
    """Whether the notebook names the ``python3`` kernel as JupyterLab expects."""
    ks = nb.metadata.get("kernelspec") or {}
    return all(ks.get(k) == v for k, v in KERNELSPEC.items())


def write_text(path: Path, text: str) -> None:
    """Write a file atomically, with the package's one atomic writer (temporary file, rename)."""
    from ..training.checkpoint import write_atomically  # imported here: `check` never writes

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))
