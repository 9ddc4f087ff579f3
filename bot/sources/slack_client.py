"""The Slack Web API client, built one way, and the one place Slack's errors become the project's.

`build_web_client` adds what slack_sdk leaves out by default: retries on 429 (honouring Retry-After),
on 5xx and on dropped connections (and on timeouts, for a client that only reads), each bounded by
`max_retries`, and TLS that trusts `ca_bundle`.
`slack_error` turns whatever a call raised (`SlackApiError`, a transport error) into a `SourceError`
whose message tells a person what to do; `slack_errors` is the same as a context manager.
"""

from __future__ import annotations

import random
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.errors import AuthError, ChannelAccessError, PostmortemError, SourceError, SourceUnavailable

INVITE_HINT = "invite it with /invite @Postmortem Bot"
_TOKEN_ERRORS = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
}
_SERVER_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}


class _ProportionalJitter(Jitter):
    """Up to double the backoff. slack_sdk's default adds up to a whole second to every wait."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random())


class _ServerErrorRetryHandler(ServerErrorRetryHandler):
    """slack_sdk's handler retries 500 and 503 only; a gateway's 502 and 504 are as transient."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in (500, 502, 503, 504)


def build_web_client(
    *,
    token: str,
    base_url: str,
    ca_bundle: Path | None = None,
    timeout: float = 15.0,
    max_retries: int = 4,
    reads_only: bool = False,
) -> WebClient:
    """A WebClient with bounded retries for 429 (after Retry-After), 5xx and connection errors.

    A client that only reads (`reads_only`, the history source's) also retries a request whose answer did not
    come within `timeout`. The client that posts does not: a timed-out chat.postMessage may have landed, and
    sending it again would post twice."""
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    # Waits of 0.25 s, 0.5 s, 1 s, … each stretched by up to as much again.
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.25, jitter=_ProportionalJitter())
    # URLError covers failures to connect (the request never left); TimeoutError is a read past `timeout`.
    transient: list[type[Exception]] = [URLError, ConnectionResetError, RemoteDisconnected]
    if reads_only:
        transient.append(TimeoutError)
    return WebClient(
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
        ssl=context,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=max_retries),
            _ServerErrorRetryHandler(max_retry_count=max_retries, interval_calculator=backoff),
            ConnectionErrorRetryHandler(
                max_retry_count=max_retries, interval_calculator=backoff, error_types=transient
            ),
        ],
    )


def _channel_label(channel: str | None) -> str:
    if not channel:
        return "the channel"
    return channel if channel.startswith("#") else f"#{channel}"


def slack_error(
    exc: SlackApiError | SlackClientError | OSError,
    *,
    action: str,
    channel: str | None = None,
) -> PostmortemError:
    """The project's error for a failed Slack call. `action` completes "while trying to …";
    `channel` (a name or id) makes channel errors say which channel."""
    where = _channel_label(channel)
    if not isinstance(exc, SlackApiError):
        reason = (
            "timed out"
            if isinstance(exc, TimeoutError) or "timed out" in str(exc)
            else str(exc) or type(exc).__name__
        )
        return SourceUnavailable(f"Slack was unreachable while trying to {action}: {reason}.", source="slack")
    data: Any = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = str(data.get("error") or "")
    status = exc.response.status_code
    if error == "not_in_channel":
        return ChannelAccessError(f"The bot is not in {where}: {INVITE_HINT}.", source="slack")
    if error == "channel_not_found":
        return ChannelAccessError(
            f"The bot cannot see {where}: it may be private or deleted. If it exists, {INVITE_HINT} from inside the channel.",
            source="slack",
        )
    if error == "is_archived":
        return ChannelAccessError(
            f"{where} is archived: unarchive it to let the bot post there.", source="slack"
        )
    if error == "missing_scope":
        needed = data.get("needed") or "a"
        return AuthError(
            f"The Slack app lacks the {needed} scope needed to {action}: add it under OAuth & Permissions and reinstall the app.",
            source="slack",
        )
    if error in _TOKEN_ERRORS:
        return AuthError(
            f"Slack refused SLACK_BOT_TOKEN ({error}) while trying to {action}: check the token.",
            source="slack",
        )
    if error == "ratelimited" or status == 429:
        return SourceUnavailable(
            f"Slack kept rate-limiting the bot while trying to {action}; try again in a minute.",
            source="slack",
        )
    if status >= 500 or error in _SERVER_ERRORS:
        detail = f"{error}, HTTP {status}" if error in _SERVER_ERRORS else f"HTTP {status}"
        return SourceUnavailable(
            f"Slack failed while trying to {action} ({detail}); try again later.", source="slack"
        )
    return SourceError(f"Slack refused to {action}: {error or f'HTTP {status}'}.", source="slack")


@contextmanager
def slack_errors(*, action: str, channel: str | None = None) -> Iterator[None]:
    """Run Slack calls; whatever they raise leaves as the project's error (see `slack_error`)."""
    try:
        yield
    except (SlackApiError, SlackClientError, OSError) as exc:
        raise slack_error(exc, action=action, channel=channel) from exc
