"""A local GitHub REST v3 for tests: deployments, statuses, compare and a commit's pulls.

Serves the bundled sample bodies (`bot/samples/pd-9876/github/<owner>/<repo>/...`) and repos added with
`add_repo` (`generate_history` makes hundreds of deployments), the way github.com does:

* `Link` pagination (`rel="prev"/"next"/"last"/"first"`, `page`/`per_page`, default 30, at most 100),
  with the links pointing at `/repositories/{id}/...` as GitHub's do;
* `Authorization: token|Bearer <t>`: an unknown token gets 401 "Bad credentials"; no token sees no
  private repo (404, as GitHub hides them); `forbid()` and `exhaust_rate_limit()` give GitHub's 403s;
* 404 "Not Found" bodies, `environment`/`sha`/`ref`/`task` filters on deployments, newest first;
* the same API under the GitHub Enterprise prefix `/api/v3/...`.

API URLs inside the bodies (https://api.github.com) are rewritten to this server; under the `/api/v3`
prefix (GitHub Enterprise, one host for API and web) the web URLs (https://github.com) are too. Faults come from `FakeServer` (429 bodies are GitHub's).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import bot
from tests.fakes.http import FakeServer, Fault, Request, Response

SAMPLES = Path(bot.__file__).parent / "samples" / "pd-9876" / "github"
API = "https://api.github.com"
WEB = "https://github.com"
GHE_PREFIX = "/api/v3"
DEFAULT_TOKEN = "ghp_fakeToken0123456789abcdefghijklmnopqr"

_DOCS = {
    "deployments": "https://docs.github.com/rest/deployments/deployments#list-deployments",
    "statuses": "https://docs.github.com/rest/deployments/statuses#list-deployment-statuses",
    "compare": "https://docs.github.com/rest/commits/commits#compare-two-commits",
    "pulls": "https://docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-commit",
    "rest": "https://docs.github.com/rest",
}
# The ids GitHub gave the sample repos (see the `repo` objects inside the sample pulls).
_SAMPLE_REPO_IDS = {"acme/customer-api": 612345678, "acme/auth-service": 612345701}

_PREFIX = rf"(?P<prefix>{GHE_PREFIX})?"
_REPO = rf"{_PREFIX}(?:/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)|/repositories/(?P<repo_id>\d+))"


def github_error(status: int, message: str, docs: str = _DOCS["rest"]) -> dict[str, str]:
    """GitHub's error body."""
    return {"message": message, "documentation_url": docs, "status": str(status)}


@dataclass
class FakeRepo:
    full_name: str
    id: int
    deployments: list[dict[str, Any]] = field(default_factory=list)  # any order; served newest first
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    compares: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (base, head) -> body
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # sha -> PRs
    private: bool = True
    pulls_endpoint: bool = True  # False: answer 404 there, as GitHub Enterprise versions without it do

    def known_commits(self) -> set[str]:
        shas = set(self.pulls)
        for body in self.compares.values():
            shas.update(c["sha"] for c in body.get("commits", ()))
            shas.update(body[k]["sha"] for k in ("base_commit", "merge_base_commit") if body.get(k))
        return shas


