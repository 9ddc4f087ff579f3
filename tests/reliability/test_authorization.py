"""Authorization: a non-approver cannot publish, edit or discard a draft by any path; the refusal is logged.

Each path runs through the bot's Bolt app (the listeners, use cases and live clients of `python -m bot run`)
under the three approver policies, configured as an operator configures them, by environment:

* channel members (the default): Ana approves; Eve (in #general and #inc-9800) and Fay (in #general) are
  outside the incident channel;
* `APPROVERS=U02BEN,U05EVE`: Eve approves from outside the channel; Ana (in it, not listed) and Fay do not;
* `APPROVER_USERGROUP=S07REVIEW` (Ben and Eve): the same people, through `usergroups.users.list`.

The paths: each button of the preview (Approve, Retry publishing, Publish update, Edit, Regenerate,
Discard), an Edit modal submitted with a forged `private_metadata`, an approver's click replayed with
another channel, and `/postmortem` on a draft that was discarded or whose publication failed (it recompiled
the draft into the caller's channel, whose members could then approve it: a hole this suite found, closed
in bot/slack/drafting.py). A refusal is an ephemeral reply (or an inline error in the modal), a WARNING
record naming the user, the action and the incident, and nothing else: the stored draft (body, status,
version, edit history), the Confluence pages, the channel's messages, the modals and the PagerDuty notes
are as they were.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import BoltRequest

from bot.analysis.models import EditableSection
from bot.ids import ActionId
from bot.store.models import DraftStatus
from bot.store.repository import EditRecord, StoredDraft
from tests.fakes import slack_payloads
from tests.fakes.confluence import ConfluenceFake
from tests.reliability.pipeline import CHANNEL, INCIDENT_ID, INCIDENT_REF, Fakes
from tests.reliability.slack_app import CHANNEL_NAME, SlackApp, slack_app

ANA, BEN, EVE, FAY = "U01ANA", "U02BEN", "U05EVE", "U06FAY"
BOT_USER = "U09PMBOT"
GENERAL, GENERAL_NAME = "C01GENERAL", "general"
OTHER_INCIDENT, OTHER_INCIDENT_NAME = "C06INC9800", "inc-9800-login-errors"
REVIEWERS = "S07REVIEW"
SUMMARY_BLOCK = "pm_edit_summary"
FORGED_SUMMARY = "Nothing happened; no follow-up is needed."
APPROVED_SUMMARY = (
    "A pool-size change in customer-api deploy 1003 starved the orders DB client for 63 minutes."
)
REFUSED = "refused: not an approver"
COMMANDS = itertools.count(1)


@dataclass(frozen=True)
class Policy:
    name: str
    env: dict[str, str]
    approver: str
    intruders: tuple[str, ...]  # people who are not approvers under this policy


POLICIES = (
    Policy("channel members", {}, approver=ANA, intruders=(EVE, FAY)),
    Policy("APPROVERS", {"APPROVERS": f"{BEN},{EVE}"}, approver=EVE, intruders=(ANA, FAY)),
    Policy("APPROVER_USERGROUP", {"APPROVER_USERGROUP": REVIEWERS}, approver=EVE, intruders=(ANA, FAY)),
)


# -- the workspace and the bot, under one policy ------------------------------------------------------


def people_and_channels(fakes: Fakes) -> None:
    """The sample workspace plus Eve and Fay (outside the incident channel) and the reviewers' user group."""
    fakes.reset()
    slack = fakes.slack
    for user_id, name in ((EVE, "Eve Tran"), (FAY, "Fay Ito")):
        slack.add_user({"id": user_id, "name": name.split()[0].lower(), "real_name": name})
    slack.channels[GENERAL].members.extend([ANA, BEN, EVE, FAY, BOT_USER])
    slack.channels[OTHER_INCIDENT].members.extend([EVE, BOT_USER])
    slack.add_usergroup(REVIEWERS, [BEN, EVE])
    assert EVE not in slack.channels[CHANNEL].members and ANA in slack.channels[CHANNEL].members


