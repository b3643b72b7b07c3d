"""The plain-line formatter escapes control characters; the JSON one leaves that to JSON."""

from __future__ import annotations

import json
import logging
import sys

from shared.logs import JsonFormatter, TextFormatter

CLIENT_TEXT = "/\x1b[31mred\x1b[0m\x07\x7f\x9b31m\nINFO a line of its own\ttab"


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad url {CLIENT_TEXT}")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("test", logging.ERROR, __file__, 1, message, args, exc_info)


def test_a_message_shows_control_characters_escaped_c1_and_del_included() -> None:
    line = TextFormatter("%(levelname)s %(message)s").format(record("url %s", CLIENT_TEXT))
    assert line == ("ERROR url /\\x1b[31mred\\x1b[0m\\x07\\x7f\\x9b31m\\x0aINFO a line of its "
                    "own\\x09tab")


def test_a_traceback_keeps_its_lines_and_escapes_the_rest() -> None:
    text = TextFormatter("%(message)s").format(record("failed", exc=True))
    lines = text.splitlines()
    assert lines[0] == "failed" and lines[1] == "Traceback (most recent call last):"
    assert "ValueError: bad url /\\x1b[31mred" in text
    # Its line breaks stay, those of the exception's message too (no URL or header value
    # can carry one): what else it holds is escaped.
    assert lines[-1] == "INFO a line of its own\\x09tab"
    assert not any(char in text for char in "\x1b\x07\x7f\x9b\t")


def test_json_lines_carry_the_text_as_sent() -> None:
    line = JsonFormatter({"gateway": "g"}).format(record("url %s", CLIENT_TEXT, exc=True))
    assert "\x1b" not in line and "\n" not in line
    decoded = json.loads(line)
    assert decoded["message"] == f"url {CLIENT_TEXT}"
    assert CLIENT_TEXT in decoded["exception"]