class GitHubFake(FakeServer):
    name = "github"

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] = (DEFAULT_TOKEN,),
        samples: Path | None = SAMPLES,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.tokens = set(tokens)
        self._samples = samples
        self._secondary_lock = threading.Lock()
        self._fresh()
        self.route("GET", rf"{_REPO}/deployments", self._list_deployments)
        self.route("GET", rf"{_REPO}/deployments/(?P<id>\d+)/statuses", self._list_statuses)
        self.route("GET", rf"{_REPO}/compare/(?P<base>[^/]+?)\.\.\.(?P<head>[^/]+)", self._compare)
        self.route("GET", rf"{_REPO}/commits/(?P<sha>[^/]+)/pulls", self._commit_pulls)

    def _fresh(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self._forbidden: dict[str, dict[str, str]] = {}  # token -> headers of its 403
        self._rate_limit_reset: int | None = None
        self._secondary = [0, 0]  # answers left, Retry-After seconds
        if self._samples is not None:
            self.load_samples(self._samples)

    def reset(self) -> None:
        """Back to a fresh fake on the same port: no requests, faults, refusals, rate limits or added repos
        (the samples again, when they were loaded)."""
        with self._lock:
            self.requests.clear()
        self.faults.clear()
        with self._secondary_lock:
            self._fresh()

    # -- data --------------------------------------------------------------------------------------
    def add_repo(
        self,
        full_name: str,
        deployments: Iterable[dict[str, Any]] = (),
        statuses: dict[int, list[dict[str, Any]]] | None = None,
        *,
        compares: dict[tuple[str, str], dict[str, Any]] | None = None,
        pulls: dict[str, list[dict[str, Any]]] | None = None,
        private: bool = True,
        repo_id: int | None = None,
    ) -> FakeRepo:
        repo_id = repo_id or _SAMPLE_REPO_IDS.get(full_name) or 700_000_000 + len(self.repos)
        repo = FakeRepo(
            full_name,
            repo_id,
            list(deployments),
            dict(statuses or {}),
            dict(compares or {}),
            dict(pulls or {}),
            private,
        )
        self.repos[full_name.lower()] = repo
        return repo

    def load_samples(self, directory: Path) -> None:
        """Every `<owner>/<repo>/` under `directory`, as the sample layout names its files."""
        for listing in sorted(directory.glob("*/*/deployments.json")):
            root = listing.parent
            statuses = {int(p.stem): _read(p) for p in (root / "statuses").glob("*.json")}
            compares = {}
            for path in (root / "compare").glob("*.json"):
                base, _, head = path.name.removesuffix(".json").partition("...")
                compares[(base, head)] = _read(path)
            pulls = {p.parent.name: _read(p) for p in (root / "commits").glob("*/pulls.json")}
            self.add_repo(
                f"{root.parent.name}/{root.name}", _read(listing), statuses, compares=compares, pulls=pulls
            )

    def forbid(self, token: str, *, permissions: str | None = None, oauth_scopes: str | None = None) -> None:
        """Requests with `token` get GitHub's 403 for a token lacking a permission (fine-grained:
        `permissions="deployments=read"`) or a scope (classic: `oauth_scopes="repo"`)."""
        headers = {}
        if permissions is not None:
            headers["X-Accepted-GitHub-Permissions"] = permissions
        if oauth_scopes is not None:
            headers["X-Accepted-OAuth-Scopes"] = oauth_scopes
            headers["X-OAuth-Scopes"] = ""
        self._forbidden[token] = headers

    def exhaust_rate_limit(self, *, reset_in: timedelta = timedelta(minutes=40)) -> None:
        """Every request gets the primary rate limit's 403 until the reset (which the test never reaches)."""
        self._rate_limit_reset = int(time.time() + reset_in.total_seconds())

    def secondary_rate_limit(self, *, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` authenticated requests get the secondary rate limit's 403 with Retry-After."""
        with self._secondary_lock:
            self._secondary = [times, retry_after]

    # -- answers ---------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        response = super().dispatch(request)
        prefix = GHE_PREFIX if request.path.startswith(GHE_PREFIX + "/") else ""
        if isinstance(response.body, dict | list):
            text = json.dumps(response.body)
            text = text.replace(API, f"{self.url}{prefix}")
            if prefix:  # GitHub Enterprise serves its web pages on the API's host; github.com does not
                text = text.replace(WEB, self.url)
            response.body = json.loads(text)
        response.headers = {**self._rate_headers(), **response.headers}
        return response

    def _rate_headers(self, remaining: int = 4990) -> dict[str, str]:
        reset = self._rate_limit_reset or int(time.time()) + 3600
        return {
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(5000 - remaining),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Request-Id": "C0DE:1F2E:3D4C5B:6A7980:66A0B1C2",
        }

    def unauthorized(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None:
            return None  # anonymous: public repos only
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or token not in self.tokens:
            return Response(401, github_error(401, "Bad credentials"))
        if self._rate_limit_reset is not None:
            body = github_error(
                403,
                "API rate limit exceeded for user ID 58112310. If you reach out to GitHub Support for help, "
                "please include the request ID C0DE:1F2E:3D4C5B:6A7980:66A0B1C2 and timestamp 2024-07-20 11:02:03 UTC.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
            return Response(403, body, self._rate_headers(remaining=0))
        with self._secondary_lock:
            left, retry_after = self._secondary
            if left > 0:
                self._secondary[0] -= 1
        if left > 0:
            return Response(403, _secondary_body(403), {"Retry-After": str(retry_after)})
        if token in self._forbidden:
            body = github_error(403, "Resource not accessible by personal access token", _DOCS["deployments"])
            return Response(403, body, dict(self._forbidden[token]))
        return None

    def rate_limited(self, fault: Fault) -> Response:
        return Response(429, _secondary_body(429), {"Retry-After": str(fault.retry_after)})

    def server_error(self, fault: Fault) -> Response:
        return Response(fault.status, github_error(fault.status, HTTPStatus(fault.status).phrase))

    def not_found(self, request: Request) -> Response:
        return Response(404, github_error(404, "Not Found"))

    def _repo(self, request: Request, match: re.Match[str], docs: str) -> FakeRepo | Response:
        if match["repo_id"]:
            repo = next((r for r in self.repos.values() if r.id == int(match["repo_id"])), None)
        else:
            repo = self.repos.get(f"{match['owner']}/{match['name']}".lower())
        if repo is None or (repo.private and "authorization" not in request.headers):
            return Response(404, github_error(404, "Not Found", docs))
        return repo

    def _page(self, request: Request, match: re.Match[str], repo: FakeRepo, items: list[Any]) -> Response:
        """One page of `items` with GitHub's Link header (links via /repositories/{id})."""
        try:
            per_page = min(max(int(request.arg("per_page") or 30), 1), 100)
            page = max(int(request.arg("page") or 1), 1)
        except ValueError:
            per_page, page = 30, 1
        last = max(1, math.ceil(len(items) / per_page))
        tail = request.path[match.end("name") if match["name"] else match.end("repo_id") :]
        base = f"{self.url}{match['prefix'] or ''}/repositories/{repo.id}{tail}"
        kept = [(k, v) for k, values in request.query.items() if k != "page" for v in values]

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode([*kept, ("page", number)])}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        body = items[(page - 1) * per_page : page * per_page]
        return Response(200, body, {"Link": ", ".join(links)} if links else {})

    def _list_deployments(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(request, match, _DOCS["deployments"])
        if isinstance(repo, Response):
            return repo
        items = [
            d
            for d in repo.deployments
            if all(request.arg(k) in (None, d.get(k)) for k in ("environment", "sha", "ref", "task"))
        ]
        items.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
        return self._page(request, match, repo, items)

    def _list_statuses(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(request, match, _DOCS["statuses"])
        if isinstance(repo, Response):
            return repo
        deployment_id = int(match["id"])
        if not any(d["id"] == deployment_id for d in repo.deployments):
            return Response(404, github_error(404, "Not Found", _DOCS["statuses"]))
        items = sorted(
            repo.statuses.get(deployment_id, []), key=lambda s: (s["created_at"], s["id"]), reverse=True
        )
        return self._page(request, match, repo, items)

    def _compare(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(request, match, _DOCS["compare"])
        if isinstance(repo, Response):
            return repo
        for (base, head), body in repo.compares.items():
            if base.startswith(match["base"]) and head.startswith(match["head"]):
                return Response(200, body)
        return Response(404, github_error(404, "Not Found", _DOCS["compare"]))

    def _commit_pulls(self, request: Request, match: re.Match[str]) -> Response:
        repo = self._repo(request, match, _DOCS["pulls"])
        if isinstance(repo, Response):
            return repo
        if not repo.pulls_endpoint:
            return Response(404, github_error(404, "Not Found", _DOCS["rest"]))
        sha = match["sha"]
        for known, pulls in repo.pulls.items():
            if known.startswith(sha):
                return self._page(request, match, repo, pulls)
        if any(known.startswith(sha) for known in repo.known_commits()):
            return self._page(request, match, repo, [])
        return Response(422, github_error(422, f"No commit found for SHA: {sha}", _DOCS["pulls"]))


def _secondary_body(status: int) -> dict[str, str]:
    return github_error(
        status,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you "
        "reach out to GitHub Support for help, please include the request ID C0DE:1F2E:3D4C5B:6A7980:66A0B1C2.",
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    )


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


# -- builders for generated repos (same fields as the sample bodies) --------------------------------
def _user(login: str) -> dict[str, Any]:
    uid = int(hashlib.sha1(login.encode()).hexdigest()[:7], 16)
    url = f"{API}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_kgDO{uid:08X}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{WEB}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": "User",
        "user_view_type": "public",
        "site_admin": False,
    }


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_deployment(
    repo: str,
    deployment_id: int,
    *,
    sha: str,
    created_at: datetime,
    environment: str = "production",
    description: str = "",
    ref: str = "main",
    creator: str = "benokafor",
) -> dict[str, Any]:
    url = f"{API}/repos/{repo}/deployments/{deployment_id}"
    return {
        "url": url,
        "id": deployment_id,
        "node_id": f"DE_kwDO{deployment_id:010X}",
        "sha": sha,
        "ref": ref,
        "task": "deploy",
        "payload": {},
        "original_environment": environment,
        "environment": environment,
        "description": description,
        "creator": _user(creator),
        "created_at": _stamp(created_at),
        "updated_at": _stamp(created_at),
        "statuses_url": f"{url}/statuses",
        "repository_url": f"{API}/repos/{repo}",
        "transient_environment": False,
        "production_environment": environment == "production",
        "performed_via_github_app": None,
    }


def make_status(
    repo: str,
    deployment_id: int,
    status_id: int,
    *,
    state: str,
    created_at: datetime,
    environment: str = "production",
    log_url: str = "",
    environment_url: str = "",
    creator: str = "benokafor",
) -> dict[str, Any]:
    return {
        "url": f"{API}/repos/{repo}/deployments/{deployment_id}/statuses/{status_id}",
        "id": status_id,
        "node_id": f"DES_kwDO{status_id:010X}",
        "state": state,
        "creator": _user(creator),
        "description": f"{state.replace('_', ' ').capitalize()}",
        "environment": environment,
        "target_url": log_url,
        "created_at": _stamp(created_at),
        "updated_at": _stamp(created_at),
        "deployment_url": f"{API}/repos/{repo}/deployments/{deployment_id}",
        "repository_url": f"{API}/repos/{repo}",
        "environment_url": environment_url,
        "log_url": log_url,
        "performed_via_github_app": None,
    }


def fake_sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def generate_history(
    repo: str,
    *,
    count: int,
    start: datetime,
    every: timedelta,
    environment: str = "production",
    first_id: int = 500_000,
    failed_every: int = 0,
) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """`count` deployments from `start`, one per `every`, ids rising with time; each gets an in_progress
    then a success status (failure for every `failed_every`-th one, when set). Newest first."""
    deployments: list[dict[str, Any]] = []
    statuses: dict[int, list[dict[str, Any]]] = {}
    for n in range(count):
        at = start + n * every
        deployment_id = first_id + n
        failed = failed_every > 0 and n % failed_every == failed_every - 1
        log_url = f"{WEB}/{repo}/actions/runs/{9_000_000_000 + deployment_id}"
        sha = fake_sha(f"{repo}#{n}")
        deployments.append(
            make_deployment(
                repo, deployment_id, sha=sha, created_at=at, environment=environment, description=f"Build {n}"
            )
        )
        final = "failure" if failed else "success"
        statuses[deployment_id] = [
            make_status(
                repo,
                deployment_id,
                deployment_id * 10 + 2,
                state=final,
                created_at=at + timedelta(minutes=3),
                environment=environment,
                log_url=log_url,
            ),
            make_status(
                repo,
                deployment_id,
                deployment_id * 10 + 1,
                state="in_progress",
                created_at=at + timedelta(seconds=5),
                environment=environment,
                log_url=log_url,
            ),
        ]
    deployments.reverse()
    return deployments, statuses
