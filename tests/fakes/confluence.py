"""A local Confluence that speaks both dialects the publisher uses, over one shared store.

* Cloud REST v2 under `/wiki/api/v2` (spaces and pages, cursor pagination with `_links.next` and a
  `Link` header, errors as `{"errors": [{"status", "code", "title", "detail"}]}`), plus the two v1
  endpoints Cloud still serves for writes v2 lacks: labels and attachments under `/wiki/rest/api`.
* Data Center REST v1 under `{context_path}/rest/api` (content, labels, attachments; offset
  pagination; errors as `{"statusCode", "message", "data", "reason"}`).

Like Confluence it checks basic auth (401), refuses a storage body that is not well-formed XHTML (400)
and a second page with the same title in a space (400), wants `version.number == current + 1` on an
update (409 otherwise), keeps every version, label and attachment of a page, and wants
`X-Atlassian-Token: no-check` on multipart uploads (403). Tests read `pages` and switch on
`fail_next_create()` (the page is stored, then a 5xx or a hang is answered) for exactly-once tests,
and the `before_create` / `before_update` hooks to lose a race on purpose.
"""

from __future__ import annotations

import base64
import binascii
import html.entities
import itertools
import json
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from http import HTTPStatus
from urllib.parse import quote, urlencode

from tests.fakes.http import FakeServer, Fault, Request, Response

ACCOUNT_ID = "5b10ac8d82e05b22cc7d4ef5"  # the API user, as Cloud names it in authorId fields

# The storage format is XHTML with Confluence's own namespaces and HTML's named entities (&nbsp;...).
_ENTITIES = "".join(
    f'<!ENTITY {name} "&#{code};">'
    for name, code in html.entities.name2codepoint.items()
    if name not in {"amp", "lt", "gt", "quot", "apos"}
)
_STORAGE_PROLOGUE = (
    f"<!DOCTYPE ac:confluence [{_ENTITIES}]>\n"
    '<ac:confluence xmlns="http://www.w3.org/1999/xhtml" xmlns:ac="http://atlassian.com/content"'
    ' xmlns:ri="http://atlassian.com/resource/identifier">\n'
)
_LABEL_FORBIDDEN = re.compile(r"[\s!#&()*,.:;<>?@\[\]^]")


def storage_error(body: str) -> str | None:
    """Confluence's complaint about a storage body, or None when it is well-formed."""
    try:
        ET.fromstring(_STORAGE_PROLOGUE + body + "\n</ac:confluence>")
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        return f"Error parsing xhtml: {reason}\n at [row,col {{unknown-source}}]: [{line - 2},{column + 1}]"
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class PageVersion:
    number: int
    title: str
    body: str
    message: str = ""
    when: str = field(default_factory=_now)


@dataclass
class FakeAttachment:
    id: str
    name: str
    data: bytes
    mime: str
    version: int = 1


@dataclass
class FakeSpace:
    id: str
    key: str
    name: str


@dataclass
class FakePage:
    id: str
    space_key: str
    parent_id: str | None
    versions: list[PageVersion]
    labels: list[str] = field(default_factory=list)
    attachments: dict[str, FakeAttachment] = field(default_factory=dict)
    status: str = "current"
    created_at: str = field(default_factory=_now)

    @property
    def version(self) -> int:
        return self.versions[-1].number

    @property
    def title(self) -> str:
        return self.versions[-1].title

    @property
    def body(self) -> str:
        return self.versions[-1].body


@dataclass
class _CreateFailure:
    status: int
    hang: float
    stored: bool


