"""Action items proposed in the channel: the text, an owner, a type guess and quality flags.

A line proposes one when it carries a cue: "action item:", "AI:", "TODO", "follow-up:"/"follow up:" (or a
line opening with "Follow-up"), or, weaker, "we should ...". The owner is the one the text names
("@Ben Okafor add ...", "Carlos to document ...", "owner: Dee") and otherwise the message's author, flagged
"no owner". A good item is actionable, specific and bounded; the vague ones are flagged "not specific".
The text comes from the timeline, where Slack markup is already readable ("@Ben Okafor").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.analysis.models import ActionItem, ActionItemType, EvidenceRef
from bot.timeline.markup import LINK_PATTERN
from bot.timeline.models import Timeline, TimelineEvent

NO_OWNER = "no owner"
NOT_SPECIFIC = "not specific"

# Strong cues, each ending where the item's text starts. "AI:" and "TODO" only in capitals: "todo" and
# "ai" are ordinary words.
_CUES = re.compile(
    r"(?i:\baction[ \t]+items?[ \t]*[:\-\u2013\u2014])"
    r"|\bAI[ \t]*:"
    r"|(?i:\btodo[ \t]*:)"
    # A bare TODO only opening or closing a line: "we have a TODO list" proposes nothing.
    r"|^[ \t]*TODO\b|\bTODO[ \t]*$"
    r"|(?i:\bfollow[ \t-]?ups?[ \t]*:)"
    # A line opening with "Follow-up" (no colon) is itself the item: "Follow-up with AWS on the quota".
    r"|(?i:^[ \t]*(?=follow-ups?\b))"
)
# "we should ...", not "we shouldn't" and not hindsight ("we should have rolled back sooner").
_WE_SHOULD = re.compile(
    r"(?i:\bwe[ \t]+should\b(?![ \t]*n't)(?![ \t]+have[ \t]+(?:\w+ed|been|done|known|seen|caught|gone|taken)\b))"
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_LEAD = " \t:-\u2013\u2014,;"

_NAME = r"[A-Z][\w.'\u2019-]*(?:[ \t]+[A-Z][\w.'\u2019-]*){0,3}"
_MENTION = re.compile(r"^@(?P<name>" + _NAME + r"|[\w.-]+)")
_NAMED = re.compile(
    r"^(?P<name>[A-Z][\w.'\u2019-]*(?:[ \t]+[A-Z][\w.'\u2019-]*)?)[ \t]+(?:to|will|is going to)[ \t]+"
)
_OWNER_CLAUSE = re.compile(
    r"[ \t]*[(\[]?(?i:\bowners?)[ \t]*[:=][ \t]*@?(?P<name>" + _NAME + r"|[\w.-]+)[ \t]*[)\]]?[.,;]?",
)
_CONNECTOR = re.compile(
    r"^(?:[:,\-\u2013\u2014]|to\b|will\b|please\b|should\b|can you\b|could you\b|pls\b)[ \t]*", re.I
)
_NOT_OWNERS = frozenset({"channel", "here", "everyone", "unknown user"})
# Capitalised words that open a sentence but never name an owner ("We to ...", "Someone will ...").
_NOT_NAMES = frozenset(
    {
        "we",
        "i",
        "you",
        "they",
        "someone",
        "somebody",
        "everyone",
        "anyone",
        "team",
        "the",
        "this",
        "that",
        "it",
    }
)


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _wordset(
    "a an the to of in on at for and or but is are be been being it this that these those we i you they our "
    "more most better very really just also some any so as by with from into than then there here again "
    "make sure should would could will can do does did done not no yes all"
)
_VAGUE = re.compile(
    r"\b(?:be (?:more )?(?:careful|vigilant|thorough|diligent)|communicate better|better communication|"
    r"improve communication|do better|pay (?:more )?attention|try harder|look into (?:it|this|that)|"
    r"keep an eye on (?:it|this|that)|(?:happen|happens) again|test more|more testing)\b",
    re.I,
)
# Verbs that name a state rather than an action: "be more careful", "stay alert".
_STATE_VERBS = frozenset({"be", "stay", "remain", "become", "feel", "try", "think", "remember", "keep"})
_ACTION_VERBS = _wordset(
    """add create write document fix update remove delete alert monitor migrate automate review test enforce set
    configure raise lower increase decrease reduce implement introduce build investigate audit rotate revoke page
    move split limit cap block replace upgrade downgrade pin track file schedule run train define publish share
    enable disable deprecate tune backfill require validate check verify dashboard measure instrument log record
    expose emit link rename refactor rewrite extend shorten cache retry throttle scale provision reserve restore
    backup drill rehearse practice escalate notify inform announce assign own hand draft prepare plan estimate
    prioritize prioritise open close merge revert rollback deploy release ship gate lint guard fail catch detect
    alarm label tag clean cleanup consolidate separate isolate sandbox harden encrypt mask redact"""
)

_TYPE_WORDS: dict[ActionItemType, re.Pattern[str]] = {
    # Tie order matters: detection and mitigation words are the more specific ones.
    ActionItemType.DETECT: re.compile(
        r"\b(?:monitor\w*|alert\w*|alarm\w*|dashboards?|detect\w*|observability|metrics?|slos?|paging|synthetic)\b",
        re.I,
    ),
    ActionItemType.MITIGATE: re.compile(
        r"\b(?:roll[ -]?backs?|failover|fail over|circuit[ -]breakers?|rate[ -]limit\w*|feature[ -]flags?|kill[ -]switch\w*|"
        r"mitigat\w*|fallback|degrad\w*|autoscal\w*|scale|restart\w*|recover\w*|restore\w*)\b",
        re.I,
    ),
    ActionItemType.PROCESS: re.compile(
        r"\b(?:runbooks?|playbooks?|document\w*|docs|process\w*|checklists?|training|train|postmortems?|on-?call|"
        r"escalation\w*|communicat\w*|wiki|handbook)\b",
        re.I,
    ),
    ActionItemType.PREVENT: re.compile(
        r"\b(?:prevent\w*|checks?|ci|tests?|testing|validat\w*|lint\w*|guard\w*|enforc\w*|fix\w*|block\w*|"
        r"requir\w*|reviews?|canar\w*|pin)\b",
        re.I,
    ),
}


def _known_people(timeline: Timeline) -> set[str]:
    people: set[str] = set()
    for event in timeline.events:
        people.update(e.actor for e in (event, *event.replies) if e.actor)
    return people


def _resolve_name(name: str, people: set[str]) -> str | None:
    """The full name of a person the text names; a first name unique among `people` is expanded."""
    name = name.strip().lstrip("@").strip()
    if not name or name.lower() in _NOT_OWNERS:
        return None
    # The longest known name the text starts with: "@Ben Okafor Add ..." names "Ben Okafor".
    lowered = name.lower()
    for person in sorted(people, key=len, reverse=True):
        if lowered == person.lower() or lowered.startswith(person.lower() + " "):
            return person
    first = name.split()[0]
    matches = [p for p in people if p.split()[0].lower() == first.lower()]
    if len(matches) == 1:
        return matches[0]
    return name


def _split_owner(text: str, people: set[str]) -> tuple[str, str | None]:
    """(the item without its owner, the owner) for the text of one item."""
    clause = _OWNER_CLAUSE.search(text)
    if clause:
        owner = _resolve_name(clause.group("name"), people)
        if owner:
            return (text[: clause.start()] + " " + text[clause.end() :]).strip(), owner
    mention = _MENTION.match(text)
    if mention:
        owner = _resolve_name(mention.group("name"), people)
        if owner:
            # Strip exactly the words of the owner's name, so a capitalised verb after it stays.
            rest = text[1:]
            for word in owner.split():
                rest = re.sub(r"^[ \t]*" + re.escape(word), "", rest, count=1, flags=re.I)
            return rest.strip(), owner
    named = _NAMED.match(text)
    # "Upgrade to Postgres 16" opens with a verb, not a name.
    first = named.group("name").split()[0].lower() if named else ""
    if named and first not in _NOT_NAMES and _verb(first) not in _ACTION_VERBS:
        owner = _resolve_name(named.group("name"), people)
        if owner:
            return text[len(named.group("name")) :].strip(), owner
    return text, None


def _clean(text: str) -> str:
    text = text.strip(_LEAD)
    while (stripped := _CONNECTOR.sub("", text, count=1)) != text:
        text = stripped
    text = text.strip().rstrip(" .!")
    return text[:1].upper() + text[1:]


def _words(text: str) -> list[str]:
    plain = LINK_PATTERN.sub(lambda m: m.group("text"), text)
    return re.findall(r"[A-Za-z0-9][\w'-]*", plain)


def _meaningful(words: Iterable[str]) -> list[str]:
    return [w for w in words if len(w) > 1 and w.lower() not in _STOPWORDS]


def _verb(word: str) -> str:
    """A word's verb stem, good enough to look it up: 'adding' -> 'add', 'documents' -> 'document'."""
    word = word.lower()
    for suffix, replacement in (("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", "")):
        if word.endswith(suffix) and (stem := word[: -len(suffix)] + replacement) in _ACTION_VERBS:
            return stem
    return word


