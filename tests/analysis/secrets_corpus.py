"""Secrets as they get pasted into incident channels and alerts, and look-alikes that must survive.

Every token-like value is assembled here from pieces ("xo" + "xb-" + digits, a PEM label split in two) and
filled with deterministic filler, so no literal in the repository looks like a live credential to a secret
scanner, while the assembled strings have the exact shape of the real formats.

`SAMPLES`: (kind, text, secret) where `secret` is the exact substring the redaction must replace.
`LOOK_ALIKES`: (name, text) that must come out unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import string
from typing import NamedTuple

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def fill(alphabet: str, length: int, seed: int = 0) -> str:
    """Deterministic filler drawn from `alphabet` (seeded, so every run builds the same corpus)."""
    chooser = random.Random(seed * 1_000_003 + len(alphabet))
    return "".join(chooser.choices(alphabet, k=length))


def b64(raw: str) -> str:
    return base64.b64encode(raw.encode()).decode()


def b64url(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def pem(label: str, lines: int, seed: int, headers: str = "") -> str:
    """A PEM block, label split so the literal never appears whole in this file."""
    body = "\n".join(fill(B64, 64, seed + n) for n in range(lines)) + "\n" + fill(B64, 24, seed) + "=="
    head, tail = "-----BEGIN ", "-----END "
    return f"{head}{label} KEY-----\n{headers}{body}\n{tail}{label} KEY-----"


def uuid_like(seed: int) -> str:
    h = fill(HEX, 32, seed)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


class Sample(NamedTuple):
    kind: str
    text: str
    secret: str


class LookAlike(NamedTuple):
    name: str
    text: str


def _sample(kind: str, template: str, secret: str) -> Sample:
    """`template` holds "{s}" where the secret goes."""
    return Sample(kind, template.replace("{s}", secret), secret)


# --- the secrets -------------------------------------------------------------------------------------------

AWS_ACCESS_KEY = "AK" + "IA" + "IOSFODNN7" + "EXAMPLE"
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCY" + "EXAMPLEKEY"
GITHUB_PAT = "gh" + "p_" + fill(ALNUM, 36, 1)
SLACK_BOT_TOKEN = "xo" + "xb-" + "2024072010300-7261534261829-" + fill(ALNUM, 24, 2)
BEARER_TOKEN = "at" + "k_" + fill(ALNUM + "-._", 38, 3) + "9"
JWT = ".".join(
    (
        b64url(json.dumps({"alg": "HS256", "typ": "JWT"})),
        b64url(json.dumps({"sub": "svc-orders", "iat": 1721471400, "scope": "orders:write"})),
        fill(URLSAFE, 43, 4),
    )
)
RSA_KEY = pem("RSA " + "PRIVATE", 8, 5)
EC_KEY = pem("EC " + "PRIVATE", 3, 6)
PKCS8_KEY = pem("PRIV" + "ATE", 6, 7)
ENCRYPTED_KEY = pem("ENCRYPTED " + "PRIVATE", 5, 8)
LEGACY_ENCRYPTED_KEY = pem(
    "RSA " + "PRIVATE", 4, 9, headers="Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F2A1B0C9D8E7F60\n\n"
)
OPENSSH_KEY = pem("OPENSSH " + "PRIVATE", 6, 10)
PGP_KEY = (
    "-----BEGIN PGP "
    + "PRIVATE KEY BLOCK-----\nComment: ops@acme.example\n\n"
    + "\n".join(fill(B64, 64, 11 + n) for n in range(5))
    + "\n="
    + fill(B64, 4, 12)
    + "\n-----END PGP "
    + "PRIVATE KEY BLOCK-----"
)
GCP_PEM_JSON = (
    "-----BEGIN PRIV"
    + "ATE KEY-----\\n"
    + "\\n".join(fill(B64, 64, 13 + n) for n in range(4))
    + "\\n-----END PRIV"
    + "ATE KEY-----\\n"
)
SSH2_KEY = (
    "---- BEGIN SSH2 ENCRYPTED "
    + 'PRIVATE KEY ----\nComment: "rsa-key-20240720"\n'
    + "\n".join(fill(B64, 70, 95 + n) for n in range(3))
    + "\n---- END SSH2 ENCRYPTED "
    + "PRIVATE KEY ----"
)
PUTTY_KEY_FILE = (
    "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@bastion\nPublic-Lines: 2\n"
    + fill(B64, 64, 91)
    + "\n"
    + fill(B64, 20, 92)
    + "\nPrivate-Lines: 1\n{s}\nPrivate-MAC: "
    + fill(HEX, 64, 93)
)
CARD_VISA_SPACED = "4111 1111 " + "1111 1111"
CARD_MC = "55555555" + "55554444"
CARD_AMEX = "3782 822463 " + "10005"
CARD_DISCOVER_DASHED = "6011-1111-" + "1111-1117"

# One sample a line reads best as a table.
# fmt: off
SAMPLES: tuple[Sample, ...] = (
    # Cloud: AWS, GCP, Azure.
    _sample("aws_access_key", "Dee: `aws configure set aws_access_key_id {s}` on the bastion", AWS_ACCESS_KEY),
    _sample("aws_access_key", "temporary creds ASIA key {s} from sts", "AS" + "IA" + fill(UPPER_DIGITS, 16, 96)),
    _sample("aws_secret_key", "[default]\naws_secret_access_key = {s}\nregion = eu-west-1", AWS_SECRET_KEY),
    _sample("aws_session_token", "export AWS_SESSION_TOKEN={s}", "FwoGZXIvYXdzE" + fill(B64, 140, 14)),
    _sample("gcp_api_key", "geocoding fails: https://maps.googleapis.com/maps/api/geocode/json?address=Lisbon&key={s}", "AI" + "za" + fill(URLSAFE, 35, 15)),
    _sample("gcp_service_account_key", '{"type": "service_account", "project_id": "acme-prod", "private_key": "{s}", "client_email": "orders@acme-prod.iam.gserviceaccount.com"}', GCP_PEM_JSON),
    _sample("gcp_service_account_key", '{"type": "service_account", "private_key_id": "{s}"}', fill(HEX, 40, 16)),
    _sample("gcp_oauth_secret", "OAuth client for the status page: client secret {s}", "GOC" + "SPX-" + fill(URLSAFE, 28, 17)),
    _sample("gcp_access_token", "gcloud auth print-access-token gave {s}", "ya" + "29." + fill(URLSAFE, 120, 18)),
    _sample("azure_connection_string", "DefaultEndpointsProtocol=https;AccountName=acmelogs;AccountKey={s};EndpointSuffix=core.windows.net", fill(B64, 86, 19) + "=="),
    _sample("azure_storage_key", "az storage blob list --account-name acmelogs --account-key {s} -c logs", fill(B64, 86, 20) + "=="),
    _sample("azure_sas_token", "log export: https://acmelogs.blob.core.windows.net/logs/app.log?sv=2022-11-02&sp=r&se=2024-07-21T00:00:00Z&sig={s}", fill(ALNUM, 40, 21) + "%2B" + fill(ALNUM, 6, 22) + "%3D"),
    # Source control, chat, paging.
    _sample("github_token", "export GITHUB_TOKEN={s}", GITHUB_PAT),
    _sample("github_token", "curl -H 'Authorization: token {s}' https://api.github.com/repos/acme/customer-api/deployments", "gh" + "o_" + fill(ALNUM, 36, 23)),
    _sample("github_token", '{"token": "{s}", "expires_at": "2024-07-20T11:30:00Z"}', "gh" + "s_" + fill(ALNUM, 36, 24)),
    _sample("github_token", "fine-grained token for the deploy bot: {s}", "github_" + "pat_" + fill(ALNUM, 22, 25) + "_" + fill(ALNUM, 59, 26)),
    _sample("gitlab_token", "curl --header 'PRIVATE-TOKEN: {s}' https://gitlab.acme.example/api/v4/projects", "gl" + "pat-" + fill(URLSAFE, 20, 27)),
    _sample("gitlab_token", "runner registered with {s}", "gl" + "rt-" + fill(URLSAFE, 20, 98)),
    _sample("slack_token", "SLACK_BOT_TOKEN={s}", SLACK_BOT_TOKEN),
    _sample("slack_token", "use my user token {s} for the export", "xo" + "xp-" + "2024072010300-7261534261830-7261534261831-" + fill(HEX, 32, 28)),
    _sample("slack_token", "SLACK_APP_TOKEN is {s}", "xa" + "pp-1-" + "A07PMBOT001-7261534261832-" + fill(HEX, 64, 29)),
    _sample("slack_token", "rotated refresh token {s}", "xo" + "xe-1-" + fill(ALNUM, 140, 97)),
    _sample("slack_webhook", "alerts go to https://hooks.slack.com/services/{s} now", "T0" + "1ACME000/B07ALERTS0/" + fill(ALNUM, 24, 30)),
    _sample("discord_webhook", "status mirror: https://discord.com/api/webhooks/1263456789012345678/{s}", fill(URLSAFE, 68, 31)),
    _sample("pagerduty_token", "curl -H 'Authorization: Token token={s}' https://api.pagerduty.com/incidents/Q1R2S3T4U5V6W7", "y_" + fill(ALNUM + "+", 18, 32)),
    _sample("pagerduty_token", "PagerDuty API key: {s} (read-only)", "u+" + fill(URLSAFE, 18, 33)),
    _sample("pagerduty_integration_key", '{"routing_key": "{s}", "event_action": "trigger"}', fill(HEX, 32, 34)),
    # Headers.
    _sample("bearer_token", "curl -H 'Authorization: Bearer {s}' https://api.acme.example/v1/orders", BEARER_TOKEN),
    _sample("bearer_token", "Authorization: Bearer {s}", JWT),
    _sample("basic_auth", "Authorization: Basic {s}", b64("deploy-bot:" + fill(ALNUM, 16, 35))),
    _sample("basic_auth", "curl -u admin:{s} https://jenkins.acme.example/job/deploy/lastBuild", "s3cr3t-" + fill(ALNUM, 10, 36)),
    _sample("authorization_header", "Authorization: SSWS {s}", "00" + fill(URLSAFE, 40, 37)),
    _sample("jwt", "the session cookie was {s}; it decodes fine", JWT),
    # Key material.
    _sample("private_key", "rotating this one, do not use:\n{s}\nthanks", RSA_KEY),
    _sample("private_key", "{s}", EC_KEY),
    _sample("private_key", "key.pem:\n{s}", PKCS8_KEY),
    _sample("private_key", "{s}", ENCRYPTED_KEY),
    _sample("private_key", "old-style encrypted key:\n{s}", LEGACY_ENCRYPTED_KEY),
    _sample("ssh_private_key", "~/.ssh/id_ed25519 on the bastion:\n{s}", OPENSSH_KEY),
    _sample("ssh_private_key", "from the old appliance:\n{s}", SSH2_KEY),
    _sample("ssh_private_key", PUTTY_KEY_FILE, fill(B64, 44, 94)),
    _sample("pgp_private_key", "release signing key\n{s}\n", PGP_KEY),
    _sample("kubeconfig_client_key", "users:\n- name: admin\n  user:\n    client-key-data: {s}\n", b64(fill(ALNUM, 96, 38))),
    # Databases and URLs.
    _sample("connection_string_password", "DATABASE_URL=postgres://app:{s}@db.internal:5432/orders", "Pg-" + fill(ALNUM, 14, 39)),
    _sample("connection_string_password", "mysql://root:{s}@10.0.3.7:3306/shop", fill(ALNUM, 12, 40) + "!"),
    _sample("connection_string_password", "MONGO_URI=mongodb+srv://svc-orders:{s}@cluster0.ab1cd.mongodb.net/orders?retryWrites=true", fill(ALNUM, 20, 41)),
    _sample("connection_string_password", "cache is redis://:{s}@cache.internal:6379/0", fill(ALNUM, 24, 42)),
    _sample("connection_string_password", "BROKER_URL=amqp://orders:{s}@rabbit.internal:5672/%2f", fill(ALNUM, 16, 43)),
    _sample("password_in_url", "artifacts: https://deploy:{s}@nexus.acme.example/repository/releases/", fill(ALNUM, 18, 44)),
    _sample("password_in_url", "bridge: https://acme.zoom.us/j/81234567890?pwd={s}", fill(ALNUM, 32, 45)),
    _sample("token_in_url", "export link https://api.acme.example/export?access_token={s}&format=csv", fill(ALNUM, 40, 46)),
    _sample("sentry_dsn", "SENTRY_DSN=https://{s}@o450000.ingest.sentry.io/5500000", fill(HEX, 32, 47)),
    # Payments, messaging, AI, packages, platforms.
    _sample("stripe_key", "STRIPE_SECRET_KEY={s}", "sk_" + "live_" + fill(ALNUM, 24, 48)),
    _sample("stripe_key", "webhook signing secret {s}", "wh" + "sec_" + fill(ALNUM, 32, 49)),
    _sample("twilio_key", "Twilio API key {s} for SMS paging", "SK" + fill(HEX, 32, 50)),
    _sample("sendgrid_key", "mailer uses {s}", "SG." + fill(URLSAFE, 22, 51) + "." + fill(URLSAFE, 43, 52)),
    _sample("mailgun_key", "MAILGUN key {s}", "ke" + "y-" + fill(HEX, 32, 53)),
    _sample("openai_key", "summariser key {s}", "sk-" + "proj-" + fill(URLSAFE, 48, 54)),
    _sample("anthropic_key", "ANTHROPIC key {s}", "sk-" + "ant-api03-" + fill(URLSAFE, 93, 55) + "AA"),
    _sample("npm_token", "//registry.npmjs.org/:_authToken={s}", "npm" + "_" + fill(ALNUM, 36, 56)),
    _sample("npm_token", "//npm.acme.example/:_authToken={s}", uuid_like(57)),
    _sample("pypi_token", "[pypi]\nusername = __token__\npassword = {s}", "pypi-" + "AgEIcHlwaS5vcmc" + fill(URLSAFE, 70, 58)),
    _sample("docker_hub_token", "docker login -u acmeci --password-stdin <<< {s}", "dckr" + "_pat_" + fill(URLSAFE, 27, 59)),
    _sample("docker_registry_auth", '{"auths": {"registry.acme.example": {"auth": "{s}"}}}', b64("ci-bot:" + fill(ALNUM, 20, 60))),
    _sample("bitbucket_app_password", "bitbucket app password {s}", "AT" + "BB" + fill(ALNUM, 32, 61)),
    _sample("atlassian_api_token", "confluence token {s}", "ATATT" + "3xFfGF0" + fill(URLSAFE, 180, 62) + "=" + fill("0123456789ABCDEF", 8, 63)),
    _sample("datadog_api_key", "DD_API_KEY={s}", fill(HEX, 32, 64)),
    _sample("datadog_api_key", "curl -H 'DD-APPLICATION-KEY: {s}' https://api.datadoghq.com/api/v1/monitor", fill(HEX, 40, 65)),
    _sample("heroku_api_key", "HEROKU_API_KEY={s}", uuid_like(66)),
    _sample("heroku_api_key", "heroku authorizations:create gave {s}", "HR" + "KU-" + "AA" + fill(URLSAFE, 58, 67)),
    _sample("digitalocean_token", "doctl auth init -t {s}", "do" + "p_v1_" + fill(HEX, 64, 68)),
    _sample("shopify_token", "shop admin token {s}", "shp" + "at_" + fill(HEX, 32, 69)),
    _sample("hashicorp_vault_token", "VAULT_TOKEN is {s}", "hv" + "s." + fill(URLSAFE, 90, 70)),
    _sample("terraform_token", 'credentials "app.terraform.io" { token = "{s}" }', fill(ALNUM, 14, 71) + ".atlas" + "v1." + fill(URLSAFE, 67, 72)),
    _sample("new_relic_key", "NEW_RELIC user key {s}", "NR" + "AK-" + fill(UPPER_DIGITS, 27, 73)),
    _sample("new_relic_key", "license_key: {s}", fill(HEX, 36, 74) + "NR" + "AL"),
    _sample("sentry_token", "sentry-cli --auth-token {s} releases new", "sntr" + "ys_" + fill(B64, 80, 75)),
    _sample("age_secret_key", "sops age key {s}", "AGE-SECRET-" + "KEY-1" + fill("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 76)),
    _sample("linear_api_key", "linear token {s}", "lin" + "_api_" + fill(ALNUM, 40, 77)),
    _sample("telegram_bot_token", "paging bot {s}", "7261534261:" + "AA" + fill(URLSAFE, 33, 78)),
    # Assignments: .env lines, Kubernetes env, YAML/JSON, connection strings, command lines, prose.
    _sample("env_assignment", "DB_PASSWORD={s}", "Tr0ub4dor&3-" + fill(ALNUM, 6, 79)),
    _sample("env_assignment", "SECRET_KEY='{s}'", fill(ALNUM + "!@#%^*", 50, 80)),
    _sample("env_assignment", "export API_TOKEN={s}", fill(ALNUM, 32, 81)),
    _sample("env_assignment", 'env:\n  - name: SIGNING_SECRET\n    value: "{s}"\n  - name: LOG_LEVEL\n    value: debug', fill(ALNUM, 30, 89)),
    _sample("password_assignment", "the staging db password: {s}", "hunter2"),
    _sample("password_assignment", "jdbc props user=app;pwd={s};", fill(ALNUM, 14, 82)),
    _sample("password_assignment", '{"username": "svc-orders", "password": "{s}"}', "correct horse battery staple"),
    _sample("password_assignment", "Server=sql.internal;Database=orders;User Id=sa;Password={s};", "P@ss-" + fill(ALNUM, 10, 86)),
    _sample("password_assignment", "mysql -h db.internal -u root -p{s} orders", fill(ALNUM, 12, 87)),
    _sample("password_assignment", "psql --password {s} -h db.internal", fill(ALNUM, 12, 88)),
    _sample("secret_assignment", "client_secret: {s}", fill(ALNUM, 40, 83)),
    _sample("secret_assignment", 'config: {"apiKey": "{s}"}', fill(ALNUM, 32, 84)),
    _sample("secret_assignment", "curl -H 'X-Api-Key: {s}' https://api.acme.example", fill(ALNUM, 32, 85)),
    # Cards (Luhn-valid test numbers).
    _sample("card_number", "customer card {s} was charged twice", CARD_VISA_SPACED),
    _sample("card_number", "card={s} in the failing payload", CARD_MC),
    _sample("card_number", "amex {s} declined", CARD_AMEX),
    _sample("card_number", "discover {s}", CARD_DISCOVER_DASHED),
)


# --- look-alikes ------------------------------------------------------------------------------------------

PNG_DATA = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA" + fill(B64, 4000, 90) + "=="

LOOK_ALIKES: tuple[LookAlike, ...] = (
    LookAlike("full git sha", "deploy 1003 shipped 9f8e7d6c5b4a39281706f5e4d3c2b1a098765432 to production"),
    LookAlike("short git sha", "Rollback to 7a6b5c4 (was a1b2c3d)"),
    LookAlike("commit url", "https://github.com/acme/customer-api/commit/9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"),
    LookAlike("uuid request id", "request_id=3f2b9c1e-8d4a-4b6f-9e2d-1a7c5b3e9f01 failed with 503"),
    LookAlike("trace ids", "trace_id: 4bf92f3577b34da6a3ce929d0e0e4736 span_id: 00f067aa0ba902b7"),
    LookAlike("slack ts", "thread_ts 1721471400.000100 and ts=1721471460.000200"),
    LookAlike("slack mentions", "<@U02BEN> please look in <#C07INC9876|inc-9876-api-latency>, <!channel>"),
    LookAlike("pagerduty ids", "PagerDuty incident Q1R2S3T4U5V6W7 (PD-9876) on PSVC001, policy PEP0001, entry R2LOGENTRY00001"),
    LookAlike("iso timestamps", "from 2024-07-20T10:30:00Z to 2024-07-20T12:15:00+00:00"),
    LookAlike("versions", "Bump structlog to 24.2; slack-bolt 1.30.0; chart v2.14.3-rc.1"),
    LookAlike("inline image", f"chart: {PNG_DATA}"),
    LookAlike("number failing luhn", "card 4111 1111 1111 1112 was declined"),
    LookAlike("long order number", "order 1234567890123456 and epoch 1721471400123"),
    LookAlike("permalink digits", "https://acme.slack.com/archives/C07INC9876/p1721471400000100"),
    LookAlike("prose about tokens", "the token expired at 10:40 and the password reset flow broke"),
    LookAlike("prose about headers", "Bearer tokens are checked by auth-service; the Authorization header was missing"),
    LookAlike("prose with a colon", "Password: see the vault entry. Token: expired, ask Carlos. Note that these URLs are bearer credentials: anyone with one can read it"),
    LookAlike("urls without credentials", "https://acme.pagerduty.com/incidents/Q1R2S3T4U5V6W7 and https://db.internal:5432/orders"),
    LookAlike("markdown link", "[PR #482](https://github.com/acme/customer-api/pull/482)"),
    LookAlike("slack link", "<https://github.com/acme/customer-api/pull/482|PR #482> by <@U02BEN>"),
    LookAlike("placeholders", "DB_PASSWORD=${DB_PASSWORD}\nAPI_TOKEN=<your-token>\ncurl -H 'Authorization: Bearer $TOKEN'\nhttps://{user}:{password}@proxy"),
    LookAlike("config numbers", "MAX_TOKENS=4096 TOKEN_TTL=3600 PASSWORD_MIN_LENGTH=12 secretName: tls-customer-api"),
    LookAlike("datadog query", "avg(last_5m):p99:trace.http.request.duration{service:customer-api} > 2"),
    LookAlike("dedup key", "dedup_key: 5f1c2d3e4b5a69788796a5b4c3d2e1f0"),
    LookAlike("public material", "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ana@acme"),
    LookAlike("user without password", "postgres://app@db.internal:5432/orders and ssh://git@github.com/acme/customer-api.git"),
    LookAlike("phone and address", "call +1 415 555 0100 or mail ana.lima@acme.example, host 10.0.3.7:5432"),
    LookAlike("container digest", "image acme/customer-api@sha256:3b1f7e2c9d0a4b5c6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"),
    LookAlike("code", 'password = os.environ["DB_PASSWORD"]\ntoken = settings.slack_bot_token\n"password": password,\nnext_page_token = page_token'),
    LookAlike("file paths", "PWD=/home/ana GOOGLE_APPLICATION_CREDENTIALS=/etc/gcp/sa.json mysql -u root -p orders"),
)
# fmt: on
