"""Secrets planted in every source never reach an output in clear; their look-alikes all survive.

Every secret of the corpus (tests/analysis/secrets_corpus.py) and every look-alike is planted in one
carrier at a time — Slack chat read over HTTP, PagerDuty alert bodies and notes, GitHub commit messages
and PR titles — then the incident is drafted by the use case through the real clients, rendered to
Markdown, Confluence storage and Block Kit, published to the Confluence fake, stored in SQLite and
PostgreSQL (read back with plain SQL), with every log line captured as `configure_logging` writes them.
"""

from __future__ import annotations

import copy
import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.analysis.models import Draft, DraftOptions
from bot.postmortem import Services, publish
from bot.publish.confluence import ConfluencePublisher
from bot.sources.gather import GatherOptions, Sources
from bot.sources.github import MAX_PULL_LOOKUPS
from bot.store.db import create_store_engine, migrate
from bot.store.models import Base
from bot.store.repository import Repository
from bot.timeline.markup import slack_to_text
from tests.analysis.secrets_corpus import LOOK_ALIKES, SAMPLES
from tests.fakes.confluence import ConfluenceFake, FakePage
from tests.reliability.pipeline import (
    CHANNEL,
    INCIDENT_ID,
    NOW,
    PLANT_START,
    RENDER,
    USERS,
    Fakes,
    Outputs,
    draft_from,
    escaped_forms,
    fragments,
    json_logs,
    leaks,
    live_sources,
    log_strings,
    plant_messages,
    render_all,
    sample_pagerduty,
    slack_escaped,
    store_and_dump,
    visible_tokens,
)

KINDS = len({sample.kind for sample in SAMPLES})
# Text around the secrets and the look-alikes: a run of characters found there proves nothing.
COMMON = "\n".join(
    [sample.text.replace(sample.secret, " ") for sample in SAMPLES] + [a.text for a in LOOK_ALIKES]
)
# Slack markup by intent; every other look-alike is text a person typed (and Slack escaped).
MARKUP_LOOK_ALIKES = {"slack mentions", "slack link"}
SUSPECT_REPO, BASE_SHA, HEAD_SHA = (
    "acme/customer-api",
    "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
    "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432",
)


@dataclass
class Run:
    """One carrier's draft and everything that came out of it."""

    carrier: str
    draft: Draft
    outputs: Outputs
    page: FakePage
    logs: list[str]
    planted: Counter  # kind -> secrets of that kind planted
    look_alikes: list[str]  # each look-alike as a reader sees it once drafted
    rendered_in_full: bool  # every planted text is in the page (GitHub: only three commit titles are)

    def haystacks(self) -> dict[str, str]:
        page = self.page
        return {
            **self.outputs.texts(),
            "confluence page (published)": f"{page.title}\n{page.body}\n{' '.join(page.labels)}",
        }


# -- the carriers -------------------------------------------------------------------------------------


def _cue(index: int, text: str) -> str:
    """Vary where a text lands: plain timeline entry, action item, contributing factor, lesson."""
    return ("{}", "action item: <@U02BEN> {}", "root cause: {}", "went well: {}")[index % 4].format(text)


def plant_in_slack(fakes: Fakes) -> tuple[Counter, list[str]]:
    """Each secret in its own message (some in threads, some pinned); then each look-alike, top level
    (the Markdown shows top-level messages; thread replies are in the Confluence chat log)."""
    texts = [_cue(i, slack_escaped(s.text)) for i, s in enumerate(SAMPLES)]
    plant_messages(fakes.slack, texts, thread_every=5, pinned=range(0, len(texts), 7))
    sent = [a.text if a.name in MARKUP_LOOK_ALIKES else slack_escaped(a.text) for a in LOOK_ALIKES]
    plant_messages(fakes.slack, sent, start=PLANT_START + 10 * len(texts) + 60)
    channels = {CHANNEL: "inc-9876-api-latency"}
    return Counter(s.kind for s in SAMPLES), [slack_to_text(t, users=USERS, channels=channels) for t in sent]


