"""The Slack history source and client, through the real slack_sdk WebClient against the local fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import AuthError, ChannelAccessError, SourceUnavailable
from bot.sources.slack_client import build_web_client
from bot.sources.slack_history import THREAD_READERS, SlackHistorySource
from bot.timeline.models import Channel, Incident
from tests.fakes.http import Fault
from tests.fakes.slack_web import APP_TOKEN, BOT_TOKEN, SlackWebFake
from tests.fakes.tls import server_context, write_ca_bundle
from tests.fakes.wait import poll

CHANNEL = "C07INC9876"
OLDEST = datetime(2024, 7, 20, 10, 0, tzinfo=UTC)
LATEST = datetime(2024, 7, 20, 13, 15, tzinfo=UTC)
INCIDENT = Incident(
    id="Q1R2S3T4U5V6W7",
    number=9876,
    title="High severity API latency spikes in production",
    url="https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7",
    status="resolved",
    created_at=datetime(2024, 7, 20, 10, 30, tzinfo=UTC),
    conference_url="https://acme.slack.com/archives/C07INC9876",
)


@pytest.fixture(scope="module")
def server() -> Iterator[SlackWebFake]:
    with SlackWebFake() as running:
        yield running


@pytest.fixture
def fake(server: SlackWebFake) -> SlackWebFake:
    """The module's fake, reset to the bare sample (stopping a server costs half a second)."""
    server.reset()
    return server


def client_for(
    fake: SlackWebFake,
    *,
    token: str = BOT_TOKEN,
    timeout: float = 5.0,
    max_retries: int = 2,
    reads_only: bool = False,
) -> WebClient:
    return build_web_client(
        token=token, base_url=fake.api_url, timeout=timeout, max_retries=max_retries, reads_only=reads_only
    )


def source_for(
    fake: SlackWebFake,
    *,
    token: str = BOT_TOKEN,
    timeout: float = 5.0,
    max_retries: int = 2,
    page_size: int = 200,
) -> SlackHistorySource:
    client = client_for(fake, token=token, timeout=timeout, max_retries=max_retries, reads_only=True)
    return SlackHistorySource(client=client, page_size=page_size)


def sample_channel() -> Channel:
    return Channel(id=CHANNEL, name="inc-9876-api-latency", url="https://acme.slack.com/archives/C07INC9876")


def calls(fake: SlackWebFake, method: str) -> list:
    return fake.requests_to(rf"/api/{method}$")


class TestBuildWebClient:
    def test_rate_limit_waits_for_retry_after(self, fake: SlackWebFake) -> None:
        """A 429 is retried, and not before its Retry-After has passed."""
        fake.faults.add(Fault("429", times=1, path="conversations.info", retry_after=1))
        response = client_for(fake).conversations_info(channel=CHANNEL)
        assert response["channel"]["name"] == "inc-9876-api-latency"
        first, second = calls(fake, "conversations.info")
        assert (first.status, second.status) == (429, 200)
        assert second.received_at - first.answered_at >= 1.0

    @pytest.mark.parametrize("status", [500, 502, 504])  # 503: test_persistent_server_error
    def test_server_errors_are_retried(self, fake: SlackWebFake, status: int) -> None:
        """A transient 5xx is retried and the call succeeds."""
        fake.faults.add(Fault("5xx", times=1, path="auth.test", status=status))
        assert client_for(fake).auth_test()["user_id"] == "U09PMBOT"
        assert [r.status for r in calls(fake, "auth.test")] == [status, 200]

    def test_a_reading_client_retries_a_timed_out_request(self, fake: SlackWebFake) -> None:
        """A read whose answer does not come within the timeout is sent again, and the call succeeds."""
        fake.faults.add(Fault("hang", times=1, path="conversations.info", seconds=2))
        response = client_for(fake, timeout=0.3, reads_only=True).conversations_info(channel=CHANNEL)
        assert response["channel"]["id"] == CHANNEL
        # The held request is recorded once the fake lets go of it, after the client gave up on it.
        poll(lambda: len(calls(fake, "conversations.info")) == 2, what="the held request and its retry")
        assert sorted(r.status for r in calls(fake, "conversations.info")) == [200, 504]

    def test_the_posting_client_does_not_resend_a_timed_out_post(self, fake: SlackWebFake) -> None:
        """A post whose answer is late may have landed: it is not sent again (no message posted twice)."""
        fake.faults.add(Fault("hang", times=1, path="chat.postMessage", seconds=1))
        with pytest.raises(TimeoutError):
            client_for(fake, timeout=0.3).chat_postMessage(channel=CHANNEL, text="Drafting…")
        poll(lambda: calls(fake, "chat.postMessage"), what="the held post recorded")
        assert len(calls(fake, "chat.postMessage")) == 1

    def test_trusts_the_ca_bundle(self, tmp_path: Path) -> None:
        """Over https the client trusts the CA bundle it is given."""
        with SlackWebFake(tls=server_context()) as server:
            client = build_web_client(
                token=BOT_TOKEN, base_url=server.api_url, ca_bundle=write_ca_bundle(tmp_path)
            )
            assert server.api_url.startswith("https://")
            assert client.auth_test()["url"] == "https://acme.slack.com/"


