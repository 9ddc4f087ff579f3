from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.timeline.build import build_timeline, recognise_rollbacks
from bot.timeline.models import (
    ChatMessage,
    Deployment,
    EventKind,
    IncidentEvidence,
    Source,
    TimelineEvent,
    datetime_to_slack_ts,
)
from tests.builders import at, incident

CHANNEL = "C07INC9876"
BOT_USER = "U09PMBOT"
USERS = {"U01ANA": "Ana Lima", "U02BEN": "Ben Okafor", "U03CAR": "Carlos Mendes", "U04DEE": "Dee Park"}
SHA_GOOD = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
SHA_BAD = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
SHA_AUTH = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"


def ts(minutes: float) -> str:
    return datetime_to_slack_ts(at(minutes))


def pd(minutes: float, kind: EventKind, text: str, **fields: object) -> TimelineEvent:
    values: dict[str, object] = {"at": at(minutes), "source": Source.PAGERDUTY, "kind": kind, "text": text}
    values.update(fields)
    return TimelineEvent.model_validate(values)


def alert(
    minutes: float, *, key: str | None = "high-api-latency", text: str = "Datadog: High API Latency"
) -> TimelineEvent:
    return pd(minutes, EventKind.ALERT, text, details={"alert_key": key} if key else {})


def deploy(
    id: int, created: datetime | float, sha: str, *, repo: str = "acme/customer-api", **fields: object
) -> Deployment:
    values: dict[str, object] = {
        "id": id,
        "repo": repo,
        "sha": sha,
        "ref": sha[:7],
        "environment": "production",
        "created_at": created if isinstance(created, datetime) else at(created),
        "status": "success",
        "url": f"https://github.com/{repo}/deployments/{id}",
    }
    values.update(fields)
    return Deployment.model_validate(values)


def msg(minutes: float, text: str, *, user: str | None = "U01ANA", **fields: object) -> ChatMessage:
    stamp = ts(minutes)
    values: dict[str, object] = {
        "ts": stamp,
        "channel_id": CHANNEL,
        "user_id": user,
        "text": text,
        "permalink": f"https://acme.slack.com/archives/{CHANNEL}/p{stamp.replace('.', '')}",
    }
    values.update(fields)
    return ChatMessage.model_validate(values)


def reply(minutes: float, parent_minutes: float, text: str, **fields: object) -> ChatMessage:
    return msg(minutes, text, thread_ts=ts(parent_minutes), **fields)


def evidence(**fields: object) -> IncidentEvidence:
    values: dict[str, object] = {
        "incident": incident(),
        "users": USERS,
        "channels": {CHANNEL: "inc-9876-api-latency"},
        "bot_user_id": BOT_USER,
    }
    values.update(fields)
    return IncidentEvidence.model_validate(values)


def texts(events: tuple[TimelineEvent, ...]) -> list[str]:
    return [e.text for e in events]


