"""Slack message markup ("mrkdwn" as the API returns it) turned into readable plain text.

`slack_to_text` resolves `<...>` tokens (mentions, channels, special mentions, dates, links) and Slack's
three HTML entities, and leaves everything else alone. Its output is plain text with one convention:

* A link with its own text becomes `[text](url)`. A bare link becomes the URL itself. The brackets in
  the link text are replaced by parentheses and `(`, `)` and whitespace in the URL are percent-encoded,
  so `LINK_PATTERN` finds every link unambiguously. Renderers split the text on these links and escape
  the text and the URL for their own format; this module never produces HTML or mrkdwn.
* `@channel`, `@here` and `@everyone` stay plain text: renderers neutralise pings before posting.
* Code (```blocks``` and `inline`) is kept as typed, backticks included: no mention or link is
  converted inside it. Only the entities are decoded there too, because they are Slack's transport
  escaping (a typed `<` arrives as `&lt;`), not what the author wrote.

Malformed markup never raises: an unclosed `<` stays as it is, a token with an empty half keeps the
other half (`<|x>` -> "x", `<foo|>` -> "foo").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

UNKNOWN_USER = "@unknown user"
UNKNOWN_CHANNEL = "#unknown channel"
UNKNOWN_GROUP = "@unknown group"

# One pass over the text, so a decoded `&lt;` can never be read as markup afterwards. Code comes first in
# the alternation so a fence wins over the tokens inside it. A token does not span lines: Slack escapes
# every literal `<`, so a raw one without its `>` on the same line is malformed and left alone.
_SCANNER = re.compile(
    r"(?P<block>```.*?```)"
    r"|(?P<inline>`[^`\n]+`)"
    r"|<(?P<token>[^<>\n]*)>"
    r"|&(?P<entity>lt|gt|amp);",
    re.DOTALL,
)
_ENTITY = re.compile(r"&(lt|gt|amp);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_BROADCASTS = {"channel": "@channel", "here": "@here", "everyone": "@everyone"}

LINK_PATTERN = re.compile(r"\[(?P<text>[^\[\]]*)\]\((?P<url>[A-Za-z][A-Za-z0-9+.\-]*:[^\s()]*)\)")
"""Finds the `[text](url)` links `slack_to_text` writes."""


def slack_to_text(text: str, *, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """Slack markup -> readable text (see the module docstring for the link convention)."""

    def replace(match: re.Match[str]) -> str:
        if match.lastgroup in ("block", "inline"):
            return _unescape(match.group(0))
        if match.lastgroup == "entity":
            return _ENTITIES[match.group("entity")]
        return _token(match.group("token"), users=users, channels=channels) or match.group(0)

    return _SCANNER.sub(replace, text)


def _unescape(text: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def _token(inner: str, *, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """One `<...>` token's readable form; "" when there is nothing to show (the caller keeps it raw)."""
    target, _, label = inner.partition("|")
    target, label = _unescape(target).strip(), _unescape(label).strip()
    if target.startswith("@"):
        name = users.get(target[1:])
        if name:
            return f"@{name}"
        return _at(label) if label else UNKNOWN_USER
    if target.startswith("#"):
        name = channels.get(target[1:]) or label
        return f"#{name.lstrip('#')}" if name else UNKNOWN_CHANNEL
    if target.startswith("!"):
        return _special(target[1:], label)
    if _SCHEME.match(target):
        return _link(target, label)
    return target or label


def _at(label: str) -> str:
    return label if label.startswith("@") else f"@{label}"


def _special(command: str, label: str) -> str:
    """`<!here>`, `<!subteam^S1|@oncall>`, `<!date^1721471400^{time}|10:30>` and the like."""
    name, _, rest = command.partition("^")
    if name in _BROADCASTS:
        return _BROADCASTS[name]
    if name == "subteam":
        return _at(label) if label else UNKNOWN_GROUP
    if name == "date":
        if label:
            return label
        epoch = rest.partition("^")[0]
        try:
            return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        except (ValueError, OverflowError, OSError):
            return "(a date)"
    return label or (f"@{name}" if name else "")


def _link(url: str, label: str) -> str:
    safe_url = re.sub(r"\s", "%20", url).replace("(", "%28").replace(")", "%29")
    if url.lower().startswith("mailto:"):
        address = url[len("mailto:") :]
        return address if not label or label == address else f"{label} ({address})"
    if not label or label == url:
        return safe_url
    text = " ".join(label.replace("[", "(").replace("]", ")").split())
    return f"[{text}]({safe_url})"


# Unicode blocks that hold emoji pictographs, plus the joiners and modifiers that build sequences.
_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF),  # mahjong .. symbols and pictographs extended-A (incl. skin tones, flags)
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats
    (0x2300, 0x23FF),  # technical: watch, hourglass, play buttons
    (0x2B00, 0x2BFF),  # arrows and stars: ⭐ ⬆
    (0x2190, 0x21FF),  # arrows
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),  # geometric shapes used as emoji
)
_EMOJI_GLUE = {0x200D, 0xFE0E, 0xFE0F, 0x20E3} | set(range(0xE0020, 0xE0080))  # ZWJ, selectors, keycap, tags
_SHORTCODE = re.compile(r":[a-z0-9_+\-']+:")
_KEYCAP = re.compile("[0-9#*]\ufe0f?\u20e3")


def _is_emoji_char(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _EMOJI_RANGES)


def is_emoji_only(text: str) -> bool:
    """True for ":eyes:", ":+1: :pray:", "🎉 👀": emoji (shortcodes or unicode) and whitespace, at least one emoji."""
    rest, shortcodes = _SHORTCODE.subn(" ", text)
    rest, keycaps = _KEYCAP.subn(" ", rest)
    seen = shortcodes + keycaps > 0
    for char in rest:
        if char.isspace() or ord(char) in _EMOJI_GLUE:
            continue
        if not _is_emoji_char(char):
            return False
        seen = True
    return seen
