"""PanicSAFE gateway: the GraphQL edge, identity with mandatory MFA, sessions and access decisions."""
