"""SQL for the `chat` schema (the service's own; no other service reads it)."""
