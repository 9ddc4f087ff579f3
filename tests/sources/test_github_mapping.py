"""GitHub JSON -> Deployment / Commit, and the choice of deployments, on the bundled sample bodies."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import bot
from bot.sources.github_mapping import (
    commits_from_compare,
    deployment_from_json,
    select_deployments,
    web_url_for_api,
)
from bot.timeline.models import Deployment

GITHUB = Path(bot.__file__).parent / "samples" / "pd-9876" / "github"
CUSTOMER_API = GITHUB / "acme" / "customer-api"
AUTH_SERVICE = GITHUB / "acme" / "auth-service"
BASE = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b"
BAD = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
SINCE = datetime(2024, 7, 20, 4, 30, tzinfo=UTC)  # six hours before the 10:30 trigger
UNTIL = datetime(2024, 7, 20, 12, 16, tzinfo=UTC)


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def sample_deployments(root: Path, service: str) -> list[Deployment]:
    return [
        deployment_from_json(
            d, read(root / "statuses" / f"{d['id']}.json"), service=service, web_url="https://github.com"
        )
        for d in read(root / "deployments.json")
    ]


def at(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2024, 7, day, hour, minute, tzinfo=UTC)


def deploy(
    id: int, created_at: datetime, *, status: str = "success", repo: str = "acme/x", env: str = "production"
) -> Deployment:
    sha = f"{id:040x}"
    url = f"https://github.com/{repo}/commit/{sha}"
    return Deployment(
        id=id, repo=repo, sha=sha, ref="main", environment=env, created_at=created_at, status=status, url=url
    )


class TestWebUrlForApi:
    @pytest.mark.parametrize(
        ("api", "web"),
        [
            ("https://api.github.com", "https://github.com"),
            ("https://api.github.com/", "https://github.com"),
            ("https://ghe.acme.example/api/v3", "https://ghe.acme.example"),
            ("https://ghe.acme.example/api/v3/", "https://ghe.acme.example"),
            ("https://api.acme.ghe.com", "https://acme.ghe.com"),
            ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
            ("http://127.0.0.1:8123/api/v3", "http://127.0.0.1:8123"),
        ],
    )
    def test_web_host(self, api: str, web: str) -> None:
        """The web host is the API host without `api.` and without the Enterprise `/api/v3` prefix."""
        assert web_url_for_api(api) == web


class TestDeploymentFromJson:
    def test_sample_deploy_maps_fields(self) -> None:
        """Deployment 1003 keeps its repo, sha, description, creator and service."""
        d = {x.id: x for x in sample_deployments(CUSTOMER_API, "customer-api")}[1003]
        assert (d.repo, d.sha, d.ref, d.environment) == ("acme/customer-api", BAD, "main", "production")
        assert d.description == "Deploy #482: DB client pool v2"
        assert (d.creator, d.service) == ("benokafor", "customer-api")
        assert d.created_at == at(10, 12)
        assert d.commit_url == f"https://github.com/acme/customer-api/commit/{BAD}"

    def test_latest_status_is_the_newest(self) -> None:
        """The rolled-back deploy ends inactive at 11:18, whatever order the statuses come in."""
        raw = next(d for d in read(CUSTOMER_API / "deployments.json") if d["id"] == 1003)
        statuses = read(CUSTOMER_API / "statuses" / "1003.json")
        for order in (statuses, list(reversed(statuses))):
            d = deployment_from_json(raw, order, service=None, web_url="https://github.com")
            assert (d.status, d.status_at) == ("inactive", at(11, 18))

    def test_url_is_the_latest_status_log(self) -> None:
        """The evidence link is the latest status's log URL."""
        d = {x.id: x for x in sample_deployments(CUSTOMER_API, "customer-api")}[1004]
        assert d.status == "success"
        assert d.url == "https://github.com/acme/customer-api/actions/runs/10012345102/job/27690001102"

    def test_url_falls_back_to_the_commit(self) -> None:
        """A latest status without links (the inactive one) leaves the commit URL as evidence."""
        d = {x.id: x for x in sample_deployments(CUSTOMER_API, "customer-api")}[1003]
        assert d.url == d.commit_url

    def test_environment_url_when_no_log(self) -> None:
        """Without log or target URL, the status's environment URL is the link."""
        raw = read(AUTH_SERVICE / "deployments.json")[0]
        status = {**read(AUTH_SERVICE / "statuses" / "1002.json")[0], "log_url": "", "target_url": ""}
        d = deployment_from_json(raw, [status], service="auth-service", web_url="https://github.com")
        assert d.url == "https://auth.acme.example"

    def test_no_status(self) -> None:
        """A deployment nobody reported on has status 'unknown' and links its commit."""
        raw = read(AUTH_SERVICE / "deployments.json")[0]
        d = deployment_from_json(raw, [], service=None, web_url="https://github.com")
        assert (d.status, d.status_at, d.url) == ("unknown", None, d.commit_url)

    def test_enterprise_repository_url(self) -> None:
        """The repo name is read from a GitHub Enterprise repository_url and the commit links the GHE host."""
        raw = read(AUTH_SERVICE / "deployments.json")[0]
        raw = {**raw, "repository_url": "https://ghe.acme.example/api/v3/repos/acme/auth-service"}
        d = deployment_from_json(raw, [], service=None, web_url="https://ghe.acme.example")
        assert d.repo == "acme/auth-service"
        assert d.commit_url == f"https://ghe.acme.example/acme/auth-service/commit/{raw['sha']}"

    def test_null_description_and_creator(self) -> None:
        """GitHub's null description and creator become '' and None."""
        raw = {**read(AUTH_SERVICE / "deployments.json")[0], "description": None, "creator": None}
        d = deployment_from_json(raw, [], service=None, web_url="https://github.com")
        assert (d.description, d.creator) == ("", None)


