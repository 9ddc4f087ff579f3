"""GitHubSource through real PyGithub against the local GitHub fake: pages, retries, errors, GHE prefix."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.errors import AuthError, SourceError, SourceUnavailable
from bot.sources.github import BASELINE_LOOKBACK, GitHubSource
from bot.timeline.models import Deployment
from tests.fakes.github import (
    DEFAULT_TOKEN,
    SAMPLES,
    GitHubFake,
    generate_history,
    make_deployment,
    make_status,
)
from tests.fakes.http import Fault
from tests.fakes.tls import server_context, write_ca_bundle

SERVICE_REPOS = {"customer-api": "acme/customer-api", "auth-service": "acme/auth-service"}
SINCE = datetime(2024, 7, 20, 4, 30, tzinfo=UTC)  # six hours before the 10:30 trigger
UNTIL = datetime(2024, 7, 20, 12, 16, tzinfo=UTC)
BASE = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
BAD = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
HISTORY_START = datetime(2024, 6, 1, tzinfo=UTC)

MakeSource = Callable[..., GitHubSource]


@pytest.fixture
def fake() -> Iterator[GitHubFake]:
    with GitHubFake() as server:
        yield server


@pytest.fixture
def make_source(fake: GitHubFake) -> Iterator[MakeSource]:
    """A GitHubSource on the fake with short timeouts and backoffs; closed after the test."""
    made: list[GitHubSource] = []

    def make(
        *, prefix: str = "", token: str | None = DEFAULT_TOKEN, base_url: str | None = None, **options: Any
    ) -> GitHubSource:
        settings = {"timeout": 1, "max_retries": 2, "backoff_factor": 0.01, **options}
        source = GitHubSource(token=token, base_url=base_url or fake.url + prefix, **settings)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def story(source: GitHubSource) -> dict[int, Deployment]:
    return {d.id: d for d in source.get_deployments(service_repos=SERVICE_REPOS, since=SINCE, until=UNTIL)}


def add_history(fake: GitHubFake, repo: str, *, count: int, failed_every: int = 0) -> list[dict[str, Any]]:
    deployments, statuses = generate_history(
        repo, count=count, start=HISTORY_START, every=timedelta(hours=1), failed_every=failed_every
    )
    fake.add_repo(repo, deployments, statuses)
    return deployments


def hours(n: int) -> datetime:
    return HISTORY_START + timedelta(hours=n)


class TestGetDeployments:
    def test_sample_story(self, make_source: MakeSource) -> None:
        """The sample gives baseline 1001, the unrelated 1002, the cause 1003 and the rollback 1004, oldest first."""
        deployments = make_source().get_deployments(service_repos=SERVICE_REPOS, since=SINCE, until=UNTIL)
        assert [d.id for d in deployments] == [1001, 1002, 1003, 1004]
        assert [d.service for d in deployments] == [
            "customer-api",
            "auth-service",
            "customer-api",
            "customer-api",
        ]

    def test_staging_excluded(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """Only the configured environment is asked for: staging deploy 1005 never appears."""
        assert 1005 not in story(make_source())
        asked = {r.arg("environment") for r in fake.requests_to(r"/deployments$")}
        assert asked == {"production"}

    def test_other_environment(self, make_source: MakeSource) -> None:
        """DEPLOY_ENVIRONMENT=staging reads the staging deploys instead."""
        assert list(story(make_source(environment="staging"))) == [1005]

    def test_rollback_and_latest_status(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """The rollback redeploys the baseline's sha; the cause ends inactive; links point at the fake."""
        found = story(make_source())
        assert found[1004].sha == found[1001].sha == BASE
        assert (found[1003].status, found[1004].status) == ("inactive", "success")
        assert found[1004].url.startswith("https://github.com/acme/customer-api/actions/runs/")
        assert found[1003].url == found[1003].commit_url == f"{fake.url}/acme/customer-api/commit/{BAD}"

    def test_every_page_read(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """With the window at the start of 260 deployments, all three pages are read via the Link headers."""
        add_history(fake, "acme/billing", count=260)
        found = make_source(per_page=100).get_deployments(
            service_repos={"billing": "acme/billing"}, since=hours(1), until=hours(3)
        )
        assert [d.created_at for d in found] == [hours(0), hours(1), hours(2), hours(3)]  # baseline + window
        pages = fake.requests_to(r"/deployments$")
        assert [r.arg("page") for r in pages] == [None, "2", "3"]
        assert {r.arg("per_page") for r in pages} == {"100"}
        assert {r.arg("environment") for r in pages} == {"production"}
        repo_id = fake.repos["acme/billing"].id
        assert [r.path for r in pages[1:]] == [f"/repositories/{repo_id}/deployments"] * 2
        # deployments after the window are paged past without reading their statuses
        assert len(fake.requests_to(r"/statuses$")) == 4

    def test_whole_window_read(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """Every deployment of a window spanning several pages is returned, with its status."""
        add_history(fake, "acme/billing", count=120, failed_every=7)
        found = make_source(per_page=50).get_deployments(
            service_repos={"billing": "acme/billing"}, since=hours(0), until=hours(200)
        )
        assert len(found) == 120
        assert [d.status for d in found].count("failure") == 120 // 7
        assert len(fake.requests_to(r"/deployments$")) == 3

    def test_paging_stops_at_baseline(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """Paging stops once the baseline is found, and statuses are read only for kept deploys."""
        add_history(fake, "acme/billing", count=300)
        found = make_source(per_page=20).get_deployments(
            service_repos={"billing": "acme/billing"}, since=hours(295), until=hours(297)
        )
        assert len(found) == 4  # 295, 296, 297 and the baseline 294
        assert len(fake.requests_to(r"/deployments$")) == 1
        # 299 and 298 (after the window) are skipped without reading their statuses
        assert len(fake.requests_to(r"/statuses$")) == 4

    def test_baseline_lookback_is_bounded(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """With only failed deploys before the window, the walk gives up after BASELINE_LOOKBACK of them."""
        add_history(fake, "acme/billing", count=150, failed_every=1)
        found = make_source().get_deployments(
            service_repos={"billing": "acme/billing"}, since=hours(145), until=hours(200)
        )
        assert len(found) == 5
        assert len(fake.requests_to(r"/statuses$")) == 5 + BASELINE_LOOKBACK

    def test_enterprise_prefix(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """GITHUB_API_URL=http://HOST/api/v3 works, pages included, and links point at the GHE web host."""
        found = story(make_source(prefix="/api/v3", per_page=2))
        assert list(found) == [1001, 1002, 1003, 1004]
        assert all(r.path.startswith("/api/v3/") for r in fake.requests)
        pages = fake.requests_to(r"customer-api/deployments$|/repositories/612345678/deployments$")
        assert [r.path for r in pages] == [
            "/api/v3/repos/acme/customer-api/deployments",
            "/api/v3/repositories/612345678/deployments",
        ]
        assert found[1003].commit_url == f"{fake.url}/acme/customer-api/commit/{BAD}"

    def test_token_sent(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """Every request carries the token."""
        story(make_source())
        assert {r.headers["authorization"] for r in fake.requests} == {f"token {DEFAULT_TOKEN}"}


class TestGetCommits:
    def test_compare_with_pulls(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """The cause's commits come from compare 1001...1003, with the PRs GitHub names for each."""
        source = make_source()
        found = story(source)
        commits = source.get_commits(deployment=found[1003], previous=found[1001])
        assert [c.pull_request for c in commits] == [479, 480, 482]
        last = commits[-1]
        assert (last.sha, last.author, last.pull_request_title) == (
            BAD,
            "benokafor",
            "Use pool v2 for the orders DB client",
        )
        assert last.pull_request_url == "https://github.com/acme/customer-api/pull/482"
        assert fake.requests_to(rf"/compare/{BASE}\.\.\.{BAD}$")
        assert len(fake.requests_to(r"/commits/[0-9a-f]{40}/pulls$")) == 3

    def test_pulls_endpoint_missing(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """A GitHub without the commit pulls endpoint (404) still gives PR numbers from the messages."""
        fake.repos["acme/customer-api"].pulls_endpoint = False
        source = make_source()
        found = story(source)
        commits = source.get_commits(deployment=found[1003], previous=found[1001])
        assert [(c.pull_request, c.pull_request_title) for c in commits] == [
            (479, None),
            (480, None),
            (482, None),
        ]

    def test_rollback_ships_nothing(self, make_source: MakeSource) -> None:
        """Compared with the deploy it replaced, the rollback ships no commits."""
        source = make_source()
        found = story(source)
        assert source.get_commits(deployment=found[1004], previous=found[1003]) == ()

    def test_nothing_to_compare(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """Without a previous deploy, or with the same sha, nothing is asked and nothing returned."""
        source = make_source()
        found = story(source)
        asked = len(fake.requests)
        assert source.get_commits(deployment=found[1002], previous=None) == ()
        assert source.get_commits(deployment=found[1004], previous=found[1001]) == ()
        assert len(fake.requests) == asked

    def test_unknown_commit(self, make_source: MakeSource) -> None:
        """A compare GitHub cannot make is a SourceError that names both shas."""
        source = make_source()
        found = story(source)
        gone = found[1003].model_copy(update={"sha": "d" * 40})
        with pytest.raises(SourceError, match=r"cannot compare 7a6b5c4\.\.\.ddddddd in acme/customer-api"):
            source.get_commits(deployment=gone, previous=found[1001])


class TestResilience:
    def test_retry_after_honoured(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """A 429 with Retry-After: 1 is retried no sooner than a second later."""
        fake.faults.add(Fault("429", times=1, retry_after=1, path=r"customer-api/deployments$"))
        assert list(story(make_source())) == [1001, 1002, 1003, 1004]
        first, second = fake.requests_to(r"customer-api/deployments$")
        assert (first.status, second.status) == (429, 200)
        assert second.received_at - first.answered_at >= 0.95

    def test_secondary_rate_limit_403(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """GitHub's secondary rate limit (403 with Retry-After) is waited out and retried."""
        fake.secondary_rate_limit(times=1, retry_after=1)
        assert list(story(make_source())) == [1001, 1002, 1003, 1004]
        first, second = fake.requests[:2]
        assert (first.status, second.status) == (403, 200)
        assert second.received_at - first.answered_at >= 0.95

    def test_5xx_burst_retried(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """Two 502s in a row are retried and the read succeeds."""
        fake.faults.add(Fault("5xx", times=2, status=502, path=r"/deployments/1003/statuses$"))
        assert story(make_source())[1003].status == "inactive"
        assert [r.status for r in fake.requests_to(r"/deployments/1003/statuses$")] == [502, 502, 200]

    def test_5xx_exhausted(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """503s beyond the retries become SourceUnavailable naming the status."""
        fake.faults.add(Fault("5xx", times=None, status=503, path=r"/deployments$"))
        with pytest.raises(SourceUnavailable, match=r"503 Service Unavailable"):
            story(make_source(max_retries=2))
        assert len(fake.requests_to(r"/deployments$")) == 3

    def test_429_exhausted(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """A 429 that persists beyond the retries becomes SourceUnavailable."""
        fake.faults.add(Fault("429", times=None, retry_after=0, path=r"/deployments$"))
        with pytest.raises(SourceUnavailable, match="429"):
            story(make_source(max_retries=1))

    def test_timeout(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """A GitHub that never answers becomes SourceUnavailable after the retries, not a hang."""
        fake.faults.add(Fault("hang", times=None, seconds=10, path=r"/deployments$"))
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="did not answer in time"):
            story(make_source(timeout=1, max_retries=1))
        assert time.monotonic() - started < 6

    def test_unreachable(self, make_source: MakeSource) -> None:
        """A refused connection becomes SourceUnavailable naming the URL."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(SourceUnavailable, match=rf"127\.0\.0\.1:{port} was unreachable"):
            story(make_source(base_url=f"http://127.0.0.1:{port}", max_retries=1))


class TestTls:
    def test_ca_bundle_trusted(self, tmp_path: Path) -> None:
        """An https GitHub signed by a private CA is read when CA_BUNDLE names that CA."""
        with GitHubFake(tls=server_context()) as secure:
            source = GitHubSource(
                token=DEFAULT_TOKEN, base_url=secure.url, ca_bundle=write_ca_bundle(tmp_path), timeout=2
            )
            try:
                assert list(story(source)) == [1001, 1002, 1003, 1004]
            finally:
                source.close()

    def test_unknown_ca(self) -> None:
        """Without CA_BUNDLE the private certificate fails, and the error says to set CA_BUNDLE."""
        with GitHubFake(tls=server_context()) as secure:
            source = GitHubSource(token=DEFAULT_TOKEN, base_url=secure.url, timeout=2, max_retries=0)
            try:
                with pytest.raises(SourceUnavailable, match="CA_BUNDLE"):
                    story(source)
            finally:
                source.close()


class TestErrors:
    def test_bad_token(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """A rejected token is an AuthError naming GITHUB_TOKEN, asked once."""
        with pytest.raises(AuthError, match="GITHUB_TOKEN") as caught:
            story(make_source(token="ghp_revoked"))
        assert "Bad credentials" in str(caught.value)
        assert len(fake.requests) == 1

    def test_unknown_repo(self, make_source: MakeSource) -> None:
        """An unknown repo is a SourceError naming the repo, its service and SERVICE_REPOS."""
        with pytest.raises(SourceError) as caught:
            make_source().get_deployments(service_repos={"billing": "acme/nope"}, since=SINCE, until=UNTIL)
        assert type(caught.value) is SourceError
        assert all(word in str(caught.value) for word in ("acme/nope", "billing", "SERVICE_REPOS"))

    def test_private_repo_without_token(self, make_source: MakeSource) -> None:
        """Without a token a private repo looks missing, and the message says the token may not see it."""
        with pytest.raises(SourceError, match="GITHUB_TOKEN cannot see it"):
            story(make_source(token=None))

    def test_missing_permission(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """A fine-grained token without the deployments permission gets an AuthError naming it."""
        fake.forbid(DEFAULT_TOKEN, permissions="deployments=read")
        with pytest.raises(AuthError, match="'deployments: read' repository permission"):
            story(make_source())
        assert len(fake.requests) == 1

    def test_missing_scope(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """A classic token without the repo scope gets an AuthError naming the scope."""
        fake.forbid(DEFAULT_TOKEN, oauth_scopes="repo")
        with pytest.raises(AuthError, match="'repo' scope"):
            story(make_source())

    def test_rate_limit_exhausted(self, fake: GitHubFake, make_source: MakeSource) -> None:
        """An exhausted rate limit resetting far ahead is SourceUnavailable at once, not a long wait."""
        fake.exhaust_rate_limit(reset_in=timedelta(minutes=40))
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="rate limit"):
            story(make_source())
        assert time.monotonic() - started < 3
        assert len(fake.requests) == 1


class TestGitHubFake:
    def test_link_header(self, fake: GitHubFake) -> None:
        """A middle page links prev, next, last and first through /repositories/{id}, as GitHub does."""
        add_history(fake, "acme/billing", count=7)
        answer = requests.get(
            f"{fake.url}/repos/acme/billing/deployments",
            params={"per_page": 2, "page": 2},
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
            timeout=5,
        )
        base = f"{fake.url}/repositories/{fake.repos['acme/billing'].id}/deployments?per_page=2"
        assert answer.status_code == 200 and len(answer.json()) == 2
        assert answer.headers["Link"] == (
            f'<{base}&page=1>; rel="prev", <{base}&page=3>; rel="next", '
            f'<{base}&page=4>; rel="last", <{base}&page=1>; rel="first"'
        )

    def test_builders_match_samples(self) -> None:
        """Generated deployments and statuses have exactly the sample bodies' fields."""
        sample_deployment = json.loads((SAMPLES / "acme/customer-api/deployments.json").read_text())[0]
        sample_status = json.loads((SAMPLES / "acme/customer-api/statuses/1003.json").read_text())[0]
        at = datetime(2024, 7, 20, tzinfo=UTC)
        assert set(make_deployment("acme/x", 1, sha="0" * 40, created_at=at)) == set(sample_deployment)
        assert set(make_status("acme/x", 1, 10, state="success", created_at=at)) == set(sample_status)
        assert set(sample_deployment["creator"]) == set(
            make_deployment("acme/x", 1, sha="0", created_at=at)["creator"]
        )

    def test_bad_credentials_body(self, fake: GitHubFake) -> None:
        """An unknown token gets GitHub's 401 body."""
        answer = requests.get(
            f"{fake.url}/repos/acme/customer-api/deployments",
            headers={"Authorization": "token nope"},
            timeout=5,
        )
        assert answer.status_code == 401
        assert answer.json()["message"] == "Bad credentials"
        assert answer.json()["documentation_url"].startswith("https://docs.github.com/")
