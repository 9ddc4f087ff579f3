from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.analysis.action_items import NO_OWNER, NOT_SPECIFIC, extract_action_items
from bot.analysis.models import ActionItem, ActionItemType, EvidenceRef
from bot.timeline.models import EventKind, Source, Timeline, TimelineEvent

T0 = datetime(2024, 7, 20, 11, 50, tzinfo=UTC)
PEOPLE = ("Ana Lima", "Ben Okafor", "Carlos Mendes", "Dee Park")


def chat(minutes: float, text: str, *, actor: str = "Ana Lima", **fields: object) -> TimelineEvent:
    moment = T0 + timedelta(minutes=minutes)
    values: dict[str, object] = {
        "at": moment,
        "source": Source.SLACK,
        "kind": EventKind.MESSAGE,
        "text": text,
        "actor": actor,
        "url": f"https://acme.slack.com/archives/C07INC9876/p{int(moment.timestamp())}000100",
        "id": f"{moment.timestamp():.6f}",
    }
    values.update(fields)
    return TimelineEvent.model_validate(values)


def items(*texts: str, actor: str = "Ana Lima") -> tuple[ActionItem, ...]:
    # Everyone speaks once first, as in the sample channel, so names in items can be recognised.
    people = [chat(-30 + i, "here", actor=name) for i, name in enumerate(PEOPLE)]
    said = [chat(i, text, actor=actor) for i, text in enumerate(texts)]
    return extract_action_items(Timeline(events=(*people, *said)))


def only(text: str, *, actor: str = "Ana Lima") -> ActionItem:
    (item,) = items(text, actor=actor)
    return item