class TestCommitsFromCompare:
    compare = read(CUSTOMER_API / "compare" / f"{BASE}...{BAD}.json")

    def pulls(self) -> dict[str, list[dict[str, Any]]]:
        return {p.parent.name: read(p) for p in (CUSTOMER_API / "commits").glob("*/pulls.json")}

    def test_commits_in_order(self) -> None:
        """The three commits come oldest first, the #482 commit (the deployed sha) last."""
        commits = commits_from_compare(self.compare, pulls=self.pulls())
        assert len(commits) == 3
        assert commits[-1].sha == BAD
        assert commits[-1].message.startswith("Use pool v2 for the orders DB client (#482)")

    def test_pr_from_pulls(self) -> None:
        """The PR number and URL come from the commit's pulls."""
        last = commits_from_compare(self.compare, pulls=self.pulls())[-1]
        assert (last.pull_request, last.author) == (482, "benokafor")
        assert last.pull_request_title == "Use pool v2 for the orders DB client"
        assert last.pull_request_url == "https://github.com/acme/customer-api/pull/482"
        assert last.url == f"https://github.com/acme/customer-api/commit/{BAD}"

    def test_pr_from_message(self) -> None:
        """Without pulls, '(#482)' in the first line gives the PR, linked beside the commit."""
        last = commits_from_compare(self.compare)[-1]
        assert (last.pull_request, last.pull_request_title) == (482, None)
        assert last.pull_request_url == "https://github.com/acme/customer-api/pull/482"

    def test_empty_pulls_fall_back_to_message(self) -> None:
        """A commit whose pulls list is empty still gets the PR its message names."""
        assert commits_from_compare(self.compare, pulls={BAD: []})[-1].pull_request == 482

    def test_author_name_without_login(self) -> None:
        """An author email linked to no account gives the git author name."""
        assert commits_from_compare(self.compare)[1].author == "Ana Lima"

    def test_merged_pull_is_preferred(self) -> None:
        """Of several PRs holding a commit, the one that merged it is chosen."""
        pr = read(CUSTOMER_API / "commits" / BAD / "pulls.json")[0]
        open_pr = {**pr, "number": 490, "merged_at": None, "merge_commit_sha": None}
        other = {**pr, "number": 485, "merge_commit_sha": "0" * 40}
        last = commits_from_compare(self.compare, pulls={BAD: [open_pr, other, pr]})[-1]
        assert last.pull_request == 482

    def test_merge_commit_message(self) -> None:
        """A merge commit's 'Merge pull request #N' names the PR."""
        commit = {**self.compare["commits"][0]}
        commit["commit"] = {
            **commit["commit"],
            "message": "Merge pull request #77 from acme/fix (#12)\n\nbody",
        }
        (only,) = commits_from_compare({"commits": [commit]})
        assert only.pull_request == 77

    def test_no_pr(self) -> None:
        """A commit without PR reference has none."""
        commit = {**self.compare["commits"][0]}
        commit["commit"] = {**commit["commit"], "message": "Fix typo\n\nSee #12 in the body"}
        (only,) = commits_from_compare({"commits": [commit]})
        assert (only.pull_request, only.pull_request_url) == (None, None)

    def test_rollback_compare_is_empty(self) -> None:
        """The rollback's compare is 'behind': it ships no commits."""
        assert commits_from_compare(read(CUSTOMER_API / "compare" / f"{BAD}...{BASE}.json")) == ()

    def test_sample_plants_a_secret(self) -> None:
        """One sample commit message carries a database URL with a password, for redaction to find."""
        messages = [c.message for c in commits_from_compare(self.compare)]
        assert any(re.search(r"postgresql://[^:\s]+:[^@\s]+@", m) for m in messages)


