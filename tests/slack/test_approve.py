"""Approve and Retry over Socket Mode: one Confluence page per change, its link, and the preview's status."""

from __future__ import annotations

from bot.ids import ActionId, BlockId
from tests.fakes.http import Fault
from tests.fakes.slack_payloads import action_ids
from tests.slack.conftest import ANA, BEN, INCIDENT_ID, Harness, all_text, block_text
from tests.slack.flows import NEW_SUMMARY, TITLE, approve, edit_summary, ephemeral_reply, links_posted


class TestApprove:
    def test_publishes_one_page_with_labels_and_chart(self, harness: Harness) -> None:
        """Approve writes one Confluence page under the parent, labelled, with the timeline chart attached."""
        harness.drafted()
        approve(harness)
        [page] = [p for p in harness.confluence.pages.values() if p.id != harness.parent.id]
        assert (page.title, page.parent_id, page.space_key) == (TITLE, harness.parent.id, "PM")
        assert {"postmortem", "sev-1", "customer-api", "auth-service"} <= set(page.labels)
        chart = page.attachments["PD-9876-timeline.png"]
        assert chart.mime == "image/png" and chart.data.startswith(b"\x89PNG\r\n\x1a\n")

    def test_posts_the_link_and_marks_the_preview_published(self, harness: Harness) -> None:
        """The channel gets the page's link once; the preview says who published it and offers the page."""
        harness.drafted()
        approve(harness)
        stored = harness.stored()
        assert stored.status.value == "published" and stored.published_by == ANA
        [link] = links_posted(harness)
        assert stored.page_url in link["text"] and f"<@{ANA}>" in link["text"]
        preview = harness.preview()
        assert f"Published by <@{ANA}>" in block_text(preview, BlockId.STATUS)
        assert ActionId.OPEN_PAGE in action_ids(preview)
        assert ActionId.DISCARD not in action_ids(preview)

    def test_preview_says_publishing_while_it_publishes(self, harness: Harness) -> None:
        """Before Confluence answers, the preview already shows "Publishing…" without buttons."""
        harness.drafted()
        approve(harness)
        ts = harness.stored().preview_ts
        statuses = [u for u in harness.slack.updated if u["ts"] == ts]
        publishing = [u for u in statuses if "Publishing to Confluence" in all_text(u)]
        assert publishing and action_ids(publishing[0]) == []

    def test_approving_twice_publishes_once(self, harness: Harness) -> None:
        """A second Approve with nothing changed publishes nothing and says so."""
        harness.drafted()
        approve(harness)
        second = approve(harness, user_id=BEN)
        assert "already published" in ephemeral_reply(harness, second)
        assert len(harness.confluence.pages) == 2  # the parent and the postmortem
        assert len(links_posted(harness)) == 1

    def test_double_click_publishes_once(self, harness: Harness) -> None:
        """Two clicks arriving together (two people, or one impatient one) make one page and one link."""
        preview = harness.drafted()
        first = harness.click(ActionId.APPROVE, message=preview)
        second = harness.click(ActionId.APPROVE, message=preview, user_id=BEN)
        harness.settle(first)
        harness.settle(second)
        assert len(harness.confluence.pages) == 2
        assert len(harness.confluence.requests_to(r"/wiki/api/v2/pages$", "POST")) == 1
        assert len(links_posted(harness)) == 1

    def test_redelivered_envelope_publishes_once(self, harness: Harness) -> None:
        """Slack redelivering the same Approve envelope does not publish a second time."""
        harness.drafted()
        sent = approve(harness)
        harness.settle(harness.redeliver(sent), acks=2)
        assert len(harness.confluence.pages) == 2
        assert len(harness.confluence.requests_to(r"/wiki/api/v2/pages$", "POST")) == 1
        assert len(links_posted(harness)) == 1

    def test_approve_after_an_edit_updates_the_same_page(self, harness: Harness) -> None:
        """An edit after publishing, approved again, becomes version 2 of the same page."""
        harness.drafted()
        approve(harness)
        page_id = harness.stored().page_id
        edit_summary(harness)
        approve(harness)
        page = harness.confluence.pages[page_id]
        assert page.version == 2 and NEW_SUMMARY.split(" for ")[0] in page.body
        assert len(harness.confluence.pages) == 2
        assert "was updated by" in links_posted(harness)[-1]["text"]

    def test_confluence_down_shows_the_failure_and_retry_publishes(self, harness: Harness) -> None:
        """With Confluence failing, the preview shows the error and a Retry button; Retry then publishes."""
        harness.drafted()
        harness.confluence.faults.add(Fault("5xx", times=None, status=503))
        sent = approve(harness)
        assert "Publishing PD-9876 failed" in ephemeral_reply(harness, sent)
        stored = harness.stored()
        assert stored.status.value == "failed" and stored.error
        failed = harness.preview()
        assert "Publishing failed" in block_text(failed, BlockId.STATUS)
        assert ActionId.RETRY_PUBLISH in action_ids(failed)
        assert [p for p in harness.confluence.pages.values() if p.id != harness.parent.id] == []

        harness.confluence.faults.clear()
        harness.settle(harness.click(ActionId.RETRY_PUBLISH, message=failed))
        assert harness.stored().status.value == "published"
        assert len(harness.confluence.pages_titled(TITLE)) == 1
        assert len(links_posted(harness)) == 1

    def test_unknown_draft_is_explained(self, harness: Harness) -> None:
        """A button naming a draft the store does not have answers that it no longer exists."""
        preview = harness.drafted()
        sent = harness.click(ActionId.APPROVE, message=preview, value="Q0GONE00000000")
        harness.settle(sent)
        assert "no longer exists" in ephemeral_reply(harness, sent)
        assert len(harness.confluence.pages) == 1

    def test_notes_the_page_on_the_pagerduty_incident_once(self, live_harness: Harness) -> None:
        """Against PagerDuty, publishing adds one note with the page link; an update adds none."""
        harness = live_harness
        harness.drafted()
        approve(harness)
        edit_summary(harness)
        approve(harness)
        assert harness.pagerduty is not None
        [note] = harness.pagerduty.posted_notes
        assert note["incident_id"] == INCIDENT_ID and harness.stored().page_url in note["content"]
