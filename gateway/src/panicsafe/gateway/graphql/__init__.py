"""The GraphQL edge: request limits, static cost, error masking (schema and resolvers live beside)."""
