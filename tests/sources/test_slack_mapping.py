"""Slack JSON -> typed values, on the bundled sample bodies of PD-9876."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from bot.samples import DEFAULT_SAMPLE
from bot.sources.slack_mapping import (
    channel_id_from_url,
    message_from_json,
    names_incident,
    permalink,
    referenced_ids,
    user_name_from_json,
)
from bot.timeline.models import datetime_to_slack_ts

SLACK = DEFAULT_SAMPLE / "slack"
WORKSPACE = "https://acme.slack.com/"
CHANNEL = "C07INC9876"


@cache
def _read(*parts: str) -> Any:
    return json.loads(SLACK.joinpath(*parts).read_text(encoding="utf-8"))


def history() -> list[dict[str, Any]]:
    return _read("conversations.history.json")["messages"]


def at(hour: int, minute: int, second: int = 0) -> list[dict[str, Any]]:
    """Top-level sample messages posted in that second of 2024-07-20 (UTC)."""
    second_ts = datetime_to_slack_ts(datetime(2024, 7, 20, hour, minute, second, tzinfo=UTC)).split(".")[0]
    return [m for m in history() if m["ts"].split(".")[0] == second_ts]


def one(hour: int, minute: int, second: int = 0) -> dict[str, Any]:
    (message,) = at(hour, minute, second)
    return message


def mapped(message: dict[str, Any], workspace_url: str | None = WORKSPACE):
    return message_from_json(message, channel_id=CHANNEL, workspace_url=workspace_url)


class TestSample:
    def test_history_is_one_page_newest_first(self) -> None:
        """The history body holds the whole channel, newest first, with has_more false, as Slack returns it."""
        body = _read("conversations.history.json")
        stamps = [float(m["ts"]) for m in body["messages"]]
        assert body["ok"] is True and body["has_more"] is False
        assert stamps == sorted(stamps, reverse=True)
        assert len(set(stamps)) == len(stamps)

    def test_ts_match_the_story_times(self) -> None:
        """The 10:36 broadcast has ts 1721471760.000100 and the 12:16 resolution is the newest message."""
        assert one(10, 36)["ts"] == "1721471760.000100"
        assert history()[0]["text"] == "Incident is resolved, all clear. Thanks all!"
        assert one(12, 16) is history()[0]

    def test_every_thread_has_its_replies_file(self) -> None:
        """Each parent with replies has conversations.replies/<ts>.json: parent first, then reply_count replies."""
        parents = [m for m in history() if m.get("reply_count")]
        assert len(parents) == 3
        for parent in parents:
            replies = _read("conversations.replies", f"{parent['ts']}.json")["messages"]
            assert replies[0]["ts"] == parent["ts"]
            assert len(replies) == parent["reply_count"] + 1
            assert all(
                r["thread_ts"] == parent["ts"] and r["parent_user_id"] == parent["user"] for r in replies[1:]
            )
            assert replies[-1]["ts"] == parent["latest_reply"]

    def test_story_cues_are_there(self) -> None:
        """The action items, lessons, mention, link and ping of the story appear verbatim."""
        texts = [m["text"] for m in history()]
        for cue in (
            "action item: <@U02BEN> add a CI check that fails when the DB pool size drops below 20",
            "TODO: add a Datadog monitor on DB connection wait time",
            "we should be more careful",
            "follow-up: Carlos to document pool sizing in the runbook",
            "went well: the rollback took 7 minutes",
            "we got lucky: Saturday traffic was low",
        ):
            assert cue in texts
        assert one(10, 36)["text"].startswith("<!channel>")
        assert "<https://github.com/acme/customer-api/pull/482|PR #482>" in one(10, 55)["text"]
        assert "```" in one(10, 50)["text"]

    def test_pasted_secrets_look_real_but_fake(self) -> None:
        """The 11:05 paste holds a Bearer token and an AWS key id + secret, all marked as examples."""
        text = one(11, 5)["text"]
        assert "Authorization: Bearer eyJ" in text
        assert "AKIAEXAMPLEFAKE98760" in text and "AWS_SECRET_ACCESS_KEY=fAkE" in text


class TestPermalink:
    def test_top_level_message(self) -> None:
        """A message links as /archives/<channel>/p<ts without the dot>."""
        link = permalink(workspace_url=WORKSPACE, channel_id=CHANNEL, ts="1721471760.000100")
        assert link == "https://acme.slack.com/archives/C07INC9876/p1721471760000100"

    def test_reply_carries_its_thread(self) -> None:
        """A reply's link names its thread and channel, as Slack's own permalinks do."""
        link = permalink(
            workspace_url="https://acme.slack.com",
            channel_id=CHANNEL,
            ts="1721472660.000500",
            thread_ts="1721472600.000400",
        )
        assert link == (
            "https://acme.slack.com/archives/C07INC9876/p1721472660000500?thread_ts=1721472600.000400&cid=C07INC9876"
        )

    def test_thread_parent_has_no_query(self) -> None:
        """A parent (thread_ts == ts) links like any top-level message."""
        link = permalink(
            workspace_url=WORKSPACE, channel_id=CHANNEL, ts="1721472600.000400", thread_ts="1721472600.000400"
        )
        assert link.endswith("/p1721472600000400")


class TestMessageFromJson:
    def test_person_message(self) -> None:
        """A typed message keeps its ts, author, text, reactions and permalink."""
        message = mapped(one(10, 36))
        assert (message.ts, message.user_id, message.bot_id, message.subtype) == (
            "1721471760.000100",
            "U01ANA",
            None,
            None,
        )
        assert message.reactions == ("eyes",)
        assert message.permalink == "https://acme.slack.com/archives/C07INC9876/p1721471760000100"
        assert message.at.replace(microsecond=0) == datetime(2024, 7, 20, 10, 36, tzinfo=UTC)

    def test_pinned_to_this_channel(self) -> None:
        """pinned_to holding the channel marks the root-cause message pinned; others are not."""
        root_cause = mapped(one(11, 10))
        assert root_cause.pinned and root_cause.text.startswith("root cause: ")
        assert sum(mapped(m).pinned for m in history()) == 1

    def test_pinned_elsewhere_is_not_pinned_here(self) -> None:
        """A pin in another channel does not count for this one."""
        assert not mapped({**one(11, 10), "pinned_to": ["C05DEPLOYS"]}).pinned

    def test_edited(self) -> None:
        """An `edited` object marks the message edited."""
        assert mapped(one(11, 30)).edited
        assert [m["ts"] for m in history() if mapped(m).edited] == [one(11, 30)["ts"]]

    def test_join_message(self) -> None:
        """channel_join keeps its subtype and the joining user."""
        join = mapped(one(10, 38))
        assert (join.subtype, join.user_id) == ("channel_join", "U04DEE")

    def test_integration_bot_message_reads_its_attachment(self) -> None:
        """Datadog's bot_message has no text: its attachment's summary stands in, with bot_id kept."""
        datadog = mapped(one(11, 40))
        assert (datadog.subtype, datadog.bot_id, datadog.user_id) == ("bot_message", "B0DATADOG", None)
        assert datadog.text == "Recovered: High API Latency on customer-api"

    def test_own_bot_message(self) -> None:
        """This bot's post carries its user and bot ids and no subtype."""
        own = mapped(one(11, 42))
        assert (own.user_id, own.bot_id, own.subtype) == ("U09PMBOT", "B09PMBOT", None)

    def test_thread_parent_and_reply(self) -> None:
        """A parent has thread_ts == ts and its reply_count; a reply is_reply with its thread's permalink."""
        parent = mapped(one(10, 50))
        assert parent.thread_ts == parent.ts and parent.reply_count == 3 and not parent.is_reply
        thread = _read("conversations.replies", f"{parent.ts}.json")["messages"]
        reply = mapped(thread[1])
        assert reply.is_reply and reply.thread_ts == parent.ts and reply.text == ":eyes:"
        assert reply.permalink is not None and reply.permalink.endswith(
            f"?thread_ts={parent.ts}&cid={CHANNEL}"
        )

    def test_no_workspace_no_permalink(self) -> None:
        """Without the workspace URL there is no permalink to make."""
        assert mapped(one(10, 36), workspace_url=None).permalink is None


