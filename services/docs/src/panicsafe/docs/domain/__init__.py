"""The rules of the docs service: plain typed functions and models, no I/O."""
