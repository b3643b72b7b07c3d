"""The relay: owns rooms of the shards it leases, applies their events, fans frames out."""
