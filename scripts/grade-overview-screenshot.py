"""Grade a small made-up class and take a screenshot of the HTML overview (docs/grade-overview.png).

Usage: python scripts/grade-overview-screenshot.py [--out docs/grade-overview.png]

The class: six students' copies of notebooks 00 and 01, some solved, some unfinished, one with a
wrong state update, one that is not valid JSON, one with an endless loop, one with a raising cell.
The exercise cells hold what a student would write; the checks are the course's own. Needs
Chromium (``bash scripts/install-browser.sh``) and Playwright (a dev dependency).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import nbformat

from gruunet_edu.grading import grade

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

NB0 = {
    "imports": "from gruunet_edu.data import percentile_normalize, three_class\n"
    "from gruunet_edu.exercises.nb0_data import check_normalize, check_three_class",
    "normalize": "import numpy as np\n\ndef normalize(image, low=1.0, high=99.8, eps=1e-6):\n"
    "    lo, hi = np.percentile(image, [low, high])\n"
    "    return ((image - lo) / (hi - lo + eps)).astype(np.float32)",
    "normalize_minmax": "def normalize(image, low=1.0, high=99.8, eps=1e-6):\n"
    "    return (image - image.min()) / (image.max() - image.min())",
    "normalize_todo": "def normalize(image, low=1.0, high=99.8, eps=1e-6):\n"
    "    raise NotImplementedError('Student exercise')",
    "check_normalize": "check_normalize(normalize)",
    "three_class": "student_three_class = three_class  # (the student's own code)",
    "three_class_todo": "def student_three_class(labels):\n"
    "    raise NotImplementedError('Student exercise')",
    "check_three_class": "check_three_class(student_three_class)",
}
NB1 = {
    "imports": "from gruunet_edu.models.convgru import ConvGRUCell\n"
    "from gruunet_edu.exercises.nb1_convgru import check_convgru, check_update",
    "update": "def update_state(h_prev, h_cand, z):\n    return (1 - z) * h_prev + z * h_cand",
    "update_swapped": "def update_state(h_prev, h_cand, z):\n"
    "    return z * h_prev + (1 - z) * h_cand",
    "check_update": "check_update(update_state)",
    "convgru": "StudentConvGRU = ConvGRUCell  # (the student's own code)",
    "convgru_todo": "class StudentConvGRU(ConvGRUCell):\n"
    "    def forward(self, x, h, return_gates=False):\n"
    "        raise NotImplementedError('Student exercise')",
    "check_convgru": "check_convgru(StudentConvGRU)",
}


def notebook(lesson: str, cells: list[str]) -> str:
    metadata = {"gruunet_course": {"source": f"solutions/{lesson}.py"}, "kernelspec": KERNELSPEC}
    nb = nbformat.v4.new_notebook(metadata=metadata)
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb)


def nb0(*keys: str) -> str:
    return notebook("00_setup_and_data", [NB0["imports"], *(NB0.get(k, k) for k in keys)])


def nb1(*keys: str) -> str:
    return notebook("01_convgru", [NB1["imports"], *(NB1.get(k, k) for k in keys)])


def make_class(root: Path) -> Path:
    done0 = ("normalize", "check_normalize", "three_class", "check_three_class")
    done1 = ("update", "check_update", "convgru", "check_convgru")
    files = {
        "amara/00_setup_and_data.ipynb": nb0(*done0),
        "amara/01_convgru.ipynb": nb1(*done1),
        "ben/lesson0.ipynb": nb0("normalize_todo", "check_normalize", "three_class_todo",
                                 "check_three_class"),
        "chen/00 (copy).ipynb": nb0("normalize_minmax", "check_normalize", "three_class",
                                    "check_three_class"),
        "chen/01.ipynb": nb1("update_swapped", "check_update", "convgru_todo", "check_convgru"),
        "dara/00.ipynb": nb0(*done0),
        "dara/01.ipynb": nb1(*done1)[:300],  # a truncated upload: not valid JSON
        "emil/00.ipynb": nb0(*done0),
        "emil/01.ipynb": nb1("update", "check_update", "while True:\n    pass", "convgru",
                             "check_convgru"),
        "fatima/00.ipynb": nb0("normalize", "check_normalize",
                               "raise ValueError('my own test of a bad image')", "three_class",
                               "check_three_class"),
        "fatima/01.ipynb": nb1("update", "check_update", "convgru", "check_convgru"),
    }  # fmt: skip
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def screenshot(page: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        view = browser.new_page(viewport={"width": 1100, "height": 400}, device_scale_factor=1)
        view.goto(page.resolve().as_uri())
        view.screenshot(path=str(png), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/grade-overview.png", help="the PNG to write")
    parser.add_argument("--time-limit", type=float, default=60, help="per notebook (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        submissions = make_class(Path(tmp) / "submissions")
        report = grade(submissions, Path(tmp) / "report", time_limit=args.time_limit)
        png = Path(args.out)
        png.parent.mkdir(parents=True, exist_ok=True)
        screenshot(report.html, png)
    print(f"Wrote {png}")


if __name__ == "__main__":
    main()
