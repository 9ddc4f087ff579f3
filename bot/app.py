"""The Slack app: `create_app` builds a Bolt App around the use cases; `run_app` is `python -m bot run`."""

from __future__ import annotations

import logging
import signal
import threading

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot.config import Need, Settings, load_settings
from bot.logs import configure_logging
from bot.slack.context import BotContext
from bot.slack.listeners import register

log = logging.getLogger(__name__)


def create_app(*, settings: Settings, ctx: BotContext, client: WebClient) -> App:
    app = App(
        client=client,
        # Bolt gives each of its loggers the root's level unless it is handed a base logger: hand it the
        # "slack_bolt" logger, which configure_logging keeps at WARNING (the Socket Mode client uses it too).
        logger=logging.getLogger("slack_bolt"),
        # Socket Mode: no request signing; the app token authenticates the connection.
        request_verification_enabled=False,
        token_verification_enabled=True,
    )
    register(app, ctx)

    @app.error
    def on_error(error: Exception, body: dict) -> None:
        log.error("listener failed", exc_info=error, extra={"type": body.get("type"), "action": "listener"})

    return app


def run_app() -> int:
    """Validate every setting, migrate the database, connect over Socket Mode and run until stopped."""
    from bot.deps import build_bot

    settings = load_settings()
    settings.require(Need.SOCKET_MODE, Need.PAGERDUTY, Need.CONFLUENCE)
    configure_logging(settings.log_level)
    bot = build_bot(settings)
    app = create_app(settings=settings, ctx=bot.ctx, client=bot.client)
    handler = SocketModeHandler(app, app_token=settings.slack_app_token.get_secret_value())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    bot.scheduler.start()
    handler.connect()
    log.info("connected to Slack in Socket Mode", extra={"action": "start"})
    stop.wait()
    log.info("stopping", extra={"action": "stop"})
    bot.scheduler.shutdown(wait=False)
    handler.close()
    return 0
