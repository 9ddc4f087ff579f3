"""Settings: the only module that reads the environment (and an optional `.env`).

`load_settings()` returns a frozen `Settings` or raises one `ConfigError` that names every problem and
never echoes a value (tokens included). Each command then asks for what it needs with
`settings.require(...)`: the demo needs nothing, `draft` needs PagerDuty and Slack, the app needs everything.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError


class Need(StrEnum):
    """Groups of settings a command may require."""

    PAGERDUTY = "pagerduty"
    GITHUB = "github"
    SLACK = "slack"
    SOCKET_MODE = "socket_mode"
    CONFLUENCE = "confluence"


_REQUIRED: dict[Need, tuple[str, ...]] = {
    Need.PAGERDUTY: ("pagerduty_api_token",),
    Need.GITHUB: ("github_token",),
    Need.SLACK: ("slack_bot_token",),
    Need.SOCKET_MODE: ("slack_bot_token", "slack_app_token"),
    Need.CONFLUENCE: (
        "confluence_url",
        "confluence_username",
        "confluence_api_token",
        "confluence_space_key",
    ),
}

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """'30m', '1h', '7d' -> timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError("expected a number and a unit, like 30m, 1h or 7d")
    amount, unit = match.groups()
    return timedelta(**{_DURATION_UNITS[unit]: int(amount)})


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


CommaList = Annotated[tuple[str, ...], NoDecode]

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
_PRIORITY_NUMBER = re.compile(r"(\d+)")


