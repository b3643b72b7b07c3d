"""Talking to Redis, for gateways and relays alike: which nodes there are (`nodes`: one
Redis or a cluster's masters and slots), the hot paths' own RESP connections (`resp`),
redis-py clients for everything else, each call bounded in time (`clients`), and WAIT
for replicas (`replica_wait`). `shared/` keeps what both sides share without I/O."""
