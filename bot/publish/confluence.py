"""Publish a postmortem to Confluence exactly once: Cloud (REST v2) or Data Center (REST v1).

`ConfluencePublisher.publish(...)` writes one page per postmortem and never a second:

* a known `page_id` is updated as a new version;
* otherwise the title is looked up in the space first and that page is updated;
* otherwise a page is created under the parent. A create whose answer is lost (a timeout or a 5xx after
  Confluence stored the page) is followed by another look-up, never by a blind second create;
* an update carries `current + 1` as its version; a 409 (someone saved in between) re-reads the page and
  tries once more, then gives up with `StaleVersionError`.

Labels and attachments go through the v1 endpoints on both flavours (Cloud's v2 has no writes for them).
HTTP retries live in the session's urllib3 `Retry` (429 with Retry-After for every method, 5xx and read
timeouts for idempotent ones); every vendor exception becomes a `PublishError` in `_publish_error`.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from atlassian import Confluence
from atlassian.errors import ApiError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util import Retry

from bot.errors import PublishError, StaleVersionError

T = TypeVar("T")

_VENDOR_ERRORS = (requests.RequestException, ApiError)
_MAX_WAIT_SECONDS = 60  # the longest Retry-After or backoff we sit through
_VERSION_MESSAGE = "Updated by Postmortem Bot"


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    mime: str


@dataclass(frozen=True)
class PublishedPage:
    id: str
    url: str
    version: int
    created: bool  # this call created the page (False: it updated one)


@dataclass(frozen=True)
class _Page:
    id: str
    title: str
    version: int
    body: str | None


class _Retry(Retry):
    """urllib3's Retry, but a 429 is retried for every method: Confluence did not act on the request.

    A 5xx or a read timeout is retried only for idempotent methods (the default allowed_methods): after a
    POST it may mean the page exists, and the publisher looks before it creates again.
    """

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return status_code == 429 or super().is_retry(method, status_code, has_retry_after)


class _TimeoutAdapter(HTTPAdapter):
    """Owns the timeout: atlassian-python-api truncates its own to whole seconds (int(0.5) == 0)."""

    def __init__(self, *, timeout: float, max_retries: Retry) -> None:
        super().__init__(max_retries=max_retries)
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def legal_labels(labels: Sequence[str]) -> list[str]:
    """Lower-case, Confluence-legal labels (letters, digits, - and _), each once: 'SEV-1' -> 'sev-1'."""
    legal: list[str] = []
    for raw in labels:
        name = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-")[:255]
        if name and name not in legal:
            legal.append(name)
    return legal


class ConfluencePublisher:
    def __init__(
        self,
        *,
        url: str,
        username: str,
        api_token: str,
        space_key: str,
        parent_page_id: str | None,
        cloud: bool,
        ca_bundle: Path | None = None,
        timeout: float = 15.0,
        max_retries: int = 4,
        backoff_factor: float = 0.5,
    ) -> None:
        base = url.rstrip("/")
        if cloud and not base.endswith("/wiki"):
            base += "/wiki"  # Cloud serves Confluence under /wiki, for custom domains too
        self._base = base
        self._space_key = space_key
        self._parent_page_id = parent_page_id
        self._cloud = cloud
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff_factor = backoff_factor
        self._space_id: str | None = None

        retry = _Retry(
            total=max_retries,
            read=min(1, max_retries),  # a hang costs a whole timeout: retry it once at most
            status_forcelist=(500, 502, 503, 504),
            backoff_factor=backoff_factor,
            backoff_max=_MAX_WAIT_SECONDS,
            retry_after_max=_MAX_WAIT_SECONDS,
            raise_on_status=False,  # hand the last answer back, so its error body reaches the message
        )
        session = requests.Session()
        session.verify = str(ca_bundle) if ca_bundle else True
        adapter = _TimeoutAdapter(timeout=timeout, max_retries=retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        # The library's own backoff_and_retry would retry a POST on 5xx (a second create) and, once spent,
        # raise RetryError without Confluence's message; the session above replaces it.
        common: dict[str, Any] = {
            "username": username,
            "password": api_token,
            "session": session,
            "timeout": max(1, math.ceil(timeout)),
            "retry_with_header": False,
        }
        if cloud:
            with warnings.catch_warnings():
                # ConfluenceCloud warns on every construction that its v1 methods are deprecated.
                warnings.simplefilter("ignore", DeprecationWarning)
                self._client = Confluence(url=base, api_version=2, **common)
        else:
            self._client = Confluence(base, cloud=False, **common)

    # -- the use case ---------------------------------------------------------------------------
    def publish(
        self,
        *,
        title: str,
        body: str,
        labels: Sequence[str],
        attachments: Sequence[Attachment],
        page_id: str | None = None,
    ) -> PublishedPage:
        try:
            page, created = self._write_page(title=title, body=body, page_id=page_id)
        except _VENDOR_ERRORS as exc:
            raise self._publish_error(exc) from exc
        try:
            self._add_labels(page.id, legal_labels(labels))
            for attachment in attachments:
                self._attach(page.id, attachment)
        except _VENDOR_ERRORS as exc:
            error = self._publish_error(exc)
            raise type(error)(f"The page {self.page_url(page.id)} was written, but: {error}") from exc
        return PublishedPage(id=page.id, url=self.page_url(page.id), version=page.version, created=created)

    def page_url(self, page: PublishedPage | str) -> str:
        """The page in a browser, from a published page or its id."""
        page_id = page.id if isinstance(page, PublishedPage) else page
        if self._cloud:
            return f"{self._base}/spaces/{self._space_key}/pages/{page_id}"
        return f"{self._base}/pages/viewpage.action?pageId={page_id}"

    # -- pages ----------------------------------------------------------------------------------
    def _write_page(self, *, title: str, body: str, page_id: str | None) -> tuple[_Page, bool]:
        if page_id is not None:
            try:
                return self._update(self._get(page_id), title=title, body=body), False
            except _VENDOR_ERRORS as exc:
                if _status(exc) != 404:
                    raise
                # Deleted in Confluence since we stored its id: fall through and write it again.

        tried_create = False

        def attempt() -> tuple[_Page, bool]:
            nonlocal tried_create
            existing = self._find(title)
            if existing is None:
                tried_create = True
                try:
                    return self._create(title=title, body=body), True
                except _VENDOR_ERRORS as exc:
                    if _status(exc) != 400:
                        raise
                    # A 400 is either the body or a duplicate title: a page that appeared since we looked.
                    existing = self._find(title)
                    if existing is None:
                        raise
            if tried_create and existing.title == title and existing.body == body:
                return existing, True  # our create landed, only its answer was lost
            return self._update(existing, title=title, body=body), False

        return self._settle(attempt)

    def _update(self, page: _Page, *, title: str, body: str) -> _Page:
        try:
            return self._put(page, title=title, body=body)
        except _VENDOR_ERRORS as exc:
            if _status(exc) != 409:
                raise
        fresh = self._get(page.id)  # someone saved in between: build on their version, once
        try:
            return self._put(fresh, title=title, body=body)
        except _VENDOR_ERRORS as exc:
            if _status(exc) == 409:
                raise StaleVersionError(
                    f"The Confluence page {self.page_url(page.id)} keeps changing while we publish "
                    f"({_confluence_message(exc)}). Publish again to write over it."
                ) from exc
            raise

    def _space(self) -> str:
        if self._space_id is None:
            try:
                self._space_id = str(self._client.get_space_by_key(self._space_key)["id"])
            except ValueError as exc:  # the library's "No space found with key ..."
                raise PublishError(
                    f"Confluence has no space with key {self._space_key} (CONFLUENCE_SPACE_KEY), "
                    "or CONFLUENCE_USERNAME cannot see it."
                ) from exc
        return self._space_id

    def _find(self, title: str) -> _Page | None:
        if self._cloud:
            found = self._client.get_pages(
                space_id=self._space(), title=title, status="current", body_format="storage"
            )
        else:
            answer = self._client.get_page_by_title(self._space_key, title, expand="body.storage,version")
            found = (answer or {}).get("results") or []
        exact = [p for p in found if p.get("title") == title]
        return _page(exact[0]) if exact else None

    def _get(self, page_id: str) -> _Page:
        if self._cloud:
            return _page(self._client.get_page_by_id(page_id, body_format="storage"))
        return _page(self._client.get_page_by_id(page_id, expand="body.storage,version"))

    def _create(self, *, title: str, body: str) -> _Page:
        if self._cloud:
            created = self._client.create_page(
                space_id=self._space(), title=title, body=body, parent_id=self._parent_page_id
            )
        else:
            created = self._client.create_page(
                space=self._space_key, title=title, body=body, parent_id=self._parent_page_id
            )
        return _page(created)

    def _put(self, page: _Page, *, title: str, body: str) -> _Page:
        if self._cloud:
            # v2 wants status and the current version (the library sends version + 1).
            return _page(
                self._client.update_page(
                    page.id, title=title, body=body, status="current", version=page.version
                )
            )
        data = {
            "id": page.id,
            "type": "page",
            "status": "current",
            "title": title,
            "version": {"number": page.version + 1, "message": _VERSION_MESSAGE},
            "body": {"storage": {"value": body, "representation": "storage"}},
        }
        # Not the library's update_page: it reads the version itself and rewrites a 400's message.
        return _page(self._client.update_content(page.id, data))

    # -- labels and attachments (v1 on both flavours) -------------------------------------------
    def _add_labels(self, page_id: str, labels: list[str]) -> None:
        if labels:  # adding a label the page has is a no-op in Confluence: one POST is idempotent
            payload = [{"prefix": "global", "name": name} for name in labels]
            self._settle(lambda: self._client.post(f"rest/api/content/{page_id}/label", data=payload))

    def _attach(self, page_id: str, attachment: Attachment) -> None:
        path = f"rest/api/content/{page_id}/child/attachment"

        def attempt() -> None:
            found = (self._client.get(path, params={"filename": attachment.name}) or {}).get("results") or []
            target = f"{path}/{found[0]['id']}/data" if found else path  # replace one of the same name
            self._client.post(
                target,
                data={"minorEdit": "true"},
                files={"file": (attachment.name, attachment.data, attachment.mime)},
                headers=self._client.no_check_headers,
            )

        self._settle(attempt)

    def _settle(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` again (it looks before it writes) while a POST's outcome is unknown."""
        for n in range(self._max_retries + 1):
            try:
                return attempt()
            except _VENDOR_ERRORS as exc:
                if n == self._max_retries or not _outcome_unknown(exc):
                    raise
            time.sleep(min(_MAX_WAIT_SECONDS, self._backoff_factor * 2**n))
        raise AssertionError("unreachable")

    # -- errors: the one place vendor exceptions become ours ------------------------------------
    def _publish_error(self, exc: Exception) -> PublishError:
        status = _status(exc)
        where = _where(exc)
        if status == 401:
            return PublishError(
                "Confluence refused the credentials (401): check CONFLUENCE_USERNAME and CONFLUENCE_API_TOKEN."
            )
        if status == 403:
            return PublishError(
                f"Confluence denied {where} (403): CONFLUENCE_USERNAME may lack permission in space "
                f"{self._space_key}. {_confluence_message(exc)}"
            )
        if status == 409:
            return StaleVersionError(f"Confluence refused {where} (409): {_confluence_message(exc)}")
        if status is not None:
            return PublishError(f"Confluence answered {status} to {where}: {_confluence_message(exc)}")
        if _timed_out(exc):
            return PublishError(f"Confluence did not answer {where} within {self._timeout:g}s.")
        if isinstance(exc, requests.exceptions.SSLError):
            return PublishError(
                f"Cannot verify the certificate of Confluence at {self._base}: set CA_BUNDLE to the "
                f"certificate authority that signed it. ({str(_reason(exc)).rsplit(': ', 1)[-1]})"
            )
        if isinstance(exc, requests.ConnectionError):
            cause = str(_reason(exc)).rsplit(": ", 1)[-1]  # "[Errno 111] Connection refused"
            return PublishError(f"Cannot reach Confluence at {self._base} (CONFLUENCE_URL): {cause}")
        return PublishError(f"Publishing to Confluence failed: {exc}")


