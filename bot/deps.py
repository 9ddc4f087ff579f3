"""The one place that wires settings to clients, sources and options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.base import BaseScheduler
from slack_sdk import WebClient

from bot.analysis.models import DraftOptions
from bot.config import Need, Settings
from bot.jobs.capture_retention import RETENTION_INTERVAL_SECONDS, purge_once
from bot.jobs.recovery import RECOVERY_INTERVAL_SECONDS, recover_once
from bot.jobs.scheduler import Job, build_scheduler, standard_jobs
from bot.jobs.watcher import CURSOR as WATCH_LEASE
from bot.jobs.watcher import replica_id
from bot.postmortem import Services
from bot.publish.confluence import ConfluencePublisher
from bot.render.options import RenderOptions
from bot.slack.announcer import SlackAnnouncer
from bot.slack.capture import LiveCapture
from bot.slack.context import BotContext, SlackOptions
from bot.sources.captured import CapturedChatSource
from bot.sources.gather import GatherOptions, Sources
from bot.sources.github import GitHubSource
from bot.sources.pagerduty import PagerDutySource
from bot.sources.replay import ReplaySource
from bot.sources.slack_client import build_web_client
from bot.sources.slack_history import SlackHistorySource
from bot.store.capture import CaptureRepository
from bot.store.db import create_store_engine, migrate
from bot.store.repository import Repository


def _secret(value) -> str | None:  # noqa: ANN001 - SecretStr | None
    return value.get_secret_value() if value is not None else None


def build_pagerduty(settings: Settings) -> PagerDutySource:
    settings.require(Need.PAGERDUTY)
    return PagerDutySource(
        token=_secret(settings.pagerduty_api_token),
        base_url=settings.pagerduty_api_url,
        ca_bundle=settings.ca_bundle,
        timeout=settings.http_timeout_seconds,
        max_retries=settings.http_max_retries,
        from_email=settings.pagerduty_from_email,
    )


def build_web_client_from(settings: Settings, *, reads_only: bool = False):  # noqa: ANN201 - slack_sdk.WebClient
    """The bot's WebClient; `reads_only` for one that never posts, so it may retry timed-out requests."""
    settings.require(Need.SLACK)
    return build_web_client(
        token=_secret(settings.slack_bot_token),
        base_url=settings.slack_api_url,
        ca_bundle=settings.ca_bundle,
        timeout=settings.http_timeout_seconds,
        max_retries=settings.http_max_retries,
        reads_only=reads_only,
    )


def build_live_sources(settings: Settings) -> Sources:
    """PagerDuty and Slack are required; GitHub works without a token for public repositories."""
    settings.require(Need.PAGERDUTY, Need.SLACK)
    return Sources(
        incidents=build_pagerduty(settings),
        deploys=GitHubSource(
            token=_secret(settings.github_token),
            base_url=settings.github_api_url,
            ca_bundle=settings.ca_bundle,
            timeout=settings.http_timeout_seconds,
            max_retries=settings.http_max_retries,
            environment=settings.deploy_environment,
            web_url=settings.github_web_url,
        ),
        chat=SlackHistorySource(client=build_web_client_from(settings, reads_only=True)),
    )


def build_replay_sources(sample_dir: Path, *, environment: str = "production") -> Sources:
    replay = ReplaySource(sample_dir, environment=environment)
    return Sources(incidents=replay, deploys=replay, chat=replay)


def gather_options(settings: Settings) -> GatherOptions:
    return GatherOptions(
        suspect_window=timedelta(hours=settings.suspect_window_hours),
        history_lead_in=timedelta(minutes=settings.history_lead_in_minutes),
        history_tail=timedelta(minutes=settings.history_tail_minutes),
        repo_for_service=settings.repo_for_service,
    )


def draft_options(settings: Settings) -> DraftOptions:
    return DraftOptions(suspect_window_hours=settings.suspect_window_hours)


def render_options(settings: Settings) -> RenderOptions:
    return RenderOptions(timezone=settings.timezone, templates_dir=settings.templates_dir)


def build_publisher(settings: Settings) -> ConfluencePublisher | None:
    if settings.confluence_url is None:
        return None
    settings.require(Need.CONFLUENCE)
    return ConfluencePublisher(
        url=settings.confluence_url,
        username=settings.confluence_username,
        api_token=_secret(settings.confluence_api_token),
        space_key=settings.confluence_space_key,
        parent_page_id=settings.confluence_parent_page_id,
        cloud=settings.is_confluence_cloud,
        ca_bundle=settings.ca_bundle,
        timeout=settings.http_timeout_seconds,
        max_retries=settings.http_max_retries,
    )