class TestRecogniseRollbacks:
    def test_returns_copies_in_time_order(self) -> None:
        """Deployments come back sorted by creation time, ties in input order."""
        first, second, tie = deploy(1, 10, SHA_GOOD), deploy(2, 20, SHA_BAD), deploy(3, 20, SHA_AUTH)
        assert [d.id for d in recognise_rollbacks([second, tie, first])] == [1, 2, 3]

    def test_earlier_sha_after_another_is_a_rollback(self) -> None:
        """Good, bad, good again: the third deploy rolls back to the good sha."""
        out = recognise_rollbacks(
            [deploy(1001, -900, SHA_GOOD), deploy(1003, -18, SHA_BAD), deploy(1004, 48, SHA_GOOD)]
        )
        assert [d.rolls_back_to for d in out] == [None, None, SHA_GOOD]

    def test_redeploy_of_the_same_sha_is_not_a_rollback(self) -> None:
        """Deploying the running sha again, with nothing between, is not a rollback."""
        out = recognise_rollbacks([deploy(1, 0, SHA_GOOD), deploy(2, 5, SHA_GOOD)])
        assert [d.is_rollback for d in out] == [False, False]

    def test_redeploy_right_after_a_rollback_is_not_another_rollback(self) -> None:
        """Good, bad, good, good: only the third is a rollback."""
        out = recognise_rollbacks(
            [deploy(1, 0, SHA_GOOD), deploy(2, 5, SHA_BAD), deploy(3, 10, SHA_GOOD), deploy(4, 15, SHA_GOOD)]
        )
        assert [d.is_rollback for d in out] == [False, False, True, False]

    def test_other_environments_do_not_count(self) -> None:
        """A different sha deployed to staging between two production deploys makes no rollback."""
        out = recognise_rollbacks(
            [deploy(1, 0, SHA_GOOD), deploy(2, 5, SHA_BAD, environment="staging"), deploy(3, 10, SHA_GOOD)]
        )
        assert not any(d.is_rollback for d in out)

    def test_other_repos_do_not_count(self) -> None:
        """A deploy of another repo between two deploys of one sha makes no rollback."""
        out = recognise_rollbacks(
            [
                deploy(1, 0, SHA_GOOD),
                deploy(2, 5, SHA_AUTH, repo="acme/auth-service"),
                deploy(3, 10, SHA_GOOD),
            ]
        )
        assert not any(d.is_rollback for d in out)

    def test_description_naming_a_known_sha_is_a_rollback(self) -> None:
        """ "Rollback to 7a6b5c4" marks a rollback even when the earlier deploy is outside the input."""
        (out,) = recognise_rollbacks([deploy(1004, 48, SHA_GOOD, description="Rollback to 7a6b5c4")])
        assert out.rolls_back_to == SHA_GOOD

    def test_description_sha_stays_short_when_unknown(self) -> None:
        """A revert naming a sha no deployment has keeps the sha as written."""
        (out,) = recognise_rollbacks(
            [deploy(9, 0, SHA_AUTH, description="Revert to 0c0ffee1 after bad deploy")]
        )
        assert out.rolls_back_to == "0c0ffee1"

    @pytest.mark.parametrize(
        "description",
        ["Rollback the pool change", "Deploy 7a6b5c4: pool v2", "Rolled back defaced config", ""],
    )
    def test_description_needs_both_the_word_and_a_sha(self, description: str) -> None:
        """Without a rollback/revert word and a sha, a description marks nothing."""
        (out,) = recognise_rollbacks([deploy(1, 0, SHA_AUTH, description=description)])
        assert not out.is_rollback

    def test_running_twice_changes_nothing(self) -> None:
        """Recognising already recognised deployments gives the same result."""
        once = recognise_rollbacks([deploy(1, 0, SHA_GOOD), deploy(2, 5, SHA_BAD), deploy(3, 10, SHA_GOOD)])
        assert recognise_rollbacks(once) == once

    def test_inputs_are_left_alone(self) -> None:
        """The given deployments are not changed; marked ones are new values."""
        inputs = [deploy(1, 0, SHA_GOOD), deploy(2, 5, SHA_BAD), deploy(3, 10, SHA_GOOD)]
        out = recognise_rollbacks(inputs)
        assert inputs[2].rolls_back_to is None
        assert out[2] is not inputs[2]