class ConfluenceFake(FakeServer):
    name = "confluence"

    def __init__(
        self,
        *,
        username: str = "pm-bot@acme.example",
        api_token: str = "confluence-test-token",
        spaces: tuple[tuple[str, str], ...] = (("PM", "Postmortems"), ("ENG", "Engineering")),
        context_path: str = "/confluence",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.username = username
        self.api_token = api_token
        self.context_path = context_path.rstrip("/")
        self._ids = itertools.count(98305)
        self._store = threading.RLock()
        self._local = threading.local()
        self.spaces: dict[str, FakeSpace] = {
            key: FakeSpace(id=str(65536 + n), key=key, name=name) for n, (key, name) in enumerate(spaces)
        }
        self.pages: dict[str, FakePage] = {}
        self._create_failures: list[_CreateFailure] = []
        # Run as each create / update arrives, before Confluence's checks: a test's way to lose a race.
        self.before_create: Callable[[], None] | None = None
        self.before_update: Callable[[FakePage], None] | None = None

        v2 = "/wiki/api/v2"
        self.route("GET", f"{v2}/spaces", self._v2_spaces)
        self.route("GET", f"{v2}/pages", self._v2_list_pages)
        self.route("GET", rf"{v2}/pages/(?P<id>\d+)", self._v2_get_page)
        self.route("POST", f"{v2}/pages", self._v2_create_page)
        self.route("PUT", rf"{v2}/pages/(?P<id>\d+)", self._v2_update_page)
        dc = f"{self.context_path}/rest/api"
        self.route("GET", f"{dc}/content", self._v1_list_content)
        self.route("GET", rf"{dc}/content/(?P<id>\d+)", self._v1_get_content)
        self.route("POST", f"{dc}/content/?", self._v1_create_content)
        self.route("PUT", rf"{dc}/content/(?P<id>\d+)", self._v1_update_content)
        # Labels and attachments: v1 on both flavours (Cloud's v2 has no writes for them).
        for v1 in ("/wiki/rest/api", dc):
            self.route("GET", rf"{v1}/content/(?P<id>\d+)/label", self._v1_labels)
            self.route("POST", rf"{v1}/content/(?P<id>\d+)/label", self._v1_add_labels)
            self.route("GET", rf"{v1}/content/(?P<id>\d+)/child/attachment", self._v1_attachments)
            self.route("POST", rf"{v1}/content/(?P<id>\d+)/child/attachment", self._v1_add_attachments)
            self.route(
                "POST",
                rf"{v1}/content/(?P<id>\d+)/child/attachment/(?P<att>att\d+)/data",
                self._v1_update_attachment,
            )

    # -- for tests -----------------------------------------------------------------------------
    @property
    def cloud_url(self) -> str:
        """What CONFLUENCE_URL is for Cloud: the site with /wiki."""
        return f"{self.url}/wiki"

    @property
    def dc_url(self) -> str:
        """What CONFLUENCE_URL is for Data Center: the host with its context path."""
        return f"{self.url}{self.context_path}"

    def add_page(
        self, *, space_key: str, title: str, body: str = "<p></p>", parent_id: str | None = None
    ) -> FakePage:
        """A page someone made by hand (a parent, or a page that already has the title)."""
        with self._store:
            page = FakePage(
                id=str(next(self._ids)),
                space_key=space_key,
                parent_id=parent_id,
                versions=[PageVersion(1, title, body)],
            )
            self.pages[page.id] = page
            return page

    def reset(self) -> None:
        """Back to an empty site on the same port: no pages, requests, faults, pending failures or hooks."""
        with self._lock:
            self.requests.clear()
        self.faults.clear()
        with self._store:
            self.pages.clear()
            self._create_failures.clear()
        self.before_create = None
        self.before_update = None

    def pages_titled(self, title: str) -> list[FakePage]:
        with self._store:
            return [p for p in self.pages.values() if p.title == title]

    def edit_page(self, page_id: str, *, body: str, message: str = "edited by hand") -> FakePage:
        """Someone saves a new version in the editor."""
        with self._store:
            page = self.pages[page_id]
            page.versions.append(PageVersion(page.version + 1, page.title, body, message))
            return page

    def fail_next_create(self, *, status: int = 503, hang: float = 0.0, stored: bool = True) -> None:
        """The next page create is stored, then answered with `status` (or held `hang` seconds first).

        `stored=False`: refused with `status` before anything is stored (a 5xx aimed at creates only).
        """
        self._create_failures.append(_CreateFailure(status=status, hang=hang, stored=stored))

    # -- the dialects' error shapes -------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        self._local.v2 = request.path.startswith("/wiki/api/v2")
        return super().dispatch(request)

    def error(self, status: int, message: str, *, code: str | None = None) -> Response:
        if getattr(self._local, "v2", False):
            code = code or HTTPStatus(status).name
            return Response(
                status, {"errors": [{"status": status, "code": code, "title": message, "detail": None}]}
            )
        data = {
            "authorized": status not in (401, 403),
            "valid": True,
            "allowedInReadOnlyMode": True,
            "errors": [],
            "successful": False,
        }
        body = {"statusCode": status, "data": data, "message": message, "reason": HTTPStatus(status).phrase}
        return Response(status, body)

    def unauthorized(self, request: Request) -> Response | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            user, _, token = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user, token = "", ""
        if scheme.lower() == "basic" and (user, token) == (self.username, self.api_token):
            return None
        response = self.error(401, "Client must be authenticated to access this resource.")
        response.headers["WWW-Authenticate"] = 'Basic realm="Confluence"'
        return response

    def rate_limited(self, fault: Fault) -> Response:
        response = self.error(429, "Rate limit exceeded.", code="TOO_MANY_REQUESTS")
        response.headers["Retry-After"] = str(fault.retry_after)
        return response

    def server_error(self, fault: Fault) -> Response:
        return self.error(fault.status, HTTPStatus(fault.status).phrase)

    def not_found(self, request: Request) -> Response:
        return self.error(404, f"No resource at {request.method} {request.path}")

    # -- shared rules ---------------------------------------------------------------------------
    def _page(self, page_id: str) -> FakePage | None:
        page = self.pages.get(page_id)
        return page if page is not None and page.status == "current" else None

    def _check_write(
        self, *, space_key: str, title: str, body: str, parent_id: str | None, page_id: str | None = None
    ) -> Response | None:
        """Confluence's refusals for a create or an update, or None."""
        if not title.strip():
            return self.error(400, "Title cannot be empty", code="INVALID_REQUEST_PARAMETER")
        problem = storage_error(body)
        if problem:
            return self.error(400, problem, code="INVALID_REQUEST_PARAMETER")
        for other in self.pages.values():
            same = other.title.casefold() == title.casefold()  # Confluence compares titles case-blind
            if other.space_key == space_key and other.status == "current" and same and other.id != page_id:
                return self.error(
                    400,
                    "A page with this title already exists: A page already exists with the same TITLE in this space",
                    code="INVALID_REQUEST_PARAMETER",
                )
        if parent_id is not None:
            parent = self._page(parent_id)
            if parent is None or parent.space_key != space_key:
                return self.error(400, f"Parent page {parent_id} is not a page of space {space_key}")
        return None

    def _create(self, *, space_key: str, title: str, body: str, parent_id: str | None) -> FakePage | Response:
        if self.before_create is not None:
            self.before_create()
        if self._create_failures and not self._create_failures[0].stored:
            failure = self._create_failures.pop(0)
            return self.error(failure.status, HTTPStatus(failure.status).phrase)
        with self._store:
            refusal = self._check_write(space_key=space_key, title=title, body=body, parent_id=parent_id)
            if refusal is not None:
                return refusal
            return self.add_page(space_key=space_key, title=title, body=body, parent_id=parent_id)

    def _after_create(self, ok: Response) -> Response:
        if not self._create_failures:
            return ok
        failure = self._create_failures.pop(0)
        if failure.hang:
            self._hang_release.wait(failure.hang)  # the client has given up by now
            return Response(504, {"error": "hung"})
        return self.error(failure.status, HTTPStatus(failure.status).phrase)

    def _update(
        self, page: FakePage, *, title: str, body: str, number: object, message: str
    ) -> FakePage | Response:
        if self.before_update is not None:
            self.before_update(page)
        with self._store:
            if number != page.version + 1:
                return self.error(
                    409,
                    f"Version must be incremented on update. Current version is: {page.version}",
                    code="CONFLICT",
                )
            refusal = self._check_write(
                space_key=page.space_key, title=title, body=body, parent_id=None, page_id=page.id
            )
            if refusal is not None:
                return refusal
            page.versions.append(PageVersion(page.version + 1, title, body, message))
            return page

    def _paginate(self, request: Request, items: list[dict], base: str) -> Response:
        """Cloud v2 cursor pagination: an opaque cursor, `_links.next` carrying every filter, a Link header."""
        limit = max(1, min(250, int(request.arg("limit") or 25)))
        offset = 0
        cursor = request.arg("cursor")
        if cursor:
            try:
                offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))["offset"]
            except (ValueError, KeyError, TypeError):
                return self.error(400, "Invalid cursor", code="INVALID_REQUEST_PARAMETER")
        body: dict = {"results": items[offset : offset + limit], "_links": {"base": base}}
        headers: dict[str, str] = {}
        if offset + limit < len(items):
            query = {k: v for k, v in request.query.items() if k != "cursor"}
            query["cursor"] = [
                base64.urlsafe_b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
            ]
            body["_links"]["next"] = f"{request.path}?{urlencode(query, doseq=True)}"
            headers["Link"] = f'<{body["_links"]["next"]}>; rel="next", <{base}>; rel="base"'
        return Response(200, body, headers)

    # -- Cloud REST v2 --------------------------------------------------------------------------
    def _v2_space(self, space: FakeSpace) -> dict:
        return {
            "id": space.id,
            "key": space.key,
            "name": space.name,
            "type": "global",
            "status": "current",
            "authorId": ACCOUNT_ID,
            "createdAt": "2023-01-10T09:00:00.000Z",
            "homepageId": None,
            "description": None,
            "icon": None,
            "_links": {"webui": f"/spaces/{space.key}"},
        }

    def _v2_page(self, page: FakePage, body_format: str | None) -> dict:
        space = self.spaces[page.space_key]
        last = page.versions[-1]
        body = (
            {"storage": {"representation": "storage", "value": page.body}} if body_format == "storage" else {}
        )
        slug = quote(page.title.replace(" ", "+"), safe="+")
        return {
            "id": page.id,
            "status": page.status,
            "title": page.title,
            "spaceId": space.id,
            "parentId": page.parent_id,
            "parentType": "page" if page.parent_id else None,
            "position": int(page.id) % 1000,
            "authorId": ACCOUNT_ID,
            "ownerId": ACCOUNT_ID,
            "lastOwnerId": None,
            "createdAt": page.created_at,
            "version": {
                "createdAt": last.when,
                "message": last.message,
                "number": last.number,
                "minorEdit": False,
                "authorId": ACCOUNT_ID,
            },
            "body": body,
            "_links": {
                "editui": f"/pages/resumedraft.action?draftId={page.id}",
                "webui": f"/spaces/{space.key}/pages/{page.id}/{slug}",
                "edituiv2": f"/spaces/{space.key}/pages/edit-v2/{page.id}",
                "tinyui": f"/x/{page.id}",
            },
        }

    def _v2_spaces(self, request: Request, match: re.Match[str]) -> Response:
        keys = {k for value in request.query.get("keys", []) for k in value.split(",") if k}
        spaces = [self._v2_space(s) for s in self.spaces.values() if not keys or s.key in keys]
        return self._paginate(request, spaces, self.cloud_url)

    def _v2_list_pages(self, request: Request, match: re.Match[str]) -> Response:
        space_ids = {s for value in request.query.get("space-id", []) for s in value.split(",") if s}
        statuses = set((request.arg("status") or "current,archived").split(","))
        title = request.arg("title")
        with self._store:
            pages = [
                self._v2_page(p, request.arg("body-format"))
                for p in self.pages.values()
                if (not space_ids or self.spaces[p.space_key].id in space_ids)
                and p.status in statuses
                and (title is None or p.title == title)
            ]
        return self._paginate(request, pages, self.cloud_url)

    def _v2_get_page(self, request: Request, match: re.Match[str]) -> Response:
        page = self._page(match["id"])
        if page is None:
            return self.error(404, "Not Found", code="NOT_FOUND")
        body = self._v2_page(page, request.arg("body-format"))
        body["_links"]["base"] = self.cloud_url
        return Response(200, body)

    @staticmethod
    def _v2_body(data: dict) -> str | None:
        """A storage value from either body shape v2 takes: {representation, value} or {storage: {value}}."""
        body = data.get("body")
        if not isinstance(body, dict):
            return None
        if body.get("representation") == "storage":
            return body.get("value")
        nested = body.get("storage")
        return nested.get("value") if isinstance(nested, dict) else None

    def _v2_create_page(self, request: Request, match: re.Match[str]) -> Response:
        data = request.json() or {}
        space = next((s for s in self.spaces.values() if s.id == str(data.get("spaceId"))), None)
        if space is None:
            return self.error(
                400, f"Space {data.get('spaceId')} does not exist", code="INVALID_REQUEST_PARAMETER"
            )
        body = self._v2_body(data)
        if body is None:
            return self.error(400, "A storage body is required", code="INVALID_REQUEST_PARAMETER")
        if data.get("status", "current") != "current":
            return self.error(400, "Only current pages are supported here", code="INVALID_REQUEST_PARAMETER")
        created = self._create(
            space_key=space.key, title=str(data.get("title") or ""), body=body, parent_id=data.get("parentId")
        )
        if isinstance(created, Response):
            return created
        return self._after_create(Response(200, self._v2_page(created, "storage")))

    def _v2_update_page(self, request: Request, match: re.Match[str]) -> Response:
        data = request.json() or {}
        page = self._page(match["id"])
        if page is None:
            return self.error(404, "Not Found", code="NOT_FOUND")
        missing = [k for k in ("id", "status", "title", "body", "version") if not data.get(k)]
        if missing:
            return self.error(
                400, f"Missing required fields: {', '.join(missing)}", code="INVALID_REQUEST_PARAMETER"
            )
        body = self._v2_body(data)
        if str(data["id"]) != page.id or data["status"] != "current" or body is None:
            return self.error(400, "id, status or body is invalid", code="INVALID_REQUEST_PARAMETER")
        version = data["version"]
        updated = self._update(
            page,
            title=data["title"],
            body=body,
            number=version.get("number"),
            message=version.get("message", ""),
        )
        if isinstance(updated, Response):
            return updated
        return Response(200, self._v2_page(updated, "storage"))

    # -- Data Center REST v1 --------------------------------------------------------------------
    def _v1_content(self, page: FakePage, expand: set[str]) -> dict:
        space = self.spaces[page.space_key]
        last = page.versions[-1]
        content: dict = {
            "id": page.id,
            "type": "page",
            "status": page.status,
            "title": page.title,
            "extensions": {"position": "none"},
            "_links": {
                "webui": f"/pages/viewpage.action?pageId={page.id}",
                "edit": f"/pages/resumedraft.action?draftId={page.id}",
                "tinyui": f"/x/{page.id}",
                "self": f"{self.dc_url}/rest/api/content/{page.id}",
            },
            "_expandable": {},
        }
        parts = {
            "space": {"id": int(space.id), "key": space.key, "name": space.name, "type": "global"},
            "version": {
                "by": {"type": "known", "username": self.username, "displayName": "Postmortem Bot"},
                "when": last.when,
                "message": last.message,
                "number": last.number,
                "minorEdit": False,
            },
            "ancestors": [{"id": page.parent_id, "type": "page"}] if page.parent_id else [],
            "body": {"storage": {"value": page.body, "representation": "storage"}},
        }
        for name, value in parts.items():
            wanted = name in expand or (name == "body" and "body.storage" in expand)
            if wanted:
                content[name] = value
            else:
                content["_expandable"][name] = f"/rest/api/content/{page.id}/{name}"
        return content

    @staticmethod
    def _expand(request: Request, default: str = "") -> set[str]:
        return {part.strip() for part in (request.arg("expand") or default).split(",") if part.strip()}

    def _v1_list(self, request: Request, items: list[dict]) -> Response:
        start, limit = int(request.arg("start") or 0), max(1, min(200, int(request.arg("limit") or 25)))
        links = {"base": self.dc_url, "context": self.context_path, "self": f"{self.dc_url}{request.path}"}
        if start + limit < len(items):
            query = {
                **{k: v for k, v in request.query.items() if k != "start"},
                "start": [str(start + limit)],
            }
            links["next"] = f"{request.path.removeprefix(self.context_path)}?{urlencode(query, doseq=True)}"
        page = items[start : start + limit]
        return Response(
            200, {"results": page, "start": start, "limit": limit, "size": len(page), "_links": links}
        )

    def _v1_list_content(self, request: Request, match: re.Match[str]) -> Response:
        key, title = request.arg("spaceKey"), request.arg("title")
        if request.arg("type", "page") != "page":
            return self._v1_list(request, [])
        with self._store:
            pages = [
                self._v1_content(p, self._expand(request))
                for p in self.pages.values()
                if p.status == "current"
                and (key is None or p.space_key == key)
                and (title is None or p.title == title)
            ]
        return self._v1_list(request, pages)

    def _v1_get_content(self, request: Request, match: re.Match[str]) -> Response:
        page = self._page(match["id"])
        if page is None:
            return self.error(404, f"No content found with id: ContentId{{id={match['id']}}}")
        return Response(200, self._v1_content(page, self._expand(request, "space,history,version")))

    def _v1_create_content(self, request: Request, match: re.Match[str]) -> Response:
        data = request.json() or {}
        key = (data.get("space") or {}).get("key")
        if data.get("type") != "page" or key not in self.spaces:
            return self.error(400, f"Could not create content with type {data.get('type')} in space {key}")
        ancestors = data.get("ancestors") or []
        parent_id = str(ancestors[-1]["id"]) if ancestors else None
        body = ((data.get("body") or {}).get("storage") or {}).get("value", "")
        created = self._create(
            space_key=key, title=str(data.get("title") or ""), body=body, parent_id=parent_id
        )
        if isinstance(created, Response):
            return created
        expand = {"space", "version", "ancestors", "body.storage"}
        return self._after_create(Response(200, self._v1_content(created, expand)))

    def _v1_update_content(self, request: Request, match: re.Match[str]) -> Response:
        data = request.json() or {}
        page = self._page(match["id"])
        if page is None:
            return self.error(404, f"No content found with id: ContentId{{id={match['id']}}}")
        version = data.get("version") or {}
        if data.get("type") != "page" or not data.get("title") or "number" not in version:
            return self.error(
                400, "Must supply an incremented version, a title and a type when updating Content."
            )
        body = ((data.get("body") or {}).get("storage") or {}).get("value", page.body)
        updated = self._update(
            page, title=data["title"], body=body, number=version["number"], message=version.get("message", "")
        )
        if isinstance(updated, Response):
            return updated
        return Response(200, self._v1_content(updated, {"space", "version", "ancestors", "body.storage"}))

    # -- labels ---------------------------------------------------------------------------------
    def _v1_label_list(self, page: FakePage) -> Response:
        labels = [
            {"prefix": "global", "name": name, "id": str(1000 + sum(map(ord, name))), "label": name}
            for name in page.labels
        ]
        return Response(200, {"results": labels, "start": 0, "limit": 200, "size": len(labels), "_links": {}})

    def _v1_labels(self, request: Request, match: re.Match[str]) -> Response:
        page = self._page(match["id"])
        return self._v1_label_list(page) if page else self.error(404, f"No content with id {match['id']}")

    def _v1_add_labels(self, request: Request, match: re.Match[str]) -> Response:
        page = self._page(match["id"])
        if page is None:
            return self.error(404, f"No content with id {match['id']}")
        data = request.json()
        labels = data if isinstance(data, list) else [data]
        names = [str((label or {}).get("name", "")) for label in labels]
        bad = [n for n in names if not n or len(n) > 255 or _LABEL_FORBIDDEN.search(n)]
        if bad:
            return self.error(400, f"Label '{bad[0]}' contains an invalid character or is empty")
        with self._store:
            for name in names:
                if name.lower() not in page.labels:  # adding a label twice is not an error
                    page.labels.append(name.lower())
            return self._v1_label_list(page)

    # -- attachments ----------------------------------------------------------------------------
    def _v1_attachment(self, page: FakePage, att: FakeAttachment) -> dict:
        return {
            "id": att.id,
            "type": "attachment",
            "status": "current",
            "title": att.name,
            "version": {"number": att.version, "when": _now(), "minorEdit": True},
            "metadata": {"mediaType": att.mime, "comment": ""},
            "extensions": {"mediaType": att.mime, "fileSize": len(att.data), "comment": ""},
            "_links": {
                "download": f"/download/attachments/{page.id}/{quote(att.name)}?version={att.version}&api=v2",
                "webui": f"/pages/viewpageattachments.action?pageId={page.id}&preview={quote(att.name)}",
            },
        }

    @staticmethod
    def _files(request: Request) -> list[tuple[str, bytes, str]] | None:
        """(filename, data, mime) of each `file` part of a multipart body; None when it is not multipart."""
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            return None
        message = BytesParser(policy=policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + request.body
        )
        return [
            (part.get_filename() or "", part.get_payload(decode=True) or b"", part.get_content_type())
            for part in message.iter_parts()
            if part.get_param("name", header="content-disposition") == "file"
        ]

    def _upload_refusal(self, request: Request) -> Response | None:
        if request.headers.get("x-atlassian-token") != "no-check":
            return self.error(403, "XSRF check failed")
        return None

    def _v1_attachments(self, request: Request, match: re.Match[str]) -> Response:
        page = self._page(match["id"])
        if page is None:
            return self.error(404, f"No content with id {match['id']}")
        name = request.arg("filename")
        atts = [
            self._v1_attachment(page, a) for a in page.attachments.values() if name is None or a.name == name
        ]
        return Response(200, {"results": atts, "start": 0, "limit": 50, "size": len(atts), "_links": {}})

    def _v1_add_attachments(self, request: Request, match: re.Match[str]) -> Response:
        page = self._page(match["id"])
        if page is None:
            return self.error(404, f"No content with id {match['id']}")
        refusal = self._upload_refusal(request)
        if refusal is not None:
            return refusal
        files = self._files(request)
        if not files:
            return self.error(400, "At least one attachment file must be included.")
        with self._store:
            for name, _, _ in files:
                if name in page.attachments:
                    return self.error(
                        400,
                        f"Cannot add a new attachment with same file name as an existing attachment: {name}",
                    )
            added = []
            for name, data, mime in files:
                att = FakeAttachment(id=f"att{next(self._ids)}", name=name, data=data, mime=mime)
                page.attachments[name] = att
                added.append(self._v1_attachment(page, att))
        return Response(200, {"results": added, "start": 0, "limit": 50, "size": len(added), "_links": {}})

    def _v1_update_attachment(self, request: Request, match: re.Match[str]) -> Response:
        page = self._page(match["id"])
        att = next((a for a in page.attachments.values() if a.id == match["att"]), None) if page else None
        if page is None or att is None:
            return self.error(404, f"No attachment {match['att']} on content {match['id']}")
        refusal = self._upload_refusal(request)
        if refusal is not None:
            return refusal
        files = self._files(request)
        if not files or len(files) != 1:
            return self.error(400, "Exactly one attachment file must be included.")
        with self._store:
            _, att.data, att.mime = files[0]
            att.version += 1
            return Response(200, self._v1_attachment(page, att))