class TestUserNameFromJson:
    @pytest.mark.parametrize(
        ("user_id", "name"), [("U01ANA", "Ana Lima"), ("U02BEN", "Ben Okafor"), ("U03CAR", "Carlos Mendes")]
    )
    def test_display_name(self, user_id: str, name: str) -> None:
        """The profile's display name comes first."""
        assert user_name_from_json(_read("users.info", f"{user_id}.json")["user"]) == name

    def test_real_name_when_no_display_name(self) -> None:
        """Dee has no display name: the real name is used."""
        user = _read("users.info", "U04DEE.json")["user"]
        assert user["profile"]["display_name"] == ""
        assert user_name_from_json(user) == "Dee Park"

    def test_bot_user(self) -> None:
        """The bot's own user reads as its real name."""
        assert user_name_from_json(_read("users.info", "U09PMBOT.json")["user"]) == "Postmortem Bot"

    def test_handle_when_nothing_else(self) -> None:
        """A user with neither display nor real name falls back to the handle."""
        assert (
            user_name_from_json(
                {"id": "U0X", "name": "sam", "profile": {"display_name": "", "real_name": ""}}
            )
            == "sam"
        )

    def test_deactivated(self) -> None:
        """A deleted user is marked deactivated."""
        user = {**_read("users.info", "U02BEN.json")["user"], "deleted": True}
        assert user_name_from_json(user) == "Ben Okafor (deactivated)"


