"""`python -m gateway`: run one gateway process on $HOST:$PORT."""

from __future__ import annotations

import logging
import sys

from gateway.app import create_app
from gateway.join_tokens import JoinTokens, PublicKeyError
from gateway.ws_upgrade import GatewayHttpProtocol
from shared.logs import configure_logging
from shared.process_id import process_id
from shared.runtime import tune_garbage_collector
from shared.settings import ENV_NAMES, Settings

log = logging.getLogger(__name__)


def main() -> None:
    settings = Settings.from_env()
    gateway_id = process_id("gateway")
    configure_logging(settings.log_level, settings.log_format, {"gateway": gateway_id})
    try:
        JoinTokens(settings.join_secret, settings.join_public_key)
    except PublicKeyError as exc:
        sys.exit(str(exc))
    if not settings.turn_secret and any(
            not url.startswith("stun:") for url in settings.ice_url_list):
        log.warning("%s names TURN servers but %s is not set: joined_room leaves them out",
                    ENV_NAMES["ice_urls"], ENV_NAMES["turn_secret"])
    app = create_app(settings, gateway_id)
    tune_garbage_collector()
    # One process per gateway: scale by running more of them (Procfile, k8s replicas).
    # Our own SIGTERM handler drains sockets first, so Sanic's is not registered.
    tls = {"cert": settings.tls_cert, "key": settings.tls_key} if settings.tls_cert else None
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False,
            motd=False, register_sys_signals=False, protocol=GatewayHttpProtocol, ssl=tls)


if __name__ == "__main__":
    main()
