"""The rules of the sara service: plain typed functions and models, no I/O."""
