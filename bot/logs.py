"""Structured logs: one JSON object per line with the incident and action; secrets redacted on the way out.

Listeners log with `extra={"incident": ..., "action": ...}`; message text never goes into a log at INFO or
above (only ids, counts and outcomes), and the redacting filter is a second net for anything else.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.analysis.redaction import RedactingFilter

# LogRecord attributes that are not `extra` fields.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# The libraries kept at WARNING. httpx2 is the PagerDuty client's HTTP library: it logs every request at INFO;
# httpcore2, under it, logs response headers at DEBUG.
LIBRARY_LOGGERS = (
    "slack_sdk",
    "slack_bolt",
    "urllib3",
    "apscheduler",
    "github",
    "atlassian",
    "pagerduty",
    "httpx2",
    "httpcore2",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            # The redacting filter keeps only the redacted text of a secret-bearing exception.
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Slack SDK logs request bodies at DEBUG; keep the libraries at WARNING unless debugging the bot itself.
    for noisy in LIBRARY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