@contextmanager
def drafted(
    policy: Policy, fakes: Fakes, confluence: ConfluenceFake, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SlackApp]:
    """The bot under `policy`, with PD-9876 drafted by Ana (`/postmortem` in the incident channel)."""
    people_and_channels(fakes)
    confluence.reset()  # a page titled as the postmortem would be updated, not created
    workdir.mkdir()
    with monkeypatch.context() as env:
        for name in ("APPROVERS", "APPROVER_USERGROUP"):
            env.delenv(name, raising=False)
        for name, value in policy.env.items():
            env.setenv(name, value)
        with slack_app(fakes, confluence, workdir) as bot:
            bot.command("PD-9876", user_id=ANA)
            assert status(bot) is DraftStatus.DRAFT
            yield bot


PolicyRuns = Callable[[], Iterator[tuple[Policy, SlackApp]]]


@pytest.fixture
def under_each_policy(
    fakes: Fakes,
    confluence: ConfluenceFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> PolicyRuns:
    """`for policy, bot in under_each_policy():` each approver policy in turn, with PD-9876 drafted under it
    in a fresh app and store; the refusals (WARNING) are captured for `refusals`."""
    caplog.set_level(logging.WARNING, logger="bot.slack.authz")

    def runs() -> Iterator[tuple[Policy, SlackApp]]:
        for n, policy in enumerate(POLICIES):
            with drafted(policy, fakes, confluence, tmp_path / f"p{n}", monkeypatch) as bot:
                yield policy, bot

    return runs


def status(bot: SlackApp) -> DraftStatus:
    stored = bot.stored()
    assert stored is not None
    return stored.status


def dispatch(bot: SlackApp, body: dict[str, Any]) -> dict[str, Any] | None:
    """Hand one payload to the app as Socket Mode does; the ack's body (None when empty), once every
    listener has finished (SlackApp.deliver keeps only the status, and a modal's errors are in the body)."""
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="listener")
    bot.app.listener_runner.listener_executor = executor
    try:
        response = bot.app.dispatch(BoltRequest(body=body, mode="socket_mode"))
    finally:
        executor.shutdown(wait=True)
    assert response.status == 200, response.body
    return json.loads(response.body) if response.body else None


def open_modal(bot: SlackApp, user_id: str) -> dict[str, Any]:
    """Edit on the preview; the modal as views.open returned it."""
    opened = len(bot.fakes.slack.views)
    bot.click(ActionId.EDIT, user_id=user_id)
    assert len(bot.fakes.slack.views) == opened + 1, bot.fakes.slack.responses
    return bot.fakes.slack.views[-1]["view"]


def submit(bot: SlackApp, view: dict[str, Any], *, user_id: str, summary: str) -> dict[str, Any] | None:
    """Submit an Edit modal with the summary rewritten; the ack's body."""
    return dispatch(
        bot, slack_payloads.view_submission(view=view, user_id=user_id, changes={SUMMARY_BLOCK: summary})
    )


def edit_summary(bot: SlackApp, user_id: str, summary: str = APPROVED_SUMMARY) -> None:
    assert submit(bot, open_modal(bot, user_id), user_id=user_id, summary=summary) is None


def fail_publication(bot: SlackApp, approver: str) -> None:
    """The approver's Approve meets a 400 from Confluence: the draft is failed, with Retry on the preview."""
    bot.confluence.fail_next_create(status=400, stored=False)
    bot.click(ActionId.APPROVE, user_id=approver)
    assert status(bot) is DraftStatus.FAILED


def publish_then_edit(bot: SlackApp, approver: str) -> None:
    """Approved and published, then edited: "Publish update" has something to publish."""
    bot.click(ActionId.APPROVE, user_id=approver)
    assert status(bot) is DraftStatus.PUBLISHED
    edit_summary(bot, approver)
    stored = bot.stored()
    assert stored is not None and stored.has_unpublished_changes


# -- what a refusal must leave as it was --------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    stored: StoredDraft | None
    edits: tuple[EditRecord, ...]
    pages: tuple[tuple[str, int], ...]  # every Confluence page and its version
    channel_messages: tuple[tuple[str, str], ...]  # the incident channel's messages: ts and text
    posted: int
    updated: int
    views: int
    notes: int


def snapshot(bot: SlackApp) -> Snapshot:
    slack = bot.fakes.slack  # every listener has finished: nothing writes to the fakes now
    return Snapshot(
        stored=bot.stored(),
        edits=tuple(bot.repo.edits(INCIDENT_ID)),
        pages=tuple(sorted((page.id, page.version) for page in bot.confluence.pages.values())),
        channel_messages=tuple((m["ts"], m.get("text", "")) for m in slack.channels[CHANNEL].messages),
        posted=len(slack.posted),
        updated=len(slack.updated),
        views=len(slack.views),
        notes=len(bot.fakes.pagerduty.posted_notes),
    )


