"""Self-checks for the course's exercises: one module per notebook (``nb0_data`` ... ).

``hint(name)`` prints the next hint of an exercise; ``use_student_or_reference(student, ref)``
returns the student's implementation when it passes its checks and the reference otherwise,
saying which, so a notebook with unfinished exercises still runs top to bottom. ``progress()``
shows which exercises are done (every check records its outcome, see :mod:`gruunet_edu.progress`).
"""

from gruunet_edu.exercises.core import (
    PASSED,
    REGISTRY,
    CheckResult,
    Exercise,
    Mismatch,
    StudentError,
    Unfinished,
    hint,
    use_student_or_reference,
)
from gruunet_edu.progress import progress

__all__ = [
    "PASSED",
    "REGISTRY",
    "CheckResult",
    "Exercise",
    "Mismatch",
    "StudentError",
    "Unfinished",
    "hint",
    "progress",
    "use_student_or_reference",
]