def build_services(settings: Settings, *, repo: Repository, sources: Sources) -> Services:
    pagerduty = sources.incidents
    return Services(
        repo=repo,
        sources=sources,
        gather_options=gather_options(settings),
        draft_options=draft_options(settings),
        render_options=render_options(settings),
        publisher=build_publisher(settings),
        incident_notes=pagerduty
        if settings.pagerduty_from_email and isinstance(pagerduty, PagerDutySource)
        else None,
        clock=lambda: datetime.now(UTC),
        title_template=settings.confluence_title_template,
        stale_publish_after=timedelta(seconds=settings.stale_work_seconds),
    )


def slack_options(settings: Settings) -> SlackOptions:
    return SlackOptions(
        incident_channel_patterns=settings.incident_channel_patterns,
        resolved_phrases=settings.resolved_phrases,
        approvers=settings.approvers,
        approver_usergroup=settings.approver_usergroup,
    )


CAPTURE_HEARTBEAT_SECONDS = 60.0  # well inside CaptureRepository's grace (3 minutes)


def build_stores(settings: Settings) -> tuple[Repository, CaptureRepository]:
    """The store and its live-capture tables on one engine, migrated to the newest schema."""
    engine = create_store_engine(settings.database_url)
    migrate(engine)
    return Repository(engine), CaptureRepository(engine)


def with_capture(sources: Sources, *, capture: CaptureRepository) -> Sources:
    """The app's sources: Slack history from live capture, the history API only for what it missed.
    (`python -m bot draft` keeps the plain history path: nothing captures for a one-off command.)"""
    if not isinstance(sources.chat, SlackHistorySource):
        return sources
    chat = CapturedChatSource(live=sources.chat, capture=capture, clock=lambda: datetime.now(UTC))
    return replace(sources, chat=chat)


def capture_jobs(
    settings: Settings,
    *,
    live: LiveCapture,
    capture: CaptureRepository,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Job]:
    """The capture heartbeat (coverage of quiet channels while connected) and the retention purge."""
    retention = timedelta(days=settings.capture_retention_days)
    return [
        ("capture-heartbeat", live.heartbeat, CAPTURE_HEARTBEAT_SECONDS),
        (
            "capture-retention",
            lambda: purge_once(capture=capture, older_than=retention, now=clock()),
            RETENTION_INTERVAL_SECONDS,
        ),
    ]


@dataclass(frozen=True)
class Bot:
    ctx: BotContext
    client: WebClient
    scheduler: BaseScheduler
    replica: str  # this process among the replicas: it holds leases and capture spans under this name
    # Live capture: the app hands it the Socket Mode client's is_connected (watch_connection) once connected.
    capture: LiveCapture | None = None

    def shutdown(self) -> None:
        """Stop the jobs and hand the watcher's lease back, so another replica takes over at once."""
        self.scheduler.shutdown(wait=False)
        self.ctx.services.repo.release_lease(name=WATCH_LEASE, holder=self.replica)


def build_bot(settings: Settings) -> Bot:
    """Everything `python -m bot run` needs, from validated settings."""
    client = build_web_client_from(settings)
    repo, capture = build_stores(settings)
    sources = with_capture(build_live_sources(settings), capture=capture)
    replica = replica_id()
    live = LiveCapture(store=capture, replica=replica, clock=lambda: datetime.now(UTC))
    ctx = BotContext(
        services=build_services(settings, repo=repo, sources=sources),
        options=slack_options(settings),
        capture=live,
    )
    announcer = SlackAnnouncer(ctx, client)
    services = ctx.services
    jobs = [
        (
            "recover-unfinished-work",
            lambda: recover_once(
                repo=services.repo,
                refresher=announcer,
                now=services.clock(),
                stale_after=services.stale_publish_after,
            ),
            RECOVERY_INTERVAL_SECONDS,
        ),
        *standard_jobs(
            settings=settings,
            incidents=sources.incidents,
            chat=sources.chat,
            repo=services.repo,
            announcer=announcer,
            holder=replica,
        ),
    ]
    jobs += capture_jobs(settings, live=live, capture=capture)
    return Bot(ctx=ctx, client=client, scheduler=build_scheduler(jobs=jobs), replica=replica, capture=live)
