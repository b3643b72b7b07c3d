"""Names for processes, as they appear in Redis (lease holders, member gateways) and logs."""

import os
import socket
import uuid


def process_id(kind: str) -> str:
    """`<kind>-<host>-<pid>-<random>`: unique, and says where to look when one misbehaves."""
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
