"""Real processes for the tests and the benchmark: redis-server (single or a cluster),
gateways and relays started as their Procfile commands, and a raw WebSocket client for
what a polite client never sends. Both `tests/` and `bench/` import it; it imports
neither."""