def refusals(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """The refusals logged since the last call, as (user, action, incident); only WARNING records count.
    Each also names the draft (its PagerDuty id)."""
    records = [r for r in caplog.records if r.getMessage() == REFUSED and r.levelno == logging.WARNING]
    assert [r.draft for r in records] == [INCIDENT_ID] * len(records)
    found = [(r.user, r.action, r.incident) for r in records]
    caplog.clear()
    return found


def told_ephemerally(bot: SlackApp, reply: str, text: str) -> None:
    """One ephemeral reply through the interaction's response_url, the preview left in place."""
    responses = bot.fakes.slack.responses_to(reply)
    assert len(responses) == 1, responses
    assert (responses[0]["response_type"], responses[0]["replace_original"]) == ("ephemeral", False)
    assert responses[0]["text"] == text


def only_approvers(verb: str) -> str:
    return f"Only approvers of PD-9876 may {verb} its postmortem."


# -- the paths ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ButtonPath:
    action_id: ActionId
    verb: str  # the action the refusal and its log record name
    stage: str  # the preview's state when the button is on it: draft, failed, published


BUTTONS = {
    "approve": ButtonPath(ActionId.APPROVE, "approve", "draft"),
    "retry": ButtonPath(ActionId.RETRY_PUBLISH, "approve", "failed"),
    "publish-update": ButtonPath(ActionId.APPROVE, "approve", "published"),
    "edit": ButtonPath(ActionId.EDIT, "edit", "draft"),
    "regenerate": ButtonPath(ActionId.REGENERATE, "regenerate", "draft"),
    "discard": ButtonPath(ActionId.DISCARD, "discard", "draft"),
}


def reach(bot: SlackApp, stage: str, approver: str) -> None:
    if stage == "failed":
        fail_publication(bot, approver)
    elif stage == "published":
        publish_then_edit(bot, approver)


def replayed(bot: SlackApp, action_id: ActionId, *, user_id: str, channel_id: str, channel_name: str) -> str:
    """The approver's genuine click on the preview, replayed with its channel changed (the button's value
    still naming the draft); returns the name of its response_url."""
    reply = f"replay-{action_id}-{user_id}-{channel_id}"
    genuine = slack_payloads.block_action(
        message=bot.preview(),
        action_id=action_id,
        channel_id=CHANNEL,
        channel_name=CHANNEL_NAME,
        user_id=user_id,
        response_url=bot.fakes.slack.response_url(reply),
    )
    assert genuine["actions"][0]["value"] == INCIDENT_ID
    forged = genuine | {
        "channel": {"id": channel_id, "name": channel_name},
        "container": genuine["container"] | {"channel_id": channel_id},
    }
    bot.deliver(forged)
    return reply


def command_in(bot: SlackApp, *, user_id: str) -> str:
    """`/postmortem PD-9876` from a channel the user is in (the incident channel if they are in it, else
    #general); returns the name of its response_url."""
    in_incident = user_id in bot.fakes.slack.channels[CHANNEL].members
    channel_id, channel_name = (CHANNEL, CHANNEL_NAME) if in_incident else (GENERAL, GENERAL_NAME)
    reply = f"command-{user_id}-{next(COMMANDS)}"
    bot.deliver(
        slack_payloads.slash_command(
            text="PD-9876",
            channel_id=channel_id,
            channel_name=channel_name,
            user_id=user_id,
            response_url=bot.fakes.slack.response_url(reply),
        )
    )
    return reply


class TestNonApprovers:
    """Authorization: a non-approver"""

    @pytest.mark.parametrize("path", list(BUTTONS))
    @pytest.mark.case(
        {
            "approve": "Approve & publish, by button",
            "retry": "Retry publishing, by button",
            "publish-update": "Publish update on a published page, by button",
            "edit": "Edit, by button",
            "regenerate": "Regenerate, by button",
            "discard": "Discard, by button",
        }
    )
    def test_a_button_is_refused(
        self,
        path: str,
        under_each_policy: PolicyRuns,
        caplog: pytest.LogCaptureFixture,
        figures: dict,
    ) -> None:
        """Under each policy, each non-approver's click is refused with an ephemeral message and a WARNING naming user, action and incident; draft, edit history, Confluence, the channel, modals and PagerDuty notes are unchanged."""
        button = BUTTONS[path]
        clicks = 0
        for policy, bot in under_each_policy():
            reach(bot, button.stage, policy.approver)
            refusals(caplog)
            for intruder in policy.intruders:
                before = snapshot(bot)
                reply = bot.click(button.action_id, user_id=intruder)
                told_ephemerally(bot, reply, only_approvers(button.verb))
                assert snapshot(bot) == before, (policy.name, intruder)
                assert refusals(caplog) == [(intruder, button.verb, INCIDENT_REF)], policy.name
                clicks += 1
        figures["policies"] = len(POLICIES)
        figures["non-approvers"] = sum(len(p.intruders) for p in POLICIES)
        figures["clicks refused"] = clicks

    @pytest.mark.case("an Edit modal submitted with a forged private_metadata")
    def test_a_forged_modal_submission_is_refused(
        self,
        under_each_policy: PolicyRuns,
        caplog: pytest.LogCaptureFixture,
        figures: dict,
    ) -> None:
        """Under each policy, an Edit modal whose private_metadata names the draft, submitted by a non-approver (outside the incident channel, or in it but not an approver), is refused inline in the modal and logged as a WARNING; nothing is saved and the preview is not touched."""
        submissions = 0
        for policy, bot in under_each_policy():
            # A modal as Slack holds it, its private_metadata set by whoever submits it.
            view = open_modal(bot, policy.approver) | {"private_metadata": INCIDENT_ID}
            refusals(caplog)
            for intruder in policy.intruders:
                before = snapshot(bot)
                ack = submit(bot, view, user_id=intruder, summary=FORGED_SUMMARY)
                assert ack == {
                    "response_action": "errors",
                    "errors": {SUMMARY_BLOCK: "Only approvers of PD-9876 may edit it."},
                }
                assert snapshot(bot) == before, (policy.name, intruder)
                assert bot.fakes.slack.responses == []
                assert refusals(caplog) == [(intruder, "edit", INCIDENT_REF)], policy.name
                submissions += 1
        figures["policies"] = len(POLICIES)
        figures["non-approvers"] = sum(len(p.intruders) for p in POLICIES)
        figures["submissions refused"] = submissions

    @pytest.mark.case("an approver's click replayed with another channel")
    def test_a_replayed_envelope_for_another_channel_is_refused(
        self,
        under_each_policy: PolicyRuns,
        caplog: pytest.LogCaptureFixture,
        figures: dict,
    ) -> None:
        """Under each policy, the approver's own click on each button (Approve, Edit, Regenerate, Discard; Retry once publishing failed), replayed with its channel changed to #general or another incident channel and the button still naming the draft, is refused ephemerally and logged; nothing changes."""
        others = ((GENERAL, GENERAL_NAME), (OTHER_INCIDENT, OTHER_INCIDENT_NAME))
        replays, actions = 0, set()
        for policy, bot in under_each_policy():
            for stage in ("draft", "failed"):
                reach(bot, stage, policy.approver)
                refusals(caplog)
                for button in (b for b in BUTTONS.values() if b.stage == stage):
                    for channel_id, channel_name in others:
                        before = snapshot(bot)
                        reply = replayed(
                            bot,
                            button.action_id,
                            user_id=policy.approver,
                            channel_id=channel_id,
                            channel_name=channel_name,
                        )
                        told_ephemerally(bot, reply, only_approvers(button.verb))
                        assert snapshot(bot) == before, (policy.name, button, channel_id)
                        logged = refusals(caplog)
                        assert logged == [(policy.approver, button.verb, INCIDENT_REF)], policy.name
                        replays += 1
                        actions.add(button.action_id)
        figures["policies"] = len(POLICIES)
        figures["buttons"] = len(actions)
        figures["channels"] = len(others)
        figures["replays refused"] = replays

    @pytest.mark.parametrize("stage", ["discarded", "failed"])
    @pytest.mark.case(
        {
            "discarded": "/postmortem again on a discarded draft",
            "failed": "/postmortem again on a draft whose publication failed",
        }
    )
    def test_drafting_a_reviewed_draft_again_is_refused(
        self,
        stage: str,
        under_each_policy: PolicyRuns,
        caplog: pytest.LogCaptureFixture,
        figures: dict,
    ) -> None:
        """Under each policy, a non-approver's `/postmortem PD-9876` (from #general, or the incident channel if they are in it) does not recompile the edited draft, move it to their channel or revive it: refused ephemerally and logged; nothing changes, so no Approve follows."""
        commands = 0
        for policy, bot in under_each_policy():
            edit_summary(bot, policy.approver)
            if stage == "discarded":
                bot.click(ActionId.DISCARD, user_id=policy.approver)
                assert status(bot) is DraftStatus.DISCARDED
            else:
                fail_publication(bot, policy.approver)
            refusals(caplog)
            for intruder in policy.intruders:
                before = snapshot(bot)
                reply = command_in(bot, user_id=intruder)
                told_ephemerally(bot, reply, "Only approvers of PD-9876 may draft its postmortem again.")
                assert snapshot(bot) == before, (policy.name, intruder)
                assert refusals(caplog) == [(intruder, "draft", INCIDENT_REF)], policy.name
                commands += 1
        figures["policies"] = len(POLICIES)
        figures["non-approvers"] = sum(len(p.intruders) for p in POLICIES)
        figures["commands refused"] = commands


class TestApprovers:
    """Authorization: an approver (the positive control)"""

    @pytest.mark.case("an approver, by every path")
    def test_an_approver_can_do_each(
        self,
        fakes: Fakes,
        confluence: ConfluenceFake,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
        figures: dict,
    ) -> None:
        """Under each policy, the approver (Eve from outside the channel under APPROVERS and APPROVER_USERGROUP) opens the Edit modal, saves an edit, regenerates keeping it, publishes (a failure, then Retry), publishes an update, discards another draft and drafts it again with `/postmortem`; nothing is refused."""
        caplog.set_level(logging.WARNING, logger="bot.slack.authz")
        paths = set()
        for n, policy in enumerate(POLICIES):
            who = policy.approver
            with drafted(policy, fakes, confluence, tmp_path / f"p{n}", monkeypatch) as bot:
                view = open_modal(bot, who)
                paths.add("edit")
                assert submit(bot, view, user_id=who, summary=APPROVED_SUMMARY) is None
                assert [(e.section, e.user_id) for e in bot.repo.edits(INCIDENT_ID)] == [("summary", who)]
                paths.add("modal")

                version = bot.stored().body_version
                bot.click(ActionId.REGENERATE, user_id=who)
                stored = bot.stored()
                assert stored.body_version == version + 1 and stored.status is DraftStatus.DRAFT
                assert stored.draft.edits == {EditableSection.SUMMARY: APPROVED_SUMMARY}
                paths.add("regenerate")

                pages = set(bot.confluence.pages)
                fail_publication(bot, who)
                paths.add("approve")
                bot.click(ActionId.RETRY_PUBLISH, user_id=who)
                stored = bot.stored()
                assert (stored.status, stored.published_by) == (DraftStatus.PUBLISHED, who)
                [page_id] = set(bot.confluence.pages) - pages
                assert stored.page_id == page_id and bot.confluence.pages[page_id].version == 1
                assert APPROVED_SUMMARY in bot.confluence.pages[page_id].body
                links = [m for m in bot.fakes.slack.posted if "The postmortem of PD-9876 was" in m["text"]]
                assert [(m["channel"], f"<@{who}>" in m["text"]) for m in links] == [(CHANNEL, True)]
                paths.add("retry")

                edit_summary(bot, who, summary=f"{APPROVED_SUMMARY} Updated.")
                bot.click(ActionId.APPROVE, user_id=who)
                assert bot.confluence.pages[page_id].version == 2 and status(bot) is DraftStatus.PUBLISHED
                paths.add("publish-update")
            with drafted(policy, fakes, confluence, tmp_path / f"d{n}", monkeypatch) as bot:
                bot.click(ActionId.DISCARD, user_id=who)
                assert status(bot) is DraftStatus.DISCARDED
                paths.add("discard")
                assert bot.fakes.slack.responses_to(command_in(bot, user_id=who)) == []
                assert status(bot) is DraftStatus.DRAFT
                paths.add("draft again")
            assert refusals(caplog) == [], policy.name
        figures["policies"] = len(POLICIES)
        figures["paths"] = len(paths)
