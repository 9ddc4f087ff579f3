"""PagerDuty, live: `IncidentSource` over `pagerduty.RestApiV2Client` (the successor of pdpyras).

Every vendor exception becomes a `bot.errors` one in `_translated`, and nowhere else.

Retries, each bounded by `max_retries`:

* 500/502/503/504: the client's `retry` table (it returns the last answer once exhausted).
* Timeouts and connection errors: the client's `max_network_attempts`.
* 429: the client's own 429 handling ignores Retry-After and never gives up, so `_Client.send` answers
  429s itself first: it waits what `Retry-After` (else PagerDuty's `ratelimit-reset`) says, and raises
  `_RateLimited` once the retries are spent.

The client waits `backoff` × 2, × 4, … between 5xx and network retries.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx2
import pagerduty

from bot.errors import AuthError, ConfigError, IncidentNotFound, PublishError, SourceError, SourceUnavailable
from bot.sources import pagerduty_mapping as mapping
from bot.sources.base import IncidentLog
from bot.timeline.models import Incident

log = logging.getLogger(__name__)

SOURCE = "pagerduty"
_RETRIED_STATUSES = (500, 502, 503, 504)
_MAX_RATE_LIMIT_WAIT = 60.0  # seconds; a longer Retry-After gives up instead of stalling a draft
_CACHE_SIZE = 8  # incidents whose alerts get_incident read, kept for get_log


class _RateLimited(Exception):
    def __init__(self, wait: float | None) -> None:
        super().__init__("rate limited")
        self.wait = wait


def _retry_after(response: httpx2.Response) -> float | None:
    """Seconds the server asks to wait: Retry-After (seconds), else PagerDuty's ratelimit-reset."""
    for header in ("retry-after", "ratelimit-reset"):
        value = response.headers.get(header, "").strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            continue  # absent, or an HTTP date (PagerDuty sends seconds)
    return None


class _Client(pagerduty.RestApiV2Client):
    """RestApiV2Client whose 429 wait follows the server and ends."""

    rate_limit_retries = 4

    def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        attempt = 0
        while True:
            response = super().send(request, **kwargs)
            if response.status_code != 429:
                return response
            wait = _retry_after(response)
            response.close()
            if attempt >= self.rate_limit_retries or (wait is not None and wait > _MAX_RATE_LIMIT_WAIT):
                raise _RateLimited(wait)
            attempt += 1
            delay = wait if wait is not None else self.sleep_timer * self.sleep_timer_base**attempt
            log.warning("PagerDuty rate limit: retry %d in %.1f s", attempt, delay)
            time.sleep(delay)