class TestSelectDeployments:
    def test_sample_story(self) -> None:
        """The sample's production deploys give baseline 1001, then 1002, 1003 and the rollback 1004."""
        production = [
            d
            for d in [
                *sample_deployments(CUSTOMER_API, "customer-api"),
                *sample_deployments(AUTH_SERVICE, "auth-service"),
            ]
            if d.environment == "production"
        ]
        chosen = select_deployments(production, since=SINCE, until=UNTIL)
        assert [d.id for d in chosen] == [1001, 1002, 1003, 1004]
        assert chosen[0].sha == chosen[-1].sha  # the rollback restores the baseline

    def test_baseline_is_latest_success_before_since(self) -> None:
        """Before the window only the latest successful deploy stays; a later failed one is skipped."""
        ds = [deploy(1, at(1)), deploy(2, at(2)), deploy(3, at(3), status="failure"), deploy(4, at(5))]
        assert [d.id for d in select_deployments(ds, since=at(4), until=at(6))] == [2, 4]

    def test_inactive_counts_as_succeeded(self) -> None:
        """A replaced (inactive) deploy can be the baseline."""
        ds = [deploy(1, at(1)), deploy(2, at(2), status="inactive"), deploy(3, at(5))]
        assert [d.id for d in select_deployments(ds, since=at(4), until=at(6))] == [2, 3]

    def test_no_baseline(self) -> None:
        """Without a successful deploy before the window, only the window's deploys are kept."""
        ds = [deploy(1, at(1), status="error"), deploy(2, at(5), status="failure")]
        assert [d.id for d in select_deployments(ds, since=at(4), until=at(6))] == [2]

    def test_after_until_dropped(self) -> None:
        """Deploys after the window are dropped; both ends of the window are included."""
        ds = [deploy(1, at(4)), deploy(2, at(6)), deploy(3, at(6, 1))]
        assert [d.id for d in select_deployments(ds, since=at(4), until=at(6))] == [1, 2]

    def test_baseline_per_repo_and_environment(self) -> None:
        """Each repo and environment keeps its own baseline."""
        ds = [
            deploy(1, at(1), repo="acme/a"),
            deploy(2, at(2), repo="acme/b"),
            deploy(3, at(3), repo="acme/a", env="staging"),
            deploy(4, at(5), repo="acme/a"),
        ]
        assert [d.id for d in select_deployments(ds, since=at(4), until=at(6))] == [1, 2, 3, 4]

    def test_oldest_first_and_unique(self) -> None:
        """The result is ordered by creation time, each deployment once."""
        ds = [deploy(3, at(5, 30)), deploy(2, at(5)), deploy(2, at(5)), deploy(1, at(4) - timedelta(days=1))]
        assert [d.id for d in select_deployments(ds, since=at(4), until=at(6))] == [1, 2, 3]
