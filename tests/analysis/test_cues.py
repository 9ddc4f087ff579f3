from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.analysis.cues import lessons, mitigation_event, root_cause_quotes, states_phrase
from bot.timeline.models import EventKind, Source, Timeline, TimelineEvent

T0 = datetime(2024, 7, 20, 10, 30, tzinfo=UTC)
PHRASES = ("mitigated", "rolled back", "error rate back to normal")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def chat(minutes: float, text: str, *, actor: str = "Ana Lima", **fields: object) -> TimelineEvent:
    values: dict[str, object] = {
        "at": at(minutes),
        "source": Source.SLACK,
        "kind": EventKind.MESSAGE,
        "text": text,
        "actor": actor,
        "url": f"https://acme.slack.com/archives/C07INC9876/p{int(at(minutes).timestamp())}000100",
        "id": f"{at(minutes).timestamp():.6f}",
    }
    values.update(fields)
    return TimelineEvent.model_validate(values)


def event(minutes: float, kind: EventKind, text: str, *, source: Source = Source.PAGERDUTY) -> TimelineEvent:
    return TimelineEvent(
        at=at(minutes), source=source, kind=kind, text=text, url=f"https://example.test/{kind}/{minutes}"
    )


class TestStatesPhrase:
    @pytest.mark.parametrize(
        "text",
        [
            "it's resolved",
            "Incident is resolved, all clear. Thanks all!",
            "RESOLVED",
            "No idea why yet, but it's resolved now",
            "is it resolved? yes, it's resolved.",
            "Resolved in v2.3 of the client",
        ],
    )
    def test_a_statement_states_the_phrase(self, text: str) -> None:
        """A plain statement of the phrase, in any case and beside unrelated clauses, counts."""
        assert states_phrase(text, "resolved")

    @pytest.mark.parametrize(
        "text", ["is it resolved?", "Resolved?", "is it resolved now", "Has it been resolved"]
    )
    def test_a_question_does_not_state_it(self, text: str) -> None:
        """Asking, with or without the question mark, is not stating."""
        assert not states_phrase(text, "resolved")

    @pytest.mark.parametrize(
        "text",
        [
            "not resolved yet",
            "it isn't resolved",
            "it isn\u2019t resolved",
            "never resolved",
            "nothing is resolved",
        ],
    )
    def test_a_negation_does_not_state_it(self, text: str) -> None:
        """A negation earlier in the clause (curly apostrophes included) turns the phrase around."""
        assert not states_phrase(text, "resolved")

    @pytest.mark.parametrize(
        "text",
        [
            "once it's mitigated we'll post",
            "should be mitigated soon",
            "hopefully mitigated",
            "we need to get it mitigated",
        ],
    )
    def test_a_hypothesis_does_not_state_it(self, text: str) -> None:
        """A plan, hope or condition is not a fact."""
        assert not states_phrase(text, "mitigated")

    def test_a_negation_in_another_clause_does_not_count(self) -> None:
        """Negation reaches only the phrase's own clause: "not sure why, but mitigated" states it."""
        assert states_phrase("not sure why, but mitigated", "mitigated")
        assert not states_phrase("mitigated, not resolved", "resolved")

    def test_only_whole_words_match(self) -> None:
        """'unresolved' does not contain the word 'resolved'."""
        assert not states_phrase("the alert is unresolved", "resolved")

    def test_a_phrase_of_several_words_matches_across_spacing(self) -> None:
        """Multi-word phrases match case-insensitively, whatever the spacing between words."""
        assert states_phrase("Error rate  BACK to normal", "error rate back to normal")
        assert not states_phrase("error rate back to normalising", "error rate back to normal")

    def test_a_blank_phrase_states_nothing(self) -> None:
        """An empty phrase never matches."""
        assert not states_phrase("anything at all", "  ")


