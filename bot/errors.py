"""The project's own errors. Vendor exceptions are translated into these in one place per client.

PostmortemError
├── ConfigError             settings missing or malformed (every problem in one message)
├── InputError              bad user input: an incident id, a slash-command argument
├── SourceError             a source could not be read
│   ├── IncidentNotFound    PagerDuty has no such incident
│   ├── AuthError           401/403: names the token or scope that is missing
│   ├── ChannelAccessError  the bot cannot read the channel (not a member, archived, private)
│   └── SourceUnavailable   5xx, timeouts, retries exhausted
├── PublishError            Confluence (or another target) refused or failed
│   └── StaleVersionError   the page changed under us (409)
└── StoreError              the database is unreachable or refused the write
"""


class PostmortemError(Exception):
    """Base of every error this project raises on purpose. `str(e)` is fit to show a user."""


class ConfigError(PostmortemError):
    pass


class InputError(PostmortemError):
    pass


class SourceError(PostmortemError):
    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class IncidentNotFound(SourceError):
    pass


class AuthError(SourceError):
    pass


class ChannelAccessError(SourceError):
    pass


class SourceUnavailable(SourceError):
    pass


class PublishError(PostmortemError):
    pass


class StaleVersionError(PublishError):
    pass


class StoreError(PostmortemError):
    pass
