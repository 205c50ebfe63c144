"""The contract between the MigrationPlan controller and its embedding Jobs: the assignment a Job
gets (:mod:`~vector_operator.contract.assignment`) and the result it writes
(:mod:`~vector_operator.contract.result`). Both sides import this package and nothing of each
other. Each document carries its version; within a version fields are only added, and a reader
ignores result fields it does not know (an operator reads the results of newer worker images).

This package sits directly above :mod:`vector_operator.api`, whose models and defaults it reuses:
a default is defined once, in the API.
"""
