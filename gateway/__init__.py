"""The gateway: holds client WebSockets, forwards room events to relays over Redis Streams."""
