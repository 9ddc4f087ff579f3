"""Redaction of secrets: nothing sensitive pasted into chat or alerts may reach a wiki page or a log.

Every secret becomes `[REDACTED:<kind>]` and the words around it stay ("Authorization: Bearer
[REDACTED:bearer_token]"). Rules run in order, most specific first; each claims the span of its secret in
the original text, and a later (more generic) rule cannot claim an overlapping span. So a `ghp_` token
after `password:` is a `github_token`, a PEM block is one `private_key` rather than a run of base64, and
the `password_assignment` rule never redacts a placeholder a specific rule already wrote.

Look-alikes stay: git shas, UUIDs, Slack and PagerDuty ids, timestamps, versions, inline images, numbers
that fail Luhn, prose ("the token expired"), placeholders (`${DB_PASSWORD}`), URLs without credentials.

Linear time: every rule starts at a literal or at a token boundary (a negative lookbehind on the token's
own alphabet, so it never restarts inside a long run), and every open-ended run is bounded or possessive.
Rules whose keywords are absent from the text are skipped outright; the one rule that looks again inside a
refused value (nested assignments) does so within a budget proportional to the text.
"""

from __future__ import annotations

import binascii
import bisect
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.timeline.models import (
    ChatMessage,
    Commit,
    Deployment,
    Frozen,
    Incident,
    IncidentEvidence,
    TimelineEvent,
)


class Redacted(Frozen):
    """A redacted text and how many secrets of each kind it held."""

    text: str
    counts: dict[str, int]


def placeholder(kind: str) -> str:
    return f"[REDACTED:{kind}]"


# Already-redacted placeholders and inline images are never secrets: they are claimed first, uncounted.
_PROTECTED = re.compile(
    r"\[REDACTED:[a-z0-9_]{1,40}\]|data:[\w.+\-]{1,64}/[\w.+\-]{1,64};base64,[A-Za-z0-9+/=]*+"
)

Classify = Callable[[re.Match[str], str], str | None]


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...] = ()  # lower-case substrings; the rule runs only when one occurs in the text
    groups: tuple[str, ...] = ("secret",)  # the secret is the first of these groups that matched
    classify: Classify | None = None  # the kind to report, or None to leave the match alone
    trim: bool = False  # drop trailing sentence punctuation from an unquoted secret
    rescan: bool = False  # after a refusal, look again inside the value (it may hold a nested assignment)


def _rule(kind: str, pattern: str, *hints: str, **options: Any) -> _Rule:
    return _Rule(kind=kind, pattern=re.compile(pattern), hints=hints, **options)


