from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.render.options import RenderOptions
from bot.render.timefmt import format_duration, format_local, format_time


class TestFormatTime:
    def test_local_time_beside_utc(self) -> None:
        """A UTC time shows the team's local time beside it, with the zone's abbreviation."""
        at = datetime(2024, 7, 20, 10, 30, tzinfo=UTC)
        assert format_time(at, tz="Europe/Berlin") == "2024-07-20 10:30 UTC (12:30 CEST)"

    def test_utc_team_shows_utc_once(self) -> None:
        """A team on UTC sees no redundant local time."""
        assert format_time(datetime(2024, 7, 20, 10, 30, tzinfo=UTC), tz="UTC") == "2024-07-20 10:30 UTC"

    def test_local_date_when_it_differs(self) -> None:
        """When the local date is another day, the local part carries its date."""
        at = datetime(2024, 7, 20, 18, 30, tzinfo=UTC)
        assert format_time(at, tz="Australia/Sydney") == "2024-07-20 18:30 UTC (2024-07-21 04:30 AEST)"

    def test_zone_without_abbreviation_reads_as_offset(self) -> None:
        """Zones whose abbreviation is a bare offset read as 'UTC-03'."""
        assert (
            format_local(datetime(2024, 7, 20, 10, 30, tzinfo=UTC), tz="America/Sao_Paulo") == "07:30 UTC-03"
        )

    def test_without_date(self) -> None:
        """Inside one day the clock alone is enough."""
        at = datetime(2024, 7, 20, 10, 30, tzinfo=UTC)
        assert format_time(at, tz="Europe/Berlin", date=False) == "10:30 UTC (12:30 CEST)"


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (35, "35 s"),
            (0, "0 s"),
            (4 * 60 + 12, "4 min"),
            (105 * 60, "1 h 45 min"),
            (2 * 3600, "2 h"),
            (27 * 3600, "1 d 3 h"),
            (-90, "-1 min"),
        ],
    )
    def test_readable(self, seconds: int, text: str) -> None:
        """Durations read as people say them, largest unit first."""
        assert format_duration(seconds) == text


class TestRenderOptions:
    def test_unknown_zone_refused_at_construction(self) -> None:
        """A zone that does not exist fails when the options are built, not halfway through a render."""
        with pytest.raises(Exception, match="Mars"):
            RenderOptions(timezone="Mars/Olympus_Mons")

    def test_defaults(self) -> None:
        """The defaults render in UTC with the bundled templates and 15 preview events."""
        options = RenderOptions()
        assert (options.timezone, options.templates_dir, options.max_preview_events) == ("UTC", None, 15)
