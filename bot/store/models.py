"""Tables: drafts and their edit history, publications (on the draft row), prompts, claims and cursors.

Idempotency lives here, not in memory: a prompt is a row keyed by incident, a publication is a status
transition on the draft row, a piece of work done once is a claim row — so a second replica or a restart
cannot do it twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DraftStatus(StrEnum):
    DRAFTING = "drafting"  # sources are being read
    DRAFT = "draft"  # a preview is in the channel
    PUBLISHING = "publishing"  # one replica holds the publication
    PUBLISHED = "published"
    FAILED = "failed"  # drafting or publishing failed; Retry is offered
    DISCARDED = "discarded"


class Base(DeclarativeBase):
    pass


class DraftRow(Base):
    __tablename__ = "drafts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the PagerDuty incident id
    incident_key: Mapped[str] = mapped_column(String(32))  # PD-9876
    channel_id: Mapped[str | None] = mapped_column(String(32))
    preview_ts: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    body: Mapped[str | None] = mapped_column(Text)  # the Draft as JSON (already redacted)
    body_version: Mapped[int] = mapped_column(Integer, default=0)  # +1 on every change of the body
    requested_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    # Publication
    publishing_by: Mapped[str | None] = mapped_column(String(32))
    publish_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    published_body_version: Mapped[int | None] = mapped_column(Integer)
    page_id: Mapped[str | None] = mapped_column(String(64))
    page_url: Mapped[str | None] = mapped_column(Text)
    page_version: Mapped[int | None] = mapped_column(Integer)
    published_by: Mapped[str | None] = mapped_column(String(32))
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Reminders while a draft waits for review (revision 0002): how many were sent, the last one when.
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_reminder_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DraftEditRow(Base):
    __tablename__ = "draft_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    draft_id: Mapped[str] = mapped_column(ForeignKey("drafts.id", ondelete="CASCADE"), index=True)
    section: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class PromptRow(Base):
    """One row per incident that was offered a postmortem (or drafted): never prompted twice."""

    __tablename__ = "prompts"

    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(16))  # message | watcher | command
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ClaimRow(Base):
    """A unit of work done once across replicas and restarts (e.g. an envelope's side effect)."""

    __tablename__ = "claims"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CursorRow(Base):
    __tablename__ = "cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class LeaseRow(Base):
    """A job one replica runs at a time (revision 0002): the holder renews it; others take it once expired."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


# -- live capture (revision 0003): the incident channel's messages as their events arrive ------------------


class CapturedMessageRow(Base):
    """One channel message as the latest of its events left it. Text is stored redacted.

    Each part has the Slack ts of the event that set it (`*_version`), so events apply in any order:
    an older event never overwrites a newer one. A row without `content_version` is a placeholder (a
    reaction or pin seen before the message itself); a deleted message keeps only its key and `deleted`,
    so a copy arriving late cannot bring it back.
    """

    __tablename__ = "captured_messages"
    __table_args__ = (
        Index("ix_captured_messages_posted", "channel_id", "posted_at"),
        Index("ix_captured_messages_thread", "channel_id", "thread_ts"),
    )

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime())  # the ts as a time, for windows
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(32))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    subtype: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    redactions: Mapped[str] = mapped_column(Text, default="{}")  # JSON kind -> count, from redacting `text`
    reply_count: Mapped[int] = mapped_column(Integer, default=0)
    edited: Mapped[bool] = mapped_column(Boolean, default=False)
    content_version: Mapped[str | None] = mapped_column(String(32))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    pin_version: Mapped[str | None] = mapped_column(String(32))
    reactions: Mapped[str] = mapped_column(Text, default="{}")  # JSON name -> user -> [present, version]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    captured_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CaptureChannelRow(Base):
    """Whether the bot is a member of a channel, as its latest join, leave or message event says."""

    __tablename__ = "capture_channels"

    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    member: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[str] = mapped_column(String(32))  # the ts of the event that said so
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class CaptureSpanRow(Base):
    """A stretch during which one replica was connected and the bot a member of the channel: every event
    of the channel in [started_at, last_seen_at] was captured. Between spans lies what must be read back."""

    __tablename__ = "capture_spans"
    __table_args__ = (Index("ix_capture_spans_channel", "channel_id", "last_seen_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    replica: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed: Mapped[bool] = mapped_column(Boolean, default=False)  # the bot left: nothing extends it
