"""Cell tags and solution markers: how one solution notebook becomes a student notebook.

A solution notebook (``solutions/NN_name.py``, jupytext percent format) is the single source of a
lesson. Two kinds of marks say what the student sees:

* **cell tags** in the percent header, e.g. ``# %% tags=["solution"]``. Every tag must be one of
  :data:`ALLOWED_TAGS`; anything else (a typo such as ``"soluton"``) is an error.
* **regions** inside a code cell::

      def forward(self, x, h):
          ### BEGIN SOLUTION
          z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))
          #> z = ...  # the update gate, equation (1)
          ### END SOLUTION

  The region is removed from the student version. Lines starting with ``#>`` inside it are the
  student's stub (the ``#>`` is stripped, indentation kept); a region without ``#>`` lines becomes
  ``raise NotImplementedError("Student exercise: ...")`` at the indentation of ``### BEGIN``.
  Regions cannot nest, must be closed in the cell that opens them, and live in code cells only.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

# Tags with a meaning for the course builder.
COURSE_TAGS = {
    "solution": "whole cell only in the solution notebook (dropped for students)",
    "student": "whole cell only in the student notebook (it also runs in the solution: keep it "
    "harmless, e.g. a markdown answer box)",
    "exercise": "cell with code the student writes; must contain a SOLUTION region and be "
    "followed by a 'check' cell",
    "check": "cell that calls a gruunet_edu.exercises checker on the student's code",
}
# Tags read by nbval (see nbval.plugin.metadata_tags).
NBVAL_TAGS = {
    "nbval-ignore-output": "run the cell but do not compare its output",
    "nbval-check-output": "compare the output even under --nbval-lax",
    "nbval-skip": "do not run the cell under nbval",
    "nbval-raises-exception": "the cell is expected to raise",
    "raises-exception": "the cell is expected to raise (also honoured by nbclient)",
}
# Presentation tags understood by JupyterLab / jupyter-book style renderers.
DISPLAY_TAGS = {
    "hide-input": "collapse the code of the cell",
    "hide-output": "collapse the output of the cell",
    "hide-cell": "collapse the whole cell",
    "remove-input": "drop the code when rendering",
    "remove-output": "drop the output when rendering",
}
ALLOWED_TAGS: dict[str, str] = {**COURSE_TAGS, **NBVAL_TAGS, **DISPLAY_TAGS}

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB_PREFIX = "#>"
DEFAULT_STUB = 'raise NotImplementedError("Student exercise: write your code here")'

_BEGIN_RE = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
_END_RE = re.compile(r"^(\s*)### END SOLUTION\s*$")
# Anything that looks like a marker but is not exactly one (typos, lower case, other words).
_NEAR_MARKER_RE = re.compile(r"^\s*#{2,}\s*(begin|end)\b", re.IGNORECASE)
_STUB_RE = re.compile(r"^(\s*)#>( ?)(.*)$")


class MarkupError(ValueError):
    """A tag or marker problem, with the file and cell it was found in."""


@dataclass(frozen=True)
class CellRef:
    """Where a cell is, for messages: ``solutions/01_convgru.py, cell 7 ("def forward(...")``."""

    path: str
    index: int  # 1-based cell number
    first_line: str

    def __str__(self) -> str:
        line = self.first_line.strip()
        if len(line) > 50:
            line = line[:47] + "..."
        return f'{self.path}, cell {self.index} ("{line}")'


def cell_ref(path: str, index: int, source: str) -> CellRef:
    """Build a :class:`CellRef` from a 0-based index and the cell source."""
    first = next((ln for ln in source.splitlines() if ln.strip()), "")
    return CellRef(path, index + 1, first)


def check_tags(tags: list[str], where: CellRef) -> list[str]:
    """Return one message per unknown or contradictory tag (empty list when all is well)."""
    problems = []
    for tag in tags:
        if tag not in ALLOWED_TAGS:
            close = [t for t in ALLOWED_TAGS if _similar(t, tag)]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                f"{where}: unknown tag {tag!r}{hint}; allowed: {', '.join(sorted(ALLOWED_TAGS))}"
            )
    if "solution" in tags and "student" in tags:
        problems.append(f"{where}: a cell cannot be tagged both 'solution' and 'student'")
    return problems


def _similar(a: str, b: str) -> bool:
    """Cheap typo detector: same letters give or take two edits."""
    import difflib

    return difflib.SequenceMatcher(None, a, b.lower()).ratio() >= 0.75


def has_region(source: str) -> bool:
    """Whether a cell contains a ``### BEGIN SOLUTION`` marker."""
    return any(_BEGIN_RE.match(line) for line in source.splitlines())


def strip_regions(source: str, where: CellRef, *, code: bool = True) -> str:
    """Return the student version of one cell's source.

    Raises :class:`MarkupError` naming the cell for unbalanced or nested markers, misspelt markers,
    ``#>`` stub lines outside a region, or markers in a markdown cell.
    """
    lines = source.splitlines()
    out: list[str] = []
    inside = False
    indent = ""
    stub: list[str] = []
    for number, line in enumerate(lines, start=1):
        begin, end = _BEGIN_RE.match(line), _END_RE.match(line)
        if (begin or end or _NEAR_MARKER_RE.match(line)) and not code:
            raise MarkupError(
                f"{where}, line {number}: solution markers are only allowed in code cells; "
                "tag the markdown cell 'solution' instead"
            )
        if begin:
            if inside:
                raise MarkupError(f"{where}, line {number}: nested '{BEGIN}' (regions cannot nest)")
            inside, indent, stub = True, begin.group(1), []
        elif end:
            if not inside:
                raise MarkupError(f"{where}, line {number}: '{END}' without '{BEGIN}'")
            out.extend(stub if stub else [indent + DEFAULT_STUB])
            inside = False
        elif _NEAR_MARKER_RE.match(line):
            raise MarkupError(
                f"{where}, line {number}: unrecognised marker {line.strip()!r}; "
                f"use exactly '{BEGIN}' and '{END}'"
            )
        elif inside:
            m = _STUB_RE.match(line)
            if m:
                stub.append(m.group(1) + m.group(3))
        else:
            if _STUB_RE.match(line):
                raise MarkupError(
                    f"{where}, line {number}: a '{STUB_PREFIX}' stub line outside a "
                    f"'{BEGIN}' region"
                )
            out.append(line)
    if inside:
        raise MarkupError(f"{where}: '{BEGIN}' is never closed by '{END}' in this cell")
    return "\n".join(out)


def check_student_code(source: str, where: CellRef, tags: list[str]) -> list[str]:
    """Sanity checks on the student version of a code cell.

    * it must still be valid Python (cells with IPython magics are skipped);
    * a default stub at top level would raise as soon as the student runs the cell and stop
      ``pytest --nbval-lax``: regions at top level need a ``#>`` stub (or the cell must be
      tagged ``raises-exception``).
    """
    problems = []
    if any(ln.lstrip().startswith(("%", "!")) for ln in source.splitlines()):
        return problems
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        return [f"{where}: the student version is not valid Python ({err.msg}, line {err.lineno})"]
    raises_ok = "raises-exception" in tags or "nbval-raises-exception" in tags
    if not raises_ok:
        for node in tree.body:
            if isinstance(node, ast.Raise) and "Student exercise" in ast.unparse(node):
                problems.append(
                    f"{where}: the solution region is at top level, so the student's cell would "
                    "raise NotImplementedError when run; put it inside a function or give it "
                    f"a '{STUB_PREFIX}' stub"
                )
    return problems