class TestBuildTimelineOrder:
    def test_sources_interleave_by_time(self) -> None:
        """PagerDuty, GitHub and Slack events are merged by time."""
        timeline = build_timeline(
            evidence(
                pagerduty_events=(
                    pd(4, EventKind.ACKNOWLEDGED, "Acknowledged"),
                    pd(0, EventKind.TRIGGERED, "Triggered"),
                ),
                deployments=(deploy(1003, -18, SHA_BAD),),
                messages=(msg(6, "investigating"), msg(2, "seeing 5xx")),
            )
        )
        assert [(e.source, e.at) for e in timeline.events] == [
            (Source.GITHUB, at(-18)),
            (Source.PAGERDUTY, at(0)),
            (Source.SLACK, at(2)),
            (Source.PAGERDUTY, at(4)),
            (Source.SLACK, at(6)),
        ]

    def test_ties_go_pagerduty_github_slack_then_given_order(self) -> None:
        """At the same instant PagerDuty comes first, then GitHub, then Slack, each in its given order."""
        timeline = build_timeline(
            evidence(
                messages=(msg(0, "chat"),),
                deployments=(deploy(1, 0, SHA_GOOD),),
                pagerduty_events=(pd(0, EventKind.TRIGGERED, "first"), pd(0, EventKind.NOTIFIED, "second")),
            )
        )
        assert [e.source for e in timeline.events] == [
            Source.PAGERDUTY,
            Source.PAGERDUTY,
            Source.GITHUB,
            Source.SLACK,
        ]
        assert texts(timeline.events)[:2] == ["first", "second"]

    def test_times_are_utc(self) -> None:
        """Times given in another offset come out as the same instant in UTC."""
        plus_two = timezone(timedelta(hours=2))
        timeline = build_timeline(
            evidence(deployments=(deploy(1, datetime(2024, 7, 20, 12, 12, tzinfo=plus_two), SHA_BAD),))
        )
        (event,) = timeline.events
        assert event.at == at(-18)
        assert event.at.tzinfo is UTC

    def test_empty_evidence_gives_an_empty_timeline(self) -> None:
        """No evidence, no events and nothing removed."""
        timeline = build_timeline(evidence())
        assert timeline.events == ()
        assert timeline.removed_noise == 0


class TestBuildTimelineAlerts:
    def test_duplicate_alerts_collapse_into_the_first(self) -> None:
        """Three firings of one alert key become one event: first time, last time, count 3."""
        timeline = build_timeline(
            evidence(pagerduty_events=(alert(0), pd(0, EventKind.TRIGGERED, "Triggered"), alert(2), alert(5)))
        )
        (collapsed,) = timeline.of_kind(EventKind.ALERT)
        assert collapsed.at == at(0)
        assert collapsed.last_at == at(5)
        assert collapsed.count == 3
        assert collapsed.text == "Datadog: High API Latency (fired 3 times)"
        assert len(timeline.events) == 2
        assert timeline.removed_noise == 2

    def test_different_alert_keys_stay_apart(self) -> None:
        """Alerts with different keys are not folded, even with the same text."""
        timeline = build_timeline(evidence(pagerduty_events=(alert(0, key="a"), alert(1, key="b"))))
        assert [e.count for e in timeline.events] == [1, 1]
        assert timeline.removed_noise == 0

    def test_alerts_without_key_fold_by_text(self) -> None:
        """Without an alert key the same text folds and a different text does not."""
        timeline = build_timeline(
            evidence(
                pagerduty_events=(
                    alert(0, key=None),
                    alert(3, key=None),
                    alert(4, key=None, text="Disk full"),
                )
            )
        )
        assert texts(timeline.events) == ["Datadog: High API Latency (fired 2 times)", "Disk full"]

    def test_other_kinds_are_not_folded(self) -> None:
        """Two notifications with the same text stay two events."""
        timeline = build_timeline(
            evidence(
                pagerduty_events=(
                    pd(0, EventKind.NOTIFIED, "Notified Ana Lima"),
                    pd(1, EventKind.NOTIFIED, "Notified Ana Lima"),
                )
            )
        )
        assert len(timeline.events) == 2

    def test_other_events_pass_through_unchanged(self) -> None:
        """PagerDuty events other than folded alerts are kept as given."""
        note = pd(
            30,
            EventKind.NOTE,
            "Suspect the pool change",
            actor="Ana Lima",
            url="https://acme.pagerduty.com/x",
            id="R1",
        )
        assert build_timeline(evidence(pagerduty_events=(note,))).events == (note,)


