from __future__ import annotations

import io
import struct

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from bot.analysis.models import Draft, EvidenceRef, MetricName
from bot.render.chart import LANES, chart_markers, render_timeline_chart
from bot.render.options import RenderOptions
from bot.timeline.models import EventKind, Timeline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def has_colour(pixels: np.ndarray, colour: str, *, at_least: int = 50) -> bool:
    """At least `at_least` pixels of exactly this colour (antialiased edges aside)."""
    target = np.array(to_rgb(colour))
    close = np.all(np.abs(pixels[:, :, :3] - target) < 1.5 / 255, axis=-1)
    return int(close.sum()) >= at_least


class TestRenderTimelineChart:
    def test_valid_png_of_the_readable_size(self, draft: Draft, options: RenderOptions) -> None:
        """The chart is a PNG of 1600×800 pixels."""
        data = render_timeline_chart(draft, options=options)
        assert data.startswith(PNG_SIGNATURE)
        assert png_size(data) == (1600, 800)

    def test_deterministic(self, draft: Draft, options: RenderOptions) -> None:
        """The same draft gives the same bytes."""
        assert render_timeline_chart(draft, options=options) == render_timeline_chart(draft, options=options)

    def test_markers_of_the_story(self, draft: Draft) -> None:
        """Trigger, acknowledgement, suspect deploy, rollback, mitigation and resolution are all marked."""
        markers = {m.label: m.at.strftime("%H:%M") for m in chart_markers(draft)}
        assert markers == {
            "Trigger": "10:30",
            "Acknowledged": "10:34",
            "Suspect deploy": "10:12",
            "Rollback": "11:18",
            "Mitigated": "11:25",
            "Resolved": "12:15",
        }

    def test_mitigation_from_its_metric(self, draft: Draft) -> None:
        """Without a 'mitigated' message the mitigation marker sits where the time-to-mitigate metric ends."""
        events = tuple(e for e in draft.timeline.events if e.kind is not EventKind.MITIGATED)
        rollback_ref = EvidenceRef.of(next(e for e in events if e.kind is EventKind.ROLLBACK))
        metrics = tuple(
            m.model_copy(update={"end": rollback_ref}) if m.name is MetricName.TIME_TO_MITIGATE else m
            for m in draft.metrics
        )
        changed = draft.model_copy(update={"timeline": Timeline(events=events), "metrics": metrics})
        markers = {m.label: m.at.strftime("%H:%M") for m in chart_markers(changed)}
        assert markers["Mitigated"] == markers["Rollback"] == "11:18"

    def test_markers_and_lanes_drawn(self, draft: Draft, options: RenderOptions) -> None:
        """Every marker's colour and every source lane's colour appear in the image."""
        pixels = imread(io.BytesIO(render_timeline_chart(draft, options=options)), format="png")
        for marker in chart_markers(draft):
            assert has_colour(pixels, marker.colour, at_least=300), marker.label
        for _, label, colour in LANES.values():
            assert has_colour(pixels, colour), label

    def test_marker_colours_are_distinct(self, draft: Draft) -> None:
        """Each milestone has a colour of its own, so the image can tell them apart."""
        colours = [m.colour for m in chart_markers(draft)] + [colour for _, _, colour in LANES.values()]
        assert len(set(colours)) == len(colours)

    def test_empty_timeline(self, draft: Draft, options: RenderOptions) -> None:
        """A draft without events still draws a chart around the incident's own times."""
        empty = draft.model_copy(
            update={"timeline": Timeline(), "suspects": (), "rollbacks": (), "metrics": ()}
        )
        data = render_timeline_chart(empty, options=options)
        assert data.startswith(PNG_SIGNATURE) and png_size(data) == (1600, 800)
        assert [m.label for m in chart_markers(empty)] == ["Trigger", "Resolved"]

    def test_huge_hostile_draft(self, huge_draft: Draft) -> None:
        """5,000 events over two days and a hostile title (with '$' and emoji) still draw, without warnings."""
        title = "p99 $x^2$ spikes 🔥 " + huge_draft.incident.title
        hostile = huge_draft.model_copy(
            update={"incident": huge_draft.incident.model_copy(update={"title": title})}
        )
        data = render_timeline_chart(hostile, options=RenderOptions(timezone="Asia/Kolkata"))
        assert data.startswith(PNG_SIGNATURE) and png_size(data) == (1600, 800)