def plant_in_pagerduty(fakes: Fakes) -> tuple[Counter, list[str]]:
    """Each secret as an alert (its summary and its body's query) and as a note; look-alikes likewise;
    one secret in the incident's title."""
    incident, entries, alerts, notes = sample_pagerduty()
    template, note_template = alerts[0], notes[0]
    start = datetime(2024, 7, 20, 10, 40, tzinfo=UTC)
    texts = [s.text for s in SAMPLES] + [a.text for a in LOOK_ALIKES]
    for index, body in enumerate(texts):
        at = (start + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
        alert = copy.deepcopy(template)
        alert_id = f"QPLANT{index:08d}"
        alert |= {"id": alert_id, "summary": body, "alert_key": f"planted-{index}", "created_at": at}
        alert["html_url"] = f"https://acme.pagerduty.com/alerts/{alert_id}"
        alert["body"]["details"]["query"] = body
        alerts.append(alert)
        note = copy.deepcopy(note_template) | {"id": f"PNPLANT{index:05d}", "content": body, "created_at": at}
        notes.append(note)
    title_secret = next(s for s in SAMPLES if s.kind == "github_token")
    incident["title"] = f"{incident['title']} ({title_secret.text})"
    fakes.pagerduty.incidents.clear()
    fakes.pagerduty.add_incident(incident, entries, alerts, notes)
    planted = Counter(s.kind for s in SAMPLES for _ in range(3))  # summary, query, note
    planted[title_secret.kind] += 1
    return planted, [a.text for a in LOOK_ALIKES] * 2


def _commit(template: dict, *, sha: str, message: str) -> dict:
    commit = copy.deepcopy(template)
    commit |= {"sha": sha, "html_url": f"https://github.com/{SUSPECT_REPO}/commit/{sha}"}
    commit["url"] = f"https://api.github.com/repos/{SUSPECT_REPO}/commits/{sha}"
    commit["commit"]["message"] = message
    return commit


def plant_in_github(fakes: Fakes) -> tuple[Counter, list[str]]:
    """The suspect deploy ships commits whose messages and PR titles hold every secret (a few per
    commit: the bot looks up the PRs of the newest 50 commits only), commits whose messages are the
    look-alikes, and one secret in the deploy's description."""
    repo = fakes.github.repos[SUSPECT_REPO]
    compare = copy.deepcopy(repo.compares[(BASE_SHA, HEAD_SHA)])
    template, pull_template = compare["commits"][-1], repo.pulls[HEAD_SHA][0]
    look_alikes = [
        _commit(template, sha=hashlib.sha1(f"look-alike {i}".encode()).hexdigest(), message=a.text)
        for i, a in enumerate(LOOK_ALIKES)
    ]
    groups = MAX_PULL_LOOKUPS - len(compare["commits"])  # the sample's own commits are the newest
    secrets = []
    for index in range(groups):
        body = "\n".join(s.text for s in SAMPLES[index::groups])
        sha = hashlib.sha1(f"secrets {index}".encode()).hexdigest()
        secrets.append(_commit(template, sha=sha, message=body))
        pull = copy.deepcopy(pull_template) | {"number": 1000 + index, "title": body, "merge_commit_sha": sha}
        pull["html_url"] = f"https://github.com/{SUSPECT_REPO}/pull/{1000 + index}"
        repo.pulls[sha] = [pull]
    compare["commits"] = look_alikes + secrets + compare["commits"]
    compare["total_commits"] = compare["ahead_by"] = len(compare["commits"])
    repo.compares[(BASE_SHA, HEAD_SHA)] = compare
    described = next(s for s in SAMPLES if s.kind == "connection_string_password")
    for deployment in repo.deployments:
        if deployment["id"] == 1003:
            deployment["description"] = f"{deployment['description']} {described.text}"
    planted = Counter(s.kind for s in SAMPLES for _ in range(2))  # message, PR title
    planted[described.kind] += 1
    return planted, [a.text for a in LOOK_ALIKES]


CARRIERS: dict[str, tuple[Callable[[Fakes], tuple[Counter, list[str]]], bool]] = {
    "slack": (plant_in_slack, True),
    "pagerduty": (plant_in_pagerduty, True),
    "github": (plant_in_github, False),
}


# -- running them -------------------------------------------------------------------------------------


def publish_draft(draft: Draft, *, sources: Sources, confluence: ConfluenceFake, workdir: Path) -> FakePage:
    """Store the draft and publish it through the use case to the Confluence fake."""
    parent = confluence.add_page(space_key="PM", title=f"Postmortems {workdir.name}")
    engine = create_store_engine(f"sqlite:///{workdir / 'publish.sqlite3'}")
    migrate(engine)
    repo = Repository(engine)
    services = Services(
        repo=repo,
        sources=sources,
        gather_options=GatherOptions(),
        draft_options=DraftOptions(),
        render_options=RENDER,
        publisher=ConfluencePublisher(
            url=confluence.cloud_url,
            username=confluence.username,
            api_token=confluence.api_token,
            space_key="PM",
            parent_page_id=parent.id,
            cloud=True,
            timeout=10,
            max_retries=1,
        ),
        incident_notes=None,
        clock=lambda: NOW,
    )
    repo.start_draft(
        draft_id=INCIDENT_ID, incident_key=draft.incident.key, channel_id=CHANNEL, requested_by=None, now=NOW
    )
    repo.save_draft(draft_id=INCIDENT_ID, draft=draft, now=NOW)
    outcome = publish(services, draft_id=INCIDENT_ID, user_id="U01ANA")
    engine.dispose()
    assert outcome.page is not None, outcome.reason
    return confluence.pages[outcome.page.id]


@pytest.fixture(scope="module")
def run_of(
    fakes: Fakes, confluence: ConfluenceFake, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Run]:
    """The run of one carrier, made once per module: plant, draft with logs captured, render, publish."""
    done: dict[str, Run] = {}

    def run(carrier: str) -> Run:
        if carrier not in done:
            plant, in_full = CARRIERS[carrier]
            fakes.reset()
            planted, look_alikes = plant(fakes)
            with json_logs("DEBUG") as logs, live_sources(fakes) as sources:
                draft = draft_from(sources)
                outputs = render_all(draft)
                workdir = tmp_path_factory.mktemp(carrier)
                page = publish_draft(draft, sources=sources, confluence=confluence, workdir=workdir)
            done[carrier] = Run(
                carrier=carrier,
                draft=draft,
                outputs=outputs,
                page=page,
                logs=logs,
                planted=planted,
                look_alikes=look_alikes,
                rendered_in_full=in_full,
            )
        return done[carrier]

    return run


CARRIER_CASES = {
    "slack": "secrets pasted in Slack chat (read over HTTP, threads and pins included)",
    "pagerduty": "secrets in PagerDuty alert bodies, notes and the incident title",
    "github": "secrets in GitHub commit messages, PR titles and a deploy description",
}


def _record(figures: dict, run: Run) -> None:
    figures["secrets"] = len(SAMPLES)
    figures["kinds"] = KINDS
    figures["look-alikes"] = len(LOOK_ALIKES)
    figures["redacted"] = run.draft.redaction_count


class TestSecretsNeverLeak:
    """Secrets"""

    @pytest.mark.parametrize("carrier", list(CARRIERS))
    @pytest.mark.case(CARRIER_CASES)
    def test_no_secret_in_any_output(self, run_of, carrier: str, figures: dict) -> None:
        """No fragment of any secret is in the Markdown, the Confluence storage (raw and parsed), the published page, the Slack preview or the Edit modal."""
        run = run_of(carrier)
        haystacks = run.haystacks()
        found = {
            s.secret[:24]: where for s in SAMPLES if (where := leaks(s.secret, haystacks, common=COMMON))
        }
        assert not found
        _record(figures, run)

    @pytest.mark.parametrize("carrier", list(CARRIERS))
    @pytest.mark.case(CARRIER_CASES)
    def test_every_secret_is_counted(self, run_of, carrier: str, figures: dict) -> None:
        """Each planted secret is redacted as its own kind: the draft counts at least as many of each kind as were planted."""
        run = run_of(carrier)
        short = {kind: (run.draft.redactions.get(kind, 0), n) for kind, n in run.planted.items()}
        assert {kind: c for kind, c in short.items() if c[0] < c[1]} == {}
        figures["planted"] = sum(run.planted.values())
        figures["redacted"] = run.draft.redaction_count

    @pytest.mark.parametrize("carrier", list(CARRIERS))
    @pytest.mark.case(CARRIER_CASES)
    def test_no_secret_in_the_logs(self, run_of, carrier: str, figures: dict) -> None:
        """Every log line of the run (configure_logging at DEBUG) is free of secrets, raw or JSON-escaped."""
        run = run_of(carrier)
        text = log_strings(run.logs)
        found = {
            s.secret[:24]: where for s in SAMPLES if (where := leaks(s.secret, {"logs": text}, common=COMMON))
        }
        assert not found
        figures["log lines"] = len(run.logs)

    @pytest.mark.parametrize("carrier", list(CARRIERS))
    @pytest.mark.case(CARRIER_CASES)
    def test_no_secret_in_the_database(self, run_of, carrier: str, database_url: str, figures: dict) -> None:
        """Stored as the use case stores it, no row of any table holds a secret (read back with SQL)."""
        run = run_of(carrier)
        dump = store_and_dump(database_url, run.draft)
        found = {
            s.secret[:24]: where
            for s in SAMPLES
            if (where := leaks(s.secret, {"database": dump}, common=COMMON))
        }
        assert not found
        figures["tables read"] = len(Base.metadata.sorted_tables)


class TestLookAlikesSurvive:
    """Secrets: look-alikes"""

    @pytest.mark.parametrize("carrier", list(CARRIERS))
    @pytest.mark.case(
        {
            "slack": "look-alikes in Slack chat",
            "pagerduty": "look-alikes in PagerDuty alerts and notes",
            "github": "look-alikes in GitHub commit messages and PR titles",
        }
    )
    def test_look_alikes_are_intact(self, run_of, carrier: str, database_url: str, figures: dict) -> None:
        """Git shas, UUIDs, request and trace ids, Slack and PagerDuty ids, base64 images, Luhn-failing numbers, prose and placeholders keep every token in the stored draft (and in Markdown and Confluence when the source is shown in full)."""
        run = run_of(carrier)
        places = {"database": store_and_dump(database_url, run.draft)}
        if run.rendered_in_full:
            places["markdown"] = run.outputs.markdown
            places["confluence"] = run.outputs.texts()["confluence text"]
        missing = {
            f"{where}: {text[:40]!r}": token
            for text in run.look_alikes
            for token in visible_tokens(text)
            for where, haystack in places.items()
            if token not in haystack
        }
        assert not missing
        figures["look-alikes"] = len(LOOK_ALIKES)
        figures["tokens checked"] = sum(len(visible_tokens(t)) for t in run.look_alikes) * len(places)


class TestLeakDetector:
    """Secrets: the leak detector"""

    @pytest.mark.case("the detector these tests rely on")
    def test_finds_every_secret_and_spares_look_alikes(self, figures: dict) -> None:
        """Each secret is found when it shows whole or in part (a line of a key, a run of it), raw or JSON-, XML-, Slack- or URL-escaped; no look-alike and no placeholder text counts as one."""
        forms = 0
        for sample in SAMPLES:
            for fragment in fragments(sample.secret, common=COMMON):
                for form in escaped_forms(fragment):
                    assert leaks(sample.secret, {"output": f"before {form} after"}, common=COMMON), (
                        sample.kind,
                        form,
                    )
                    forms += 1
        clean = "\n".join(
            [a.text for a in LOOK_ALIKES] + [s.text.replace(s.secret, "[REDACTED:x]") for s in SAMPLES]
        )
        assert [s.kind for s in SAMPLES if leaks(s.secret, {"output": clean}, common=COMMON)] == []
        figures["secrets"] = len(SAMPLES)
        figures["forms found"] = forms