class TestBuildTimelineDeploys:
    def test_deploy_event(self) -> None:
        """A deployment becomes a GitHub DEPLOY event with its text, creator, link and details."""
        deployment = deploy(
            1003,
            -18,
            SHA_BAD,
            service="customer-api",
            description="Deploy #482: DB client pool v2",
            creator="ben-okafor",
            status="inactive",
        )
        (event,) = build_timeline(evidence(deployments=(deployment,))).events
        assert event.kind is EventKind.DEPLOY
        assert event.source is Source.GITHUB
        assert event.text == (
            "Deployed acme/customer-api 9f8e7d6 to production: Deploy #482: DB client pool v2 (success → inactive)"
        )
        assert (event.actor, event.url, event.id) == (
            "ben-okafor",
            "https://github.com/acme/customer-api/deployments/1003",
            "1003",
        )
        assert event.details == {
            "repo": "acme/customer-api",
            "service": "customer-api",
            "sha": SHA_BAD,
            "ref": "9f8e7d6",
            "status": "inactive",
            "environment": "production",
        }

    def test_rollback_event(self) -> None:
        """A recognised rollback becomes a ROLLBACK event naming the restored sha."""
        timeline = build_timeline(
            evidence(
                deployments=(
                    deploy(1004, 48, SHA_GOOD, description="Rollback to 7a6b5c4"),
                    deploy(1001, -900, SHA_GOOD),
                    deploy(1003, -18, SHA_BAD),
                )
            )
        )
        (rollback,) = timeline.of_kind(EventKind.ROLLBACK)
        assert (
            rollback.text
            == "Rolled back acme/customer-api to 7a6b5c4 in production: Rollback to 7a6b5c4 (success)"
        )
        assert rollback.details["rolls_back_to"] == SHA_GOOD
        assert [e.kind for e in timeline.events] == [EventKind.DEPLOY, EventKind.DEPLOY, EventKind.ROLLBACK]

    @pytest.mark.parametrize(
        ("status", "suffix"), [("failure", " (failure)"), ("in_progress", " (in_progress)"), ("unknown", "")]
    )
    def test_status_in_text(self, status: str, suffix: str) -> None:
        """The latest status ends the text; an unknown status is left out."""
        (event,) = build_timeline(evidence(deployments=(deploy(1, 0, SHA_GOOD, status=status),))).events
        assert event.text == f"Deployed acme/customer-api 7a6b5c4 to production{suffix}"


class TestBuildTimelineMessages:
    def test_message_event(self) -> None:
        """A message becomes a Slack MESSAGE event: author name, readable text, permalink, ts as id."""
        message = msg(
            25,
            "<!channel> <@U02BEN> see <https://github.com/acme/customer-api/pull/482|PR #482>",
            user="U03CAR",
            pinned=True,
        )
        (event,) = build_timeline(evidence(messages=(message,))).events
        assert event.source is Source.SLACK
        assert event.kind is EventKind.MESSAGE
        assert (
            event.text == "@channel @Ben Okafor see [PR #482](https://github.com/acme/customer-api/pull/482)"
        )
        assert (event.actor, event.url, event.id, event.at) == (
            "Carlos Mendes",
            message.permalink,
            message.ts,
            at(25),
        )
        assert event.pinned
        assert not event.edited

    def test_unknown_author_keeps_the_user_id(self) -> None:
        """An author missing from the users map is shown by user id."""
        (event,) = build_timeline(evidence(messages=(msg(0, "hi", user="U77NEW"),))).events
        assert event.actor == "U77NEW"

    def test_edited_message_keeps_the_latest_text(self) -> None:
        """An edited message carries the text the API gave and edited=True."""
        (event,) = build_timeline(evidence(messages=(msg(60, "latest wording", edited=True),))).events
        assert (event.text, event.edited) == ("latest wording", True)

    @pytest.mark.parametrize("edited_first", [True, False])
    def test_duplicate_ts_keeps_the_edited_copy(self, edited_first: bool) -> None:
        """The same ts seen twice gives one event, the edited copy, whatever the order."""
        copies = [msg(60, "old wording"), msg(60, "new wording", edited=True)]
        timeline = build_timeline(
            evidence(messages=tuple(reversed(copies)) if edited_first else tuple(copies))
        )
        assert texts(timeline.events) == ["new wording"]
        assert timeline.removed_noise == 1

    def test_duplicate_ts_keeps_the_latest_copy(self) -> None:
        """Of two unedited copies of one ts, the one seen last is kept."""
        timeline = build_timeline(evidence(messages=(msg(60, "first copy"), msg(60, "second copy"))))
        assert texts(timeline.events) == ["second copy"]

    def test_file_share_without_text(self) -> None:
        """A shared file without a comment still shows as an event with its link."""
        (event,) = build_timeline(evidence(messages=(msg(9, "", subtype="file_share"),))).events
        assert event.text == "(shared a file)"


