"""The Slack app: `create_app` builds a Bolt App around the use cases; `run_app` is `python -m bot run`."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.config import Need, Settings, load_settings
from bot.errors import ConfigError, PostmortemError
from bot.logs import configure_logging
from bot.slack.context import BotContext
from bot.slack.listeners import register
from bot.sources.slack_client import slack_error

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
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with _slack_startup(token="SLACK_BOT_TOKEN", action="check the bot token (auth.test)"):
        app = create_app(settings=settings, ctx=bot.ctx, client=bot.client)
    handler = SocketModeHandler(app, app_token=settings.slack_app_token.get_secret_value())
    _reconnect_promptly(handler)
    with _slack_startup(token="SLACK_APP_TOKEN", action="open a Socket Mode connection"):
        handler.connect()
    log.info("connected to Slack in Socket Mode", extra={"action": "start"})
    if bot.capture is not None:  # coverage of quiet channels grows only while this connection is up
        bot.capture.watch_connection(handler.client.is_connected)
    bot.scheduler.start()  # only once connected: a bot that cannot start runs no jobs
    stop.wait()
    log.info("stopping", extra={"action": "stop"})
    bot.shutdown()
    handler.close()  # listeners still running finish before the process exits (their threads are joined)
    log.info("stopped", extra={"action": "stop"})
    return 0


def _reconnect_promptly(handler: SocketModeHandler) -> None:
    """Close two gaps of slack_sdk's builtin Socket Mode client during which clicks fail (slack_sdk 3.48).

    * Slack closes the socket: the client asks for a new connection while its session still counts as live,
      so nothing happens until its next health check, `ping_interval` (10 s) later. Here its own closing is
      done first, then the reconnect it would run later.
    * Slack sends `disconnect`: the client opens the new connection, then closes the old one only once that
      one's reader lets go of it (its receive timeout, 3 s), and handles no envelope meanwhile, so their acks
      come too late. Here the old socket is shut down first, which frees its reader at once.
    """
    client = handler.client

    def on_close(code: int, reason: str | None = None) -> None:
        if client.closed or not client.auto_reconnect_enabled:
            return  # we are stopping: no new connection
        log.info("Slack closed the connection; reconnecting", extra={"action": "reconnect", "code": code})
        client.disconnect()
        client.connect_to_new_endpoint()

    client.on_close_listeners.append(on_close)
    connect = client.connect

    def connect_closing_the_old_at_once() -> None:
        old = client.current_session
        if old is not None:
            close = old.close

            def close_now() -> None:
                sock = old.sock
                if sock is not None:
                    with suppress(OSError):  # already closed
                        sock.shutdown(socket.SHUT_RDWR)
                close()

            old.close = close_now
        connect()

    client.connect = connect_closing_the_old_at_once


# Slack's answers to a token it will not take (auth.test for the bot token, apps.connections.open for the app's).
_REFUSED_TOKEN = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "not_allowed_token_type",
    "no_permission",
}


@contextmanager
def _slack_startup(*, token: str, action: str) -> Iterator[None]:
    """Slack's refusals at start-up as one clear line (cli.py prints it), never a traceback.

    A token Slack refuses is a setting to fix (ConfigError: exit code 2); an unreachable Slack is not.
    """
    try:
        yield
    except BoltError as exc:  # Bolt wraps auth.test's refusal; the SlackApiError is its context
        cause = exc.__context__
        if not isinstance(cause, SlackApiError):
            raise ConfigError(f"The Slack app could not start: {exc}") from exc
        raise _startup_error(cause, token=token, action=action) from exc
    except (SlackApiError, SlackClientError, OSError) as exc:
        raise _startup_error(exc, token=token, action=action) from exc


def _startup_error(exc: Exception, *, token: str, action: str) -> PostmortemError:
    error = exc.response.get("error") if isinstance(exc, SlackApiError) else None
    if error in _REFUSED_TOKEN:
        hint = (
            "an app-level token (xapp-…) with the connections:write scope, made under Basic Information"
            if token == "SLACK_APP_TOKEN"
            else "the Bot User OAuth Token (xoxb-…) of the installed app"
        )
        return ConfigError(f"Slack refused {token} ({error}) while trying to {action}: it must be {hint}.")
    return slack_error(exc, action=action)