def _has_verb_object(words: list[str]) -> bool:
    if not words or words[0].lower() in _STATE_VERBS:
        return False
    for index, word in enumerate(words):
        if _verb(word) in _ACTION_VERBS and _meaningful(words[index + 1 :]):
            return True
    return False


def _problems(text: str, *, owner_stated: bool) -> tuple[str, ...]:
    problems = [] if owner_stated else [NO_OWNER]
    words = _words(text)
    if _VAGUE.search(text) or len(_meaningful(words)) < 4 or not _has_verb_object(words):
        problems.append(NOT_SPECIFIC)
    return tuple(problems)


def _guess_type(text: str) -> ActionItemType | None:
    counts = {kind: len(pattern.findall(text)) for kind, pattern in _TYPE_WORDS.items()}
    best = max(counts.values())
    # max() keeps the first of equals, so the dict's order breaks ties.
    return next(kind for kind, count in counts.items() if count == best) if best else None


def _segments(line: str) -> list[str]:
    """The texts the cues of one line introduce."""
    cues = list(_CUES.finditer(line))
    if cues:
        ends = [m.start() for m in cues[1:]] + [len(line)]
        segments = [
            line[m.end() : end]
            for m, end in zip(cues, ends, strict=True)
            # Only an explicit cue makes a question an item: "Follow-ups for the pool change?" asks.
            if m.end() > m.start() or not line[m.end() : end].rstrip().endswith("?")
        ]
        if not segments:
            return []
        if len(cues) == 1 and not segments[0].strip(_LEAD):
            segments = [line[: cues[0].start()]]  # a trailing tag: "bump the pool size back to 50 TODO"
        # "action item: we should add ..." is one item, worded as a suggestion.
        return [_WE_SHOULD.sub("", s, count=1) if _WE_SHOULD.match(s.strip(_LEAD)) else s for s in segments]
    segments = []
    matches = list(_WE_SHOULD.finditer(line))
    for match, following in zip(matches, [*matches[1:], None], strict=False):
        # A suggestion runs to the end of its sentence, or to the next "we should".
        limit = following.start() if following else len(line)
        end = _SENTENCE_END.search(line, match.end(), limit)
        segment = line[match.end() : end.start() + 1 if end else limit]
        if not segment.rstrip().endswith("?"):  # "we should roll back?" asks, it does not propose
            segments.append(segment)
    return segments


