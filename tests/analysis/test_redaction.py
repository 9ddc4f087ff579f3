from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.analysis.redaction import (
    KINDS,
    RedactingFilter,
    merge_counts,
    placeholder,
    redact_evidence,
    redact_text,
)
from bot.timeline.models import (
    Channel,
    ChatMessage,
    Commit,
    Deployment,
    EventKind,
    Incident,
    IncidentEvidence,
    Source,
    TimelineEvent,
)
from tests.analysis.secrets_corpus import (
    ALNUM,
    AWS_ACCESS_KEY,
    AWS_SECRET_KEY,
    B64,
    BEARER_TOKEN,
    CARD_VISA_SPACED,
    GITHUB_PAT,
    HEX,
    JWT,
    LOOK_ALIKES,
    OPENSSH_KEY,
    PNG_DATA,
    RSA_KEY,
    SAMPLES,
    SLACK_BOT_TOKEN,
    LookAlike,
    Sample,
    fill,
)

T0 = datetime(2024, 7, 20, 10, 30, tzinfo=UTC)
SLACK_WEBHOOK_PATH = "T0" + "1ACME000/B07ALERTS0/" + fill(ALNUM, 24, 100)
DB_PASSWORD = "Pg-" + fill(ALNUM, 14, 101)
CI_TOKEN = fill(ALNUM, 30, 107) + "7"


def timed(text: str) -> tuple[str, dict[str, int], float]:
    started = time.perf_counter()
    result = redact_text(text)
    return result.text, result.counts, time.perf_counter() - started