class TestSlackErrors:
    def test_bad_token_names_the_setting(self, fake: SlackWebFake) -> None:
        """An unknown token is an AuthError naming SLACK_BOT_TOKEN, without the token."""
        with pytest.raises(AuthError, match="SLACK_BOT_TOKEN") as caught:
            source_for(fake, token="xoxb-0-0-not-a-real-token").get_channel(CHANNEL)
        assert "not-a-real-token" not in str(caught.value)

    def test_missing_scope_names_it(self, fake: SlackWebFake) -> None:
        """A missing scope is an AuthError naming the scope Slack says is needed."""
        fake.scopes.discard("channels:history")
        with pytest.raises(AuthError, match="channels:history"):
            source_for(fake).get_history(channel=sample_channel(), oldest=OLDEST, latest=LATEST)

    def test_rate_limit_after_retries(self, fake: SlackWebFake) -> None:
        """Still rate-limited after the retries: SourceUnavailable, after exactly 1 + max_retries tries."""
        fake.faults.add(Fault("429", times=None, path="conversations.history", retry_after=0))
        with pytest.raises(SourceUnavailable, match="rate-limit"):
            source_for(fake, max_retries=1).get_history(
                channel=sample_channel(), oldest=OLDEST, latest=LATEST
            )
        assert len(calls(fake, "conversations.history")) == 2

    def test_persistent_server_error(self, fake: SlackWebFake) -> None:
        """A 503 that outlasts the retries is SourceUnavailable."""
        fake.faults.add(Fault("5xx", times=None, path="conversations.info", status=503))
        with pytest.raises(SourceUnavailable, match="service_unavailable"):
            source_for(fake, max_retries=1).get_channel(CHANNEL)
        assert len(calls(fake, "conversations.info")) == 2

    def test_timeout(self, fake: SlackWebFake) -> None:
        """Answers slower than the timeout, past the retries, are SourceUnavailable saying it timed out."""
        fake.faults.add(Fault("hang", times=None, path="conversations.history", seconds=1))
        with pytest.raises(SourceUnavailable, match="timed out"):
            source_for(fake, timeout=0.3, max_retries=1).get_history(
                channel=sample_channel(), oldest=OLDEST, latest=LATEST
            )
        poll(lambda: len(calls(fake, "conversations.history")) == 2, what="the request and its one retry")

    def test_not_in_channel(self, fake: SlackWebFake) -> None:
        """A channel the bot is not in: ChannelAccessError telling to invite it, from info and from history."""
        fake.add_channel({"id": "C0OUTSIDE1", "name": "inc-9877-queue", "is_member": False})
        with pytest.raises(
            ChannelAccessError, match=r"not in #inc-9877-queue: invite it with /invite @Postmortem Bot"
        ):
            source_for(fake).get_channel("C0OUTSIDE1")
        with pytest.raises(ChannelAccessError, match="/invite @Postmortem Bot"):
            source_for(fake).get_history(
                channel=Channel(id="C0OUTSIDE1", name="inc-9877-queue"), oldest=OLDEST, latest=LATEST
            )

    def test_private_channel_it_cannot_see(self, fake: SlackWebFake) -> None:
        """A private channel without the bot is invisible (channel_not_found): the message says to invite it."""
        fake.add_channel(
            {"id": "C0SECRET01", "name": "inc-9878-security", "is_private": True, "is_member": False}
        )
        with pytest.raises(ChannelAccessError, match="private.*/invite @Postmortem Bot"):
            source_for(fake).get_channel("C0SECRET01")

    def test_archived_channel_is_still_readable(self, fake: SlackWebFake) -> None:
        """An archived channel the bot was in reads as usual."""
        fake.add_channel(
            {"id": "C0ARCHIVE1", "name": "inc-9000-old", "is_archived": True},
            [{"type": "message", "user": "U01ANA", "text": "old news", "ts": "1721472000.000100"}],
        )
        source = source_for(fake)
        channel = source.get_channel("C0ARCHIVE1")
        history = source.get_history(channel=channel, oldest=OLDEST, latest=LATEST)
        assert [m.text for m in history.messages] == ["old news"]

    def test_archived_channel_says_so_when_unreadable(self, fake: SlackWebFake) -> None:
        """An archived channel without the bot: the error says it is archived and to invite the bot."""
        fake.add_channel(
            {"id": "C0ARCHIVE2", "name": "inc-9001-old", "is_archived": True, "is_member": False}
        )
        with pytest.raises(ChannelAccessError, match="archived.*/invite @Postmortem Bot"):
            source_for(fake).get_history(
                channel=Channel(id="C0ARCHIVE2", name="inc-9001-old"), oldest=OLDEST, latest=LATEST
            )
        with pytest.raises(ChannelAccessError, match="archived"):
            source_for(fake).get_channel("C0ARCHIVE2")


