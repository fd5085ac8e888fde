"""PanicSAFE logbook service.

The main courante: append-only, hash-chained, Merkle checkpoints signed with the tenant key,
exportable as evidence.
"""
