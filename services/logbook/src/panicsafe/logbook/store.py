"""SQL for the `logbook` schema (the service's own; no other service reads it)."""
