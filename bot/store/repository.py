"""The store's whole surface: keyword-only methods, each one short transaction, errors as StoreError.

Every state change that must happen once is a conditional UPDATE or a unique INSERT, so it holds across
threads, restarts and replicas sharing one PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.analysis.models import Draft, draft_json
from bot.errors import StoreError
from bot.store.db import transaction
from bot.store.models import ClaimRow, CursorRow, DraftEditRow, DraftRow, DraftStatus, LeaseRow, PromptRow


@dataclass(frozen=True)
class StoredDraft:
    id: str
    incident_key: str
    channel_id: str | None
    preview_ts: str | None
    status: DraftStatus
    draft: Draft | None
    body_version: int
    error: str | None
    page_id: str | None
    page_url: str | None
    page_version: int | None
    published_by: str | None
    published_at: datetime | None
    published_body_version: int | None
    requested_by: str | None
    updated_at: datetime

    @property
    def has_unpublished_changes(self) -> bool:
        return self.published_body_version is None or self.body_version > self.published_body_version


@dataclass(frozen=True)
class EditRecord:
    section: str
    text: str
    user_id: str
    at: datetime


STOPPED_PUBLISHING = (
    "The bot stopped while publishing this postmortem. Press Retry: the page is found by its title, "
    "so no second page is made."
)
STOPPED_DRAFTING = "The bot stopped while drafting this postmortem. Press Retry to draft it again."


def _stored(row: DraftRow) -> StoredDraft:
    return StoredDraft(
        id=row.id,
        incident_key=row.incident_key,
        channel_id=row.channel_id,
        preview_ts=row.preview_ts,
        status=DraftStatus(row.status),
        draft=Draft.model_validate_json(row.body) if row.body else None,
        body_version=row.body_version,
        error=row.error,
        page_id=row.page_id,
        page_url=row.page_url,
        page_version=row.page_version,
        published_by=row.published_by,
        published_at=row.published_at,
        published_body_version=row.published_body_version,
        requested_by=row.requested_by,
        updated_at=row.updated_at,
    )


class Repository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def _session(self) -> AbstractContextManager[Session]:
        return transaction(self._sessions)

    # -- drafts -------------------------------------------------------------------------------
    def start_draft(
        self,
        *,
        draft_id: str,
        incident_key: str,
        channel_id: str | None,
        requested_by: str | None,
        now: datetime,
    ) -> StoredDraft:
        """Create the draft's row (status drafting), or return the existing one untouched."""
        try:
            with self._session() as session:
                row = DraftRow(
                    id=draft_id,
                    incident_key=incident_key,
                    channel_id=channel_id,
                    status=DraftStatus.DRAFTING,
                    requested_by=requested_by,
                    created_at=now,
                    updated_at=now,
                    body_version=0,
                )
                session.add(row)
                session.flush()
                return _stored(row), True
        except IntegrityError:
            existing = self.get(draft_id)
            assert existing is not None
            return existing, False

    def get(self, draft_id: str) -> StoredDraft | None:
        with self._session() as session:
            row = session.get(DraftRow, draft_id)
            return _stored(row) if row else None

    def save_draft(
        self, *, draft_id: str, draft: Draft, now: datetime, channel_id: str | None = None
    ) -> StoredDraft:
        """Store a new body (compiled or edited): status draft, body version + 1. Publication fields stay."""
        with self._session() as session:
            row = session.get(DraftRow, draft_id, with_for_update=True)
            if row is None:
                raise StoreError(f"No draft {draft_id}")
            row.body = draft_json(draft)
            row.body_version += 1
            if row.status in (DraftStatus.DRAFTING, DraftStatus.FAILED, DraftStatus.DISCARDED) or (
                row.status == DraftStatus.PUBLISHED
            ):
                row.status = DraftStatus.DRAFT if row.page_id is None else DraftStatus.PUBLISHED
            row.error = None
            row.channel_id = channel_id or row.channel_id
            row.updated_at = now
            session.flush()
            return _stored(row)

    def save_edit(
        self,
        *,
        draft_id: str,
        draft: Draft,
        expected_body_version: int,
        changes: Sequence[tuple[str, str]],
        user_id: str,
        now: datetime,
    ) -> StoredDraft | None:
        """Store an edited body and its history rows in one transaction, only if nobody changed the draft since
        it was read at `expected_body_version`. None when someone did: re-read, re-apply, try again."""
        with self._session() as session:
            saved = session.execute(
                update(DraftRow)
                .where(DraftRow.id == draft_id, DraftRow.body_version == expected_body_version)
                .values(body=draft_json(draft), body_version=expected_body_version + 1, updated_at=now)
            ).rowcount
            if saved != 1:
                return None
            session.add_all(
                DraftEditRow(draft_id=draft_id, section=section, text=text, user_id=user_id, at=now)
                for section, text in changes
            )
            row = session.get(DraftRow, draft_id)
            session.refresh(row)
            return _stored(row)

    def set_preview(self, *, draft_id: str, channel_id: str, ts: str) -> None:
        with self._session() as session:
            session.execute(
                update(DraftRow).where(DraftRow.id == draft_id).values(channel_id=channel_id, preview_ts=ts)
            )

    def edits(self, draft_id: str) -> list[EditRecord]:
        with self._session() as session:
            rows = session.scalars(
                select(DraftEditRow).where(DraftEditRow.draft_id == draft_id).order_by(DraftEditRow.id)
            )
            return [EditRecord(section=r.section, text=r.text, user_id=r.user_id, at=r.at) for r in rows]

    def fail(self, *, draft_id: str, error: str, now: datetime) -> None:
        """Drafting or publishing failed: the body stays, the error is shown, Retry is offered."""
        with self._session() as session:
            session.execute(
                update(DraftRow)
                .where(DraftRow.id == draft_id)
                .values(status=DraftStatus.FAILED, error=error, updated_at=now)
            )

    def discard(self, *, draft_id: str, now: datetime) -> bool:
        with self._session() as session:
            result = session.execute(
                update(DraftRow)
                .where(DraftRow.id == draft_id, DraftRow.status.in_([DraftStatus.DRAFT, DraftStatus.FAILED]))
                .values(status=DraftStatus.DISCARDED, updated_at=now)
            )
            return result.rowcount == 1

    # -- publication: draft|failed|published-with-changes -> publishing -> published ------------
    def claim_publish(self, *, draft_id: str, user_id: str, now: datetime, stale_after: timedelta) -> bool:
        """Take the right to publish. False when another click, envelope or replica holds it, or nothing changed
        since the last publication. A publication older than `stale_after` (a crash) may be taken over."""
        with self._session() as session:
            result = session.execute(
                update(DraftRow)
                .where(
                    DraftRow.id == draft_id,
                    DraftRow.body.is_not(None),
                    or_(
                        DraftRow.status.in_([DraftStatus.DRAFT, DraftStatus.FAILED]),
                        (DraftRow.status == DraftStatus.PUBLISHED)
                        & (DraftRow.body_version > DraftRow.published_body_version),
                        (DraftRow.status == DraftStatus.PUBLISHING)
                        & (DraftRow.publish_started_at < now - stale_after),
                    ),
                )
                .values(
                    status=DraftStatus.PUBLISHING,
                    publishing_by=user_id,
                    publish_started_at=now,
                    error=None,
                    updated_at=now,
                )
            )
            return result.rowcount == 1

    def finish_publish(
        self,
        *,
        draft_id: str,
        page_id: str,
        page_url: str,
        page_version: int,
        user_id: str,
        body_version: int,
        now: datetime,
    ) -> None:
        with self._session() as session:
            session.execute(
                update(DraftRow)
                .where(DraftRow.id == draft_id)
                .values(
                    status=DraftStatus.PUBLISHED,
                    page_id=page_id,
                    page_url=page_url,
                    page_version=page_version,
                    published_by=user_id,
                    published_at=now,
                    published_body_version=body_version,
                    error=None,
                    updated_at=now,
                )
            )

    def abandon_publish(self, *, draft_id: str, error: str, now: datetime) -> None:
        """Publishing failed: back to failed (or published, when an earlier version is live), with the error."""
        with self._session() as session:
            row = session.get(DraftRow, draft_id, with_for_update=True)
            if row is None:
                return
            row.status = DraftStatus.PUBLISHED if row.page_id else DraftStatus.FAILED
            row.error = error
            row.updated_at = now

    def release_stale_work(self, *, now: datetime, stale_after: timedelta) -> list[StoredDraft]:
        """Drafting or publishing left unfinished by a process that died (older than `stale_after`) becomes
        failed, with an error that says so, so its preview can offer Retry. Each row is re-checked under its
        lock, so a replica that just took the work over is never interrupted."""
        cutoff = now - stale_after
        stale_publishing = (DraftRow.status == DraftStatus.PUBLISHING) & (
            DraftRow.publish_started_at < cutoff
        )
        stale_drafting = (DraftRow.status == DraftStatus.DRAFTING) & (DraftRow.updated_at < cutoff)
        with self._session() as session:
            candidates = list(
                session.scalars(select(DraftRow.id).where(or_(stale_publishing, stale_drafting)))
            )
        released: list[StoredDraft] = []
        for draft_id in candidates:
            with self._session() as session:
                row = session.get(DraftRow, draft_id, with_for_update=True)
                if row is None:
                    continue
                if row.status == DraftStatus.PUBLISHING and row.publish_started_at < cutoff:
                    row.status = DraftStatus.PUBLISHED if row.page_id else DraftStatus.FAILED
                    row.error = STOPPED_PUBLISHING
                elif row.status == DraftStatus.DRAFTING and row.updated_at < cutoff:
                    row.status = DraftStatus.FAILED
                    row.error = STOPPED_DRAFTING
                else:
                    continue
                row.updated_at = now
                session.flush()
                released.append(_stored(row))
        return released

    # -- prompts, claims, cursors ---------------------------------------------------------------
    def claim_prompt(self, *, incident_id: str, channel_id: str | None, trigger: str, now: datetime) -> bool:
        """True exactly once per incident, whoever asks first (message, watcher, command, any replica)."""
        try:
            with self._session() as session:
                session.add(
                    PromptRow(incident_id=incident_id, channel_id=channel_id, trigger=trigger, created_at=now)
                )
            return True
        except IntegrityError:
            return False

    def release_prompt(self, *, incident_id: str) -> None:
        """Posting the prompt failed: let the next trigger try again."""
        with self._session() as session:
            session.execute(delete(PromptRow).where(PromptRow.incident_id == incident_id))

    def set_prompt_ts(self, *, incident_id: str, ts: str) -> None:
        with self._session() as session:
            session.execute(
                update(PromptRow).where(PromptRow.incident_id == incident_id).values(message_ts=ts)
            )

    def claim(self, *, key: str, now: datetime) -> bool:
        """True exactly once per key."""
        try:
            with self._session() as session:
                session.add(ClaimRow(key=key[:200], created_at=now))
            return True
        except IntegrityError:
            return False

    def release(self, *, key: str) -> None:
        with self._session() as session:
            session.execute(delete(ClaimRow).where(ClaimRow.key == key[:200]))

    def get_cursor(self, name: str) -> str | None:
        with self._session() as session:
            row = session.get(CursorRow, name)
            return row.value if row else None

    def set_cursor(self, *, name: str, value: str, now: datetime) -> None:
        with self._session() as session:
            row = session.get(CursorRow, name, with_for_update=True)
            if row is None:
                session.add(CursorRow(name=name, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now

    # -- the jobs: watcher and reminders (bot/jobs) ----------------------------------------------
    def was_offered(self, *, incident_id: str) -> bool:
        """Whether the incident was prompted or drafted already (any trigger, any replica). A cheap look
        before the watcher searches for a channel; `claim_prompt` stays the guarantee."""
        with self._session() as session:
            if session.get(PromptRow, incident_id) is not None:
                return True
            return session.scalar(select(DraftRow.id).where(DraftRow.id == incident_id)) is not None

    def advance_cursor(self, *, name: str, value: str, now: datetime) -> bool:
        """Move a cursor forward, never back; True when it moved (or was created).

        Values compare as strings in SQL, so give them one fixed-width form (UTC
        `isoformat(timespec="microseconds")`). Safe when replicas write at once: a conditional UPDATE,
        else an INSERT that loses to a concurrent one and then compares again.
        """
        for _attempt in range(2):
            with self._session() as session:
                moved = session.execute(
                    update(CursorRow)
                    .where(CursorRow.name == name, CursorRow.value < value)
                    .values(value=value, updated_at=now)
                ).rowcount
            if moved:
                return True
            try:
                with self._session() as session:
                    if session.get(CursorRow, name) is not None:
                        return False
                    session.add(CursorRow(name=name, value=value, updated_at=now))
                return True
            except IntegrityError:
                continue  # another replica created it a moment ago: compare with its value
        return False

    def take_lease(self, *, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Hold `name` until `now + ttl`. True when it was free, expired or already `holder`'s (renewed);
        False while someone else holds it. One conditional UPDATE, else one unique INSERT."""
        with self._session() as session:
            renewed = session.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, or_(LeaseRow.holder == holder, LeaseRow.expires_at <= now))
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
        if renewed:
            return True
        try:
            with self._session() as session:
                if session.get(LeaseRow, name) is not None:
                    return False
                session.add(LeaseRow(name=name, holder=holder, expires_at=now + ttl))
            return True
        except IntegrityError:
            return False  # another replica took it first

    def release_lease(self, *, name: str, holder: str) -> None:
        """Give a lease back (a clean shutdown), so another replica need not wait for it to expire."""
        with self._session() as session:
            session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))

    def drafts_due_for_reminder(
        self, *, now: datetime, after: timedelta, max_reminders: int, limit: int = 100
    ) -> list[DueReminder]:
        """Drafts waiting for review (draft or failed, with a channel) untouched and unreminded for `after`,
        reminded fewer than `max_reminders` times; the longest waiting first."""
        cutoff = now - after
        with self._session() as session:
            rows = session.scalars(
                select(DraftRow)
                .where(
                    DraftRow.status.in_([DraftStatus.DRAFT, DraftStatus.FAILED]),
                    DraftRow.channel_id.is_not(None),
                    DraftRow.reminders_sent < max_reminders,
                    DraftRow.updated_at <= cutoff,
                    or_(DraftRow.last_reminder_at.is_(None), DraftRow.last_reminder_at <= cutoff),
                )
                .order_by(DraftRow.updated_at, DraftRow.id)
                .limit(limit)
            )
            return [
                DueReminder(
                    draft=_stored(r), reminders_sent=r.reminders_sent, last_reminder_at=r.last_reminder_at
                )
                for r in rows
            ]

    def mark_reminded(self, *, draft_id: str, reminders_sent: int, now: datetime) -> bool:
        """Take reminder number `reminders_sent + 1` of a draft still waiting for review: True for exactly
        one caller (a conditional UPDATE on the count seen), False once published, discarded or taken."""
        with self._session() as session:
            result = session.execute(
                update(DraftRow)
                .where(
                    DraftRow.id == draft_id,
                    DraftRow.reminders_sent == reminders_sent,
                    DraftRow.status.in_([DraftStatus.DRAFT, DraftStatus.FAILED]),
                )
                .values(reminders_sent=reminders_sent + 1, last_reminder_at=now)
            )
            return result.rowcount == 1

    def unmark_reminded(
        self, *, draft_id: str, reminders_sent: int, last_reminder_at: datetime | None
    ) -> None:
        """Sending the reminder failed: give it back (count and time as they were) for the next run."""
        with self._session() as session:
            session.execute(
                update(DraftRow)
                .where(DraftRow.id == draft_id, DraftRow.reminders_sent == reminders_sent + 1)
                .values(reminders_sent=reminders_sent, last_reminder_at=last_reminder_at)
            )


@dataclass(frozen=True)
class DueReminder:
    draft: StoredDraft
    reminders_sent: int
    last_reminder_at: datetime | None
