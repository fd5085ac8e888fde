"""SQL for the `sara` schema (the service's own; no other service reads it)."""
