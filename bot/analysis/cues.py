"""What people said in the channel that the draft can quote: causes, lessons, "it's mitigated".

Everything here rests on `states_phrase`, the guard that tells a statement ("it's resolved") from a
question ("is it resolved?"), a negation ("not resolved yet", "isn't mitigated") or a hypothesis
("once it's resolved", "should be mitigated soon"). The Slack "resolved" prompt reuses it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from datetime import datetime

from bot.analysis.models import Lessons, Quote
from bot.timeline.models import EventKind, Source, Timeline, TimelineEvent

# Words that, earlier in the same clause, turn "X" into "not X".
_NEGATIONS = frozenset({"not", "no", "never", "nothing", "nor", "cannot", "without", "neither", "barely"})
# Words that, earlier in the same clause, make "X" a hope, a plan or a condition rather than a fact.
_HYPOTHETICAL = frozenset(
    {
        "if",
        "once",
        "when",
        "whenever",
        "until",
        "unless",
        "whether",
        "before",
        "should",
        "could",
        "would",
        "will",
        "might",
        "may",
        "hope",
        "hopefully",
        "maybe",
        "perhaps",
        "almost",
        "nearly",
        "wait",
        "waiting",
    }
)
_FUTURE_PAIRS = (("going", "to"), ("need", "to"), ("needs", "to"), ("yet", "to"), ("about", "to"))
# A sentence opening with one of these followed by a subject is a question even without its "?".
_AUXILIARIES = frozenset(
    {"is", "are", "was", "were", "has", "have", "had", "did", "do", "does", "can", "could", "will", "would"}
)
_NOT_A_SUBJECT = frozenset({"been", "being", "now", "fully", "finally", "also", "all", "just", "officially"})

# A sentence ends at . ! ? followed by a space or the end: "v2.3" and URLs stay whole.
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=[^\s.!?]))+[.!?]*")
# Clause boundaries: punctuation, and the conjunctions that start a new assertion.
_CLAUSE_BREAK = re.compile(
    r"[,;:()\u2013\u2014]|\s-\s|\b(?:but|and|so|though|although|however)\b", re.IGNORECASE
)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _normalise(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'")


@functools.lru_cache(maxsize=256)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in _normalise(phrase).split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def _is_negating(words: Sequence[str]) -> bool:
    if any(w in _NEGATIONS or w in _HYPOTHETICAL or w.endswith("n't") for w in words):
        return True
    return any(pair in zip(words, words[1:], strict=False) for pair in _FUTURE_PAIRS)


def _is_question(sentence: str, phrase_start: int) -> bool:
    if sentence.rstrip().endswith("?"):
        return True
    words = _WORD.findall(sentence[:phrase_start].lower())
    return len(words) >= 2 and words[0] in _AUXILIARIES and words[1] not in _NOT_A_SUBJECT


def states_phrase(text: str, phrase: str) -> bool:
    """True when `text` states `phrase` (whole words, any case) as a fact.

    False when every occurrence is asked ("is it resolved?", "is it mitigated now"), negated ("not resolved
    yet", "isn't mitigated", "nothing is rolled back") or hypothetical ("once it's resolved", "should be
    mitigated soon"). Negation and hypothesis count only within the phrase's own clause, so "no idea why, but
    it's resolved" states it.
    """
    if not phrase.strip():
        return False
    text = _normalise(text)
    # The common case, kept cheap (a channel may hold 10,000 messages): the phrase's first word is absent.
    if _normalise(phrase).split()[0].lower() not in text.lower():
        return False
    pattern = _phrase_pattern(phrase)
    for sentence_match in _SENTENCE.finditer(text):
        sentence = sentence_match.group(0)
        for match in pattern.finditer(sentence):
            if _is_question(sentence, match.start()):
                continue
            before = sentence[: match.start()]
            clause_start = max((m.end() for m in _CLAUSE_BREAK.finditer(before)), default=0)
            words = _WORD.findall(before[clause_start:].lower())
            following = _WORD.findall(sentence[match.end() :].lower())[:1]
            if _is_negating(words) or following == ["yet"]:
                continue
            return True
    return False


def states_any(text: str, phrases: Sequence[str]) -> bool:
    """True when `text` states at least one of `phrases` (see `states_phrase`)."""
    return any(states_phrase(text, phrase) for phrase in phrases)


ROOT_CAUSE_PHRASES = ("root cause:", "root cause was", "root cause is", "RCA:", "caused by", "the cause was")
WENT_WELL_PHRASES = ("went well", "worked well", "went smoothly", "what went right")
WENT_WRONG_PHRASES = (
    "went wrong",
    "went badly",
    "didn't go well",
    "did not go well",
    "could have gone better",
    "slowed us down",
)
LUCKY_PHRASES = ("got lucky", "we were lucky", "lucky that", "luckily", "fortunately")


def _quote(event: TimelineEvent, text: str | None = None) -> Quote:
    return Quote(text=text or event.text, author=event.actor, at=event.at, url=event.url, pinned=event.pinned)


def _human_texts(timeline: Timeline) -> tuple[TimelineEvent, ...]:
    """Chat messages (with replies) and PagerDuty notes: what people wrote, in time order."""
    notes = [e for e in timeline.events if e.kind is EventKind.NOTE and e.source is Source.PAGERDUTY]
    return tuple(sorted((*timeline.all_messages(), *notes), key=lambda e: e.at))


def root_cause_quotes(timeline: Timeline) -> tuple[Quote, ...]:
    """Pinned messages and messages or notes stating a cause ("root cause:", "RCA:", "caused by", "the cause
    was"), in time order. A cause that is asked about ("was it caused by the deploy?") is not quoted."""
    quotes: list[Quote] = []
    for event in _human_texts(timeline):
        if event.pinned or states_any(event.text, ROOT_CAUSE_PHRASES):
            quotes.append(_quote(event))
    return tuple(quotes)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def lessons(timeline: Timeline) -> Lessons:
    """Quotes that say what went well, what went wrong and where the team got lucky.

    A message holding several cues in separate sentences is split, so each list quotes its own sentence.
    """
    found: dict[str, list[Quote]] = {"well": [], "wrong": [], "lucky": []}
    cues = {"well": WENT_WELL_PHRASES, "wrong": WENT_WRONG_PHRASES, "lucky": LUCKY_PHRASES}
    for event in timeline.all_messages():
        if not any(states_any(event.text, phrases) for phrases in cues.values()):
            continue
        sentences = _sentences(event.text)
        for kind, phrases in cues.items():
            matching = [s for s in sentences if states_any(s, phrases)]
            if matching:
                # One sentence holding every cue of the message: quote the whole message.
                text = event.text if len(matching) == len(sentences) else " ".join(matching)
                found[kind].append(_quote(event, text))
    return Lessons(
        went_well=tuple(found["well"]), went_wrong=tuple(found["wrong"]), lucky=tuple(found["lucky"])
    )


def mitigation_event(timeline: Timeline, *, after: datetime, phrases: Sequence[str]) -> TimelineEvent | None:
    """The first sign, at or after `after`, that the impact was mitigated: a rollback deploy, an event the
    timeline marked as mitigated, or a chat message (or reply) stating one of `phrases`."""
    candidates: list[TimelineEvent] = [
        e
        for e in timeline.events
        if e.kind is EventKind.ROLLBACK or (e.kind is EventKind.MITIGATED and e.source is not Source.SLACK)
    ]
    # Chat is judged by the guard whatever kind the build gave it, so "is it mitigated?" never counts.
    candidates.extend(m for m in timeline.all_messages() if states_any(m.text, phrases))
    return min((e for e in candidates if e.at >= after), key=lambda e: e.at, default=None)
