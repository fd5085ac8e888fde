"""SQL for the `video` schema (the service's own; no other service reads it)."""
