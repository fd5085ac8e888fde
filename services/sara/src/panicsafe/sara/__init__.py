"""PanicSAFE sara service.

SARA: plans and tasks that adapt as facts arrive, regulatory clocks, the continuity-of-care board,
exercises and injects.
"""
