"""The WebSocket close codes the server uses (docs/protocol.md, "Close codes")."""

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # idle socket
    PROTOCOL_ERROR = 1002  # a frame breaking RFC 6455 (websockets sends it)
    INVALID_PAYLOAD = 1007  # a text frame that is not UTF-8
    POLICY_VIOLATION = 1008  # abuse, bad origin
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012  # subscription lost: the client should rejoin
    TRY_AGAIN_LATER = 1013  # slow consumer
    TAKEN_OVER = 4001  # another socket resumed this socket's peer
    REMOVED = 4003  # removed by the app, or its room's deadline passed
    SHUTDOWN = 4200  # palava: the server is stopping
    REFUSED = 4242  # palava: protocol-level refusal at open
