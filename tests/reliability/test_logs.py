"""Logs: one JSON object per line, with the incident and the action; no token, no chat text at INFO or above.

A draft (`/postmortem PD-9876`) and a publication (Approve) run through the bot's Bolt app — the same
listeners, use cases and live clients as `python -m bot run` — with logging configured by
`bot.logs.configure_logging` and stderr captured.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from bot.ids import ActionId
from bot.timeline.markup import slack_to_text
from tests.fakes.confluence import ConfluenceFake
from tests.fakes.github import DEFAULT_TOKEN as GITHUB_TOKEN
from tests.fakes.slack_web import APP_TOKEN, BOT_TOKEN
from tests.reliability.pipeline import CHANNEL, USERS, Fakes, json_logs, log_strings, plant_messages
from tests.reliability.slack_app import slack_app

# Loggers of the libraries the bot uses, the HTTP stacks under them included. Alembic is not among them:
# its INFO lines are the report of the schema migration at start-up.
LIBRARIES = (
    "slack_sdk", "slack_bolt", "urllib3", "github", "atlassian", "pagerduty", "httpx2", "httpcore2",
    "apscheduler", "sqlalchemy",
)  # fmt: skip
CHAT_MARKERS = [f"chat-only-words-{n:02d}" for n in range(10)]


def draft_and_publish(fakes: Fakes, confluence: ConfluenceFake, workdir: Path, *, level: str) -> list[str]:
    """`/postmortem PD-9876`, then Approve, with logging at `level`; the lines written."""
    fakes.reset()
    plant_messages(fakes.slack, [f"{marker}: still slow on my side" for marker in CHAT_MARKERS])
    with json_logs(level) as lines, slack_app(fakes, confluence, workdir) as bot:
        bot.command("PD-9876")
        stored = bot.stored()
        assert stored is not None and stored.status.value == "draft", stored
        bot.click(ActionId.APPROVE)
        stored = bot.stored()
        assert stored is not None and stored.status.value == "published", stored
    return lines


@pytest.fixture(scope="module")
def info_lines(
    fakes: Fakes, confluence: ConfluenceFake, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    return draft_and_publish(fakes, confluence, tmp_path_factory.mktemp("info"), level="INFO")


@pytest.fixture(scope="module")
def debug_lines(
    fakes: Fakes, confluence: ConfluenceFake, tmp_path_factory: pytest.TempPathFactory
) -> list[str]:
    return draft_and_publish(fakes, confluence, tmp_path_factory.mktemp("debug"), level="DEBUG")


def entries(lines: list[str]) -> list[dict]:
    return [json.loads(line) for line in lines]


def chat_texts(fakes: Fakes) -> list[str]:
    """What people wrote in the incident channel, as a reader reads it (long enough to be telling)."""
    channel = fakes.slack.channels[CHANNEL]
    messages = channel.messages + [r for thread in channel.replies.values() for r in thread]
    texts = [
        slack_to_text(m.get("text", ""), users=USERS, channels={}) for m in messages if not m.get("bot_id")
    ]
    return [text[:40] for text in texts if len(text) >= 25]


class TestStructuredLogs:
    """Logs"""

    @pytest.mark.case("a draft and a publication, logging at INFO")
    def test_every_line_is_json_with_incident_and_action(self, info_lines: list[str], figures: dict) -> None:
        """Every line is one JSON object with time, level, logger and event; every line the bot writes names the incident and the action, and the draft and the publication are both told."""
        logged = entries(info_lines)
        assert all({"at", "level", "logger", "event"} <= entry.keys() for entry in logged)
        ours = [entry for entry in logged if entry["logger"].startswith("bot.")]
        assert ours and all(entry.get("incident") == "PD-9876" and entry.get("action") for entry in ours)
        told = [entry["action"] for entry in ours]
        assert told.count("draft") >= 2 and told.count("approve") >= 2  # started and finished, each
        figures["lines"] = len(logged)
        figures["lines by the bot"] = len(ours)

    @pytest.mark.case("libraries at INFO and above")
    def test_only_the_bot_speaks_at_info(self, info_lines: list[str], figures: dict) -> None:
        """At INFO the libraries (Slack, PagerDuty's httpx2, GitHub, Confluence, urllib3, SQLAlchemy) say nothing: every line comes from the bot's own loggers, bar Alembic's report of the migration at start-up."""
        loggers = sorted({entry["logger"] for entry in entries(info_lines)})
        assert [name for name in loggers if not name.startswith(("bot.", "alembic."))] == []
        figures["loggers"] = len(loggers)

    @pytest.mark.case("chat text in the logs")
    def test_no_chat_text_at_info_or_above(
        self, fakes: Fakes, info_lines: list[str], debug_lines: list[str], figures: dict
    ) -> None:
        """No line at INFO or above holds anything people wrote in the channel, at LOG_LEVEL=INFO or DEBUG."""
        texts = chat_texts(fakes) + CHAT_MARKERS
        loud = [
            line
            for line, entry in zip(info_lines + debug_lines, entries(info_lines + debug_lines), strict=True)
            if entry["level"] not in ("debug", "notset")
        ]
        found = [text for text in texts if any(text in line for line in loud)]
        assert found == []
        assert loud  # the draft and the publication were logged
        figures["chat texts looked for"] = len(texts)
        figures["lines at INFO or above"] = len(loud)

    @pytest.mark.case("tokens in the logs")
    def test_no_token_at_any_level(
        self,
        fakes: Fakes,
        confluence: ConfluenceFake,
        info_lines: list[str],
        debug_lines: list[str],
        figures: dict,
    ) -> None:
        """No credential the bot holds (Slack bot and app tokens, PagerDuty and GitHub tokens, the Confluence API token and its Basic header) is in any line, at INFO or DEBUG."""
        basic = base64.b64encode(f"{confluence.username}:{confluence.api_token}".encode()).decode()
        tokens = [BOT_TOKEN, APP_TOKEN, fakes.pagerduty.token, GITHUB_TOKEN, confluence.api_token, basic]
        text = log_strings(info_lines + debug_lines)
        assert [token[:12] for token in tokens if token in text] == []
        figures["tokens"] = len(tokens)
        figures["lines"] = len(info_lines) + len(debug_lines)

    @pytest.mark.case("LOG_LEVEL=DEBUG and the libraries")
    def test_debug_keeps_libraries_at_warning(self) -> None:
        """LOG_LEVEL=DEBUG makes the bot verbose but keeps every library at WARNING: at DEBUG they log whole request and response bodies, chat and tokens included."""
        with json_logs("DEBUG"):
            assert logging.getLogger().level == logging.DEBUG
            quiet = {name: logging.getLogger(name).getEffectiveLevel() for name in LIBRARIES}
        assert {name: level for name, level in quiet.items() if level < logging.WARNING} == {}

    @pytest.mark.case("a secret in an error that is logged")
    def test_exception_text_is_redacted(self) -> None:
        """An exception whose message holds a token is logged with the token redacted, in one JSON line."""
        with json_logs("INFO") as lines:
            try:
                raise RuntimeError(f"Slack said no to {BOT_TOKEN}")
            except RuntimeError:
                logging.getLogger("bot.app").exception(
                    "listener failed", extra={"incident": "PD-9876", "action": "draft"}
                )
        (line,) = lines
        entry = json.loads(line)
        assert BOT_TOKEN not in line and "[REDACTED:slack_token]" in entry["exception"]
        assert (entry["incident"], entry["action"], entry["level"]) == ("PD-9876", "draft", "error")
