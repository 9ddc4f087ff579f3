"""GitHub REST v3 JSON -> typed `Deployment` and `Commit` values, and the choice of deployments to keep.

Pure functions shared by the live client (`github.py`) and the replay of bundled samples, so both paths
read the same fields the same way. Input is the JSON GitHub returns:

* `GET /repos/{o}/{r}/deployments` items and `GET .../deployments/{id}/statuses` (newest first);
* `GET /repos/{o}/{r}/compare/{base}...{head}` and `GET /repos/{o}/{r}/commits/{sha}/pulls`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.timeline.models import Commit, Deployment

# A deployment that went live: `inactive` is the state GitHub (or the deploy tool) gives a deployment that
# was live and has since been replaced, so it counts too (the baseline before a window is often one).
SUCCEEDED_STATES = frozenset({"success", "inactive"})

_SQUASH_PR = re.compile(r"\(#(\d+)\)")  # "Use pool v2 for the orders DB client (#482)"
_MERGE_PR = re.compile(r"^Merge pull request #(\d+)\b")  # a merge commit's first line


def web_url_for_api(api_url: str) -> str:
    """The web host of an API base URL: https://api.github.com -> https://github.com,
    https://HOST/api/v3 (GitHub Enterprise Server) -> https://HOST, https://api.SUB.ghe.com -> https://SUB.ghe.com."""
    parts = urlsplit(api_url.strip().rstrip("/"))
    netloc = parts.netloc
    if netloc.startswith("api."):
        netloc = netloc.removeprefix("api.")
    path = parts.path
    if path.endswith("/api/v3"):
        path = path.removesuffix("/api/v3")
    return urlunsplit((parts.scheme, netloc, path, "", "")).rstrip("/")


def parse_time(value: str) -> datetime:
    """GitHub's ISO 8601 timestamps ("2024-07-20T10:12:00Z") as aware datetimes."""
    return datetime.fromisoformat(value)


def repo_of(deployment: Mapping[str, Any]) -> str:
    """'owner/repo' from a deployment's repository_url (api.github.com or a GHE /api/v3 prefix)."""
    return deployment["repository_url"].rsplit("/repos/", 1)[1].strip("/")


def latest_status(statuses: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest status by creation time (the higher id breaks a tie): GitHub lists them newest first,
    but the answer must not depend on that."""
    return max(statuses, key=lambda s: (parse_time(s["created_at"]), s["id"]), default=None)


def deployment_from_json(
    deployment: Mapping[str, Any],
    statuses: Sequence[Mapping[str, Any]],
    *,
    service: str | None,
    web_url: str,
) -> Deployment:
    """One deployment with its latest status. The evidence link is that status's log URL (else its
    target or environment URL), else the deployed commit on the web host."""
    repo = repo_of(deployment)
    sha = deployment["sha"]
    commit_url = f"{web_url.rstrip('/')}/{repo}/commit/{sha}"
    latest = latest_status(statuses)
    link = None
    if latest is not None:
        link = latest.get("log_url") or latest.get("target_url") or latest.get("environment_url")
    creator = deployment.get("creator") or {}
    return Deployment(
        id=deployment["id"],
        repo=repo,
        service=service,
        sha=sha,
        ref=deployment["ref"],
        environment=deployment["environment"],
        description=deployment.get("description") or "",
        creator=creator.get("login"),
        created_at=parse_time(deployment["created_at"]),
        status=latest["state"] if latest is not None else "unknown",
        status_at=parse_time(latest["created_at"]) if latest is not None else None,
        url=link or commit_url,
        commit_url=commit_url,
    )


def _pull_for(sha: str, pulls: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Of the PRs a commit belongs to, the one it was merged by, else a merged one, else the first."""
    if not pulls:
        return None
    merged = [p for p in pulls if p.get("merged_at")]
    by_merge = [p for p in merged if p.get("merge_commit_sha") == sha]
    return (by_merge or merged or list(pulls))[0]


def _pr_number_in(message: str) -> int | None:
    first_line = message.split("\n", 1)[0]
    merge = _MERGE_PR.match(first_line)
    if merge:
        return int(merge.group(1))
    squash = _SQUASH_PR.findall(first_line)
    return int(squash[-1]) if squash else None  # the last one: squash merges append "(#N)" to the title


def commit_from_json(commit: Mapping[str, Any], *, pulls: Sequence[Mapping[str, Any]] = ()) -> Commit:
    """One commit of a compare. Author: the GitHub login, else the git author name (an email that is
    linked to no account gives `"author": null`)."""
    sha = commit["sha"]
    message = commit["commit"]["message"]
    author = (commit.get("author") or {}).get("login") or (commit["commit"].get("author") or {}).get("name")
    html_url = commit.get("html_url")
    pull = _pull_for(sha, pulls)
    title = None
    if pull is not None:
        number, pr_url, title = pull["number"], pull.get("html_url"), pull.get("title")
    else:
        number = _pr_number_in(message)
        pr_url = None
        if number is not None and html_url and "/commit/" in html_url:
            pr_url = f"{html_url.rsplit('/commit/', 1)[0]}/pull/{number}"
    return Commit(
        sha=sha,
        message=message,
        author=author,
        url=html_url,
        pull_request=number,
        pull_request_url=pr_url,
        pull_request_title=title,
    )


def commits_from_compare(
    compare: Mapping[str, Any], *, pulls: Mapping[str, Sequence[Mapping[str, Any]]] | None = None
) -> tuple[Commit, ...]:
    """The commits of a compare (oldest first, as GitHub lists them). `pulls` maps a sha to the PRs
    `GET .../commits/{sha}/pulls` gave; without them the PR number comes from "(#123)" in the first line."""
    pulls = pulls or {}
    return tuple(commit_from_json(c, pulls=pulls.get(c["sha"], ())) for c in compare.get("commits") or ())


def succeeded(deployment: Deployment) -> bool:
    return deployment.status in SUCCEEDED_STATES


def select_deployments(
    deployments: Iterable[Deployment], *, since: datetime, until: datetime
) -> tuple[Deployment, ...]:
    """The deployments worth a timeline, oldest first.

    Kept: every deployment created in [since, until] (both ends included), plus, for each repo and
    environment, the *baseline*: the latest deployment created before `since` that succeeded (latest status
    `success`, or `inactive` once replaced). The baseline is what production ran when the window opened:
    a later deploy of its sha is recognisable as a rollback, and the first deploy in the window needs it as
    the base of its compare. Deployments after `until`, older ones before the baseline and failed ones
    before `since` are dropped. Duplicates (same id) are kept once.
    """
    unique = {d.id: d for d in deployments}.values()
    in_window = [d for d in unique if since <= d.created_at <= until]
    baselines: dict[tuple[str, str], Deployment] = {}
    for d in unique:
        if d.created_at >= since or not succeeded(d):
            continue
        key = (d.repo, d.environment)
        best = baselines.get(key)
        if best is None or (d.created_at, d.id) > (best.created_at, best.id):
            baselines[key] = d
    return tuple(sorted([*in_window, *baselines.values()], key=lambda d: (d.created_at, d.id)))
