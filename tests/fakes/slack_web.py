"""A local Slack Web API: the methods the bot calls, answering as Slack does.

* Every method is `POST /api/<method>` (slack_sdk posts form or JSON bodies; GET with a query works too),
  authorised by `Authorization: Bearer xoxb-…` (or `xapp-…` for `apps.connections.open`).
* Answers are HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": …}`; `missing_scope` names the
  `needed` scope. Injected 429s answer `ratelimited` with `Retry-After`, as Slack does.
* Lists page by `response_metadata.next_cursor` and honour `limit`; every cursor handed out is kept in
  `issued_cursors[method]` so a test can check that the client asked for each page.
* Channels are data (`add_channel`, `generate_channel`); the bundled sample pd-9876 is loaded by default.
  Messages the bot posts join the channel's history, `chat.update` changes them; `posted`, `updated`,
  `ephemeral`, `deleted` and `views` keep what was done for assertions.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.samples import DEFAULT_SAMPLE
from tests.fakes.http import FakeServer, Fault, Request, Response

SAMPLE_DIR = DEFAULT_SAMPLE / "slack"
BOT_TOKEN = "xoxb-7000000001-7000000000002-FakeBotTokenForTests0001"
APP_TOKEN = "xapp-1-A09PMBOT-7000000000003-fakeapptokenfortests00000000000000000000000000000000000000000001"
DEFAULT_SCOPES = frozenset(
    {"channels:history", "groups:history", "channels:read", "groups:read", "users:read", "chat:write",
     "usergroups:read", "commands"}
)  # fmt: skip


class SlackFailure(Exception):
    """An `{"ok": false}` answer: `error` plus any extra fields (`needed`, `provided`)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


def ts_key(ts: str) -> tuple[int, int]:
    """A ts as (seconds, microseconds): exact ordering, which floats are not at this precision."""
    seconds, _, fraction = str(ts).partition(".")
    return int(seconds or 0), int((fraction + "000000")[:6])


def ts_of(seconds: int, micros: int = 0) -> str:
    return f"{seconds}.{micros:06d}"


def _ts_digits(ts: str) -> str:
    """Slack's history cursors read "next_ts:1512085861000543": the ts without its dot."""
    seconds, micros = ts_key(ts)
    return f"{seconds}{micros:06d}"


def _ts_from_digits(digits: str) -> tuple[int, int]:
    if not digits.isdigit() or len(digits) <= 6:
        raise SlackFailure("invalid_cursor")
    return int(digits[:-6]), int(digits[-6:])


def _cursor(prefix: str, value: str) -> str:
    return base64.b64encode(f"{prefix}:{value}".encode()).decode()


def _uncursor(cursor: str, prefix: str) -> str:
    try:
        kind, _, value = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
    except ValueError:
        raise SlackFailure("invalid_cursor") from None
    if kind != prefix or not value:
        raise SlackFailure("invalid_cursor")
    return value


@dataclass
class FakeChannel:
    info: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)  # top level, oldest first
    replies: dict[str, list[dict[str, Any]]] = field(
        default_factory=dict
    )  # thread_ts -> replies, oldest first
    members: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.info["id"]

    def find(self, ts: str) -> dict[str, Any] | None:
        for message in self.messages:
            if message["ts"] == ts:
                return message
        for thread in self.replies.values():
            for message in thread:
                if message["ts"] == ts:
                    return message
        return None