class TestRootCauseQuotes:
    @pytest.mark.parametrize(
        "text",
        [
            "root cause: pool size dropped from 50 to 5 in #482",
            "RCA: the pool change",
            "latency was caused by DB connection waits",
            "the cause was the pool size",
        ],
    )
    def test_each_cause_cue_is_quoted(self, text: str) -> None:
        """Every cause cue makes the message a contributing-factor quote, with author, time and link."""
        message = chat(40, text, actor="Ben Okafor")
        (quote,) = root_cause_quotes(Timeline(events=(message,)))
        assert (quote.text, quote.author, quote.at, quote.url) == (
            text,
            "Ben Okafor",
            message.at,
            message.url,
        )

    def test_a_pinned_message_is_quoted_without_a_cue(self) -> None:
        """Pinned messages are what the team flagged: they are quoted and marked pinned."""
        pinned = chat(40, "pool size went from 50 to 5", pinned=True)
        quotes = root_cause_quotes(Timeline(events=(chat(39, "looking"), pinned)))
        assert [(q.text, q.pinned) for q in quotes] == [("pool size went from 50 to 5", True)]

    def test_a_question_about_the_cause_is_not_quoted(self) -> None:
        """'was it caused by the deploy?' states no cause."""
        assert root_cause_quotes(Timeline(events=(chat(40, "was it caused by the deploy?"),))) == ()

    def test_thread_replies_and_pagerduty_notes_are_read(self) -> None:
        """A cause stated in a thread reply or a PagerDuty note is quoted too, in time order."""
        reply = chat(45, "RCA: pool v2 defaults to 5 connections", actor="Carlos Mendes")
        parent = chat(40, "thread on latency", replies=(reply,))
        note = event(42, EventKind.NOTE, "Latency caused by the connection pool change")
        quotes = root_cause_quotes(Timeline(events=(parent, note)))
        assert [q.text for q in quotes] == [note.text, reply.text]


class TestLessons:
    def test_each_cue_lands_in_its_list(self) -> None:
        """'went well', 'went wrong' and 'got lucky' messages fill the three lists."""
        timeline = Timeline(
            events=(
                chat(90, "went well: the rollback took 7 minutes"),
                chat(91, "what went wrong: the alert fired late", actor="Dee Park"),
                chat(92, "we got lucky: Saturday traffic was low", actor="Carlos Mendes"),
            )
        )
        result = lessons(timeline)
        assert [q.text for q in result.went_well] == ["went well: the rollback took 7 minutes"]
        assert [(q.text, q.author) for q in result.went_wrong] == [
            ("what went wrong: the alert fired late", "Dee Park")
        ]
        assert [q.text for q in result.lucky] == ["we got lucky: Saturday traffic was low"]

    def test_a_message_with_two_cues_is_split_by_sentence(self) -> None:
        """Each list quotes only its own sentence of a message holding several cues."""
        result = lessons(
            Timeline(events=(chat(90, "The rollback went well. We got lucky: traffic was low."),))
        )
        assert [q.text for q in result.went_well] == ["The rollback went well."]
        assert [q.text for q in result.lucky] == ["We got lucky: traffic was low."]

    def test_questions_and_plain_chat_are_not_lessons(self) -> None:
        """'did anything go wrong?' and ordinary messages leave every list empty."""
        result = lessons(Timeline(events=(chat(90, "what went wrong?"), chat(91, "deploying the fix"))))
        assert result.went_well == result.went_wrong == result.lucky == ()


class TestMitigationEvent:
    def test_a_rollback_event_is_a_mitigation(self) -> None:
        """A ROLLBACK deploy after the trigger is the mitigation."""
        rollback = event(
            48, EventKind.ROLLBACK, "Rolled back acme/customer-api to 7a6b5c4", source=Source.GITHUB
        )
        assert mitigation_event(Timeline(events=(rollback,)), after=T0, phrases=PHRASES) == rollback

    def test_a_chat_reply_stating_a_phrase_is_a_mitigation(self) -> None:
        """A thread reply saying 'mitigated' counts like a top-level message."""
        reply = chat(55, "error rate back to normal, mitigated")
        timeline = Timeline(events=(chat(50, "status?", replies=(reply,)),))
        assert mitigation_event(timeline, after=T0, phrases=PHRASES) == reply

    def test_negated_and_asked_cues_do_not_count(self) -> None:
        """'not mitigated yet' and 'is it mitigated?' are not mitigations."""
        timeline = Timeline(events=(chat(50, "not mitigated yet"), chat(52, "is it mitigated?")))
        assert mitigation_event(timeline, after=T0, phrases=PHRASES) is None

    def test_the_first_after_the_given_time_wins(self) -> None:
        """Signs before `after` are ignored; of the rest, the earliest is returned."""
        early = chat(-5, "mitigated")
        cue = chat(40, "it's mitigated")
        rollback = event(48, EventKind.ROLLBACK, "Rolled back", source=Source.GITHUB)
        timeline = Timeline(events=(early, cue, rollback))
        assert mitigation_event(timeline, after=T0, phrases=PHRASES) == cue

    def test_only_the_given_phrases_are_cues(self) -> None:
        """The phrases come from the options: a team's own wording counts, the defaults then do not."""
        timeline = Timeline(events=(chat(40, "mitigated"), chat(45, "failover done")))
        found = mitigation_event(timeline, after=T0, phrases=("failover done",))
        assert found is not None and found.text == "failover done"
