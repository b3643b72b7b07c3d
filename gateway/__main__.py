"""`python -m gateway`: run one gateway process on $HOST:$PORT."""

from __future__ import annotations

from gateway.app import create_app
from gateway.ws_upgrade import GatewayHttpProtocol
from shared.logs import configure_logging
from shared.runtime import tune_garbage_collector
from shared.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    app = create_app(settings)
    tune_garbage_collector()
    # One process per gateway: scale by running more of them (Procfile, k8s replicas).
    # Our own SIGTERM handler drains sockets first, so Sanic's is not registered.
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False,
            motd=False, register_sys_signals=False, protocol=GatewayHttpProtocol)


if __name__ == "__main__":
    main()