def _page(data: dict) -> _Page:
    """A page from either dialect: v2 and v1 agree on id, title, version.number and body.storage.value."""
    body = ((data.get("body") or {}).get("storage") or {}).get("value")
    return _Page(id=str(data["id"]), title=data["title"], version=int(data["version"]["number"]), body=body)


def _http_error(exc: Exception) -> Exception:
    # The Server client wraps some HTTPErrors in ApiError(reason=...).
    return exc.reason if isinstance(exc, ApiError) and isinstance(exc.reason, Exception) else exc


def _status(exc: Exception) -> int | None:
    response = getattr(_http_error(exc), "response", None)
    return response.status_code if response is not None else None


def _where(exc: Exception) -> str:
    request = getattr(_http_error(exc), "request", None)
    if request is None or request.url is None:
        return "the request"
    return f"{request.method} {urlsplit(request.url).path}"


def _reason(exc: Exception) -> object:
    """What urllib3 gave up on, when requests wraps a MaxRetryError."""
    first = exc.args[0] if exc.args else None
    return getattr(first, "reason", first)


def _timed_out(exc: Exception) -> bool:
    exc = _http_error(exc)
    # requests raises Timeout for one timeout, but ConnectionError once retries on read timeouts are spent.
    return isinstance(exc, requests.Timeout) or isinstance(_reason(exc), ReadTimeoutError)


def _outcome_unknown(exc: Exception) -> bool:
    """A POST answered 5xx or not at all: Confluence may have acted on it."""
    request = getattr(_http_error(exc), "request", None)
    if request is None or request.method != "POST":
        return False
    status = _status(exc)
    return (status is not None and status >= 500) or _timed_out(exc)


def _confluence_message(exc: Exception) -> str:
    """What Confluence said: v2's errors[].title/detail, or v1's message."""
    response = getattr(_http_error(exc), "response", None)
    if response is None:
        return str(exc)
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            parts = [
                " — ".join(str(e[k]) for k in ("title", "detail") if e.get(k))
                for e in errors
                if isinstance(e, dict)
            ]
            if any(parts):
                return "; ".join(p for p in parts if p)
        if data.get("message"):
            return str(data["message"])
    return response.reason or f"HTTP {response.status_code}"