def _may_hold_a_cue(text: str) -> bool:
    """A cheap test that rules out most messages before any regular expression runs."""
    lowered = text.lower()
    return "AI" in text or any(word in lowered for word in ("action", "todo", "follow", "should"))


def _items_of(event: TimelineEvent, people: set[str]) -> list[ActionItem]:
    if not _may_hold_a_cue(event.text):
        return []
    items = []
    for line in event.text.splitlines():
        for segment in _segments(line):
            segment = segment.strip(_LEAD)
            if not segment:
                continue  # a cue with nothing after it
            rest, owner = _split_owner(segment, people)
            text = _clean(rest)
            if not text:
                continue
            stated = owner is not None
            items.append(
                ActionItem(
                    text=text,
                    owner=owner if stated else event.actor,
                    owner_stated=stated,
                    type=_guess_type(text),
                    source=EvidenceRef.of(event),
                    author=event.actor,
                    problems=_problems(text, owner_stated=stated),
                )
            )
    return items


def _key(item: ActionItem) -> str:
    return " ".join(w.lower() for w in _meaningful(_words(item.text)))


def extract_action_items(timeline: Timeline) -> tuple[ActionItem, ...]:
    """Action items from chat messages and thread replies, in time order, each linked to its message.

    The same item said twice is kept once: the first mention, unless only a later one names the owner.
    """
    people = _known_people(timeline)
    kept: dict[str, ActionItem] = {}
    for event in timeline.all_messages():
        for item in _items_of(event, people):
            key = _key(item) or item.text.lower()
            previous = kept.get(key)
            if previous is None:
                kept[key] = item
            elif item.owner_stated and not previous.owner_stated:
                kept[key] = item  # dict assignment keeps the first mention's place in the order
    return tuple(kept.values())