def priority_rank(name: str) -> int | None:
    """'SEV-1' -> 1, 'P3' -> 3: the number in a priority's name, lower is more severe. None without one."""
    match = _PRIORITY_NUMBER.search(name)
    return int(match.group(1)) if match else None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", frozen=True, extra="ignore")

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # PagerDuty (EU region: https://api.eu.pagerduty.com)
    pagerduty_api_token: SecretStr | None = None
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_from_email: str | None = None
    # GitHub (Enterprise: https://HOST/api/v3)
    github_token: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    github_web_url: str | None = None  # where commits open in a browser; default derived from GITHUB_API_URL
    github_org: str | None = None
    service_repos: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    deploy_environment: str = "production"
    # Confluence (Cloud: https://SITE.atlassian.net/wiki; Data Center: https://HOST[/context])
    confluence_url: str | None = None
    confluence_username: str | None = None
    confluence_api_token: SecretStr | None = None
    confluence_space_key: str | None = None
    confluence_parent_page_id: str | None = None
    confluence_cloud: bool | None = None  # None: decided by the host name (*.atlassian.net)
    confluence_title_template: str = "Postmortem: {key} — {title}"
    # Storage
    database_url: str = "sqlite:///postmortem-bot.sqlite3"
    # Live capture of incident channels: captured messages are deleted this many days after the channel's
    # postmortem is published or discarded (in a channel with no postmortem: after they were posted).
    capture_retention_days: int = Field(default=30, ge=0)
    # Drafting
    timezone: str = "UTC"
    templates_dir: Path | None = None
    suspect_window_hours: float = Field(default=6.0, gt=0)
    history_lead_in_minutes: int = Field(default=30, ge=0)
    history_tail_minutes: int = Field(default=60, ge=0)
    # Network
    ca_bundle: Path | None = None
    http_timeout_seconds: float = Field(default=15.0, gt=0)
    http_max_retries: int = Field(default=4, ge=0, le=10)
    # Slack behaviour
    incident_channel_patterns: CommaList = ("inc-*", "incident-*")
    resolved_phrases: CommaList = (
        "resolved",
        "all clear",
        "incident is over",
        "we are back to normal",
        "fixed in production",
    )
    approvers: CommaList = ()  # Slack user ids; empty: members of the incident channel
    approver_usergroup: str | None = None  # a Slack user group id (S0...)
    log_level: str = "INFO"
    # Drafting or publishing unfinished this long is taken to be cut off by a dead process: shown as failed, with Retry.
    stale_work_seconds: int = Field(default=600, ge=1)
    # The PagerDuty watcher (bot/jobs/watcher.py) and the draft reminders (bot/jobs/reminders.py)
    watch_enabled: bool = True
    watch_interval_seconds: int = Field(default=60, ge=5)
    watch_lookback: Annotated[timedelta, NoDecode] = timedelta(hours=1)  # first run only: "30m", "1h", "7d"
    # How long an incident may stay open and still be noticed at its resolution (PagerDuty lists by creation).
    watch_max_incident_age: Annotated[timedelta, NoDecode] = timedelta(days=7)
    watch_service_ids: CommaList = ()  # PagerDuty service ids (PSVC001,...); empty: every service
    watch_team_ids: CommaList = ()  # PagerDuty team ids; empty: every team
    watch_urgencies: CommaList = ()  # high, low; empty: both
    # "SEV-2": skip less severe (higher-numbered) and unprioritised incidents; empty: every priority
    watch_min_priority: str | None = None
    watch_auto_draft: bool = False  # draft at once instead of asking
    fallback_channel: str | None = None  # where incidents without a findable channel are reported
    # "PD-9876=C123,customer-api=C456": incident key, incident id, service name or service id -> channel id
    channel_map: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    reminder_after_hours: float = Field(default=24.0, gt=0)
    max_reminders: int = Field(default=2, ge=0)

    @field_validator("service_repos", mode="before")
    @classmethod
    def _parse_service_repos(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        mapping: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in value.split(","))):
            service, sep, repo = pair.partition("=")
            if not sep or not service.strip() or repo.count("/") != 1:
                raise ValueError("expected service=owner/repo pairs separated by commas")
            mapping[service.strip()] = repo.strip()
        return mapping

    @field_validator("incident_channel_patterns", "resolved_phrases", "approvers", mode="before")
    @classmethod
    def _parse_lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("watch_service_ids", "watch_team_ids", "watch_urgencies", mode="before")
    @classmethod
    def _parse_watch_lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("watch_urgencies")
    @classmethod
    def _known_urgencies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(u not in ("high", "low") for u in value):
            raise ValueError("expected high, low or both, separated by commas")
        return value

    @field_validator("watch_lookback", "watch_max_incident_age", mode="before")
    @classmethod
    def _parse_durations(cls, value: object) -> object:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("watch_min_priority")
    @classmethod
    def _numbered_priority(cls, value: str | None) -> str | None:
        if value is not None and priority_rank(value) is None:
            raise ValueError("expected a priority name with its number, like SEV-2 or P2")
        return value

    @field_validator("fallback_channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not _CHANNEL_ID.match(value):
            raise ValueError("expected a Slack channel id, like C07INC9876")
        return value

    @field_validator("channel_map", mode="before")
    @classmethod
    def _parse_channel_map(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        mapping: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in value.split(","))):
            key, sep, channel = pair.partition("=")
            if not sep or not key.strip() or not _CHANNEL_ID.match(channel.strip()):
                raise ValueError("expected KEY=CHANNEL_ID pairs separated by commas, like PD-9876=C07INC9876")
            mapping[key.strip()] = channel.strip()
        return mapping

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.strip().upper()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("not a known IANA time zone, e.g. Europe/Berlin") from exc
        return value

    @field_validator(
        "slack_api_url", "pagerduty_api_url", "github_api_url", "github_web_url", "confluence_url"
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("expected an http(s):// URL")
        return value

    @field_validator("ca_bundle", "templates_dir")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.exists():
            raise ValueError(f"{value} does not exist")
        return value

    @property
    def is_confluence_cloud(self) -> bool:
        if self.confluence_cloud is not None:
            return self.confluence_cloud
        return bool(self.confluence_url and re.match(r"^https?://[^/]+\.atlassian\.net", self.confluence_url))

    def repo_for_service(self, service: str) -> str | None:
        if service in self.service_repos:
            return self.service_repos[service]
        return f"{self.github_org}/{service}" if self.github_org else None

    def require(self, *needs: Need) -> None:
        """Raise one ConfigError naming every missing setting that the given needs call for."""
        missing = sorted({name for need in needs for name in _REQUIRED[need] if getattr(self, name) is None})
        if missing:
            names = ", ".join(n.upper() for n in missing)
            raise ConfigError(f"Missing settings: {names}. Set them in the environment or in .env.")


def load_settings(**overrides: object) -> Settings:
    """Read the settings; every problem in one ConfigError, never a value (it may be a token)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            problems.append(f"{name}: {error['msg']}")
        raise ConfigError("Invalid settings — " + "; ".join(problems)) from None