class PagerDutySource:
    """Reads incidents, their log entries, alerts and notes; writes notes."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        ca_bundle: Path | None = None,
        timeout: float = 15.0,
        max_retries: int = 4,
        from_email: str | None = None,
        backoff: float = 1.5,
    ) -> None:
        verify: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            try:
                verify = ssl.create_default_context(cafile=str(ca_bundle))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"CA_BUNDLE ({ca_bundle}) is not a readable PEM bundle: {exc}") from exc
        try:
            self._client = _Client(
                token, default_from=from_email, base_url=base_url.rstrip("/"), verify=verify
            )
        except pagerduty.UrlError as exc:
            raise ConfigError(f"PAGERDUTY_API_URL must be an https:// URL ({exc})") from exc
        self._client.timeout = timeout  # read per request by the client (its own attribute, not httpx's)
        self._client.retry = dict.fromkeys(_RETRIED_STATUSES, max_retries)
        self._client.max_network_attempts = max_retries
        self._client.rate_limit_retries = max_retries
        self._client.sleep_timer = backoff
        self._timeout = timeout
        self._max_retries = max_retries
        self._from_email = from_email
        self._base_url = base_url
        self._alerts_read: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    # -- IncidentSource ---------------------------------------------------------------------
    def get_incident(self, ref: str) -> Incident:
        key = mapping.parse_incident_ref(ref)
        label = mapping.incident_label(key)
        with self._translated(f"read {label}", not_found=f"No PagerDuty incident {label}"):
            body = self._client.rget(f"/incidents/{key}", params={"include[]": ["conference_bridge"]})
        incident_id = body["id"]
        alerts = self._alerts(incident_id, label)
        self._remember(incident_id, alerts)
        return mapping.incident_from_json(body, alerts=alerts)

    def get_log(self, incident: Incident) -> IncidentLog:
        """Reuses the alerts `get_incident` read for this incident a moment ago; reads the rest."""
        with self._lock:
            alerts = self._alerts_read.pop(incident.id, None)
        if alerts is None:
            alerts = self._alerts(incident.id, incident.key)
        log_entries = self._log_entries(incident.id, incident.key)
        with self._translated(
            f"read the notes of {incident.key}", not_found=f"No PagerDuty incident {incident.key}"
        ):
            notes = self._client.rget(f"/incidents/{incident.id}/notes")
        return IncidentLog(
            incident=mapping.with_responders(incident, log_entries),
            events=mapping.events_for_incident(
                incident=incident, log_entries=log_entries, alerts=alerts, notes=notes
            ),
        )

    # -- writes and queries -----------------------------------------------------------------
    def add_note(self, *, incident_id: str, content: str) -> str:
        """Post a note to the incident as the user `from_email` names; returns the note's id."""
        if not self._from_email:
            raise ConfigError(
                "PAGERDUTY_FROM_EMAIL is not set: PagerDuty writes notes as a user, named by their email."
            )
        with self._translated(
            f"add a note to {incident_id}", not_found=f"No PagerDuty incident {incident_id}", write=True
        ):
            note = self._client.rpost(
                f"/incidents/{incident_id}/notes",
                json={"content": content},
                headers={"From": self._from_email},
            )
        return str(note["id"])

    def list_resolved_incidents(
        self,
        *,
        since: datetime,
        until: datetime,
        service_ids: Sequence[str] = (),
        team_ids: Sequence[str] = (),
        urgencies: Sequence[str] = (),
    ) -> tuple[Incident, ...]:
        """Resolved incidents *created* in [since, until) (PagerDuty filters on creation, at most 6 months).

        Callers that want incidents resolved in a window ask a wider one and filter on `resolved_at`,
        which is filled from `last_status_change_at` when PagerDuty leaves it out.
        """
        params: dict[str, Any] = {"statuses[]": ["resolved"], "since": _iso(since), "until": _iso(until)}
        for name, values in (
            ("service_ids[]", service_ids),
            ("team_ids[]", team_ids),
            ("urgencies[]", urgencies),
        ):
            if values:
                params[name] = list(values)
        with self._translated("list incidents", not_found="PagerDuty has no incident list here"):
            bodies = list(self._client.iter_all("/incidents", params=params))
        return tuple(mapping.incident_from_json(body) for body in bodies)

    # -- reading ----------------------------------------------------------------------------
    def _log_entries(self, incident_id: str, label: str) -> list[dict[str, Any]]:
        with self._translated(f"read the log of {label}", not_found=f"No PagerDuty incident {label}"):
            return list(
                self._client.iter_all(
                    f"/incidents/{incident_id}/log_entries", params={"include[]": ["channels"]}
                )
            )

    def _alerts(self, incident_id: str, label: str) -> list[dict[str, Any]]:
        with self._translated(f"read the alerts of {label}", not_found=f"No PagerDuty incident {label}"):
            return list(self._client.iter_all(f"/incidents/{incident_id}/alerts"))

    def _remember(self, incident_id: str, alerts: list[dict[str, Any]]) -> None:
        with self._lock:
            self._alerts_read[incident_id] = alerts
            self._alerts_read.move_to_end(incident_id)
            while len(self._alerts_read) > _CACHE_SIZE:
                self._alerts_read.popitem(last=False)

    # -- the one place vendor errors become ours ---------------------------------------------
    @contextmanager
    def _translated(self, action: str, *, not_found: str, write: bool = False) -> Iterator[None]:
        try:
            yield
        except _RateLimited as exc:
            asked = f" (it asks to wait {exc.wait:g} s)" if exc.wait is not None else ""
            raise SourceUnavailable(
                f"PagerDuty kept rate-limiting PAGERDUTY_API_TOKEN while trying to {action}{asked}; try again later.",
                source=SOURCE,
            ) from exc
        except pagerduty.HttpError as exc:
            raise self._http_error(exc, action=action, not_found=not_found, write=write) from exc
        except pagerduty.Error as exc:  # no HTTP answer: timeouts and connection errors, retries spent
            raise self._network_error(exc, action=action) from exc
        except pagerduty.UrlError as exc:
            raise SourceError(f"Could not {action}: {exc}", source=SOURCE) from exc

    def _http_error(self, exc: pagerduty.HttpError, *, action: str, not_found: str, write: bool) -> Exception:
        status = exc.response.status_code
        detail = _error_detail(exc.response)
        if status == 401:
            return AuthError(
                "PagerDuty rejected PAGERDUTY_API_TOKEN (401 Unauthorized): check the key is valid and that "
                f"PAGERDUTY_API_URL ({self._base_url}) is its region.",
                source=SOURCE,
            )
        if status == 403:
            need = "write access to incidents (not a read-only key)" if write else "read access to incidents"
            return AuthError(
                f"PAGERDUTY_API_TOKEN may not {action} (403 Forbidden{detail}): it needs {need}.",
                source=SOURCE,
            )
        if status == 404:
            return IncidentNotFound(not_found, source=SOURCE)
        if 200 <= status < 300:  # a success whose body is not what the API describes
            return SourceError(
                f"PagerDuty answered unexpectedly while trying to {action}: {exc}", source=SOURCE
            )
        if status == 429 or status >= 500:
            retried = f" after {self._max_retries} retries" if self._max_retries else ""
            return SourceUnavailable(
                f"PagerDuty answered {status} {_phrase(status)}{retried} while trying to {action}{detail}.",
                source=SOURCE,
            )
        if write and status == 400 and "requester" in detail.lower():
            detail += f"; PAGERDUTY_FROM_EMAIL ({self._from_email}) must be a PagerDuty user's email"
        message = f"PagerDuty refused to {action}: {status} {_phrase(status)}{detail}."
        return PublishError(message) if write else SourceError(message, source=SOURCE)

    def _network_error(self, exc: pagerduty.Error, *, action: str) -> Exception:
        cause = exc.__cause__
        attempts = self._max_retries + 1
        if isinstance(cause, httpx2.TimeoutException):
            return SourceUnavailable(
                f"PagerDuty did not answer within {self._timeout:g} s ({attempts} attempts) while trying to {action}.",
                source=SOURCE,
            )
        reason = str(cause or exc)
        hint = (
            " Set CA_BUNDLE if PagerDuty is reached through a TLS-inspecting proxy."
            if "CERTIFICATE" in reason
            else ""
        )
        return SourceUnavailable(
            f"Could not reach PagerDuty at {self._base_url} ({attempts} attempts) to {action}: {reason}.{hint}",
            source=SOURCE,
        )


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("since/until must be timezone-aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _error_detail(response: httpx2.Response) -> str:
    """': Access Denied (This API key is read-only.)' from PagerDuty's {"error": {...}} body, else ''."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return ""
    if not isinstance(error, dict):
        return f": {error}" if error else ""
    message = str(error.get("message") or "")
    extra = "; ".join(str(e) for e in error.get("errors") or ())
    text = f"{message} ({extra})" if message and extra else message or extra
    return f": {text}" if text else ""