class TestRedactText:
    @pytest.mark.parametrize("sample", SAMPLES, ids=[f"{n:02d}-{s.kind}" for n, s in enumerate(SAMPLES)])
    def test_corpus_secret_is_replaced_in_place(self, sample: Sample) -> None:
        """Each corpus secret becomes its kind's placeholder, exactly where it was, counted once."""
        assert sample.secret in sample.text
        result = redact_text(sample.text)
        assert sample.secret not in result.text
        assert placeholder(sample.kind) in result.text
        assert result.text == sample.text.replace(sample.secret, placeholder(sample.kind))
        assert result.counts == {sample.kind: 1}

    @pytest.mark.parametrize("look_alike", LOOK_ALIKES, ids=[a.name for a in LOOK_ALIKES])
    def test_look_alike_is_untouched(self, look_alike: LookAlike) -> None:
        """Ids, hashes, timestamps, versions, images, prose, links and placeholders stay as they are."""
        result = redact_text(look_alike.text)
        assert result.text == look_alike.text
        assert result.counts == {}

    def test_corpus_is_broad(self) -> None:
        """The corpus holds at least 40 secrets of at least 40 kinds and formats, and 20 look-alikes."""
        assert len(SAMPLES) >= 40
        assert len({s.kind for s in SAMPLES}) >= 40
        assert len(LOOK_ALIKES) >= 20
        assert {s.kind for s in SAMPLES} <= KINDS

    def test_keeps_the_surrounding_words(self) -> None:
        """Header names, schemes, users and hosts stay; only the secret goes."""
        header = redact_text(
            f"curl -H 'Authorization: Bearer {BEARER_TOKEN}' https://api.acme.example/orders"
        )
        assert (
            header.text
            == "curl -H 'Authorization: Bearer [REDACTED:bearer_token]' https://api.acme.example/orders"
        )
        url = redact_text(f"postgres://app:{DB_PASSWORD}@db:5432/orders")
        assert url.text == "postgres://app:[REDACTED:connection_string_password]@db:5432/orders"

    def test_several_secrets_in_one_message(self) -> None:
        """Every secret in a message is redacted and counted by kind."""
        text = (
            f"repro: curl -H 'Authorization: Bearer {BEARER_TOKEN}' "
            f"https://api.acme.example/orders?limit=5&AWS_ACCESS_KEY_ID={AWS_ACCESS_KEY}\n"
            f"aws_secret_access_key = {AWS_SECRET_KEY}\nand the bot uses {SLACK_BOT_TOKEN}, "
            f"card {CARD_VISA_SPACED}, DATABASE_URL=postgres://app:{DB_PASSWORD}@db.internal:5432/orders"
        )
        result = redact_text(text)
        for secret in (
            BEARER_TOKEN,
            AWS_ACCESS_KEY,
            AWS_SECRET_KEY,
            SLACK_BOT_TOKEN,
            CARD_VISA_SPACED,
            DB_PASSWORD,
        ):
            assert secret not in result.text
        assert result.counts == {
            "aws_access_key": 1,
            "aws_secret_key": 1,
            "bearer_token": 1,
            "card_number": 1,
            "connection_string_password": 1,
            "slack_token": 1,
        }
        assert (
            "https://api.acme.example/orders?limit=5&AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]"
            in result.text
        )

    def test_the_same_secret_twice_counts_twice(self) -> None:
        """Two occurrences are two redactions."""
        result = redact_text(f"{GITHUB_PAT} then again {GITHUB_PAT}")
        assert result.text == "[REDACTED:github_token] then again [REDACTED:github_token]"
        assert result.counts == {"github_token": 2}

    def test_multi_line_key_inside_a_code_block(self) -> None:
        """A PEM key pasted in a Slack code block is one private_key, the fences and prose kept."""
        text = f"here is the old key, revoke it:\n```\n{RSA_KEY}\n```\nand this one\n```{OPENSSH_KEY}```"
        result = redact_text(text)
        assert result.text == (
            "here is the old key, revoke it:\n```\n[REDACTED:private_key]\n```\nand this one\n"
            "```[REDACTED:ssh_private_key]```"
        )
        assert result.counts == {"private_key": 1, "ssh_private_key": 1}

    def test_truncated_key_is_still_redacted(self) -> None:
        """A PEM header without its END line takes the base64 lines after it, not the prose that follows."""
        truncated = "\n".join(RSA_KEY.splitlines()[:4])
        result = redact_text(f"{truncated}\n(cut off) anyway the deploy went out")
        assert result.text == "[REDACTED:private_key]\n(cut off) anyway the deploy went out"

    def test_secrets_inside_slack_markup(self) -> None:
        """Slack links keep their brackets, pipes and labels around the redacted part."""
        text = (
            f"<https://hooks.slack.com/services/{SLACK_WEBHOOK_PATH}> "
            f"<postgres://app:{DB_PASSWORD}@db:5432/orders|orders db> "
            f"<https://api.acme.example/v1|{GITHUB_PAT}> "
            f"<https://x.example/export?a=1&amp;access_token={fill(ALNUM, 30, 102)}&amp;b=2|export> "
            "DB_PASSWORD=Tr0ub4dor&amp;3zz for <@U04DEE>"
        )
        result = redact_text(text)
        assert result.text == (
            "<https://hooks.slack.com/services/[REDACTED:slack_webhook]> "
            "<postgres://app:[REDACTED:connection_string_password]@db:5432/orders|orders db> "
            "<https://api.acme.example/v1|[REDACTED:github_token]> "
            "<https://x.example/export?a=1&amp;access_token=[REDACTED:token_in_url]&amp;b=2|export> "
            "DB_PASSWORD=[REDACTED:env_assignment] for <@U04DEE>"
        )

    def test_secret_inside_a_markdown_link(self) -> None:
        """A password in a Markdown link's URL goes; the label and the rest of the URL stay."""
        result = redact_text(f"[dashboard](https://admin:{DB_PASSWORD}@grafana.acme.example/d/abc)")
        assert (
            result.text == "[dashboard](https://admin:[REDACTED:password_in_url]@grafana.acme.example/d/abc)"
        )

    def test_most_specific_kind_wins(self) -> None:
        """A vendor token after a generic keyword keeps its vendor kind; a JWT in a header is a bearer token."""
        assert redact_text(f"password: {GITHUB_PAT}").counts == {"github_token": 1}
        assert redact_text(f"export SLACK_BOT_TOKEN={SLACK_BOT_TOKEN}").counts == {"slack_token": 1}
        assert redact_text(f"Authorization: Bearer {JWT}").counts == {"bearer_token": 1}
        assert redact_text(f"Authorization: Bearer {GITHUB_PAT}").counts == {"github_token": 1}
        assert redact_text(f"jwt={JWT}").counts == {"jwt": 1}

    def test_secret_nested_in_another_assignment(self) -> None:
        """A refused outer assignment does not hide a secret inside its value."""
        result = redact_text("kubectl create secret generic db --from-literal=password=S3cr3tPw")
        assert (
            result.text
            == "kubectl create secret generic db --from-literal=password=[REDACTED:password_assignment]"
        )

    def test_redacting_twice_changes_nothing_more(self) -> None:
        """Placeholders are never redacted again, so a second pass finds nothing."""
        once = redact_text("\n".join(sample.text for sample in SAMPLES))
        twice = redact_text(once.text)
        assert twice.text == once.text
        assert twice.counts == {}
        assert sum(once.counts.values()) == len(SAMPLES)

    def test_empty_text(self) -> None:
        """Nothing in, nothing out."""
        assert redact_text("").text == ""
        assert redact_text("").counts == {}

    def test_forty_kilobyte_message_is_quick_and_complete(self) -> None:
        """A 40 KB paste of log lines with secrets sprinkled through is fully redacted well within a second."""
        lines = []
        for n in range(400):
            sample = SAMPLES[n % len(SAMPLES)]
            lines.append(f"2024-07-20T10:{n % 60:02d}:00Z request_id=req-{n:06d} {sample.text}")
        text = "\n".join(lines)
        assert len(text) >= 40_000
        redacted, counts, seconds = timed(text)
        assert seconds < 2.0
        assert sum(counts.values()) == 400
        for sample in SAMPLES:
            assert sample.secret not in redacted

    @pytest.mark.parametrize(
        "text",
        [
            "a" * 40_000,
            "4" * 40_000,
            "4111 " * 8_000,
            "password=" * 4_500,
            "key=" * 10_000,
            "x: " * 13_000,
            "?token=" * 6_000,
            ("-----BEGIN RSA " + "PRIVATE KEY-----\n") * 1_300,
            "-" * 40_000,
            "postgres://a:" * 3_000,
            "https://x:" * 4_000,
            "eyJ" * 13_000,
            "Authorization: Bearer " * 2_000,
            "&amp;" * 8_000,
            '"password": "' * 3_000,
        ],
        ids=lambda text: repr(text[:16]),
    )
    def test_degenerate_input_stays_linear(self, text: str) -> None:
        """Repetitive 40 KB input that could trip a backtracking pattern is handled in well under a second."""
        redacted, counts, seconds = timed(text)
        assert seconds < 1.0
        assert redacted.count("[REDACTED:") == sum(counts.values())
        assert redact_text(redacted).counts == {}  # nothing left behind for a second pass

    def test_one_megabyte_base64_blob_is_left_alone_quickly(self) -> None:
        """A 1 MB base64 run (and a 1 MB inline image) is not a secret and takes well under the bound."""
        blob = fill(B64, 1_000_000, 103)
        redacted, counts, seconds = timed(f"dump: {blob} end")
        assert seconds < 3.0
        assert redacted == f"dump: {blob} end"
        assert counts == {}
        image = "data:image/png;base64,iVBORw0KGgo" + blob
        redacted, counts, seconds = timed(f"![chart]({image})")
        assert seconds < 3.0
        assert redacted == f"![chart]({image})"

    def test_secret_after_a_long_blob_is_still_found(self) -> None:
        """The scan reaches the end of a huge message."""
        redacted, counts, _ = timed(f"{PNG_DATA} {fill(B64, 500_000, 104)} then {GITHUB_PAT}")
        assert redacted.endswith("then [REDACTED:github_token]")
        assert counts == {"github_token": 1}