# --- value checks -----------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"""\$\{[^}]*\}? | \$\(.*\)? | \$[A-Z_][A-Z0-9_]*  # ${VAR}, $(command), $VAR (closing mark maybe trimmed)
    | \{\{.*\}\} | \{[\w.]*\}? | <[^>]*> | %\(\w+\)s | %s   # templates: {{ x }}, {x}, <your-token>, %(x)s
    | \*+ | [•xX]{3,} | \.{3,}               # masked
    | [A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+          # the name of another variable: YOUR_TOKEN
    | [A-Za-z_][\w.]*[(\[].*                 # code: os.getenv("X"), env["X"]
    | [a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)+  # code: settings.db_password
    | (?:/|~/|\./|\.\./)[\w.\-/]*            # a file: GOOGLE_APPLICATION_CREDENTIALS=/etc/gcp/sa.json
    | (?i:none|null|nil|true|false|undefined|redacted|hidden|empty|unset|n/a)""",
    re.X,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that follow "password:" or "token:" in prose rather than a secret.
_STOPWORDS = _words(
    """a an the is was are be been it its this that to of in on for and or not no yes ok go see here there
    please reset expired expires rotated rotate changed change required missing invalid wrong incorrect
    leaked revoked unknown same below above updated set tbd todo fixme correct valid needed works worked
    failed fails rejected accepted include omit
    str bytes bool int float dict list tuple any optional string object number boolean text varchar"""
)


def _is_placeholder(value: str) -> bool:
    return _PLACEHOLDER.fullmatch(value) is not None


def _tokenish(value: str) -> bool:
    """An opaque credential rather than a word: long enough, with a digit (or long and mixed case)."""
    if len(value) < 8 or _is_placeholder(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    mixed = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return has_digit or (len(value) >= 24 and mixed)


def _decodes_to_user_password(value: str) -> bool:
    """Basic credentials are base64 of "user:password"."""
    try:
        raw = binascii.a2b_base64(value + "=" * (-len(value) % 4))
        decoded = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in decoded and decoded.isprintable()


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_card(digits: str) -> bool:
    """A payment card: an issuer prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro)
    and a valid Luhn check digit. Timestamps in milliseconds and most ids start with 1 and are left alone."""
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    prefix = int(digits[:4])
    issuer = digits[0] in "3456" or 2221 <= prefix <= 2720
    return issuer and _luhn(digits)


def _static(kind: str, accept: Callable[[str], bool]) -> Classify:
    return lambda match, value: kind if accept(value) else None


def _not_placeholder(value: str) -> bool:
    return not _is_placeholder(value)


# --- names of variables, keys and fields ---------------------------------------------------------------

_PASSWORD_WORDS = frozenset({"password", "passwd", "pass", "pwd", "passphrase", "passcode"})
_SECRET_WORDS = frozenset({"secret", "token", "apikey", "credential", "credentials", "creds", "authtoken"})
_KEY_QUALIFIERS = _words(
    """api access secret private signing encryption master license app client auth ingest service
    account storage webhook write read admin session shared"""
)
_NAME_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _name_words(name: str) -> list[str]:
    return [part.lower() for chunk in re.split(r"[_.\-]+", name) for part in _NAME_PARTS.findall(chunk)]


def _secret_name(name: str) -> str | None:
    """'password' for DB_PASSWORD / pwd, 'secret' for API_TOKEN / clientSecret / SECRET_KEY, else None.
    Only the last word counts, so MAX_TOKENS, TOKEN_TTL and PASSWORD_MIN_LENGTH are not secrets."""
    words = _name_words(name)
    if not words:
        return None
    last, before = words[-1], words[:-1]
    if last in _PASSWORD_WORDS:
        return "password"
    if last in _SECRET_WORDS:
        return "secret"
    if last == "key" and before and before[-1] in _KEY_QUALIFIERS:
        return "secret"
    if words[-3:] == ["secret", "key", "base"]:  # Rails
        return "secret"
    return None


_PROSE = re.compile(r"[a-z]+(?:[ _\-][a-z]+)*")  # words, or a code identifier like next_page_token


def _classify_assignment(match: re.Match[str], value: str) -> str | None:
    name = match.group("name")
    separator = match.groupdict().get("sep") or "="
    nature = _secret_name(name)
    if nature is None or _is_placeholder(value) or value.lower() == name.lower():
        return None  # a placeholder, or code handing a variable on: "password": password
    if value.lower() in _STOPWORDS:
        return None
    words = _name_words(name)
    if nature == "secret" and (
        len(value) < 8 or _PROSE.fullmatch(value) or words[-2:-1] in (["page"], ["next"])
    ):
        return None  # keys and tokens are machine-made; "credentials: anyone with the URL" is prose
    if words == ["pass"] and _PROSE.fullmatch(value):
        return None  # "single pass: present in both"
    if separator == "=" and re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
        return "env_assignment"
    return "password_assignment" if nature == "password" else "secret_assignment"


_URL_TOKEN_NAMES = _words(
    """access_token auth_token token api_key apikey key secret client_secret signature private_token
    refresh_token id_token x-amz-signature x-amz-security-token"""
)


def _classify_url_query(match: re.Match[str], value: str) -> str | None:
    name = match.group("name").lower()
    if _is_placeholder(value):
        return None
    if name in _PASSWORD_WORDS:
        return "password_in_url"
    if (name in _URL_TOKEN_NAMES or _secret_name(name)) and _tokenish(value):
        return "token_in_url"
    return None


# --- the rules, most specific first ---------------------------------------------------------------------

_SEP = r"""["']?[ \t]*(?:[:=]|is)?[ \t]*["'`]?"""  # between a name and its value: "KEY: ", "key=", "key is "
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# After a PEM header without its END line (a truncated paste): the base64 lines that follow it.
_PEM_TAIL = r"(?:[ \t]*+\r?\n[ \t]*+[A-Za-z0-9+/=]{16,}+(?![^\s`]))++"
# The value of an assignment: quoted (spaces allowed) or bare. Slack escapes & < > as entities inside text.
_VALUE = (
    r"""(?:"(?P<dq>[^"\r\n]{1,512}+)"|'(?P<sq>[^'\r\n]{1,512}+)'"""
    r"""|(?P<bare>(?:[^\s"'`,;<>|&]|&(?:amp;|lt;|gt;)?+){1,512}+))"""
)
_VALUE_GROUPS = ("dq", "sq", "bare")
# A cheap filter in the pattern (the name's last word is checked in Python): it must end like a secret's name.
_NAME_ENDS = "pass passwd password pwd phrase passcode secret token key creds credential credentials base"
_NAME_END = "(?:" + "|".join(f"(?<=(?i:{end}))" for end in _NAME_ENDS.split()) + ")"


def _pem(label: str) -> str:
    begin, end = f"-----BEGIN {label}-----", "-----END (?P=label)-----"
    return f"(?P<secret>{begin}(?:[^-]*+(?:-(?!----)[^-]*+)*+{end}|{_PEM_TAIL}))"


# One rule a line reads best as a table.
# fmt: off
RULES: tuple[_Rule, ...] = (
    # Key material, multi-line: claimed before anything inside it could look like a token.
    _rule("gcp_service_account_key", r'"private_key"\s*:\s*"(?P<secret>-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----[^"]{0,16384}+)"', '"private_key"'),
    _rule("gcp_service_account_key", r'"private_key_id"\s*:\s*"(?P<secret>[0-9a-f]{40})"', '"private_key_id"'),
    _rule("pgp_private_key", _pem("(?P<label>PGP PRIVATE KEY BLOCK)"), "pgp private key"),
    _rule("ssh_private_key", _pem("(?P<label>OPENSSH PRIVATE KEY)"), "openssh private key"),
    _rule("ssh_private_key", r"(?P<secret>---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----[^-]*+(?:-(?!---)[^-]*+)*+---- END SSH2 ENCRYPTED PRIVATE KEY ----)", "ssh2 encrypted"),
    _rule("ssh_private_key", r"Private-Lines:[ \t]*+\d{1,4}(?:[ \t]*+\r?\n|[ \t]++)(?P<secret>[A-Za-z0-9+/=]{1,128}+(?:(?:\r?\n|[ \t]++)[A-Za-z0-9+/=]{1,128}+){0,127})(?=[ \t]*+(?:\r?\n|$)|[ \t]++Private-MAC:)", "private-lines:"),
    _rule("private_key", _pem("(?P<label>(?:[A-Z0-9]{1,12} ){0,2}PRIVATE KEY)"), "private key"),
    _rule("kubeconfig_client_key", r'client-key-data"?[ \t]*:[ \t]*"?(?P<secret>[A-Za-z0-9+/]{16,}+={0,2})', "client-key-data"),
    # Vendor formats with a recognisable prefix.
    _rule("aws_access_key", r"(?<![A-Za-z0-9])(?P<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?![A-Za-z0-9])", "akia", "asia", "abia", "acca"),
    _rule("github_token", r"(?<![A-Za-z0-9_])(?P<secret>gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})(?![A-Za-z0-9_])", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    _rule("gitlab_token", r"(?<![A-Za-z0-9_\-])(?P<secret>gl(?:pat|dt|rt|ptt|cbt|oas|ft|imt|agent|soat)-[A-Za-z0-9_\-]{20,64}(?:\.[A-Za-z0-9_\-]{2,32}){0,2})(?![A-Za-z0-9_\-])", "glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "gloas-", "glft-", "glimt-", "glagent-", "glsoat-"),
    _rule("slack_webhook", r"https://hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9_/\-]{20,200}+)", "hooks.slack.com"),
    _rule("slack_token", r"(?<![A-Za-z0-9_\-])(?P<secret>(?:xox[abposre](?:\.xox[bp])?|xapp)-[A-Za-z0-9\-]{10,250}+)", "xox", "xapp-"),
    _rule("discord_webhook", r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{5,30}/(?P<secret>[A-Za-z0-9_\-]{30,100})", "discord"),
    _rule("stripe_key", r"(?<![A-Za-z0-9_])(?P<secret>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}|whsec_[A-Za-z0-9+/=]{24,128})(?![A-Za-z0-9_])", "sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"),
    _rule("sendgrid_key", r"(?<![A-Za-z0-9_.\-])(?P<secret>SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64})(?![A-Za-z0-9_\-])", "sg."),
    _rule("anthropic_key", r"(?<![A-Za-z0-9_\-])(?P<secret>sk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_\-]{32,200}+)", "sk-ant-"),
    _rule("openai_key", r"(?<![A-Za-z0-9_\-])(?P<secret>sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,250}+|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?![A-Za-z0-9])))", "sk-"),
    _rule("npm_token", r"(?<![A-Za-z0-9_])(?P<secret>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9_])", "npm_"),
    _rule("npm_token", r"(?<![\w.\-])_(?:authToken|auth|password)[ \t]*=[ \t]*[\"']?(?P<secret>[^\s\"']{8,512})", "_auth", "_password"),
    _rule("pypi_token", r"(?<![A-Za-z0-9_\-])(?P<secret>pypi-AgE[A-Za-z0-9_\-]{60,}+)", "pypi-age"),
    _rule("docker_hub_token", r"(?<![A-Za-z0-9_])(?P<secret>dckr_pat_[A-Za-z0-9_\-]{20,64})(?![A-Za-z0-9_\-])", "dckr_pat_"),
    _rule("bitbucket_app_password", r"(?<![A-Za-z0-9_])(?P<secret>ATBB[A-Za-z0-9]{28,60})(?![A-Za-z0-9])", "atbb"),
    _rule("atlassian_api_token", r"(?<![A-Za-z0-9_])(?P<secret>AT(?:ATT|CTT)3[A-Za-z0-9_\-=]{40,400}+)", "atatt3", "atctt3"),
    _rule("heroku_api_key", r"(?<![A-Za-z0-9_])(?P<secret>HRKU-[A-Za-z0-9_\-]{20,80}+)", "hrku-"),
    _rule("digitalocean_token", r"(?<![A-Za-z0-9_])(?P<secret>do[opr]_v1_[a-f0-9]{64})(?![A-Za-z0-9_])", "dop_v1_", "doo_v1_", "dor_v1_"),
    _rule("mailgun_key", r"(?<![A-Za-z0-9_\-])(?P<secret>key-[0-9a-f]{32})(?![A-Za-z0-9_])", "key-"),
    _rule("shopify_token", r"(?<![A-Za-z0-9_])(?P<secret>shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32})(?![A-Za-z0-9_])", "shpat_", "shpca_", "shppa_", "shpss_"),
    _rule("hashicorp_vault_token", r"(?<![A-Za-z0-9_.\-])(?P<secret>hv[sbr]\.[A-Za-z0-9_\-]{24,250}+)", "hvs.", "hvb.", "hvr."),
    _rule("terraform_token", r"(?<![A-Za-z0-9])(?P<secret>[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_\-]{60,90}+)", ".atlasv1."),
    _rule("new_relic_key", r"(?<![A-Za-z0-9_\-])(?P<secret>NRAK-[A-Z0-9]{27}|NRII-[A-Za-z0-9_\-]{32}|NRJS-[a-f0-9]{19}|[a-f0-9]{36}NRAL)(?![A-Za-z0-9_\-])", "nrak-", "nrii-", "nrjs-", "nral"),
    _rule("sentry_token", r"(?<![A-Za-z0-9_])(?P<secret>sntrys_[A-Za-z0-9+/=_]{40,300}+|sntryu_[a-f0-9]{64})", "sntrys_", "sntryu_"),
    _rule("gcp_api_key", r"(?<![A-Za-z0-9_\-])(?P<secret>AIza[0-9A-Za-z_\-]{35})(?![A-Za-z0-9_\-])", "aiza"),
    _rule("gcp_oauth_secret", r"(?<![A-Za-z0-9_\-])(?P<secret>GOCSPX-[A-Za-z0-9_\-]{28})(?![A-Za-z0-9_\-])", "gocspx-"),
    _rule("gcp_access_token", r"(?<![A-Za-z0-9_.\-])(?P<secret>ya29\.[0-9A-Za-z_\-]{20,2048}+)", "ya29."),
    _rule("twilio_key", r"(?<![A-Za-z0-9_])(?P<secret>SK[0-9a-f]{32})(?![A-Za-z0-9_])", "sk"),
    _rule("age_secret_key", r"(?P<secret>AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58})", "age-secret-key-1"),
    _rule("linear_api_key", r"(?<![A-Za-z0-9_])(?P<secret>lin_(?:api|oauth)_[A-Za-z0-9]{40,64})(?![A-Za-z0-9_])", "lin_api_", "lin_oauth_"),
    _rule("telegram_bot_token", r"(?<![A-Za-z0-9_:])(?P<secret>\d{8,10}:AA[A-Za-z0-9_\-]{33})(?![A-Za-z0-9_\-])", ":aa"),
    # Credentials inside URLs.
    _rule("sentry_dsn", r"https?://(?P<secret>[0-9a-f]{32}(?::[0-9a-f]{32})?)@[A-Za-z0-9.\-]{1,253}(?::\d{1,5})?/\d{1,12}(?![\w.])", "://"),
    _rule("connection_string_password", r"(?<![A-Za-z0-9+.\-])(?i:postgres(?:ql)?|postgis|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|cockroachdb|clickhouse|couchdb|neo4j(?:\+s)?|kafka|nats|memcached|cassandra)(?:\+[a-z0-9]{1,16})?://[^\s:/@<>|\"'`]{0,128}+:(?P<secret>[^\s@/<>|\"'`]{1,256}+)@", "://", classify=_static("connection_string_password", _not_placeholder)),
    _rule("password_in_url", r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,30}+://[^\s:/@<>|\"'`\[\]]{0,128}+:(?P<secret>[^\s@/<>|\"'`]{1,256}+)@", "://", classify=_static("password_in_url", _not_placeholder)),
    _rule("azure_sas_token", r"(?:[?&]|&amp;)sig=(?P<secret>[A-Za-z0-9%+/]{20,256}+(?:=|%3[Dd]){0,2})", "sig="),
    _rule("token_in_url", r"(?:[?&]|&amp;)(?P<name>[A-Za-z][\w.\-]{0,40}+)=(?P<secret>[^&\s#\"'<>|`]{1,1024}+)", "=", classify=_classify_url_query, trim=True),
    # Vendor keys recognised by the words around them.
    _rule("pagerduty_token", r"Token token=(?P<secret>[A-Za-z0-9_+\-]{20})(?![A-Za-z0-9_+\-])", "token token="),
    _rule("pagerduty_token", rf"(?i:\b(?:pagerduty|pd)[ _\-]?(?:rest[ _\-]?)?(?:api[ _\-]?)?(?:key|token)){_SEP}(?P<secret>[A-Za-z0-9_+\-]{{20}})(?![A-Za-z0-9_+\-])", "pagerduty", "pd"),
    _rule("pagerduty_integration_key", rf"(?i:\b(?:routing|integration|service)[ _\-]?key){_SEP}(?P<secret>[0-9a-f]{{32}})(?![0-9A-Za-z])", "routing", "integration", "service"),
    _rule("datadog_api_key", rf"(?i:\b(?:dd|datadog)[ _\-]?(?:api|app|application)[ _\-]?key){_SEP}(?P<secret>[0-9a-f]{{32}}(?:[0-9a-f]{{8}})?)(?![0-9A-Za-z])", "dd", "datadog"),
    _rule("heroku_api_key", rf"(?i:\bheroku[ _\-]?(?:api[ _\-]?)?(?:key|token)){_SEP}(?P<secret>{_UUID})", "heroku"),
    _rule("aws_secret_key", r"(?i:\b(?:aws[ _\-]?)?secret[ _\-]?access[ _\-]?key|\baws[ _\-]?secret(?:[ _\-]?key)?)[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+)[\"']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", "secret"),
    _rule("aws_session_token", r"(?i:\baws[ _\-]?session[ _\-]?token)[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+)[\"']?(?P<secret>[A-Za-z0-9/+=]{100,4096}+)", "session"),
    _rule("azure_connection_string", r"(?i:\b(?:AccountKey|SharedAccessKey)=)(?P<secret>[A-Za-z0-9+/]{20,256}+={0,2})", "accountkey=", "sharedaccesskey="),
    _rule("azure_storage_key", r"(?i:\b(?:azure[ _\-]?storage[ _\-]?(?:account[ _\-]?)?(?:access[ _\-]?)?key|account[ _\-]?key))[\"']?(?:[ \t]*[:=][ \t]*|[ \t]+)[\"']?(?P<secret>[A-Za-z0-9+/]{86}==)", "key"),
    _rule("docker_registry_auth", r'"auth"[ \t]*:[ \t]*"(?P<secret>[A-Za-z0-9+/]{8,1024}+={0,2})"', '"auth"', classify=_static("docker_registry_auth", _decodes_to_user_password)),
    # Authorization headers, before generic tokens (a JWT sent as a bearer token is a bearer_token).
    _rule("bearer_token", r"(?i:\bbearer)[ \t]+(?P<secret>[A-Za-z0-9\-._~+/]{8,4096}+=*+)", "bearer", classify=_static("bearer_token", _tokenish)),
    _rule("basic_auth", r"(?i:\bbasic)[ \t]+(?P<secret>[A-Za-z0-9+/]{8,2048}+={0,2})", "basic", classify=_static("basic_auth", _decodes_to_user_password)),
    _rule("basic_auth", r"(?<![\w\-])(?:-u|--user)[ \t]+[\"']?[^\s:\"']{1,128}+:(?P<secret>[^\s\"']{1,256}+)", "-u", "--user", classify=_static("basic_auth", _not_placeholder)),
    _rule("authorization_header", r"(?i:\b(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?(?:[A-Za-z][\w\-]{0,20}[ \t]+)?(?P<secret>[A-Za-z0-9\-._~+/=:]{8,4096}+)", "authorization", classify=_static("authorization_header", _tokenish)),
    _rule("jwt", r"(?<![A-Za-z0-9_\-])(?P<secret>eyJ[A-Za-z0-9_\-]{10,}+\.ey[A-Za-z0-9_\-]{10,}+\.[A-Za-z0-9_\-]*+)", "eyj"),
    _rule("card_number", r"(?<![\w.+/\-])(?P<secret>\d{13,19}|\d{4}(?P<s1>[ \-])\d{4}(?P=s1)\d{4}(?P=s1)\d{1,4}(?:(?P=s1)\d{1,3})?|\d{4}(?P<s2>[ \-])\d{6}(?P=s2)\d{4,5})(?![\w+/=]|-\d)", classify=_static("card_number", lambda value: _is_card(re.sub(r"[ \-]", "", value)))),
    # Assignments: .env / shell (DB_PASSWORD=...), YAML and JSON ("password": "..."), prose ("password: hunter2").
    _rule("password_assignment", r"(?:(?<![\w\-])--(?:password|passwd|db-password)[ \t]+|\bmysql(?:dump|admin)?\b[^\n]{0,200}?[ \t]-p|\bsshpass[ \t]+-p[ \t]*)(?P<secret>[^\s\"'`]{1,256}+)", "--pass", "--db-pass", "mysql", "sshpass", classify=_static("password_assignment", _not_placeholder)),
    _rule("env_assignment", rf"-[ \t]*name:[ \t]*[\"']?(?P<name>[A-Za-z_]\w{{0,63}}+){_NAME_END}[\"']?[ \t]*+(?:\r?\n[ \t]*+)?value:[ \t]*{_VALUE}", "value:", groups=_VALUE_GROUPS, classify=_classify_assignment, trim=True),
    _rule(
        "env_assignment",
        r"""(?<![\w$.])(?<!\w-)(?:export[ \t]+)?(?P<nq>["']?)(?P<name>[A-Za-z_][\w.\-]{0,63}+)""" + _NAME_END + r"""(?P=nq)[ \t]*(?P<sep>[:=])(?!=)(?:[*_]{1,2})?[ \t]*""" + _VALUE,
        "=", ":", groups=_VALUE_GROUPS, classify=_classify_assignment, trim=True, rescan=True,
    ),
)
# fmt: on


KINDS: frozenset[str] = frozenset(rule.kind for rule in RULES) | {
    "password_assignment",
    "secret_assignment",
    "password_in_url",
}

_TRAILING = ".,;:!?)]}'\"*_"  # after a bare value: the end of the sentence, not the secret
_QUOTED = ("dq", "sq")  # quoted values end at their quote and are never trimmed


class _Claims:
    """Non-overlapping spans, sorted, each with the kind that claimed it (None: protected, not a secret)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.spans: list[tuple[int, int, str | None]] = []

    def free(self, start: int, end: int) -> bool:
        index = bisect.bisect_right(self.starts, start)
        if index and self.spans[index - 1][1] > start:
            return False
        return index == len(self.starts) or self.starts[index] >= end

    def add(self, start: int, end: int, kind: str | None) -> None:
        index = bisect.bisect_right(self.starts, start)
        self.starts.insert(index, start)
        self.spans.insert(index, (start, end, kind))


def _secret_span(rule: _Rule, match: re.Match[str]) -> tuple[int, int] | None:
    for group in rule.groups:
        start, end = match.span(group)
        if start >= 0:
            if rule.trim and group not in _QUOTED:
                while end > start and match.string[end - 1] in _TRAILING:
                    end -= 1
            return (start, end) if end > start else None
    return None


def redact_text(text: str) -> Redacted:
    """Replace every secret in `text` with `[REDACTED:<kind>]` and count them by kind."""
    if not text:
        return Redacted(text=text, counts={})
    lowered = text.lower()
    claims = _Claims()
    for match in _PROTECTED.finditer(text):
        claims.add(match.start(), match.end(), None)
    for rule in RULES:
        if rule.hints and not any(hint in lowered for hint in rule.hints):
            continue
        position = 0
        rescan_budget = 2 * len(text) + 4096  # characters; keeps nested rescans linear on degenerate input
        while match := rule.pattern.search(text, position):
            span = _secret_span(rule, match)
            kind = None
            if span is not None and claims.free(*span):
                kind = rule.classify(match, text[span[0] : span[1]]) if rule.classify else rule.kind
            if kind is not None:
                claims.add(span[0], span[1], kind)
                position = match.end()
            elif rule.rescan and span is not None and rescan_budget > 0:
                # "--from-literal=password=..." is not a secret as a whole but holds one: look again
                # from where the value starts (always after the match did, so the scan moves on).
                rescan_budget -= match.end() - span[0]
                position = span[0]
            else:
                position = match.end()
    secrets = [(s, e, k) for s, e, k in claims.spans if k is not None]
    if not secrets:
        return Redacted(text=text, counts={})
    parts: list[str] = []
    counts: dict[str, int] = {}
    position = 0
    for start, end, kind in secrets:
        parts.append(text[position:start])
        parts.append(placeholder(kind))
        counts[kind] = counts.get(kind, 0) + 1
        position = end
    parts.append(text[position:])
    return Redacted(text="".join(parts), counts=dict(sorted(counts.items())))


def merge_counts(*counts: Mapping[str, int]) -> dict[str, int]:
    """Sum per-kind counts; kinds with nothing counted are left out."""
    total: dict[str, int] = {}
    for mapping in counts:
        for kind, number in mapping.items():
            total[kind] = total.get(kind, 0) + number
    return {kind: number for kind, number in sorted(total.items()) if number}


# --- evidence ---------------------------------------------------------------------------------------------


class _Tally:
    """Redacts text after text and keeps the counts."""

    def __init__(self) -> None:
        self.counts: list[dict[str, int]] = []

    def __call__(self, text: str) -> str:
        result = redact_text(text)
        if result.counts:
            self.counts.append(result.counts)
        return result.text

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)

    def event(self, event: TimelineEvent) -> TimelineEvent:
        return event.model_copy(
            update={
                "text": self(event.text),
                "url": self.optional(event.url),
                "details": {key: self(value) for key, value in event.details.items()},
                "replies": tuple(self.event(reply) for reply in event.replies),
            }
        )

    def commit(self, commit: Commit) -> Commit:
        return commit.model_copy(
            update={
                "message": self(commit.message),
                "pull_request_title": self.optional(commit.pull_request_title),
            }
        )

    def deployment(self, deployment: Deployment) -> Deployment:
        return deployment.model_copy(
            update={
                "description": self(deployment.description),
                "url": self(deployment.url),  # a CI log URL may carry a token in its query
                "commits": tuple(self.commit(commit) for commit in deployment.commits),
            }
        )

    def message(self, message: ChatMessage) -> ChatMessage:
        if message.redactions:  # redacted before it was stored (live capture): still counted
            self.counts.append(dict(message.redactions))
        return message.model_copy(update={"text": self(message.text)})

    def incident(self, incident: Incident) -> Incident:
        # A conference bridge URL may carry a meeting password (?pwd=...).
        return incident.model_copy(
            update={"title": self(incident.title), "conference_url": self.optional(incident.conference_url)}
        )


def redact_evidence(evidence: IncidentEvidence) -> tuple[IncidentEvidence, dict[str, int]]:
    """A copy of the evidence with every free text redacted, and the counts summed over all of it."""
    tally = _Tally()
    redacted = evidence.model_copy(
        update={
            "incident": tally.incident(evidence.incident),
            "pagerduty_events": tuple(tally.event(event) for event in evidence.pagerduty_events),
            "deployments": tuple(tally.deployment(deployment) for deployment in evidence.deployments),
            "messages": tuple(tally.message(message) for message in evidence.messages),
            "source_notes": tuple(tally(note) for note in evidence.source_notes),
        }
    )
    return redacted, merge_counts(*tally.counts)


# --- logs -------------------------------------------------------------------------------------------------


# Attributes every LogRecord has; anything else came in through `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Redacts each record's message (format and arguments together), `extra` strings, exception and stack.

    Attach it to handlers: a filter on a logger sees only the records logged on that very logger.
    The whole message is redacted at once, so "password=%s" with ("hunter2",) is caught, which the
    argument alone would not be. Records without secrets pass unchanged.

    An exception whose text holds a secret is kept only as its redacted text (`exc_text`, which
    `logging.Formatter` prints) and `exc_info` is dropped, so no formatter can render the original.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # Arguments that do not fit the format: logging reports that itself; redact the parts.
            record.msg = redact_text(str(record.msg)).text
            record.args = _redact_args(record.args)
        else:
            redacted = redact_text(message)
            if redacted.counts:
                record.msg, record.args = redacted.text, ()
        for name, value in list(vars(record).items()):
            if name not in _RECORD_FIELDS and isinstance(value, str):
                setattr(record, name, redact_text(value).text)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            redacted = redact_text(record.exc_text)
            if redacted.counts:
                record.exc_text, record.exc_info = redacted.text, None
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info).text
        return True


def _redact_args(args: Any) -> Any:
    if isinstance(args, Mapping):
        return {key: redact_text(str(value)).text for key, value in args.items()}
    if isinstance(args, tuple):
        return tuple(redact_text(str(value)).text for value in args)
    return args