class TestBuildTimelineNoise:
    @pytest.mark.parametrize(
        "subtype",
        ["channel_join", "channel_leave", "channel_topic", "channel_purpose", "pinned_item", "tombstone"],
    )
    def test_system_messages_are_dropped(self, subtype: str) -> None:
        """Joins, leaves and other system messages are removed and counted."""
        timeline = build_timeline(
            evidence(
                messages=(
                    msg(8, "<@U04DEE> has joined the channel", user="U04DEE", subtype=subtype),
                    msg(9, "hi"),
                )
            )
        )
        assert texts(timeline.events) == ["hi"]
        assert timeline.removed_noise == 1

    def test_bot_messages_are_dropped(self) -> None:
        """A bot_message and any message with a bot_id are removed."""
        timeline = build_timeline(
            evidence(
                messages=(
                    msg(
                        70,
                        "Recovered: High API Latency",
                        user=None,
                        bot_id="B0DATADOG",
                        subtype="bot_message",
                    ),
                    msg(71, "Workflow says hi", user="U05WF", bot_id="B0WORKFLOW"),
                )
            )
        )
        assert timeline.events == ()
        assert timeline.removed_noise == 2

    def test_own_messages_are_dropped(self) -> None:
        """The postmortem bot's own messages are removed."""
        timeline = build_timeline(evidence(messages=(msg(80, "Draft postmortem ready", user=BOT_USER),)))
        assert timeline.events == ()
        assert timeline.removed_noise == 1

    def test_emoji_only_messages_and_replies_are_dropped(self) -> None:
        """Emoji-only messages and thread replies are removed; words with emoji stay."""
        timeline = build_timeline(
            evidence(
                messages=(
                    msg(20, "p99 thread"),
                    reply(21, 20, ":eyes:"),
                    reply(22, 20, "looking :eyes:"),
                    msg(23, ":+1: :pray:"),
                )
            )
        )
        (parent,) = timeline.events
        assert texts(parent.replies) == ["looking :eyes:"]
        assert timeline.removed_noise == 2

    @pytest.mark.parametrize("subtype", ["thread_broadcast", "me_message", "file_share"])
    def test_people_subtypes_are_kept(self, subtype: str) -> None:
        """Broadcast replies, /me messages and file shares are people's words and stay."""
        timeline = build_timeline(evidence(messages=(msg(5, "still here", subtype=subtype),)))
        assert texts(timeline.events) == ["still here"]

    def test_every_kind_of_noise_is_counted_once(self) -> None:
        """removed_noise adds folded alerts, duplicates and every dropped message."""
        timeline = build_timeline(
            evidence(
                pagerduty_events=(alert(0), alert(2), alert(5)),  # 2 folded
                messages=(
                    msg(6, "investigating"),
                    msg(6, "investigating"),  # duplicate
                    msg(8, "has joined", user="U04DEE", subtype="channel_join"),
                    msg(70, "Recovered", user=None, bot_id="B0DATADOG", subtype="bot_message"),
                    msg(80, "Draft ready", user=BOT_USER),
                    msg(20, "thread"),
                    reply(21, 20, ":eyes:"),
                ),
            )
        )
        assert texts(timeline.events) == [
            "Datadog: High API Latency (fired 3 times)",
            "investigating",
            "thread",
        ]
        assert timeline.removed_noise == 7


