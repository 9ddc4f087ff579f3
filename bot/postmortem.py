"""The use cases: draft, edit, regenerate, publish and discard a postmortem.

Slack listeners, jobs and the CLI call these and nothing lower. Every state change goes through the
store's transitions (drafting -> draft -> publishing -> published, failed, discarded), so a double
click, a redelivered envelope, a restart or a second replica cannot do a thing twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.analysis.draft import apply_edit, compile_draft, keep_edits
from bot.analysis.models import Draft, DraftOptions, EditableSection
from bot.analysis.redaction import merge_counts, redact_text
from bot.errors import InputError, PostmortemError, PublishError
from bot.publish.confluence import Attachment, PublishedPage
from bot.render.chart import chart_filename, render_timeline_chart
from bot.render.confluence import render_confluence
from bot.render.options import RenderOptions
from bot.sources.base import Progress, no_progress
from bot.sources.gather import GatherOptions, Sources, gather_evidence
from bot.store.models import DraftStatus
from bot.store.repository import Repository, StoredDraft
from bot.timeline.models import Incident

log = logging.getLogger(__name__)

EDIT_LIMITS: dict[EditableSection, int] = {section: 3000 for section in EditableSection}


class PagePublisher(Protocol):
    def publish(
        self,
        *,
        title: str,
        body: str,
        labels: Sequence[str],
        attachments: Sequence[Attachment],
        page_id: str | None = None,
    ) -> PublishedPage: ...


class IncidentNotes(Protocol):
    def add_note(self, *, incident_id: str, content: str) -> str: ...


@dataclass(frozen=True)
class Services:
    """What the use cases need, built once by bot.deps."""

    repo: Repository
    sources: Sources
    gather_options: GatherOptions
    draft_options: DraftOptions
    render_options: RenderOptions
    publisher: PagePublisher | None
    incident_notes: IncidentNotes | None
    clock: Callable[[], datetime]
    title_template: str = "Postmortem: {key} — {title}"
    stale_publish_after: timedelta = timedelta(minutes=10)


def draft_incident(
    *,
    ref: str,
    channel_id: str | None,
    sources: Sources,
    gather_options: GatherOptions,
    draft_options: DraftOptions,
    now: datetime,
    progress: Progress = no_progress,
    incident: Incident | None = None,
) -> Draft:
    """Fetch the incident's evidence from every source and compile the draft (redacted before anything else).
    `incident`: the incident as the caller has just read it, so it is not read again."""
    evidence = gather_evidence(
        ref=ref,
        incident=incident,
        channel_id=channel_id,
        sources=sources,
        options=gather_options,
        now=now,
        progress=progress,
    )
    return compile_draft(evidence, options=draft_options, now=now)


# -- drafting -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftStart:
    stored: StoredDraft
    incident: Incident
    should_compile: bool  # False: a live draft exists, point to it instead


def begin_draft(services: Services, *, ref: str, channel_id: str, user_id: str | None) -> DraftStart:
    """Find the incident and open its draft row.

    A live draft is not redone; a failed or discarded one, or one whose drafting was cut off by a crash,
    is compiled again. Starting a draft also counts as the incident's prompt (no "resolved" prompt after it).
    """
    incident = services.sources.incidents.get_incident(ref)
    now = services.clock()
    stored, created = services.repo.start_draft(
        draft_id=incident.id, incident_key=incident.key, channel_id=channel_id, requested_by=user_id, now=now
    )
    services.repo.claim_prompt(incident_id=incident.id, channel_id=channel_id, trigger="command", now=now)
    crashed = stored.status is DraftStatus.DRAFTING and now - stored.updated_at > services.stale_publish_after
    should = created or crashed or stored.status in (DraftStatus.FAILED, DraftStatus.DISCARDED)
    return DraftStart(stored=stored, incident=incident, should_compile=should)


def compile_into(
    services: Services,
    *,
    draft_id: str,
    ref: str,
    channel_id: str,
    progress: Progress = no_progress,
    incident: Incident | None = None,
) -> StoredDraft:
    """Compile the draft and store it; a failure is recorded on the row (the preview shows it, Retry works).
    `incident`: the incident as the caller has just read it, so it is not read again."""
    try:
        draft = draft_incident(
            ref=ref,
            incident=incident,
            channel_id=channel_id,
            sources=services.sources,
            gather_options=services.gather_options,
            draft_options=services.draft_options,
            now=services.clock(),
            progress=progress,
        )
    except PostmortemError as exc:
        current = services.repo.get(draft_id)
        # Only a draft that has no body yet turns "failed"; a failed regenerate leaves the draft reviewable.
        if current is None or current.draft is None:
            services.repo.fail(draft_id=draft_id, error=str(exc), now=services.clock())
        raise
    previous = services.repo.get(draft_id)
    if previous is not None and previous.draft is not None:
        draft = keep_edits(previous=previous.draft, regenerated=draft)
    return services.repo.save_draft(
        draft_id=draft_id, draft=draft, now=services.clock(), channel_id=channel_id
    )


def regenerate(services: Services, *, draft_id: str, progress: Progress = no_progress) -> StoredDraft:
    """Fetch the sources again; human edits are kept. A discarded draft stays discarded."""
    stored = _require(services, draft_id)
    if stored.status in (DraftStatus.DISCARDED, DraftStatus.PUBLISHING):
        raise InputError(
            f"The draft for {stored.incident_key} cannot be regenerated while it is {stored.status.value}."
        )
    return compile_into(
        services, draft_id=draft_id, ref=draft_id, channel_id=stored.channel_id or "", progress=progress
    )


# -- editing ------------------------------------------------------------------------------------


def validate_edits(changes: Mapping[EditableSection, str]) -> dict[EditableSection, str]:
    """Inline errors for the Edit modal: section -> message. Empty when the changes can be saved."""
    errors: dict[EditableSection, str] = {}
    for section, text in changes.items():
        if len(text) > EDIT_LIMITS[section]:
            errors[section] = f"Keep this under {EDIT_LIMITS[section]} characters."
        elif section is EditableSection.SUMMARY and text.strip() and len(text.split()) < 5:
            errors[section] = "A summary needs a full sentence or two: what happened, impact, how it ended."
        elif section is EditableSection.ACTION_ITEMS:
            bad = [
                line for line in text.splitlines() if line.strip() and not re.match(r"^\s*[-*•]\s+\S", line)
            ]
            if bad:
                errors[section] = f"One action item per line, starting with '- ' (check: {bad[0][:60]!r})."
    return errors


def edit_draft(
    services: Services, *, draft_id: str, user_id: str, changes: Mapping[EditableSection, str]
) -> StoredDraft:
    """Apply a person's rewrites; who changed what and when is kept. Unchanged sections are not recorded.

    The save is conditional on the draft being unchanged since it was read, so two people editing at once
    (on two replicas, or one submission delivered twice) never lose or duplicate an edit: the later one is
    re-applied on top of the earlier.
    """
    errors = validate_edits(changes)
    if errors:
        raise InputError("; ".join(f"{s.value}: {m}" for s, m in errors.items()))
    # What people type goes to the wiki too: it is redacted like everything the sources gave.
    typed = {section: redact_text(text) for section, text in changes.items()}
    for _attempt in range(5):
        stored = _require(services, draft_id)
        if stored.status in (DraftStatus.DISCARDED, DraftStatus.DRAFTING, DraftStatus.PUBLISHING):
            raise InputError(
                f"The draft for {stored.incident_key} cannot be edited while it is {stored.status.value}."
            )
        assert stored.draft is not None
        draft, recorded = stored.draft, []
        for section, redacted in typed.items():
            current = draft.edits.get(section)
            if (redacted.text.strip() or None) == (current.strip() if current else None):
                continue
            draft = apply_edit(draft, section=section, text=redacted.text)
            if redacted.counts:
                draft = draft.model_copy(
                    update={"redactions": merge_counts(draft.redactions, redacted.counts)}
                )
            recorded.append((section.value, redacted.text))
        if not recorded:
            return stored
        saved = services.repo.save_edit(
            draft_id=draft_id,
            draft=draft,
            expected_body_version=stored.body_version,
            changes=recorded,
            user_id=user_id,
            now=services.clock(),
        )
        if saved is not None:
            return saved
    raise InputError(f"The draft for {stored.incident_key} kept changing while saving: open Edit again.")


# -- publishing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishOutcome:
    stored: StoredDraft
    page: PublishedPage | None  # None when nothing was published by this call
    reason: str = ""  # why not, for the person who clicked


def page_title(services: Services, draft: Draft) -> str:
    return services.title_template.format(key=draft.incident.key, title=draft.incident.title)


def page_labels(draft: Draft) -> list[str]:
    labels = ["postmortem"]
    if draft.incident.severity:
        labels.append(draft.incident.severity)
    labels.extend(service.name for service in draft.incident.services)
    return labels


def publish(
    services: Services,
    *,
    draft_id: str,
    user_id: str,
    on_claimed: Callable[[StoredDraft], None] | None = None,
) -> PublishOutcome:
    """Publish (or update) the Confluence page, exactly once per change of the draft.

    `on_claimed` runs once this call holds the publication (the preview then says "Publishing…").
    """
    if services.publisher is None:
        raise PublishError("Confluence is not configured: set CONFLUENCE_URL and its credentials.")
    now = services.clock()
    if not services.repo.claim_publish(
        draft_id=draft_id, user_id=user_id, now=now, stale_after=services.stale_publish_after
    ):
        stored = _require(services, draft_id)
        if stored.status is DraftStatus.PUBLISHING:
            reason = "It is being published right now."
        elif stored.status is DraftStatus.PUBLISHED:
            reason = "It is already published and has not changed since."
        else:
            reason = f"It is {stored.status.value}."
        return PublishOutcome(stored=stored, page=None, reason=reason)
    stored = _require(services, draft_id)
    assert stored.draft is not None
    draft = stored.draft
    try:
        if on_claimed is not None:
            on_claimed(stored)
        chart = chart_filename(draft.incident.key)
        page_options = replace(services.render_options, status="Published", chart_attachment=chart)
        page = services.publisher.publish(
            title=page_title(services, draft),
            body=render_confluence(draft, options=page_options),
            labels=page_labels(draft),
            attachments=[
                Attachment(
                    name=chart, data=render_timeline_chart(draft, options=page_options), mime="image/png"
                )
            ],
            page_id=stored.page_id,
        )
    except PostmortemError as exc:
        services.repo.abandon_publish(draft_id=draft_id, error=str(exc), now=services.clock())
        raise
    except Exception as exc:  # never leave a publication silently stuck in "publishing"
        services.repo.abandon_publish(
            draft_id=draft_id, error=f"Unexpected error: {exc}", now=services.clock()
        )
        raise
    services.repo.finish_publish(
        draft_id=draft_id,
        page_id=page.id,
        page_url=page.url,
        page_version=page.version,
        user_id=user_id,
        body_version=stored.body_version,
        now=services.clock(),
    )
    return PublishOutcome(stored=_require(services, draft_id), page=page)


def note_on_incident(services: Services, *, stored: StoredDraft, page: PublishedPage) -> bool:
    """Add the page link to the PagerDuty incident once per page (claimed in the store)."""
    if services.incident_notes is None or page.url is None:
        return False
    if not services.repo.claim(key=f"pd-note:{stored.id}:{page.id}", now=services.clock()):
        return False
    try:
        services.incident_notes.add_note(incident_id=stored.id, content=f"Postmortem published: {page.url}")
    except PostmortemError:
        services.repo.release(key=f"pd-note:{stored.id}:{page.id}")  # let a later publish try again
        raise
    return True


def discard(services: Services, *, draft_id: str) -> bool:
    return services.repo.discard(draft_id=draft_id, now=services.clock())


def _require(services: Services, draft_id: str) -> StoredDraft:
    stored = services.repo.get(draft_id)
    if stored is None:
        raise InputError("This draft no longer exists. Start a new one with /postmortem.")
    return stored