class TestGetHistory:
    def test_reads_the_sample_channel(self, fake: SlackWebFake) -> None:
        """All 19 top-level messages and 6 replies, with names, channels, the bot's id and permalinks."""
        history = source_for(fake).get_history(channel=sample_channel(), oldest=OLDEST, latest=LATEST)
        assert len(history.messages) == 25
        assert sum(m.is_reply for m in history.messages) == 6
        assert [float(m.ts) for m in history.messages] == sorted(float(m.ts) for m in history.messages)
        assert history.users == {
            "U01ANA": "Ana Lima",
            "U02BEN": "Ben Okafor",
            "U03CAR": "Carlos Mendes",
            "U04DEE": "Dee Park",
            "U09PMBOT": "Postmortem Bot",
        }
        assert history.channels == {CHANNEL: "inc-9876-api-latency", "C05DEPLOYS": "deploys"}
        assert history.bot_user_id == "U09PMBOT"
        pinned = [m for m in history.messages if m.pinned]
        assert len(pinned) == 1 and pinned[0].text.startswith("root cause:")
        assert pinned[0].permalink == "https://acme.slack.com/archives/C07INC9876/p1721473800001300"

    def test_window_bounds_are_inclusive(self, fake: SlackWebFake) -> None:
        """Only messages in [oldest, latest] are read, a message exactly at a bound included."""
        oldest = datetime.fromtimestamp(1721473800, tz=UTC)  # the 11:10 root cause, to the second
        latest = datetime(2024, 7, 20, 11, 26, tzinfo=UTC)
        history = source_for(fake).get_history(channel=sample_channel(), oldest=oldest, latest=latest)
        assert [m.text[:20] for m in history.messages] == [
            "root cause: pool siz",
            "Rolling back custome",
            "error rate back to n",
        ]
        (request,) = calls(fake, "conversations.history")
        assert (request.arg("oldest"), request.arg("inclusive")) == ("1721473800.000000", "1")

    def test_every_page_and_reply_page_is_read(self, fake: SlackWebFake) -> None:
        """2,000 messages at limit 200: every history cursor and every reply cursor handed out is asked for."""
        fake.generate_channel(
            channel_id="C0BIG00001",
            name="inc-4242-big",
            count=2000,
            thread_every=100,
            long_thread_replies=450,
        )
        start = datetime(2024, 7, 21, tzinfo=UTC)
        history = source_for(fake).get_history(
            channel=Channel(id="C0BIG00001", name="inc-4242-big"),
            oldest=start,
            latest=datetime(2024, 7, 22, tzinfo=UTC),
        )
        assert len(history.messages) == 2000 + 450 + 19 * 3
        assert len({m.ts for m in history.messages}) == len(history.messages)

        pages = calls(fake, "conversations.history")
        assert len(pages) == 10 and {r.arg("limit") for r in pages} == {"200"}
        assert [r.arg("cursor") for r in pages[1:]] == fake.issued_cursors["conversations.history"]
        replies = calls(fake, "conversations.replies")
        assert len(replies) == 20 + 2  # one per thread, two more for the 450-reply thread
        asked = [r.arg("cursor") for r in replies if r.arg("cursor")]
        assert asked == fake.issued_cursors["conversations.replies"] and len(asked) == 2

    def test_threads_are_read_a_few_at_a_time(self, fake: SlackWebFake) -> None:
        """Twelve threads: their replies are asked for THREAD_READERS at a time (seen on the server's request
        times), and every reply arrives once."""
        fake.generate_channel(channel_id="C0THREADS1", name="inc-4243-threads", count=1200, thread_every=100)
        fake.faults.add(Fault("latency", times=None, path="conversations.replies", seconds=0.3))
        history = source_for(fake).get_history(
            channel=Channel(id="C0THREADS1", name="inc-4243-threads"),
            oldest=datetime(2024, 7, 21, tzinfo=UTC),
            latest=datetime(2024, 7, 22, tzinfo=UTC),
        )
        assert len(history.messages) == 1200 + 12 * 3
        assert len({m.ts for m in history.messages}) == len(history.messages)
        replies = calls(fake, "conversations.replies")
        assert sorted(r.arg("ts") for r in replies) == sorted(m.ts for m in history.messages if m.reply_count)
        in_flight = max(
            sum(1 for other in replies if other.received_at <= r.received_at < other.answered_at)
            for r in replies
        )
        assert in_flight == THREAD_READERS

    def test_replies_only_for_threads(self, fake: SlackWebFake) -> None:
        """conversations.replies is called once per parent with replies, never for other messages."""
        source_for(fake).get_history(channel=sample_channel(), oldest=OLDEST, latest=LATEST)
        assert sorted(r.arg("ts") for r in calls(fake, "conversations.replies")) == [
            "1721472600.000400",
            "1721472900.000800",
            "1721473500.001000",
        ]

    def test_each_user_looked_up_once(self, fake: SlackWebFake) -> None:
        """users.info runs once per user id, across two reads by the same source; auth.test once."""
        source = source_for(fake)
        source.get_history(channel=sample_channel(), oldest=OLDEST, latest=LATEST)
        source.get_history(channel=sample_channel(), oldest=OLDEST, latest=LATEST)
        looked_up = [r.arg("user") for r in calls(fake, "users.info")]
        assert sorted(looked_up) == ["U01ANA", "U02BEN", "U03CAR", "U04DEE", "U09PMBOT"]
        assert len(calls(fake, "auth.test")) == 1
        assert [r.arg("channel") for r in calls(fake, "conversations.info")] == ["C05DEPLOYS"]

    def test_unknown_user(self, fake: SlackWebFake) -> None:
        """A user Slack does not know (user_not_found) is named "unknown user"."""
        fake.add_channel(
            {"id": "C0GHOSTS01", "name": "inc-9002"},
            [
                {
                    "type": "message",
                    "user": "U0GONE0001",
                    "text": "hi <@U0GONE0002>",
                    "ts": "1721472000.000100",
                }
            ],
        )
        history = source_for(fake).get_history(channel=Channel(id="C0GHOSTS01"), oldest=OLDEST, latest=LATEST)
        assert history.users == {"U0GONE0001": "unknown user", "U0GONE0002": "unknown user"}

    def test_progress_is_reported(self, fake: SlackWebFake) -> None:
        """The source says how many messages it has read."""
        said: list[tuple[str, str]] = []
        source = SlackHistorySource(client=client_for(fake), progress=lambda s, m: said.append((s, m)))
        source.get_history(channel=sample_channel(), oldest=OLDEST, latest=LATEST)
        assert ("slack", "19 messages read") in said
        assert said[-1] == ("slack", "25 messages read, 3 threads")


