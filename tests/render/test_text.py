from __future__ import annotations

import re

import pytest

from bot.render.text import ZWJ, LinkPart, TextPart, neutralise_pings, split_links, truncate, xml_text


class TestNeutralisePings:
    @pytest.mark.parametrize(
        "markup",
        ["<!channel>", "<!here>", "<!everyone>", "<@U02BEN>", "<#C07INC9876>", "<!subteam^S0123|@oncall>"],
    )
    def test_slack_mention_markup_is_escaped(self, markup: str) -> None:
        """Mention, channel and group markup is shown as text: no '<' survives to open a Slack link."""
        out = neutralise_pings(f"hey {markup} look")
        assert "<" not in out and ">" not in out
        assert "&lt;" in out and "&gt;" in out

    @pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel", "(@here)"])
    def test_broadcast_words_are_broken(self, word: str) -> None:
        """'@channel', '@here', '@everyone' get a zero-width joiner after the '@' so they do not notify."""
        out = neutralise_pings(f"{word} please")
        assert not re.search(r"(?<!\w)@(channel|here|everyone)", out, re.IGNORECASE)
        assert out.replace(ZWJ, "") == f"{word} please"

    def test_ampersand_escaped_first(self) -> None:
        """'&' becomes '&amp;' and an existing entity is not left live."""
        assert neutralise_pings("a & b &lt;!channel&gt;") == "a &amp; b &amp;lt;!channel&amp;gt;"

    def test_email_addresses_untouched(self) -> None:
        """The '@' inside an email address is not a mention and stays as it is."""
        assert neutralise_pings("ana.lima@acme.example") == "ana.lima@acme.example"

    def test_bidi_overrides_and_controls_dropped(self) -> None:
        """Bidi overrides and control characters cannot reach Slack either."""
        assert neutralise_pings("a\u202eb\x00c\x1fd") == "abcd"


class TestXmlText:
    def test_markup_escaped(self) -> None:
        """Tags, quotes and ampersands become entities."""
        assert xml_text('<a href="x">&amp;</a>\'') == "&lt;a href=&quot;x&quot;&gt;&amp;amp;&lt;/a&gt;&#x27;"

    def test_xml_illegal_characters_removed(self) -> None:
        """C0 controls (but tab and newline), lone surrogates and U+FFFE/U+FFFF are removed."""
        raw = "".join(chr(c) for c in range(0x20)) + "\ud800x\udfff\ufffe\uffff"
        assert xml_text(raw) == "\t\n\nx"

    def test_bidi_overrides_removed(self) -> None:
        """U+202A–U+202E and U+2066–U+2069 are removed so text reads as stored."""
        raw = (
            "".join(chr(c) for c in range(0x202A, 0x202F))
            + "ok"
            + "".join(chr(c) for c in range(0x2066, 0x206A))
        )
        assert xml_text(raw) == "ok"

    def test_ordinary_unicode_kept(self) -> None:
        """Accents, CJK, emoji and the joiners inside emoji sequences are kept."""
        text = "Ação 障害 👩\u200d💻 — ok"
        assert xml_text(text) == text


class TestSplitLinks:
    def test_text_and_links(self) -> None:
        """'[t](url)' becomes a link part between text parts."""
        parts = split_links("see [PR #482](https://github.com/acme/customer-api/pull/482) now")
        assert parts == [
            TextPart("see "),
            LinkPart("PR #482", "https://github.com/acme/customer-api/pull/482"),
            TextPart(" now"),
        ]

    @pytest.mark.parametrize(
        "url", ["javascript:alert(1)", "data:text/html,x", "ftp://x", "vbscript:x", "/relative"]
    )
    def test_unsafe_schemes_stay_text(self, url: str) -> None:
        """Only http, https and mailto URLs become links; anything else stays literal text."""
        text = f"[click]({url})"
        assert split_links(text) == [TextPart(text)]

    def test_mailto_and_parentheses(self) -> None:
        """mailto links work and a URL may hold balanced parentheses."""
        parts = split_links(
            "[Ana](mailto:ana@acme.example) [wiki](https://en.wikipedia.org/wiki/Pool_(computer_science))"
        )
        assert parts[0] == LinkPart("Ana", "mailto:ana@acme.example")
        assert parts[2] == LinkPart("wiki", "https://en.wikipedia.org/wiki/Pool_(computer_science)")

    def test_empty_label_uses_url(self) -> None:
        """A link without a label shows its URL."""
        assert split_links("[](https://x.example)") == [LinkPart("https://x.example", "https://x.example")]

    def test_plain_text(self) -> None:
        """Text without links is one text part; empty text has none."""
        assert split_links("no links [here]") == [TextPart("no links [here]")]
        assert split_links("") == []


class TestTruncate:
    def test_short_text_unchanged(self) -> None:
        """Text within the limit is returned as it is."""
        assert truncate("abc", 3) == "abc"

    def test_long_text_cut_with_ellipsis(self) -> None:
        """A cut text ends with '…' and stays within the limit."""
        out = truncate("a" * 100, 10)
        assert out == "a" * 9 + "…" and len(out) == 10

    def test_zero_limit(self) -> None:
        """A limit of zero gives nothing."""
        assert truncate("abc", 0) == ""
