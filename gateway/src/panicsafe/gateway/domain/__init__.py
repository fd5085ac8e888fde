"""The gateway's rules: tenancy model and the access policy. Plain typed code, no I/O."""