def _evidence() -> IncidentEvidence:
    incident = Incident(
        id="Q1R2S3T4U5V6W7",
        number=9876,
        title=f"High severity API latency spikes in production (key {AWS_ACCESS_KEY})",
        url="https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7",
        status="resolved",
        created_at=T0,
        conference_url="https://acme.zoom.us/j/81234567890?pwd=" + fill(ALNUM, 32, 105),
    )
    alert = TimelineEvent(
        at=T0,
        source=Source.PAGERDUTY,
        kind=EventKind.ALERT,
        text=f"High API Latency: webhook https://hooks.slack.com/services/{SLACK_WEBHOOK_PATH}",
        id="PALERT01",
        url="https://acme.pagerduty.com/alerts/PALERT01",
        details={
            "monitor": "High API Latency",
            "query": "avg(last_5m):p99:trace.http.request.duration{service:customer-api} > 2",
            "body": f"dd_api_key={fill(HEX, 32, 106)}",
        },
        replies=(
            TimelineEvent(
                at=T0 + timedelta(minutes=1),
                source=Source.PAGERDUTY,
                kind=EventKind.NOTE,
                text=f"retry with Authorization: Bearer {BEARER_TOKEN}",
            ),
        ),
    )
    commit = Commit(
        sha="9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
        message=f"Use pool v2\n\nDATABASE_URL=postgres://app:{DB_PASSWORD}@db.internal:5432/orders",
        pull_request=482,
        pull_request_title=f"Use pool v2 for the orders DB client ({SLACK_BOT_TOKEN})",
    )
    deployment = Deployment(
        id=1003,
        repo="acme/customer-api",
        sha=commit.sha,
        ref="main",
        environment="production",
        description=f"Deploy #482: DB client pool v2, deployed with {GITHUB_PAT}",
        created_at=T0 - timedelta(minutes=18),
        url=f"https://ci.acme.example/logs/1003?token={CI_TOKEN}",
        commits=(commit,),
    )
    message = ChatMessage(
        ts="1721473500.000100",
        channel_id="C07INC9876",
        user_id="U04DEE",
        text=f"repro: curl -H 'Authorization: Bearer {JWT}' https://api.acme.example/orders?limit=5&AWS_ACCESS_KEY_ID={AWS_ACCESS_KEY}",
    )
    return IncidentEvidence(
        incident=incident,
        pagerduty_events=(alert,),
        deployments=(deployment,),
        channel=Channel(id="C07INC9876", name="inc-9876-api-latency"),
        messages=(message, ChatMessage(ts="1721473560.000200", channel_id="C07INC9876", text="looking")),
        users={"U04DEE": "Dee Park"},
        source_notes=(f"GitHub was unreachable: https://ci:{DB_PASSWORD}@proxy.acme.example/ 503",),
    )


