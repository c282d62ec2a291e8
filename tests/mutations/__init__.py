"""Plausible student answers to the exercises of notebooks 00-03, wrong and right.

Each module ``nbN`` holds ``WRONG[exercise] = [(label, answer, phrase), ...]`` (the check must
reject the answer with a message containing ``phrase``, which names the cause) and
``RIGHT[exercise] = [(label, answer), ...]`` (correct answers written differently from the
solution; the check must pass them). ``tests/test_mutations_nb0_3.py`` runs them.
"""
