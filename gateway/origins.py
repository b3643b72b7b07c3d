"""Which browser pages may open a WebSocket (docs/protocol.md, "Origins").

SWITCHBOARD_ALLOWED_ORIGINS lists origins (`https://app.example.com`) and patterns with
`*` for one or more labels of the host (`https://*.example.org` matches
`https://a.example.org` and `https://a.b.example.org`, not `https://example.org`). A
request without an Origin header (not a browser) is allowed; unset, every origin is.
"""

from __future__ import annotations

import re


class AllowedOrigins:
    __slots__ = ("_exact", "_patterns")

    def __init__(self, origins: list[str]) -> None:
        self._exact = {origin.lower().rstrip("/") for origin in origins if "*" not in origin}
        self._patterns = [_pattern(origin) for origin in origins if "*" in origin]

    @property
    def restricted(self) -> bool:
        return bool(self._exact or self._patterns)

    def allows(self, origin: str | None) -> bool:
        if origin is None or not self.restricted:
            return True
        origin = origin.strip().lower()
        return origin in self._exact or any(p.fullmatch(origin) for p in self._patterns)


def _pattern(origin: str) -> re.Pattern[str]:
    # `*` stands for one or more whole labels: letters, digits, hyphens, dots between.
    parts = [re.escape(part) for part in origin.lower().rstrip("/").split("*")]
    return re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*".join(parts))
