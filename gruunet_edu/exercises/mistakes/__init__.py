"""The known mistakes the checks recognise, one module per notebook.

Each table maps a mistake's name to what the mistaken code gives on the check's input and the
message the check prints when the student's output matches it. The checks in
``gruunet_edu.exercises.nbN_*`` compute these to tell a student *which* mistake was made, and the
tests use them to show that every known mistake moves the output far beyond the check's tolerance.
"""
