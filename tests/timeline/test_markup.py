from __future__ import annotations

import pytest

from bot.timeline.markup import LINK_PATTERN, is_emoji_only, slack_to_text

USERS = {"U01ANA": "Ana Lima", "U02BEN": "Ben Okafor"}
CHANNELS = {"C07INC9876": "inc-9876-api-latency"}


def convert(text: str) -> str:
    return slack_to_text(text, users=USERS, channels=CHANNELS)


class TestSlackToText:
    def test_plain_text_is_unchanged(self) -> None:
        """Text without markup comes back as it was, formatting characters included."""
        assert convert("p99 is *way* up on _customer-api_") == "p99 is *way* up on _customer-api_"

    def test_user_mention_uses_the_known_name(self) -> None:
        """<@U02BEN> becomes "@Ben Okafor" from the users map."""
        assert convert("<@U02BEN> can you look?") == "@Ben Okafor can you look?"

    def test_user_mention_prefers_the_known_name_over_its_label(self) -> None:
        """<@U02BEN|ben> still shows the display name from the users map."""
        assert convert("<@U02BEN|ben>") == "@Ben Okafor"

    def test_unknown_user_mention_falls_back_to_its_label(self) -> None:
        """An unknown user with a label shows "@label"."""
        assert convert("<@U99|ana>") == "@ana"

    def test_unknown_user_mention_without_label_is_unknown_user(self) -> None:
        """An unknown user without a label shows "@unknown user"."""
        assert convert("ping <@U99>") == "ping @unknown user"

    def test_channel_mention_uses_the_known_name(self) -> None:
        """<#C07INC9876> becomes "#inc-9876-api-latency"."""
        assert convert("see <#C07INC9876>") == "see #inc-9876-api-latency"

    def test_channel_mention_falls_back_to_its_label(self) -> None:
        """<#C123|ops> of an unknown channel becomes "#ops"."""
        assert convert("<#C123|ops>") == "#ops"

    def test_unknown_channel_without_label(self) -> None:
        """An unknown channel without a label stays readable."""
        assert convert("<#C123>") == "#unknown channel"

    @pytest.mark.parametrize(
        ("markup", "text"),
        [
            ("<!channel>", "@channel"),
            ("<!here>", "@here"),
            ("<!everyone>", "@everyone"),
            ("<!here|here>", "@here"),
            ("<!channel|@channel>", "@channel"),
        ],
    )
    def test_broadcast_mentions_become_plain_text(self, markup: str, text: str) -> None:
        """Channel-wide mentions become plain "@channel"/"@here"/"@everyone" text."""
        assert convert(f"{markup} investigating") == f"{text} investigating"

    def test_user_group_mention_uses_its_label(self) -> None:
        """<!subteam^S123|@oncall> becomes "@oncall"."""
        assert convert("<!subteam^S123|@oncall> please join") == "@oncall please join"

    def test_user_group_mention_without_label(self) -> None:
        """A user group without a label stays readable."""
        assert convert("<!subteam^S123>") == "@unknown group"

    def test_date_uses_its_fallback(self) -> None:
        """<!date^...|fallback> becomes the fallback text."""
        assert convert("since <!date^1721471400^{time}|10:30 UTC>") == "since 10:30 UTC"

    def test_date_without_fallback_is_written_in_utc(self) -> None:
        """A date token without fallback shows its timestamp in UTC."""
        assert convert("<!date^1721471400^{date_short}>") == "2024-07-20 10:30 UTC"

    def test_labelled_link_becomes_markdown_style(self) -> None:
        """<https://x|text> becomes "[text](https://x)"."""
        assert (
            convert("<https://github.com/acme/customer-api/pull/482|PR #482> looks suspicious")
            == "[PR #482](https://github.com/acme/customer-api/pull/482) looks suspicious"
        )

    def test_bare_link_becomes_the_url(self) -> None:
        """<https://x> becomes the URL itself."""
        assert convert("dash: <https://app.datadoghq.com/dash/1>") == "dash: https://app.datadoghq.com/dash/1"

    def test_link_labelled_with_its_own_url_is_the_url(self) -> None:
        """<url|url> is just the URL."""
        assert convert("<https://acme.example/x|https://acme.example/x>") == "https://acme.example/x"

    def test_entities_in_a_link_are_decoded(self) -> None:
        """&amp; in a URL and entities in a label are decoded."""
        assert (
            convert("<https://x.example/q?a=1&amp;b=2|p99 &gt; 2s>")
            == "[p99 > 2s](https://x.example/q?a=1&b=2)"
        )

    def test_link_text_and_url_cannot_break_the_convention(self) -> None:
        """Brackets in link text become parentheses and parentheses in the URL are percent-encoded."""
        text = convert("<https://wiki.example/Pool_(DB)|pool [draft]>")
        assert text == "[pool (draft)](https://wiki.example/Pool_%28DB%29)"
        assert LINK_PATTERN.fullmatch(text)

    def test_mailto_link_becomes_the_address(self) -> None:
        """<mailto:a@b|a@b> becomes "a@b"."""
        assert convert("write to <mailto:ana.lima@acme.example|ana.lima@acme.example>") == (
            "write to ana.lima@acme.example"
        )

    def test_mailto_link_with_another_label_keeps_both(self) -> None:
        """A mailto link labelled with a name shows the name and the address."""
        assert convert("<mailto:ana.lima@acme.example|Ana>") == "Ana (ana.lima@acme.example)"

    def test_entities_are_decoded_once(self) -> None:
        """&lt; &gt; &amp; are decoded, and "&amp;lt;" stays the literal "&lt;"."""
        assert convert("p99 &gt; 2s &amp;&amp; errors &lt; 1% &amp;lt;") == "p99 > 2s && errors < 1% &lt;"

    def test_decoded_brackets_are_not_read_as_markup(self) -> None:
        """A typed "<@U02BEN>" (sent as entities) stays literal text."""
        assert convert("type &lt;@U02BEN&gt; to mention") == "type <@U02BEN> to mention"

    def test_code_block_is_kept_verbatim(self) -> None:
        """No mention or link is converted inside a ``` block; only the entities are decoded."""
        text = "run:\n```curl <https://x.example> -H 'a: &lt;token&gt;'\n<@U02BEN>```\nthen <@U02BEN>"
        assert (
            convert(text)
            == "run:\n```curl <https://x.example> -H 'a: <token>'\n<@U02BEN>```\nthen @Ben Okafor"
        )

    def test_inline_code_is_kept_verbatim(self) -> None:
        """No mention or link is converted inside `inline code`."""
        assert convert("try `<#C07INC9876>` not <#C07INC9876>") == (
            "try `<#C07INC9876>` not #inc-9876-api-latency"
        )

    def test_unclosed_code_fence_is_not_code(self) -> None:
        """A lone ``` does not swallow the rest of the message."""
        assert convert("``` <@U02BEN>") == "``` @Ben Okafor"

    @pytest.mark.parametrize(
        ("markup", "text"),
        [
            ("see <https://x.example", "see <https://x.example"),
            ("<|x>", "x"),
            ("<foo|>", "foo"),
            ("<>", "<>"),
            ("<|>", "<|>"),
            ("<!>", "<!>"),
            ("a <b <@U02BEN>", "a <b @Ben Okafor"),
            ("<https://x.example\n|x>", "<https://x.example\n|x>"),
            ("<@>", "@unknown user"),
            ("<!date^notanumber^{date}>", "(a date)"),
            ("&lt", "&lt"),
        ],
    )
    def test_malformed_markup_stays_readable(self, markup: str, text: str) -> None:
        """Broken markup is kept or reduced to what it shows, without raising."""
        assert convert(markup) == text

    def test_everything_together(self) -> None:
        """A realistic message mixes mentions, a link, a broadcast and entities."""
        text = "<!here> <@U01ANA> pinged <@U02BEN> about <https://github.com/acme/customer-api/pull/482|PR #482> &amp; p99 &gt; 2s"
        assert convert(text) == (
            "@here @Ana Lima pinged @Ben Okafor about "
            "[PR #482](https://github.com/acme/customer-api/pull/482) & p99 > 2s"
        )


