"""What gateways and relays share: event structs, Redis names, settings, close codes."""

__version__ = "0.1.0"
SERVER_NAME = "switchboard"
