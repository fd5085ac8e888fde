"""PanicSAFE chat service.

Compartmentalised crisis messaging: channels per crisis and cell, messages encrypted at rest,
decisions marked into the main courante.
"""