class SlackWebFake(FakeServer):
    name = "slack"

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        load_sample: bool = True,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
    ) -> None:
        super().__init__(tls=tls)
        self._tokens = (bot_token, app_token)
        self._data = threading.RLock()
        self._last_micros = 0
        self._reset_state()
        self._methods: dict[str, Callable[[Request], dict[str, Any]]] = {
            "auth.test": lambda r: dict(self.auth),
            "apps.connections.open": self._connections_open,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.members": self._conversations_members,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "chat.getPermalink": self._get_permalink,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.delete": self._delete,
            "views.open": lambda r: self._view(r, "views.open"),
            "views.push": lambda r: self._view(r, "views.push"),
            "views.update": self._views_update,
        }
        for verb in ("POST", "GET"):
            self.route(verb, r"/api/(?P<method>[A-Za-z.]+)", self._api)
        # An interaction's response_url (hooks.slack.com/commands/… or /actions/… at Slack).
        self.route("POST", r"/response/(?P<id>[A-Za-z0-9_-]+)", self._response)
        if load_sample:
            self.load_sample()

    def reset(self, *, load_sample: bool = True) -> None:
        """Back to a fresh fake on the same port: no requests, faults, records or data (bar the sample)."""
        with self._lock:
            self.requests.clear()
        self.faults.clear()
        with self._data:
            self._reset_state()
        if load_sample:
            self.load_sample()

    def _reset_state(self) -> None:
        self.bot_tokens = {self._tokens[0]}
        self.app_tokens = {self._tokens[1]}
        self.scopes: set[str] = set(DEFAULT_SCOPES)
        self.auth: dict[str, Any] = {
            "url": "https://acme.slack.com/", "team": "Acme", "user": "postmortem_bot", "team_id": "T07ACME00",
            "user_id": "U09PMBOT", "bot_id": "B09PMBOT", "is_enterprise_install": False,
        }  # fmt: skip
        self.app_id = "A09PMBOT"
        self.socket_mode_url: str | None = None  # set by a Socket Mode fake
        self.channels: dict[str, FakeChannel] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.expired_trigger_ids: set[str] = set()
        self.issued_cursors: dict[str, list[str]] = defaultdict(list)
        self.posted: list[dict[str, Any]] = []
        self.updated: list[dict[str, Any]] = []
        self.ephemeral: list[dict[str, Any]] = []
        self.deleted: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []  # {"method", "trigger_id", "view"} in call order
        self.responses: list[dict[str, Any]] = []  # {"id", **the JSON posted to a response_url}
        self._open_views: dict[str, dict[str, Any]] = {}

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk's WebClient."""
        return f"{self.url}/api/"

    # -- data -----------------------------------------------------------------------------------
    def add_user(self, user: dict[str, Any]) -> None:
        with self._data:
            self.users[user["id"]] = copy.deepcopy(user)

    def add_usergroup(self, usergroup_id: str, user_ids: Iterable[str]) -> None:
        with self._data:
            self.usergroups[usergroup_id] = list(user_ids)

    def add_channel(
        self,
        channel: dict[str, Any],
        messages: Iterable[dict[str, Any]] = (),
        replies: dict[str, list[dict[str, Any]]] | None = None,
        members: Iterable[str] | None = None,
    ) -> FakeChannel:
        """A channel (conversations.info shape; missing flags default to a public channel the bot is in),
        its top-level messages in any order, replies by thread_ts (a leading parent copy is dropped)."""
        info = {
            "is_channel": True, "is_group": False, "is_im": False, "is_mpim": False, "is_private": False,
            "created": 1721433600, "is_archived": False, "is_general": False, "name_normalized": channel.get("name", ""),
            "is_shared": False, "is_ext_shared": False, "is_org_shared": False, "creator": "U01ANA", "is_member": True,
            "topic": {"value": "", "creator": "", "last_set": 0}, "purpose": {"value": "", "creator": "", "last_set": 0},
            "previous_names": [],
        } | copy.deepcopy(channel)  # fmt: skip
        top = sorted(copy.deepcopy(list(messages)), key=lambda m: ts_key(m["ts"]))
        threads = {
            thread_ts: sorted(
                (copy.deepcopy(r) for r in thread if r["ts"] != thread_ts), key=lambda m: ts_key(m["ts"])
            )
            for thread_ts, thread in (replies or {}).items()
        }
        if members is None:
            authors = {m["user"] for m in top if m.get("user")} | {
                r["user"] for t in threads.values() for r in t if r.get("user")
            }
            members = sorted(authors | ({self.auth["user_id"]} if info["is_member"] else set()))
        fake = FakeChannel(info=info, messages=top, replies=threads, members=list(members))
        with self._data:
            self.channels[fake.id] = fake
        return fake

    def load_sample(self, directory: Path = SAMPLE_DIR) -> None:
        """The bundled sample's channels, messages, threads, users and identity."""

        def read(*parts: str) -> Any:
            return json.loads(directory.joinpath(*parts).read_text(encoding="utf-8"))

        self.auth = {k: v for k, v in read("auth.test.json").items() if k != "ok"}
        for path in sorted(directory.joinpath("users.info").glob("*.json")):
            self.add_user(json.loads(path.read_text(encoding="utf-8"))["user"])
        info = read("conversations.info.json")["channel"]
        for other in read("conversations.list.json")["channels"]:
            if other["id"] != info["id"]:
                self.add_channel({k: v for k, v in other.items() if k != "num_members"}, members=[])
        replies = {
            path.stem: json.loads(path.read_text(encoding="utf-8"))["messages"]
            for path in sorted(directory.joinpath("conversations.replies").glob("*.json"))
        }
        self.add_channel(info, read("conversations.history.json")["messages"], replies)

    def generate_channel(
        self,
        *,
        channel_id: str,
        name: str,
        count: int = 10_000,
        start: datetime = datetime(2024, 7, 21, tzinfo=UTC),
        every_seconds: int = 10,
        thread_every: int = 100,
        replies_per_thread: int = 3,
        long_thread_replies: int = 0,
        is_member: bool = True,
    ) -> FakeChannel:
        """A big channel: `count` top-level messages `every_seconds` apart from `start`, every
        `thread_every`-th one a thread parent; the first parent holds `long_thread_replies` replies if set."""
        authors = sorted(u for u, user in self.users.items() if not user.get("is_bot")) or [
            "U01ANA",
            "U02BEN",
        ]
        base = int(start.timestamp())
        top: list[dict[str, Any]] = []
        threads: dict[str, list[dict[str, Any]]] = {}
        for i in range(count):
            ts = ts_of(base + i * every_seconds, 100)
            message = {
                "user": authors[i % len(authors)],
                "type": "message",
                "ts": ts,
                "text": f"update {i}",
                "team": self.auth["team_id"],
            }
            if thread_every and i % thread_every == 0:
                n = long_thread_replies if (i == 0 and long_thread_replies) else replies_per_thread
                # Replies sit inside the gap before the next top-level message, one microsecond apart.
                replies = [
                    {"user": authors[(i + j + 1) % len(authors)], "type": "message", "ts": ts_of(base + i * every_seconds + 1, j + 1),
                     "text": f"reply {j} to update {i}", "thread_ts": ts, "parent_user_id": message["user"]}
                    for j in range(n)
                ]  # fmt: skip
                threads[ts] = replies
                message |= _thread_fields(ts, replies)
            top.append(message)
        return self.add_channel(
            {"id": channel_id, "name": name, "created": base - 60, "is_member": is_member},
            top,
            threads,
            members=authors,
        )

    def response_url(self, name: str) -> str:
        """A response_url to hand out in a slash command or interaction payload; what is posted to it lands
        in `responses` under this `name`."""
        return f"{self.url}/response/{name}"

    def responses_to(self, name: str) -> list[dict[str, Any]]:
        with self._data:
            return [copy.deepcopy(r) for r in self.responses if r["id"] == name]

    def message(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        """A message (top level or reply) as the channel holds it now, after any chat.update."""
        with self._data:
            channel = self.channels.get(channel_id)
            found = channel.find(ts) if channel else None
            return copy.deepcopy(found) if found else None

    # -- the HTTP edge ----------------------------------------------------------------------------
    def rate_limited(self, fault: Fault) -> Response:
        return Response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)})

    def server_error(self, fault: Fault) -> Response:
        error = {500: "internal_error", 503: "service_unavailable"}.get(fault.status, "fatal_error")
        return Response(fault.status, {"ok": False, "error": error})

    def _api(self, request: Request, match: Any) -> Response:
        method = match.group("method")
        handler = self._methods.get(method)
        if handler is None:
            return Response(404, {"ok": False, "error": "unknown_method", "req_method": method})
        token = _token(request)
        wanted = self.app_tokens if method == "apps.connections.open" else self.bot_tokens
        try:
            if not token:
                raise SlackFailure("not_authed")
            if token not in wanted:
                raise SlackFailure(
                    "not_allowed_token_type" if token in self.bot_tokens | self.app_tokens else "invalid_auth"
                )
            with self._data:
                body = handler(request)
                body = copy.deepcopy(body)  # encoded after the lock is released
        except SlackFailure as failure:
            headers = {}
            if failure.error == "missing_scope":
                headers = {
                    "X-OAuth-Scopes": ",".join(sorted(self.scopes)),
                    "X-Accepted-OAuth-Scopes": failure.extra["needed"],
                }
            return Response(200, {"ok": False, "error": failure.error, **failure.extra}, headers)
        return Response(200, {"ok": True, **body})

    def _response(self, request: Request, match: Any) -> Response:
        """Slack answers a response_url post with a bare `ok` (or a short error word and a 4xx)."""
        try:
            body = request.json()
        except ValueError:
            return Response(400, "invalid_payload")
        if not isinstance(body, dict) or not (
            body.get("text") or body.get("blocks") or body.get("delete_original")
        ):
            return Response(400, "no_text")
        with self._data:
            self.responses.append({"id": match.group("id"), **body})
        return Response(200, "ok")

    def _need(self, scope: str) -> None:
        if scope not in self.scopes:
            raise SlackFailure("missing_scope", needed=scope, provided=",".join(sorted(self.scopes)))

    def _channel(self, request: Request, *, read: str | None = None, member: bool = False) -> FakeChannel:
        """The channel named by `channel`: channel_not_found if unknown or private without the bot."""
        channel = self.channels.get(request.arg("channel") or "")
        if channel is None or (channel.info["is_private"] and not channel.info["is_member"]):
            raise SlackFailure("channel_not_found")
        if read:
            self._need(f"{'groups' if channel.info['is_private'] else 'channels'}:{read}")
        if member and not channel.info["is_member"]:
            raise SlackFailure("not_in_channel")
        return channel

    # -- reading ---------------------------------------------------------------------------------
    def _connections_open(self, request: Request) -> dict[str, Any]:
        if not self.socket_mode_url:
            raise SlackFailure("fatal_error")  # no Socket Mode server is attached to this fake
        return {"url": self.socket_mode_url}

    def _conversations_info(self, request: Request) -> dict[str, Any]:
        channel = self._channel(request, read="read")
        info = copy.deepcopy(channel.info)
        if _flag(request.arg("include_num_members")):
            info["num_members"] = len(channel.members)
        return {"channel": info}

    def _conversations_list(self, request: Request) -> dict[str, Any]:
        types = set((request.arg("types") or "public_channel").split(","))
        if "public_channel" in types:
            self._need("channels:read")
        if "private_channel" in types:
            self._need("groups:read")
        exclude_archived = _flag(request.arg("exclude_archived"))
        listed = [
            c.info | {"num_members": len(c.members)}
            for c in self.channels.values()
            if ("private_channel" if c.info["is_private"] else "public_channel") in types
            and (c.info["is_member"] or not c.info["is_private"])
            and not (exclude_archived and c.info["is_archived"])
        ]
        page, next_cursor = self._page(
            request, "conversations.list", listed, limit=(100, 1000), prefix="team", key="id"
        )
        return {"channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_members(self, request: Request) -> dict[str, Any]:
        channel = self._channel(request, read="read")
        members = [{"id": m} for m in channel.members]
        page, next_cursor = self._page(
            request, "conversations.members", members, limit=(100, 1000), prefix="user_id", key="id"
        )
        return {"members": [m["id"] for m in page], "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_history(self, request: Request) -> dict[str, Any]:
        channel = self._channel(request, read="history", member=True)
        window = [m for m in reversed(channel.messages) if _in_window(m["ts"], request)]  # newest first
        limit = _limit(request, default=100, maximum=999)
        cursor = request.arg("cursor")
        if cursor:
            start = _ts_from_digits(_uncursor(cursor, "next_ts"))
            window = [m for m in window if ts_key(m["ts"]) <= start]
        body: dict[str, Any] = {
            "messages": window[:limit],
            "has_more": len(window) > limit,
            "pin_count": sum(1 for m in channel.messages if channel.id in m.get("pinned_to", ())),
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if len(window) > limit:
            body["response_metadata"] = {
                "next_cursor": self._issue(
                    "conversations.history", "next_ts", _ts_digits(window[limit]["ts"])
                )
            }
        return body

    def _conversations_replies(self, request: Request) -> dict[str, Any]:
        channel = self._channel(request, read="history", member=True)
        parent = next((m for m in channel.messages if m["ts"] == request.arg("ts")), None)
        if parent is None:
            reply = channel.find(request.arg("ts") or "")
            if reply is None:
                raise SlackFailure("thread_not_found")
            parent = next((m for m in channel.messages if m["ts"] == reply.get("thread_ts")), None)
            if parent is None:
                raise SlackFailure("thread_not_found")
        thread = [parent] + [r for r in channel.replies.get(parent["ts"], ()) if _in_window(r["ts"], request)]
        limit = _limit(request, default=1000, maximum=1000)
        cursor = request.arg("cursor")
        if cursor:
            start = _ts_from_digits(_uncursor(cursor, "next_ts"))
            thread = [m for m in thread if ts_key(m["ts"]) >= start]
        body: dict[str, Any] = {"messages": thread[:limit], "has_more": len(thread) > limit}
        if len(thread) > limit:
            body["response_metadata"] = {
                "next_cursor": self._issue(
                    "conversations.replies", "next_ts", _ts_digits(thread[limit]["ts"])
                )
            }
        return body

    def _users_info(self, request: Request) -> dict[str, Any]:
        self._need("users:read")
        user = self.users.get(request.arg("user") or "")
        if user is None:
            raise SlackFailure("user_not_found")
        return {"user": user}

    def _usergroups_users_list(self, request: Request) -> dict[str, Any]:
        self._need("usergroups:read")
        users = self.usergroups.get(request.arg("usergroup") or "")
        if users is None:
            raise SlackFailure("no_such_subteam")
        return {"users": list(users)}

    def _get_permalink(self, request: Request) -> dict[str, Any]:
        channel = self._channel(request)
        message = channel.find(request.arg("message_ts") or "")
        if message is None:
            raise SlackFailure("message_not_found")
        link = f"{self.auth['url'].rstrip('/')}/archives/{channel.id}/p{message['ts'].replace('.', '')}"
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    # -- writing ---------------------------------------------------------------------------------
    def _writable(self, request: Request) -> FakeChannel:
        self._need("chat:write")
        channel = self._channel(request)
        if channel.info["is_archived"]:
            raise SlackFailure("is_archived")
        if not channel.info["is_member"]:
            raise SlackFailure("not_in_channel")
        return channel

    def _next_ts(self) -> str:
        micros = max(int(time.time() * 1_000_000), self._last_micros + 1)
        self._last_micros = micros
        return ts_of(micros // 1_000_000, micros % 1_000_000)

    def _content(self, request: Request) -> dict[str, Any]:
        content: dict[str, Any] = {}
        text, blocks = request.arg("text"), request.arg("blocks")
        if text is not None:
            content["text"] = text
        if blocks:
            try:
                content["blocks"] = json.loads(blocks)
            except ValueError:
                raise SlackFailure("invalid_blocks_format") from None
        return content

    def _post_message(self, request: Request) -> dict[str, Any]:
        channel = self._writable(request)
        content = self._content(request)
        if not content.get("text") and not content.get("blocks"):
            raise SlackFailure("no_text")
        ts = self._next_ts()
        message = {
            "user": self.auth["user_id"], "type": "message", "ts": ts, "bot_id": self.auth["bot_id"], "app_id": self.app_id,
            "text": content.get("text", ""), "team": self.auth["team_id"],
            "bot_profile": {"id": self.auth["bot_id"], "deleted": False, "name": "Postmortem Bot", "updated": 1718000000,
                            "app_id": self.app_id, "user_id": self.auth["user_id"], "team_id": self.auth["team_id"],
                            "icons": {f"image_{s}": f"https://a.slack-edge.com/80588/img/plugins/app/bot_{s}.png" for s in (36, 48, 72)}},
        }  # fmt: skip
        if "blocks" in content:
            message["blocks"] = content["blocks"]
        thread_ts = request.arg("thread_ts")
        if thread_ts:
            parent = next((m for m in channel.messages if m["ts"] == thread_ts), None)
            if parent is None:
                raise SlackFailure("invalid_thread_ts")
            message |= {"thread_ts": thread_ts, "parent_user_id": parent.get("user")}
            thread = channel.replies.setdefault(thread_ts, [])
            thread.append(message)
            parent |= _thread_fields(thread_ts, thread)
        else:
            channel.messages.append(message)
        self.posted.append({"channel": channel.id, **copy.deepcopy(message)})
        return {"channel": channel.id, "ts": ts, "message": message}

    def _own_message(self, request: Request, ts_arg: str, refusal: str) -> tuple[FakeChannel, dict[str, Any]]:
        channel = self._writable(request)
        message = channel.find(request.arg(ts_arg) or "")
        if message is None:
            raise SlackFailure("message_not_found")
        if message.get("bot_id") != self.auth["bot_id"]:
            raise SlackFailure(refusal)
        return channel, message

    def _update(self, request: Request) -> dict[str, Any]:
        channel, message = self._own_message(request, "ts", "cant_update_message")
        message |= self._content(request)
        message["edited"] = {"user": self.auth["user_id"], "ts": ts_of(int(time.time()))}
        self.updated.append({"channel": channel.id, **copy.deepcopy(message)})
        return {
            "channel": channel.id,
            "ts": message["ts"],
            "text": message.get("text", ""),
            "message": message,
        }

    def _post_ephemeral(self, request: Request) -> dict[str, Any]:
        channel = self._writable(request)
        user = request.arg("user") or ""
        if user not in channel.members:
            raise SlackFailure("user_not_in_channel")
        ts = self._next_ts()
        self.ephemeral.append(
            {
                "channel": channel.id,
                "user": user,
                "message_ts": ts,
                "thread_ts": request.arg("thread_ts"),
                **self._content(request),
            }
        )
        return {"message_ts": ts}

    def _delete(self, request: Request) -> dict[str, Any]:
        channel, message = self._own_message(request, "ts", "cant_delete_message")
        if message in channel.messages:
            channel.messages.remove(message)
        else:
            for thread in channel.replies.values():
                if message in thread:
                    thread.remove(message)
        self.deleted.append({"channel": channel.id, **copy.deepcopy(message)})
        return {"channel": channel.id, "ts": message["ts"]}

    def _parse_view(self, request: Request) -> dict[str, Any]:
        try:
            view = json.loads(request.arg("view") or "")
        except ValueError:
            raise SlackFailure(
                "invalid_arguments",
                response_metadata={
                    "messages": ["[ERROR] failed to match all allowed schemas [json-pointer:/view]"]
                },
            ) from None
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise SlackFailure(
                "invalid_arguments",
                response_metadata={
                    "messages": ["[ERROR] must provide a valid view type [json-pointer:/view/type]"]
                },
            )
        return view

    def _stored_view(
        self, view: dict[str, Any], *, view_id: str, root: str | None, previous: str | None
    ) -> dict[str, Any]:
        stored = {
            "id": view_id, "team_id": self.auth["team_id"], "type": view["type"], "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
            "state": {"values": {}}, "hash": f"{int(time.time())}.{len(self.views) + 1:08x}", "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close")), "notify_on_close": bool(view.get("notify_on_close")),
            "close": view.get("close"), "submit": view.get("submit"), "previous_view_id": previous,
            "root_view_id": root or view_id, "app_id": self.app_id, "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.auth["team_id"], "bot_id": self.auth["bot_id"],
        }  # fmt: skip
        self._open_views[view_id] = stored
        return stored

    def _view(self, request: Request, method: str) -> dict[str, Any]:
        trigger_id = request.arg("trigger_id") or ""
        if not trigger_id:
            raise SlackFailure(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
            )
        if trigger_id in self.expired_trigger_ids:
            raise SlackFailure("expired_trigger_id")
        view = self._parse_view(request)
        view_id = f"V0{len(self._open_views) + 1:08d}"
        root = next(reversed(self._open_views), None) if method == "views.push" else None
        stored = self._stored_view(view, view_id=view_id, root=root, previous=root)
        self.views.append({"method": method, "trigger_id": trigger_id, "view": copy.deepcopy(stored)})
        return {"view": stored}

    def _views_update(self, request: Request) -> dict[str, Any]:
        view_id = request.arg("view_id") or next(
            (
                v["id"]
                for v in self._open_views.values()
                if v["external_id"] and v["external_id"] == request.arg("external_id")
            ),
            "",
        )
        current = self._open_views.get(view_id)
        if current is None:
            raise SlackFailure("not_found")
        if request.arg("hash") and request.arg("hash") != current["hash"]:
            raise SlackFailure("hash_conflict")
        stored = self._stored_view(
            self._parse_view(request),
            view_id=view_id,
            root=current["root_view_id"],
            previous=current["previous_view_id"],
        )
        self.views.append({"method": "views.update", "trigger_id": None, "view": copy.deepcopy(stored)})
        return {"view": stored}

    # -- pagination ------------------------------------------------------------------------------
    def _issue(self, method: str, prefix: str, value: str) -> str:
        cursor = _cursor(prefix, value)
        self.issued_cursors[method].append(cursor)
        return cursor

    def _page(
        self,
        request: Request,
        method: str,
        items: list[dict[str, Any]],
        *,
        limit: tuple[int, int],
        prefix: str,
        key: str,
    ) -> tuple[list[dict[str, Any]], str]:
        size = _limit(request, default=limit[0], maximum=limit[1])
        start = 0
        cursor = request.arg("cursor")
        if cursor:
            wanted = _uncursor(cursor, prefix)
            start = next((i for i, item in enumerate(items) if item[key] == wanted), -1)
            if start < 0:
                raise SlackFailure("invalid_cursor")
        page = items[start : start + size]
        rest = items[start + size :]
        return page, self._issue(method, prefix, rest[0][key]) if rest else ""


def _thread_fields(thread_ts: str, replies: list[dict[str, Any]]) -> dict[str, Any]:
    users: list[str] = []
    for reply in reversed(replies):
        if reply.get("user") and reply["user"] not in users:
            users.append(reply["user"])
    return {
        "thread_ts": thread_ts, "reply_count": len(replies), "reply_users_count": len(users),
        "latest_reply": replies[-1]["ts"] if replies else thread_ts, "reply_users": users,
        "is_locked": False, "subscribed": False,
    }  # fmt: skip


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.arg("token")


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


def _limit(request: Request, *, default: int, maximum: int) -> int:
    try:
        value = int(request.arg("limit") or 0)
    except ValueError:
        raise SlackFailure("invalid_limit") from None
    return min(value, maximum) if value > 0 else default


def _in_window(ts: str, request: Request) -> bool:
    """conversations.history's oldest/latest/inclusive: both ends open unless inclusive."""
    key = ts_key(ts)
    oldest = ts_key(request.arg("oldest") or "0")
    latest = ts_key(request.arg("latest")) if request.arg("latest") else (10**12, 0)
    if _flag(request.arg("inclusive")):
        return oldest <= key <= latest
    return oldest < key < latest
