"""Tuning index and search parameters: the search space, scoring, the study and its schedule."""
