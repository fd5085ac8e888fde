"""The rules of the video service: plain typed functions and models, no I/O."""