class TestBuildTimelineThreads:
    def test_replies_hang_under_their_parent_in_order(self) -> None:
        """Replies, given in any order, are attached to their parent by time, not top-level."""
        timeline = build_timeline(
            evidence(
                messages=(
                    reply(24, 20, "third", user="U01ANA"),
                    msg(20, "p99 thread", user="U02BEN", thread_ts=ts(20), reply_count=3),
                    reply(21, 20, "first", user="U03CAR"),
                    msg(22, "unrelated"),
                    reply(23, 20, "second", user="U04DEE"),
                )
            )
        )
        assert texts(timeline.events) == ["p99 thread", "unrelated"]
        parent = timeline.events[0]
        assert texts(parent.replies) == ["first", "second", "third"]
        assert [r.actor for r in parent.replies] == ["Carlos Mendes", "Dee Park", "Ana Lima"]
        assert texts(timeline.all_messages()) == ["p99 thread", "first", "unrelated", "second", "third"]

    def test_broadcast_reply_stays_in_its_thread(self) -> None:
        """A reply also sent to the channel, seen in history and in replies, appears once, in its thread."""
        broadcast = reply(21, 20, "fix is rolling out", subtype="thread_broadcast")
        timeline = build_timeline(
            evidence(messages=(msg(20, "thread", thread_ts=ts(20)), broadcast, broadcast))
        )
        (parent,) = timeline.events
        assert texts(parent.replies) == ["fix is rolling out"]
        assert timeline.removed_noise == 1

    def test_orphan_reply_is_top_level_and_flagged(self) -> None:
        """A reply whose parent is missing is kept top-level, marked thread_parent_missing."""
        (event,) = build_timeline(evidence(messages=(reply(21, -600, "as I said before the window"),))).events
        assert event.details["thread_parent_missing"] == "true"
        assert event.details["thread_ts"] == ts(-600)
        assert event.replies == ()

    def test_replies_of_a_dropped_parent_become_orphans(self) -> None:
        """Replies under a bot's alert message survive top-level when the bot message is dropped."""
        timeline = build_timeline(
            evidence(
                messages=(
                    msg(
                        0, "Triggered: High API Latency", user=None, bot_id="B0DATADOG", subtype="bot_message"
                    ),
                    reply(1, 0, "on it"),
                    reply(2, 0, "me too", user="U02BEN"),
                )
            )
        )
        assert texts(timeline.events) == ["on it", "me too"]
        assert all(e.details["thread_parent_missing"] == "true" for e in timeline.events)

    def test_parents_and_plain_messages_carry_no_orphan_flag(self) -> None:
        """Messages with their thread in place are not flagged."""
        timeline = build_timeline(
            evidence(messages=(msg(20, "thread", thread_ts=ts(20)), reply(21, 20, "reply")))
        )
        (parent,) = timeline.events
        assert "thread_parent_missing" not in parent.details
        assert "thread_parent_missing" not in parent.replies[0].details


class TestBuildTimelineScale:
    def test_ten_thousand_messages(self) -> None:
        """A channel of 12,000 messages with threads, noise and duplicates builds correctly."""
        messages: list[ChatMessage] = []
        for thread in range(2_000):
            start = thread * 0.05  # minutes: a parent every 3 seconds
            messages.append(msg(start, f"parent {thread}", thread_ts=ts(start)))
            messages.extend(reply(start + 0.01 * (r + 1), start, f"reply {thread}.{r}") for r in range(3))
            messages.append(reply(start + 0.04, start, ":eyes:"))  # emoji-only noise
            messages.append(msg(start + 0.045, "joined", subtype="channel_join"))  # system noise
        messages.extend(messages[:100])  # duplicates, as history and replies overlap
        messages.reverse()

        timeline = build_timeline(evidence(messages=tuple(messages), pagerduty_events=(alert(0), alert(1))))

        assert len(messages) == 12_100
        slack = [e for e in timeline.events if e.source is Source.SLACK]
        assert len(slack) == 2_000
        assert [e.text for e in slack[:2]] == ["parent 0", "parent 1"]
        assert all(len(e.replies) == 3 for e in slack)
        assert texts(slack[-1].replies) == ["reply 1999.0", "reply 1999.1", "reply 1999.2"]
        assert [e.at for e in timeline.events] == sorted(e.at for e in timeline.events)
        assert timeline.removed_noise == 2_000 + 2_000 + 100 + 1
