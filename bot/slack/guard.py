"""Listeners never raise after ack().

Bolt's thread runner resets an envelope's ack when a listener raises, and if that happens within a few
milliseconds of `ack()` the envelope is never acknowledged and Slack redelivers it (slack_bolt 1.30,
listener/thread_runner.py). So every command, action and view listener is wrapped: a project error is told
to the person who clicked (ephemerally, through the interaction's response_url), a Slack error is translated
first, and anything unexpected is logged with its traceback and reported as such — never dropped silently.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.errors import PostmortemError
from bot.sources.slack_client import slack_error

log = logging.getLogger(__name__)


def guarded(action: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def wrap(listener: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(listener)  # Bolt injects arguments by the wrapped function's parameter names
        def run(**kwargs: Any) -> None:
            try:
                listener(**kwargs)
            except SlackApiError as exc:
                _report(kwargs, action, str(slack_error(exc, action=action)), exc)
            except PostmortemError as exc:
                _report(kwargs, action, str(exc), exc)
            except Exception as exc:  # a bug: logged in full, and the person is told it failed
                log.exception("listener failed", extra={"action": action})
                _tell(kwargs, f"Something went wrong ({type(exc).__name__}); it has been logged.")

        return run

    return wrap


def _report(kwargs: dict[str, Any], action: str, message: str, exc: Exception) -> None:
    log.warning("listener refused or failed", extra={"action": action, "error": message})
    _tell(kwargs, message)


def _tell(kwargs: dict[str, Any], message: str) -> None:
    ack = kwargs.get("ack")
    if ack is not None and ack.response is None:
        ack()  # failed before acknowledging: ack now, or Slack shows a timeout and redelivers
    respond = kwargs.get("respond")
    if respond is None:
        return
    try:
        respond(text=message, response_type="ephemeral", replace_original=False)
    except Exception:  # the response_url may have expired (30 min); the log above already holds the error
        log.warning("could not tell the user", extra={"action": "respond"}, exc_info=True)
