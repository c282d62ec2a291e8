"""The known mistakes the checks recognise, one module per notebook.

Each table maps a mistake's name to what the mistaken code gives on the check's input and the
message the check prints when the student's output matches it. The checks in
``gruunet_edu.exercises.nbN_*`` compute these to tell a student *which* mistake was made, and the
tests use them to show that every known mistake moves the output far beyond the check's tolerance.
"""


class Spread(dict[tuple[str, str], tuple[float, float]]):
    """(exercise, known mistake) -> (largest change of the checked output over the check's
    inputs, the check's tolerance): every known mistake must move the output far beyond it.

    ``variant_spread()`` of notebooks 00-03 fills one with :meth:`note`, once per input.
    """

    def note(self, exercise: str, mistake: str, difference: float, tolerance: float) -> None:
        """Keep the largest ``difference`` seen for this mistake."""
        old = self.get((exercise, mistake), (0.0, tolerance))[0]
        self[(exercise, mistake)] = (max(old, difference), tolerance)
