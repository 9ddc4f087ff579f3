"""The draft's message in the channel: progress while sources load, then the preview, kept in step with the store.

The preview is one message (its ts is stored), updated in place on every change: edits, regenerate,
publishing, published, failed, discarded. Its buttons carry only the draft id, so they keep working after
a restart or on another replica: everything else is read from the store.
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.render.blockkit import PreviewState, render_blockkit, render_progress
from bot.render.options import RenderOptions
from bot.store.models import DraftStatus
from bot.store.repository import StoredDraft
from bot.timeline.models import Incident

log = logging.getLogger(__name__)


def preview_state(stored: StoredDraft) -> PreviewState:
    status = {
        DraftStatus.DRAFTING: "draft",
        DraftStatus.DRAFT: "draft",
        DraftStatus.PUBLISHING: "publishing",
        DraftStatus.PUBLISHED: "published",
        DraftStatus.FAILED: "failed",
        DraftStatus.DISCARDED: "discarded",
    }[stored.status]
    return PreviewState(
        status=status,
        published_by=stored.published_by,
        page_url=stored.page_url,
        error=stored.error,
        draft_id=stored.id,
    )


def fallback_text(stored: StoredDraft) -> str:
    title = stored.draft.incident.title if stored.draft else ""
    return f"Postmortem draft for {stored.incident_key}: {title}".strip()


def show_preview(client: WebClient, stored: StoredDraft, *, options: RenderOptions) -> str | None:
    """Update the preview message (or post it when there is none yet). Returns its ts."""
    if stored.draft is None or stored.channel_id is None:
        return stored.preview_ts
    blocks = render_blockkit(stored.draft, options=options, state=preview_state(stored))
    if stored.preview_ts:
        client.chat_update(
            channel=stored.channel_id, ts=stored.preview_ts, blocks=blocks, text=fallback_text(stored)
        )
        return stored.preview_ts
    response = client.chat_postMessage(channel=stored.channel_id, blocks=blocks, text=fallback_text(stored))
    return response["ts"]


class ProgressMessage:
    """A message that shows each source's state while a draft is compiled (chat.update per change)."""

    def __init__(
        self, client: WebClient, *, channel_id: str, incident: Incident, ts: str | None = None
    ) -> None:
        self._client = client
        self._channel = channel_id
        self._incident = incident
        self._reading: dict[str, str] = {}
        self._done: dict[str, str] = {}
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self.ts = ts

    def _blocks(self) -> list[dict]:
        with self._lock:
            return render_progress(
                self._incident, done=dict(self._done), reading=dict(self._reading), failed=set(self._failed)
            )

    def post(self) -> str:
        text = f"Drafting the postmortem for {self._incident.key}…"
        if self.ts:
            self._client.chat_update(channel=self._channel, ts=self.ts, blocks=self._blocks(), text=text)
        else:
            self.ts = self._client.chat_postMessage(channel=self._channel, blocks=self._blocks(), text=text)[
                "ts"
            ]
        return self.ts

    def __call__(self, source: str, message: str, *, done: bool = False, failed: bool = False) -> None:
        """The Progress callback: sources call it from their threads."""
        with self._lock:
            if done:
                self._done[source] = message
                self._reading.pop(source, None)
                if failed:
                    self._failed.add(source)
            else:
                self._reading[source] = message
        try:
            self._client.chat_update(
                channel=self._channel,
                ts=self.ts,
                blocks=self._blocks(),
                text=f"Drafting the postmortem for {self._incident.key}…",
            )
        except SlackApiError as exc:  # progress is cosmetic: the draft goes on, the log says why
            log.warning(
                "progress update failed",
                extra={"incident": self._incident.key, "action": "draft", "error": exc.response["error"]},
            )
