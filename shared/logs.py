"""One logging set-up for every process."""

import logging


def configure_logging(level: str) -> None:
    """Log to stderr, one line per record, at the configured level."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s",
    )