class TestFindIncidentChannel:
    def test_by_conference_link(self, fake: SlackWebFake) -> None:
        """The channel linked from the incident is used without listing channels."""
        channel = source_for(fake).find_incident_channel(INCIDENT)
        assert channel == sample_channel()
        assert calls(fake, "conversations.list") == []

    def test_by_channel_id(self, fake: SlackWebFake) -> None:
        """incident.slack_channel_id wins over everything else."""
        incident = INCIDENT.model_copy(update={"slack_channel_id": "C05DEPLOYS", "conference_url": None})
        channel = source_for(fake).find_incident_channel(incident)
        assert channel is not None and channel.name == "deploys"

    def test_by_name_across_pages(self, fake: SlackWebFake) -> None:
        """Without a link, every page of conversations.list is read and inc-9876-… found, not inc-98760-…."""
        incident = INCIDENT.model_copy(update={"conference_url": None})
        channel = source_for(fake, page_size=2).find_incident_channel(incident)
        assert channel is not None and channel.id == CHANNEL
        listed = calls(fake, "conversations.list")
        assert len(listed) == 3
        assert [r.arg("cursor") for r in listed[1:]] == fake.issued_cursors["conversations.list"]
        assert {(r.arg("types"), r.arg("exclude_archived")) for r in listed} == {
            ("public_channel,private_channel", "1")
        }

    def test_longer_number_is_not_a_match(self, fake: SlackWebFake) -> None:
        """Only inc-98760-… exists: no channel is found."""
        fake.reset(load_sample=False)
        fake.add_channel({"id": "C0698760BX", "name": "inc-98760-billing-export"})
        assert (
            source_for(fake).find_incident_channel(INCIDENT.model_copy(update={"conference_url": None}))
            is None
        )

    def test_found_but_not_a_member(self, fake: SlackWebFake) -> None:
        """A matching channel the bot is not in is reported with the invite hint."""
        fake.reset(load_sample=False)
        fake.add_channel({"id": "C0INC98761", "name": "incident-pd-9876", "is_member": False})
        with pytest.raises(ChannelAccessError, match="invite"):
            source_for(fake).find_incident_channel(INCIDENT.model_copy(update={"conference_url": None}))