class TestExtractActionItems:
    @pytest.mark.parametrize(
        "text",
        [
            "action item: add a Datadog monitor on DB connection wait time",
            "Action Item - add a Datadog monitor on DB connection wait time",
            "AI: add a Datadog monitor on DB connection wait time",
            "TODO add a Datadog monitor on DB connection wait time",
            "todo: add a Datadog monitor on DB connection wait time",
            "follow-up: add a Datadog monitor on DB connection wait time",
            "Follow up: add a Datadog monitor on DB connection wait time",
            "I think we should add a Datadog monitor on DB connection wait time. Thoughts?",
            "add a Datadog monitor on DB connection wait time TODO",
        ],
    )
    def test_every_cue_introduces_an_item(self, text: str) -> None:
        """Each cue yields the text it introduces, tidied: cue and connectors gone, first letter capital."""
        assert only(text).text == "Add a Datadog monitor on DB connection wait time"

    def test_a_line_opening_with_follow_up_is_itself_the_item(self) -> None:
        """'Follow-up with AWS ...' keeps its own words: the follow-up is the action."""
        assert only("Follow-up with AWS on the orders DB connection quota").text == (
            "Follow-up with AWS on the orders DB connection quota"
        )

    @pytest.mark.parametrize(
        "text",
        [
            "the pool size dropped to 5",
            "ai: that is what the vendor calls it",
            "we should have rolled back sooner",
            "we shouldn't page Carlos for this",
            "we should roll back?",
            "I'll send a follow-up email later",
            "we keep a TODO list for the orders DB somewhere",
            "Follow-ups for the pool change?",
        ],
    )
    def test_messages_without_a_cue_are_not_items(self, text: str) -> None:
        """Plain chat, lowercase 'ai:', a TODO mid-sentence, hindsight, negations and questions are not items."""
        assert items(text) == ()

    def test_a_leading_mention_names_the_owner(self) -> None:
        """'@Ben Okafor add ...' is Ben's item, stated; the mention leaves the text."""
        item = only("action item: @Ben Okafor add a CI check that fails when the DB pool size drops below 20")
        assert (item.owner, item.owner_stated, item.author) == ("Ben Okafor", True, "Ana Lima")
        assert item.text == "Add a CI check that fails when the DB pool size drops below 20"
        assert item.problems == ()

    def test_name_to_verb_names_the_owner(self) -> None:
        """'Carlos to document ...' names Carlos, expanded to the full name seen in the channel."""
        item = only("follow-up: Carlos to document pool sizing in the runbook", actor="Carlos Mendes")
        assert (item.owner, item.owner_stated, item.text) == (
            "Carlos Mendes",
            True,
            "Document pool sizing in the runbook",
        )

    def test_an_owner_clause_names_the_owner(self) -> None:
        """'(owner: Dee Park)' names the owner wherever it stands and leaves the text."""
        item = only("AI: update the runbook section on pool sizing (owner: Dee Park)", actor="Ben Okafor")
        assert (item.owner, item.owner_stated, item.text) == (
            "Dee Park",
            True,
            "Update the runbook section on pool sizing",
        )

    def test_a_name_not_seen_in_the_channel_is_kept_as_written(self) -> None:
        """Someone who never spoke can still be the owner, under the name given."""
        assert only("TODO: Priya to update the DB pool sizing runbook").owner == "Priya"

    def test_an_opening_verb_is_not_an_owner(self) -> None:
        """'Upgrade to Postgres 16' opens with a verb: the author owns it, unstated."""
        item = only("TODO: Upgrade to Postgres 16 on the orders cluster")
        assert (item.owner, item.owner_stated) == ("Ana Lima", False)

    def test_without_a_stated_owner_the_author_owns_it_and_it_is_flagged(self) -> None:
        """The author stands in as owner, owner_stated is False, and the item says 'no owner'."""
        item = only("TODO: add a Datadog monitor on DB connection wait time")
        assert (item.owner, item.owner_stated, item.problems) == ("Ana Lima", False, (NO_OWNER,))

    def test_broadcast_mentions_are_not_owners(self) -> None:
        """'@channel' names nobody."""
        assert only("TODO: @channel add a Datadog monitor on DB connection wait time").owner_stated is False

    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            (
                "action item: add a CI check that fails when the DB pool size drops below 20",
                ActionItemType.PREVENT,
            ),
            ("action item: add a Datadog monitor on DB connection wait time", ActionItemType.DETECT),
            (
                "action item: add a feature flag to switch the pool back without a deploy",
                ActionItemType.MITIGATE,
            ),
            ("action item: document pool sizing in the runbook", ActionItemType.PROCESS),
            ("action item: upgrade Postgres 16 on the orders cluster", None),
        ],
    )
    def test_the_type_is_guessed_from_its_words(self, text: str, kind: ActionItemType | None) -> None:
        """Prevent, mitigate, detect or process by the item's words; none when no word tells."""
        assert only(text).type == kind

    @pytest.mark.parametrize(
        "text",
        [
            "we should be more careful",
            "action item: communicate better with the auth-service team during incidents",
            "TODO: fix it",
            "action item: the DB pool situation in general",
        ],
    )
    def test_vague_items_are_flagged_not_specific(self, text: str) -> None:
        """Vague wording, fewer than four meaningful words, or no verb with an object: 'not specific'."""
        assert NOT_SPECIFIC in only(text).problems

    def test_an_item_links_to_its_message(self) -> None:
        """The item's source is the message's evidence: time, text and permalink."""
        message = chat(5, "TODO: add a Datadog monitor on DB connection wait time")
        (item,) = extract_action_items(Timeline(events=(message,)))
        assert item.source == EvidenceRef.of(message)

    def test_thread_replies_are_read(self) -> None:
        """An item proposed in a thread reply is found, linked to the reply."""
        reply = chat(6, "action item: @Ben Okafor add a CI check on the DB pool size", actor="Carlos Mendes")
        parent = chat(5, "follow-ups for the pool change?", replies=(reply,))
        (item,) = extract_action_items(Timeline(events=(chat(0, "hi", actor="Ben Okafor"), parent)))
        assert (item.owner, item.source.url) == ("Ben Okafor", reply.url)

    def test_one_message_may_hold_several_items(self) -> None:
        """Each cue of a message, on its lines, makes its own item, in order."""
        found = items(
            "action items:\nTODO: add a Datadog monitor on DB wait time\nTODO: Carlos to document pool sizing"
        )
        assert [i.text for i in found] == ["Add a Datadog monitor on DB wait time", "Document pool sizing"]

    def test_the_same_item_twice_is_kept_once(self) -> None:
        """A repeated item (case and punctuation aside) is kept at its first mention."""
        found = items(
            "TODO: add a Datadog monitor on DB wait time",
            "action item: Add a Datadog monitor on DB wait time.",
        )
        assert len(found) == 1 and found[0].source.text == "TODO: add a Datadog monitor on DB wait time"

    def test_a_repeat_that_names_the_owner_replaces_the_first(self) -> None:
        """When only the repeat names an owner, the owned version is kept."""
        found = items(
            "TODO: add a Datadog monitor on DB wait time",
            "action item: @Dee Park add a Datadog monitor on DB wait time",
        )
        assert [(i.owner, i.owner_stated) for i in found] == [("Dee Park", True)]
