"""Every wire model of PanicSAFE: RPC requests and replies, event payloads, token claims.

Services depend on these models, never on each other's code.
"""
