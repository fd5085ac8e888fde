"""The rules of the chat service: plain typed functions and models, no I/O."""
