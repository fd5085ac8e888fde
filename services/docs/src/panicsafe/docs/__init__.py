"""PanicSAFE docs service.

The document vault: continuity and recovery plans, reflex sheets, contacts; versioned, encrypted,
distributed to roles, printable as a paper kit.
"""
