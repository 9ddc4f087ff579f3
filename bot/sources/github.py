"""The live GitHub deploy source: deployments, their statuses, and the commits a deploy shipped (PyGithub).

PyGithub does the HTTP: authentication, `Link`-header pagination (`PaginatedList`), retries (its
`GithubRetry`: 5xx and 429 with backoff, `Retry-After` honoured, the secondary rate limit's 403 waited
out) and GitHub Enterprise prefixes (`https://HOST/api/v3`). The JSON it returns goes through
`github_mapping`, the same mapping the replay of bundled samples uses. Every vendor exception becomes a
`bot.errors` one in `_github_errors`, the single place that knows PyGithub's and requests' exceptions.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import requests
import urllib3.exceptions
from github import (
    Auth,
    Github,
    GithubException,
    GithubRetry,
    RateLimitExceededExceedsMaxWait,
    RateLimitExceededException,
)
from github.GithubObject import NonCompletableGithubObject
from github.PaginatedList import PaginatedList

from bot.errors import AuthError, SourceError, SourceUnavailable
from bot.sources.github_mapping import (
    commits_from_compare,
    deployment_from_json,
    parse_time,
    select_deployments,
    succeeded,
    web_url_for_api,
)
from bot.timeline.models import Commit, Deployment

SOURCE = "github"
# Before the window, how many deployments to inspect for a successful baseline before giving up:
# a long run of failed deploys should not make us page through a repo's whole history.
BASELINE_LOOKBACK = 30
# Commits of one compare whose PRs are looked up (one request each); later ones rely on "(#123)".
MAX_PULL_LOOKUPS = 50
# Longest wait for a rate limit to reset before reporting GitHub as unavailable instead.
MAX_RATE_LIMIT_WAIT = 60.0


class _Json(NonCompletableGithubObject):
    """A list item kept as GitHub's JSON: PyGithub's typed objects would fetch each item again to
    complete themselves when asked for their raw data."""

    def _initAttributes(self) -> None:
        return None

    def _useAttributes(self, attributes: dict[str, Any]) -> None:
        return None


class GitHubSource:
    """`DeploySource` over GitHub's REST API (github.com or GitHub Enterprise Server)."""

    def __init__(
        self,
        *,
        token: str | None,
        base_url: str,
        ca_bundle: Path | None = None,
        timeout: float = 15.0,
        max_retries: int = 4,
        environment: str = "production",
        per_page: int = 100,
        backoff_factor: float = 0.5,
        web_url: str | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # Where people open commits: derived from the API URL unless a proxy or GHE set-up says otherwise.
        self._web_url = (web_url or web_url_for_api(self._base_url)).rstrip("/")
        self._environment = environment
        self._has_token = bool(token)
        self._max_retries = max_retries
        retry = GithubRetry(
            total=max_retries,
            # GithubRetry adds 403 and retries it only for a rate limit (waiting for its reset).
            status_forcelist=[429, 500, 502, 503, 504],
            backoff_factor=backoff_factor,
            respect_retry_after_header=True,
            # Hand the last answer back rather than urllib3's MaxRetryError: its status and message are
            # what the user should read.
            raise_on_status=False,
            max_rate_limit_wait=MAX_RATE_LIMIT_WAIT,
        )
        self._github = Github(
            base_url=self._base_url,
            auth=Auth.Token(token) if token else None,
            # PyGithub insists on whole seconds.
            timeout=max(1, math.ceil(timeout)),
            retry=retry,
            per_page=per_page,
            verify=str(ca_bundle) if ca_bundle is not None else True,
            user_agent="postmortem-bot",
            # Reads only, one at a time: PyGithub's default pause between requests (meant for bursts of
            # writes) would only slow a scan; rate limits are handled by GithubRetry.
            seconds_between_requests=None,
        )

    @property
    def _attempts(self) -> str:
        tries = self._max_retries + 1
        return f"{tries} attempt{'s' if tries > 1 else ''}"

    def close(self) -> None:
        self._github.close()

    # -- DeploySource ----------------------------------------------------------------------------
    def get_deployments(
        self, *, service_repos: Mapping[str, str], since: datetime, until: datetime
    ) -> tuple[Deployment, ...]:
        """Deployments to the configured environment created in [since, until], plus each repo's
        baseline (see `select_deployments`), oldest first, each with its latest status."""
        found: list[Deployment] = []
        for service, repo in service_repos.items():
            with self._github_errors(repo=repo, service=service):
                found.extend(self._repo_deployments(repo=repo, service=service, since=since, until=until))
        return select_deployments(found, since=since, until=until)

    def get_commits(self, *, deployment: Deployment, previous: Deployment | None) -> tuple[Commit, ...]:
        """The commits between `previous` and `deployment` (compare), with PR numbers. Nothing when
        there is no earlier deployment to compare with, or both deployed the same sha."""
        if previous is None or previous.sha == deployment.sha:
            return ()
        repo = deployment.repo
        basehead = f"{previous.sha}...{deployment.sha}"
        with self._github_errors(
            repo=repo,
            service=deployment.service,
            not_found=f"GitHub cannot compare {previous.sha[:7]}...{deployment.sha[:7]} in {repo}: "
            "one of the commits is missing (force-pushed away?) or GITHUB_TOKEN cannot read the repo's contents.",
        ):
            _, compare = self._github.requester.requestJsonAndCheck(
                "GET", f"/repos/{repo}/compare/{basehead}"
            )
            shas = [c["sha"] for c in compare.get("commits") or ()]
            # The newest commits matter most for a suspect deploy: look those up first.
            pulls = {sha: self._pulls(repo=repo, sha=sha) for sha in shas[-MAX_PULL_LOOKUPS:]}
        return commits_from_compare(compare, pulls=pulls)

    # -- reading ---------------------------------------------------------------------------------
    def _paginated(self, path: str, params: dict[str, Any] | None = None) -> PaginatedList[_Json]:
        return PaginatedList(_Json, self._github.requester, path, params or {})

    def _repo_deployments(
        self, *, repo: str, service: str, since: datetime, until: datetime
    ) -> list[Deployment]:
        """Walk the repo's deployments (newest first) until the baseline before `since` is found.

        Statuses are read only for deployments that may be kept: those after `until` are skipped, and
        paging stops at the first successful one before `since`.
        """
        kept: list[Deployment] = []
        inspected_before = 0
        for item in self._paginated(f"/repos/{repo}/deployments", {"environment": self._environment}):
            raw = item.raw_data
            created = parse_time(raw["created_at"])
            if created > until:
                continue
            statuses = [
                s.raw_data for s in self._paginated(f"/repos/{repo}/deployments/{raw['id']}/statuses")
            ]
            deployment = deployment_from_json(raw, statuses, service=service, web_url=self._web_url)
            kept.append(deployment)
            if created < since:
                inspected_before += 1
                if succeeded(deployment) or inspected_before >= BASELINE_LOOKBACK:
                    break
        return kept

    def _pulls(self, *, repo: str, sha: str) -> list[dict[str, Any]]:
        """The PRs a commit belongs to; none when this GitHub cannot say (404: an older GitHub
        Enterprise; 422: a commit it no longer knows)."""
        try:
            _, pulls = self._github.requester.requestJsonAndCheck("GET", f"/repos/{repo}/commits/{sha}/pulls")
        except GithubException as exc:
            if exc.status in (404, 422):
                return []
            raise
        return pulls if isinstance(pulls, list) else []

    # -- errors ----------------------------------------------------------------------------------
    @contextmanager
    def _github_errors(
        self, *, repo: str, service: str | None, not_found: str | None = None
    ) -> Iterator[None]:
        """Translate PyGithub's and requests' exceptions into the project's errors, naming what to fix."""
        try:
            yield
        except GithubException as exc:
            raise self._translate(exc, repo=repo, service=service, not_found=not_found) from exc
        except requests.exceptions.SSLError as exc:
            raise SourceUnavailable(
                f"GitHub at {self._base_url} failed the TLS handshake ({_describe(_causes(exc)[-1])}). "
                "If it uses a private certificate authority, point CA_BUNDLE at its certificate.",
                source=SOURCE,
            ) from exc
        except requests.exceptions.RequestException as exc:
            chain = _causes(exc)
            cause = chain[-1]
            # urllib3's NewConnectionError (a refused connection) subclasses its ConnectTimeoutError.
            if any(
                isinstance(e, _TIMEOUTS) and not isinstance(e, urllib3.exceptions.NewConnectionError)
                for e in chain
            ):
                text = f"GitHub at {self._base_url} did not answer in time ({self._attempts})."
            else:
                text = f"GitHub at {self._base_url} was unreachable ({self._attempts}): {_describe(cause)}"
            raise SourceUnavailable(text, source=SOURCE) from exc

    def _translate(
        self, exc: GithubException, *, repo: str, service: str | None, not_found: str | None
    ) -> SourceError:
        status = exc.status
        headers = {k.lower(): str(v) for k, v in (exc.headers or {}).items()}
        message = _message(exc)
        if isinstance(exc, RateLimitExceededException) or (status in (403, 429) and _rate_limited(headers)):
            return SourceUnavailable(_rate_limit_text(exc, headers), source=SOURCE)
        if status == 401:
            if not self._has_token:
                return AuthError(
                    f"GitHub at {self._base_url} requires a token: set GITHUB_TOKEN.", source=SOURCE
                )
            return AuthError(
                f"GitHub rejected GITHUB_TOKEN (401 {message or 'Bad credentials'}): it is wrong, expired or "
                "revoked. Create a new token and set GITHUB_TOKEN.",
                source=SOURCE,
            )
        if status == 403:
            return AuthError(
                f"GITHUB_TOKEN may not read {repo} (403 {message or 'Forbidden'}): {_missing_grant(headers)}",
                source=SOURCE,
            )
        if status == 404:
            if not_found is not None:
                return SourceError(not_found, source=SOURCE)
            mapping = f"service {service} -> {repo}" if service else repo
            return SourceError(
                f"GitHub has no repository {repo}, or GITHUB_TOKEN cannot see it. "
                f"Check SERVICE_REPOS ({mapping}) and the token's repository access.",
                source=SOURCE,
            )
        if status == 429 or status >= 500:
            phrase = _phrase(status)
            return SourceUnavailable(
                f"GitHub answered {status} {phrase} for {repo} ({self._attempts}).",
                source=SOURCE,
            )
        return SourceError(
            f"GitHub refused a request for {repo} ({status} {message or _phrase(status)}).", source=SOURCE
        )


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        return str(data.get("message") or data.get("data") or "").strip()
    return str(data or "").strip()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _rate_limited(headers: Mapping[str, str]) -> bool:
    return headers.get("x-ratelimit-remaining") == "0"


def _rate_limit_text(exc: GithubException, headers: Mapping[str, str]) -> str:
    reset = headers.get("x-ratelimit-reset")
    if _rate_limited(headers) and reset and reset.isdigit():
        when = datetime.fromtimestamp(int(reset), tz=UTC).strftime("%H:%M UTC")
        return f"GitHub's API rate limit for GITHUB_TOKEN is used up until {when}; try again after that."
    if isinstance(exc, RateLimitExceededExceedsMaxWait):
        return f"GitHub's rate limit asks to wait {exc.wait:.0f}s, longer than we wait; try again later."
    return "GitHub is rate limiting GITHUB_TOKEN (secondary rate limit); try again in a few minutes."


def _missing_grant(headers: Mapping[str, str]) -> str:
    """What the token lacks, from the headers GitHub sends with a 403."""
    permissions = headers.get("x-accepted-github-permissions")  # fine-grained tokens and GitHub Apps
    if permissions:
        readable = " or ".join(
            ", ".join(
                f"'{name.strip()}: {level.strip()}'"
                for name, _, level in (p.partition("=") for p in alt.split(","))
            )
            for alt in permissions.split(";")
        )
        return f"give the token the {readable} repository permission."
    scopes = headers.get("x-accepted-oauth-scopes")  # classic personal access tokens
    if scopes:
        return f"give the token the '{scopes}' scope."
    return "give the token read access to the repository's deployments, contents and pull requests."


_TIMEOUTS = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps, outermost first: requests wraps urllib3's MaxRetryError, which
    holds the ReadTimeoutError or NewConnectionError, which wraps the socket's error."""
    chain = [exc]
    for _ in range(6):
        inner = chain[-1]
        nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException):
            nxt = (
                inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else inner.__cause__
            )
        if not isinstance(nxt, BaseException) or nxt in chain:
            break
        chain.append(nxt)
    return chain


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]
