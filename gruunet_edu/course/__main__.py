"""Command line: ``python -m gruunet_edu.course build | check | execute [LESSON ...]``.

* ``build``: check tags and markers, sync ``solutions/NN.ipynb`` with ``solutions/NN.py`` (the
  source; jupytext keeps the outputs of unchanged cells) and write the student notebooks
  ``notebooks/NN.py`` + ``notebooks/NN.ipynb``. A student notebook edited by hand, and a solution
  ``.ipynb`` whose cells were edited apart from its ``.py``, are not overwritten; ``--force``
  overwrites them after saving a timestamped ``NAME.<time>.bak`` copy next to each.
* ``check``: fail (exit 1) when a tag is unknown, a marker unbalanced, a ``.py``/``.ipynb`` pair
  out of sync, a student notebook stale or edited, a kernelspec missing, or a solution not
  executed. Runs in a few seconds, without a kernel.
* ``execute``: run solution notebooks with nbclient (kernel ``python3``, working directory the
  notebook's folder) and store their outputs; then rebuilds the student notebooks. A solution
  ``.ipynb`` edited apart from its ``.py`` is refused, as by ``build``.

LESSON is a name or prefix ("01", "01_convgru"); the default is every lesson.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .builder import BuildReport, build
from .execute import execute_lesson
from .notebooks import find_root, lessons
from .validate import check


def _print(report: BuildReport, quiet: bool = False) -> int:
    if not quiet:
        for line in report.messages:
            print(line)
    for line in report.problems:
        print(f"error: {line}", file=sys.stderr)
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gruunet_edu.course",
        description="Build, check and execute the course notebooks (solutions/ -> notebooks/).",
    )
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: found)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="write student notebooks from the solutions")
    p_build.add_argument(
        "--force",
        action="store_true",
        help="overwrite notebooks edited by hand (a timestamped .bak copy of each is kept)",
    )
    p_check = sub.add_parser("check", help="fail if any notebook is out of date or malformed")
    p_check.add_argument(
        "--no-outputs", action="store_true", help="do not require executed solution notebooks"
    )
    p_exec = sub.add_parser("execute", help="run solution notebooks and store their outputs")
    p_exec.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    for p in (p_build, p_check, p_exec):
        p.add_argument("lessons", nargs="*", help="lesson names or prefixes (default: all)")
    args = parser.parse_args(argv)

    try:
        root = find_root(args.root)
        selected = lessons(root, args.lessons or None)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    if args.command == "build":
        return _print(build(selected, force=args.force))
    if args.command == "check":
        problems = check(selected, require_outputs=not args.no_outputs)
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        if problems:
            print(
                f"{len(problems)} problem(s) in {len(selected)} lesson(s); fix the solution .py "
                "and run `python -m gruunet_edu.course build` (and `execute` for outputs)",
                file=sys.stderr,
            )
            return 1
        print(f"{len(selected)} lesson(s) consistent: pairs in sync, student notebooks up to date")
        return 0
    report = BuildReport()
    for lesson in selected:
        execute_lesson(lesson, timeout=args.timeout, report=report)
    if report.ok:
        report_build = build(selected)
        report.messages += report_build.messages
        report.problems += report_build.problems
    return _print(report)


if __name__ == "__main__":
    sys.exit(main())