class TestRedactEvidence:
    def test_every_free_text_is_redacted(self) -> None:
        """Title, bridge URL, alert text, details and notes, deploy description and URL, commit, PR title and chat lose their secrets."""
        evidence = _evidence()
        redacted, _ = redact_evidence(evidence)
        dumped = redacted.model_dump_json()
        for secret in (
            AWS_ACCESS_KEY,
            SLACK_WEBHOOK_PATH,
            BEARER_TOKEN,
            DB_PASSWORD,
            SLACK_BOT_TOKEN,
            GITHUB_PAT,
            JWT,
            CI_TOKEN,
        ):
            assert secret not in dumped
        assert fill(HEX, 32, 106) not in dumped
        assert (
            redacted.incident.title
            == "High severity API latency spikes in production (key [REDACTED:aws_access_key])"
        )
        assert (
            redacted.incident.conference_url
            == "https://acme.zoom.us/j/81234567890?pwd=[REDACTED:password_in_url]"
        )
        alert = redacted.pagerduty_events[0]
        assert alert.details["body"] == "dd_api_key=[REDACTED:datadog_api_key]"
        assert alert.replies[0].text == "retry with Authorization: Bearer [REDACTED:bearer_token]"
        commit = redacted.deployments[0].commits[0]
        assert commit.pull_request_title == "Use pool v2 for the orders DB client ([REDACTED:slack_token])"
        assert "postgres://app:[REDACTED:connection_string_password]@db.internal" in commit.message
        assert (
            redacted.deployments[0].url == "https://ci.acme.example/logs/1003?token=[REDACTED:token_in_url]"
        )
        assert (
            redacted.deployments[0].description
            == "Deploy #482: DB client pool v2, deployed with [REDACTED:github_token]"
        )
        assert redacted.messages[0].text == (
            "repro: curl -H 'Authorization: Bearer [REDACTED:bearer_token]' "
            "https://api.acme.example/orders?limit=5&AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key]"
        )
        assert redacted.source_notes == (
            "GitHub was unreachable: https://ci:[REDACTED:password_in_url]@proxy.acme.example/ 503",
        )

    def test_counts_are_summed_over_all_fields(self) -> None:
        """The counts add up every field's redactions by kind."""
        _, counts = redact_evidence(_evidence())
        assert counts == {
            "aws_access_key": 2,
            "bearer_token": 2,
            "connection_string_password": 1,
            "datadog_api_key": 1,
            "github_token": 1,
            "password_in_url": 2,
            "slack_token": 1,
            "slack_webhook": 1,
            "token_in_url": 1,
        }

    def test_everything_else_is_kept(self) -> None:
        """Ids, shas, URLs, times and untouched texts are the same; the input evidence is not changed."""
        evidence = _evidence()
        before = evidence.model_dump_json()
        redacted, _ = redact_evidence(evidence)
        assert evidence.model_dump_json() == before
        assert redacted.incident.id == evidence.incident.id
        assert redacted.incident.url == evidence.incident.url
        assert redacted.pagerduty_events[0].details["query"] == evidence.pagerduty_events[0].details["query"]
        assert redacted.pagerduty_events[0].url == "https://acme.pagerduty.com/alerts/PALERT01"
        assert redacted.deployments[0].sha == evidence.deployments[0].sha
        assert redacted.deployments[0].commits[0].pull_request == 482
        assert redacted.messages[0].ts == "1721473500.000100"
        assert redacted.messages[1] == evidence.messages[1]
        assert redacted.users == evidence.users and redacted.channel == evidence.channel

    def test_clean_evidence_counts_nothing(self) -> None:
        """Evidence without secrets comes back equal, with no counts."""
        evidence = IncidentEvidence(
            incident=Incident(
                id="Q1",
                number=1,
                title="Latency",
                url="https://acme.pagerduty.com/incidents/Q1",
                status="resolved",
                created_at=T0,
            ),
            messages=(
                ChatMessage(ts="1721473500.000100", channel_id="C07INC9876", text="rolled back 7a6b5c4"),
            ),
        )
        redacted, counts = redact_evidence(evidence)
        assert redacted == evidence
        assert counts == {}


