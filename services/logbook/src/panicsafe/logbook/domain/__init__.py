"""The rules of the logbook service: plain typed functions and models, no I/O."""