class TestSlackWebFake:
    """The fake's write side, which the Slack app tests rely on."""

    def test_posted_message_joins_history_and_updates(self, fake: SlackWebFake) -> None:
        """chat.postMessage adds the bot's message to history; chat.update edits it; both are recorded."""
        client = client_for(fake)
        posted = client.chat_postMessage(channel=CHANNEL, text="Draft ready", blocks=[{"type": "divider"}])
        assert posted["message"]["bot_id"] == "B09PMBOT" and posted["channel"] == CHANNEL
        client.chat_update(channel=CHANNEL, ts=posted["ts"], text="Draft approved")
        newest = client.conversations_history(channel=CHANNEL, limit=1)["messages"][0]
        assert (newest["ts"], newest["text"], newest["edited"]["user"]) == (
            posted["ts"],
            "Draft approved",
            "U09PMBOT",
        )
        assert [p["text"] for p in fake.posted] == ["Draft ready"]
        assert fake.posted[0]["blocks"] == [{"type": "divider"}]
        assert [u["text"] for u in fake.updated] == ["Draft approved"]

    def test_thread_reply_counts_on_parent(self, fake: SlackWebFake) -> None:
        """A reply posted in a thread shows in conversations.replies and raises the parent's reply_count."""
        client = client_for(fake)
        reply = client.chat_postMessage(channel=CHANNEL, thread_ts="1721477760.002500", text="Drafting…")
        thread = client.conversations_replies(channel=CHANNEL, ts="1721477760.002500")["messages"]
        assert [m["ts"] for m in thread] == ["1721477760.002500", reply["ts"]]
        assert thread[0]["reply_count"] == 1 and thread[0]["reply_users"] == ["U09PMBOT"]

    def test_cannot_update_someone_elses_message(self, fake: SlackWebFake) -> None:
        """chat.update of a person's message fails with cant_update_message, as in Slack."""
        with pytest.raises(SlackApiError) as caught:
            client_for(fake).chat_update(channel=CHANNEL, ts="1721471760.000100", text="x")
        assert caught.value.response["error"] == "cant_update_message"

    def test_ephemeral_needs_a_member(self, fake: SlackWebFake) -> None:
        """chat.postEphemeral reaches members and refuses others with user_not_in_channel."""
        client = client_for(fake)
        assert client.chat_postEphemeral(channel=CHANNEL, user="U02BEN", text="only you")["message_ts"]
        with pytest.raises(SlackApiError) as caught:
            client.chat_postEphemeral(channel=CHANNEL, user="U0STRANGER", text="no")
        assert caught.value.response["error"] == "user_not_in_channel"
        assert [(e["user"], e["text"]) for e in fake.ephemeral] == [("U02BEN", "only you")]

    def test_views_open_and_update(self, fake: SlackWebFake) -> None:
        """views.open returns a view with an id; views.update with its hash replaces it; an expired trigger fails."""
        client = client_for(fake)
        modal = {
            "type": "modal",
            "callback_id": "edit",
            "title": {"type": "plain_text", "text": "Edit"},
            "blocks": [],
        }
        opened = client.views_open(trigger_id="123.456.abc", view=modal)["view"]
        updated = client.views_update(
            view_id=opened["id"], hash=opened["hash"], view={**modal, "callback_id": "edit2"}
        )
        assert updated["view"]["id"] == opened["id"] and updated["view"]["callback_id"] == "edit2"
        assert [v["method"] for v in fake.views] == ["views.open", "views.update"]
        fake.expired_trigger_ids.add("old.trigger")
        with pytest.raises(SlackApiError) as caught:
            client.views_open(trigger_id="old.trigger", view=modal)
        assert caught.value.response["error"] == "expired_trigger_id"

    def test_socket_mode_needs_the_app_token(self, fake: SlackWebFake) -> None:
        """apps.connections.open answers the app token with the Socket Mode URL and refuses the bot token."""
        fake.socket_mode_url = "ws://127.0.0.1:1/link"
        assert WebClient(token=APP_TOKEN, base_url=fake.api_url).apps_connections_open(app_token=APP_TOKEN)[
            "url"
        ] == ("ws://127.0.0.1:1/link")
        with pytest.raises(SlackApiError) as caught:
            client_for(fake).api_call("apps.connections.open")
        assert caught.value.response["error"] == "not_allowed_token_type"

    def test_members_and_usergroups(self, fake: SlackWebFake) -> None:
        """conversations.members pages by cursor; usergroups.users.list lists a group's users."""
        fake.add_usergroup("S0ONCALL01", ["U01ANA", "U03CAR"])
        client = client_for(fake)
        first = client.conversations_members(channel=CHANNEL, limit=3)
        rest = client.conversations_members(
            channel=CHANNEL, limit=3, cursor=first["response_metadata"]["next_cursor"]
        )
        assert first["members"] + rest["members"] == ["U01ANA", "U02BEN", "U03CAR", "U04DEE", "U09PMBOT"]
        assert rest["response_metadata"]["next_cursor"] == ""
        assert client.usergroups_users_list(usergroup="S0ONCALL01")["users"] == ["U01ANA", "U03CAR"]
