"""The course machinery: solution notebooks -> student notebooks, consistency checks, execution.

``python -m gruunet_edu.course build | check | execute`` (see :mod:`gruunet_edu.course.__main__`).
"""

from gruunet_edu.course.builder import BuildError, BuildReport, build, build_lesson, make_student
from gruunet_edu.course.execute import execute_lesson
from gruunet_edu.course.markers import ALLOWED_TAGS, MarkupError
from gruunet_edu.course.notebooks import Lesson, find_root, lessons
from gruunet_edu.course.validate import check, check_lesson

__all__ = [
    "ALLOWED_TAGS",
    "BuildError",
    "BuildReport",
    "Lesson",
    "MarkupError",
    "build",
    "build_lesson",
    "check",
    "check_lesson",
    "execute_lesson",
    "find_root",
    "lessons",
    "make_student",
]
