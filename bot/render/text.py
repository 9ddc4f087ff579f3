"""Escaping shared by the renderers: Slack mrkdwn without pings, XML text, the "[text](url)" link convention.

Timeline text is plain text that may hold "[text](https://url)" links (converted from Slack markup) and
"@channel"-like words. Every renderer splits it with `split_links` and escapes each part for its target.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# C0 controls but tab and newline, DEL and C1 controls, lone surrogates and U+FFFE/U+FFFF are not XML 1.0
# characters; the bidi embeddings, overrides and isolates can make text read differently than it is stored
# ("Trojan Source"), so they go too. Ordinary unicode (emoji, zero-width joiners inside emoji) stays.
_UNWANTED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]"
)
# An "@" that starts a word: "@channel", "@here", "@everyone", "@Ben". Not the "@" inside an email address.
_AT_WORD = re.compile(r"(?<!\w)@(?=\w)")
# U+200D ZERO WIDTH JOINER between "@" and the word: it reads the same and no longer parses as a mention.
ZWJ = "\u200d"
_LINK = re.compile(r"\[([^\[\]\n]*)\]\(((?:[^()\s]|\([^()\s]*\))+)\)")
_LINK_SCHEMES = ("http://", "https://", "mailto:")


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class LinkPart:
    text: str
    url: str


Part = TextPart | LinkPart


def clean(text: str) -> str:
    """Drop control characters, lone surrogates and bidi overrides; newlines become '\\n'."""
    return _UNWANTED.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def is_link_url(url: str | None) -> bool:
    """Only http(s) and mailto URLs become links; javascript:, data: and friends stay text."""
    return (
        bool(url) and url.lower().startswith(_LINK_SCHEMES) and not _UNWANTED.search(url) and " " not in url
    )


def split_links(text: str) -> list[Part]:
    """'see [PR #482](https://…) now' -> [TextPart('see '), LinkPart('PR #482', 'https://…'), TextPart(' now')]."""
    parts: list[Part] = []
    pending = ""
    position = 0
    for match in _LINK.finditer(text):
        label, url = match.group(1), match.group(2)
        if not is_link_url(url):
            continue
        pending += text[position : match.start()]
        if pending:
            parts.append(TextPart(pending))
            pending = ""
        parts.append(LinkPart(label or url, url))
        position = match.end()
    pending += text[position:]
    if pending:
        parts.append(TextPart(pending))
    return parts


def plain(text: str) -> str:
    """The text with links reduced to their labels."""
    return "".join(part.text for part in split_links(text))


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters; a cut text ends with '…'."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1].rstrip() + "…"


def neutralise_pings(text: str) -> str:
    """Text safe inside Slack mrkdwn: no mention, channel or group link can form and no word notifies.

    Slack asks for '&', '<' and '>' to be escaped, which disarms `<!channel>`, `<@U…>`, `<#C…>` and
    `<!subteam^…>`; "@channel", "@here", "@everyone" (and any "@name") get a zero-width joiner after the "@".
    """
    return break_mentions(clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def break_mentions(text: str) -> str:
    """'@channel' -> '@\u200dchannel': reads the same, and no longer parses as a mention anywhere."""
    return _AT_WORD.sub("@" + ZWJ, text)


def slack_url(url: str) -> str:
    """A URL fit for `<url|label>`: Slack's three escapes, and '|' encoded so it cannot end the URL early."""
    return url.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "%7C")


def xml_text(text: object) -> str:
    """Text safe as XHTML character data or an attribute value (quotes escaped too)."""
    return html.escape(clean(str(text)), quote=True)
