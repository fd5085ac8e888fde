"""PanicSAFE shared core: the one library every service and the gateway build on.

Modules: settings, errors, bus (NATS, events, outbox, consumers, RPC), tokens, crypto, db,
telemetry, service (the runtime of one service process) and devstack (the real servers).
"""