class TestLinkPattern:
    def test_finds_every_converted_link_in_order(self) -> None:
        """LINK_PATTERN finds each "[text](url)" that slack_to_text wrote, with its text and URL."""
        text = convert("see <https://a.example/1|one> and <https://b.example/(2)|two [b]>.")
        assert [(m["text"], m["url"]) for m in LINK_PATTERN.finditer(text)] == [
            ("one", "https://a.example/1"),
            ("two (b)", "https://b.example/%282%29"),
        ]

    def test_brackets_without_a_url_are_not_a_link(self) -> None:
        """ "[x](not a url)" is not a link."""
        assert LINK_PATTERN.search("[x](not a url)") is None


class TestIsEmojiOnly:
    @pytest.mark.parametrize(
        "text",
        [
            ":eyes:",
            ":+1: :pray:",
            " :eyes:\n",
            ":+1::skin-tone-2:",
            "🎉",
            "👀 🙏",
            "👍🏽",
            "❤️",
            "1️⃣",
            "🇧🇷",
            "👨\u200d👩\u200d👧",
        ],
    )
    def test_emoji_and_whitespace_only(self, text: str) -> None:
        """Shortcodes, unicode emoji (with modifiers and joiners) and whitespace are emoji-only."""
        assert is_emoji_only(text)

    @pytest.mark.parametrize(
        "text", ["", "  ", "ok :eyes:", "+1", "10:30:45", "looking 👀", "1", "<@U02BEN> :eyes:"]
    )
    def test_anything_else_is_not(self, text: str) -> None:
        """Words, numbers, mentions and empty text are not emoji-only."""
        assert not is_emoji_only(text)
