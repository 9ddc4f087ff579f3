"""Knobs of the renderers, taken from the settings by the caller (render/ reads no environment)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True, kw_only=True)
class RenderOptions:
    timezone: str = "UTC"  # the team's IANA zone: local time is shown beside UTC
    templates_dir: Path | None = None  # a template of the same name there wins over the bundled one
    max_preview_events: int = 15  # timeline entries in the Slack preview
    status: str = "Draft"  # the page's status lozenge: Draft, In review, Published
    # The file name of the timeline chart attached to the Confluence page, when the publisher attaches one.
    chart_attachment: str | None = None

    def __post_init__(self) -> None:
        # Fail when the options are built, not halfway through a render.
        ZoneInfo(self.timezone)
        if self.max_preview_events < 1:
            raise ValueError("max_preview_events must be at least 1")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