class TestReferencedIds:
    def test_users_and_channels_in_both_forms(self) -> None:
        """<@U…>, <@U…|name>, <#C…> and <#C…|name> are all found; links and pings are not ids."""
        users, channels = referenced_ids(
            "<@U02BEN> and <@W0ENT1|ent> see <#C05DEPLOYS|deploys> and <#G0PRIV1> <!channel> <https://x.example|x>"
        )
        assert users == {"U02BEN", "W0ENT1"}
        assert channels == {"C05DEPLOYS", "G0PRIV1"}

    def test_sample_mentions(self) -> None:
        """The sample mentions Ben, Dee and #deploys."""
        users: set[str] = set()
        channels: set[str] = set()
        texts = [m["text"] for m in history()]
        texts += [
            r["text"]
            for m in history()
            if m.get("reply_count")
            for r in _read("conversations.replies", f"{m['ts']}.json")["messages"]
        ]
        for text in texts:
            found_users, found_channels = referenced_ids(text)
            users |= found_users
            channels |= found_channels
        assert users == {"U02BEN", "U04DEE"}
        assert channels == {"C05DEPLOYS"}


class TestChannelIdFromUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "https://acme.slack.com/archives/C07INC9876",
            "https://acme.slack.com/archives/C07INC9876/p1721471760000100",
            "https://app.slack.com/client/T07ACME00/C07INC9876",
            "https://slack.com/app_redirect?channel=C07INC9876",
            "slack://channel?team=T07ACME00&id=C07INC9876",
        ],
    )
    def test_slack_links(self, url: str) -> None:
        """Archive, client, redirect and deep links all give the channel id."""
        assert channel_id_from_url(url) == "C07INC9876"

    @pytest.mark.parametrize(
        "url", [None, "", "https://zoom.us/j/98765432100", "https://meet.example/archives/C07INC9876"]
    )
    def test_other_links(self, url: str | None) -> None:
        """A bridge that is not Slack has no channel."""
        assert channel_id_from_url(url) is None


class TestNamesIncident:
    @pytest.mark.parametrize(
        "name", ["inc-9876", "incident-pd-9876", "inc-9876-api-latency", "pd9876", "9876_hotfix"]
    )
    def test_whole_token(self, name: str) -> None:
        """The number as a whole token of the name matches."""
        assert names_incident(name, 9876)

    @pytest.mark.parametrize("name", ["inc-98760", "inc-19876", "inc-98760-billing-export", "general"])
    def test_part_of_another_number(self, name: str) -> None:
        """A longer number that merely contains it does not."""
        assert not names_incident(name, 9876)
