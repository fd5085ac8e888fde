"""SQL for the `docs` schema (the service's own; no other service reads it)."""
