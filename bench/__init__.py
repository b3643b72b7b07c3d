"""Switchboard vs PeerJS server: load generator, scenarios and report (`python -m bench`)."""
