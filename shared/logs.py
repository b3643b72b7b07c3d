"""One logging set-up for every process: plain lines, or one JSON object per line.

Every record goes through it, Sanic's included (the app leaves logging to us). Nothing
logged anywhere names a room in clear, or carries a token, an SDP or a secret: rooms are
digests, peers are ids, and frames are never logged.

What a client sent does reach a log now and then (a URL in Sanic's error, a header value in
websockets' debug lines): plain lines show its control characters escaped, as `\x1b`, so
that nobody's terminal obeys an escape sequence from a client, and no client writes a line
of its own into the log. JSON lines need nothing of the kind: JSON escapes them already.
"""

from __future__ import annotations

import logging
import types
from datetime import UTC, datetime

import orjson

TEXT, JSON = "text", "json"

# C0 controls, DEL and C1 controls (ECMA-48: CSI, 0x9b, starts an escape sequence too), each
# shown as \xNN; a traceback keeps its line breaks.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_ESCAPES_BUT_NEWLINE = {code: text for code, text in _ESCAPES.items() if code != ord("\n")}
_ExcInfo = (tuple[type[BaseException], BaseException, types.TracebackType | None]
            | tuple[None, None, None])  # as logging.Formatter.formatException takes it


class TextFormatter(logging.Formatter):
    """One plain line per record; control characters in its message shown escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = record.message.translate(_ESCAPES)
        return super().formatMessage(record)

    def formatException(self, ei: _ExcInfo) -> str:
        return super().formatException(ei).translate(_ESCAPES_BUT_NEWLINE)

    def formatStack(self, stack_info: str) -> str:
        return super().formatStack(stack_info).translate(_ESCAPES_BUT_NEWLINE)


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, process, the process's role and id, and the
    traceback when there is one."""

    def __init__(self, identity: dict[str, str]) -> None:
        super().__init__()
        self.identity = identity  # {"gateway": id} or {"relay": id}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            **self.identity,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(level: str, log_format: str = TEXT,
                      identity: dict[str, str] | None = None) -> None:
    """Log to stderr, one line per record, at the configured level."""
    handler = logging.StreamHandler()
    if log_format == JSON:
        handler.setFormatter(JsonFormatter(identity or {}))
    else:
        who = " ".join(f"{role}={name}" for role, name in (identity or {}).items())
        handler.setFormatter(TextFormatter(
            f"%(asctime)s %(levelname)s %(name)s[%(process)d]{' ' + who if who else ''} "
            "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # so that warnings are log lines too, in the same format
    # Sanic's loggers come with handlers of their own when it configures logging; here
    # they send everything to the root's.
    for name in ("sanic.root", "sanic.error", "sanic.access", "sanic.server",
                 "sanic.websockets"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
