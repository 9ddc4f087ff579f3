from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from bot.timeline.models import (
    ChatMessage,
    Deployment,
    EventKind,
    Source,
    Timeline,
    TimelineEvent,
    datetime_to_slack_ts,
    slack_ts_to_datetime,
)
from tests.builders import T0, incident


def event(
    minutes: float, kind: EventKind, *, source: Source = Source.PAGERDUTY, **fields: object
) -> TimelineEvent:
    return TimelineEvent.model_validate(
        {"at": T0 + timedelta(minutes=minutes), "source": source, "kind": kind, "text": kind.value, **fields}
    )


class TestSlackTimestamps:
    def test_ts_becomes_an_aware_utc_datetime(self) -> None:
        """A Slack ts is seconds since the epoch, read as aware UTC with its microseconds."""
        assert slack_ts_to_datetime("1721471400.000100") == datetime(2024, 7, 20, 10, 30, 0, 100, tzinfo=UTC)

    def test_datetime_becomes_a_six_digit_ts(self) -> None:
        """A datetime becomes a ts with six decimals, as Slack writes them."""
        assert datetime_to_slack_ts(datetime(2024, 7, 20, 10, 30, 0, 100, tzinfo=UTC)) == "1721471400.000100"

    def test_other_offsets_give_the_same_ts(self) -> None:
        """The same instant in another offset gives the same ts."""
        local = datetime(2024, 7, 20, 12, 30, tzinfo=timezone(timedelta(hours=2)))
        assert datetime_to_slack_ts(local) == "1721471400.000000"

    @pytest.mark.parametrize(
        "ts", ["1721471400.000100", "1721471400.999999", "1721471400.000001", "1000000000.123456"]
    )
    def test_round_trip_keeps_the_ts(self, ts: str) -> None:
        """ts -> datetime -> ts gives back the same string (no float drift)."""
        assert datetime_to_slack_ts(slack_ts_to_datetime(ts)) == ts


class TestIncident:
    def test_key_is_the_pd_number(self) -> None:
        """The key shows the incident number as "PD-9876"."""
        assert incident().key == "PD-9876"

    def test_commander_is_the_first_acknowledger(self) -> None:
        """The first acknowledger commands, even when someone else is assigned."""
        assert (
            incident(acknowledgers=("Ana Lima", "Ben Okafor"), assignees=("Carlos Mendes",)).commander
            == "Ana Lima"
        )

    def test_commander_falls_back_to_the_first_assignee(self) -> None:
        """Without acknowledgers the first assignee commands."""
        assert incident(assignees=("Carlos Mendes", "Ana Lima")).commander == "Carlos Mendes"

    def test_no_commander_without_people(self) -> None:
        """Without acknowledgers or assignees there is no commander."""
        assert incident().commander is None

    def test_times_are_normalised_to_utc(self) -> None:
        """created_at in another offset is stored as the same instant in UTC."""
        created = incident(
            created_at=datetime(2024, 7, 20, 12, 30, tzinfo=timezone(timedelta(hours=2)))
        ).created_at
        assert created == T0
        assert created.tzinfo is UTC

    def test_naive_times_are_refused(self) -> None:
        """A naive datetime is a validation error, never silently local time."""
        with pytest.raises(ValidationError):
            incident(created_at=datetime(2024, 7, 20, 10, 30))


class TestChatMessage:
    def test_at_is_the_ts_as_datetime(self) -> None:
        """A message's time is its ts as UTC."""
        assert ChatMessage(ts="1721471400.000100", channel_id="C1").at == datetime(
            2024, 7, 20, 10, 30, 0, 100, tzinfo=UTC
        )

    def test_reply_has_another_thread_ts(self) -> None:
        """A message whose thread_ts is another message's ts is a reply."""
        assert ChatMessage(ts="1721471500.000000", channel_id="C1", thread_ts="1721471400.000100").is_reply

    def test_parent_and_plain_messages_are_not_replies(self) -> None:
        """A thread parent (thread_ts == ts) and an unthreaded message are not replies."""
        assert not ChatMessage(
            ts="1721471400.000100", channel_id="C1", thread_ts="1721471400.000100"
        ).is_reply
        assert not ChatMessage(ts="1721471400.000100", channel_id="C1").is_reply


class TestDeployment:
    def test_is_rollback_when_it_restores_a_sha(self) -> None:
        """A deployment with rolls_back_to set is a rollback; without it is not."""
        deployment = Deployment(
            id=1004,
            repo="acme/customer-api",
            sha="7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
            ref="7a6b5c4",
            environment="production",
            created_at=T0,
            url="https://github.com/acme/customer-api/deployments/1004",
        )
        assert not deployment.is_rollback
        assert deployment.model_copy(update={"rolls_back_to": deployment.sha}).is_rollback


class TestTimeline:
    def test_of_kind_and_first(self) -> None:
        """of_kind keeps the order of the chosen kinds; first finds the earliest of them or None."""
        timeline = Timeline(
            events=(
                event(0, EventKind.TRIGGERED),
                event(4, EventKind.ACKNOWLEDGED),
                event(45, EventKind.RESOLVED),
            )
        )
        assert [e.kind for e in timeline.of_kind(EventKind.RESOLVED, EventKind.TRIGGERED)] == [
            EventKind.TRIGGERED,
            EventKind.RESOLVED,
        ]
        assert timeline.first(EventKind.ACKNOWLEDGED, EventKind.RESOLVED) == timeline.events[1]
        assert timeline.first(EventKind.ROLLBACK) is None

    def test_all_messages_includes_replies_in_time_order(self) -> None:
        """all_messages flattens thread replies and sorts every chat message by time."""
        reply = event(20, EventKind.MESSAGE, source=Source.SLACK, id="reply")
        parent = event(10, EventKind.MESSAGE, source=Source.SLACK, id="parent", replies=(reply,))
        later = event(15, EventKind.MESSAGE, source=Source.SLACK, id="later")
        timeline = Timeline(events=(event(0, EventKind.TRIGGERED), parent, later))
        assert [e.id for e in timeline.all_messages()] == ["parent", "later", "reply"]