class TestMergeCounts:
    def test_sums_by_kind(self) -> None:
        """Counts of the same kind add up; kinds are sorted."""
        assert merge_counts({"jwt": 1, "slack_token": 2}, {"slack_token": 1}, {}) == {
            "jwt": 1,
            "slack_token": 3,
        }

    def test_nothing_and_zeros(self) -> None:
        """No counts, or zero counts, give an empty mapping."""
        assert merge_counts() == {}
        assert merge_counts({"jwt": 0}) == {}


class _Collect(logging.Handler):
    """Keeps each formatted line, as a real handler would write it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def collected() -> Iterator[tuple[logging.Logger, _Collect]]:
    logger = logging.getLogger("tests.analysis.redaction")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = _Collect()
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


class TestRedactingFilter:
    def test_secret_in_the_message(self) -> None:
        """A secret written into the format string is redacted."""
        record = logging.LogRecord("bot", logging.INFO, __file__, 1, f"token {GITHUB_PAT} used", None, None)
        assert RedactingFilter().filter(record) is True
        assert record.getMessage() == "token [REDACTED:github_token] used"

    def test_secret_in_the_args(self) -> None:
        """A secret passed as an argument is redacted, including one that needs the format's words."""
        record = logging.LogRecord(
            "bot",
            logging.INFO,
            __file__,
            1,
            "calling %s with password=%s",
            (f"https://ci:{DB_PASSWORD}@nexus.acme.example/", "hunter2"),
            None,
        )
        RedactingFilter().filter(record)
        assert record.getMessage() == (
            "calling https://ci:[REDACTED:password_in_url]@nexus.acme.example/ with password=[REDACTED:password_assignment]"
        )
        assert DB_PASSWORD not in str(record.args) and "hunter2" not in str(record.args)

    def test_mapping_args(self) -> None:
        """Mapping-style arguments are redacted too."""
        record = logging.LogRecord(
            "bot", logging.INFO, __file__, 1, "slack says %(token)s", ({"token": SLACK_BOT_TOKEN},), None
        )
        RedactingFilter().filter(record)
        assert record.getMessage() == "slack says [REDACTED:slack_token]"

    def test_clean_record_is_untouched(self) -> None:
        """A record without secrets keeps its own msg and args."""
        record = logging.LogRecord(
            "bot", logging.INFO, __file__, 1, "drafted %s in %d ms", ("PD-9876", 412), None
        )
        RedactingFilter().filter(record)
        assert record.msg == "drafted %s in %d ms"
        assert record.args == ("PD-9876", 412)

    def test_mismatched_args_do_not_raise(self) -> None:
        """Arguments that do not fit the format are still redacted, and the filter lets the record through."""
        record = logging.LogRecord("bot", logging.INFO, __file__, 1, "%d things", (GITHUB_PAT,), None)
        assert RedactingFilter().filter(record) is True
        assert record.msg == "%d things"
        assert record.args == ("[REDACTED:github_token]",)

    def test_extra_fields(self) -> None:
        """Strings passed through `extra=` are redacted; the record's own fields are not touched."""
        record = logging.LogRecord("bot", logging.INFO, __file__, 1, "published", None, None)
        record.incident = "PD-9876"
        record.url = f"https://deploy:{DB_PASSWORD}@nexus.acme.example/"
        RedactingFilter().filter(record)
        assert record.incident == "PD-9876"
        assert record.url == "https://deploy:[REDACTED:password_in_url]@nexus.acme.example/"
        assert record.pathname == __file__

    def test_exception_with_a_secret_keeps_only_its_redacted_text(self) -> None:
        """exc_info goes and exc_text holds the redacted traceback, so no formatter can print the secret."""
        try:
            raise RuntimeError(f"bad token {GITHUB_PAT}")
        except RuntimeError as error:
            record = logging.LogRecord(
                "bot", logging.ERROR, __file__, 1, "failed", None, (RuntimeError, error, error.__traceback__)
            )
        RedactingFilter().filter(record)
        assert record.exc_info is None
        assert (
            record.exc_text is not None
            and "RuntimeError: bad token [REDACTED:github_token]" in record.exc_text
        )
        assert GITHUB_PAT not in logging.Formatter().format(record)

    def test_through_a_handler_with_an_exception(self, collected: tuple[logging.Logger, _Collect]) -> None:
        """What a handler writes (message and traceback) carries no secret."""
        logger, handler = collected
        try:
            raise RuntimeError(f"connect failed: postgres://app:{DB_PASSWORD}@db.internal:5432/orders")
        except RuntimeError:
            logger.exception("source failed for %s", f"Authorization: Bearer {BEARER_TOKEN}")
        logger.info("nothing secret in %s", "PD-9876")
        written = "\n".join(handler.lines)
        assert DB_PASSWORD not in written and BEARER_TOKEN not in written
        assert "source failed for Authorization: Bearer [REDACTED:bearer_token]" in written
        assert "postgres://app:[REDACTED:connection_string_password]@db.internal:5432/orders" in written
        assert handler.lines[-1] == "nothing secret in PD-9876"
