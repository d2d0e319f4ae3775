"""``receivers`` and the Alertmanager ``global`` keys they inherit: Slack, email, PagerDuty, webhook, console.

Keys, defaults and load-time checks are Alertmanager's (``config/notifiers.go``), with alertd's
additions marked as such. Text fields (titles, bodies, subjects, details) take ``{field}``
substitution (see ``daemon.notify.message``); an Alertmanager Go template (``{{ ... }}``) is
refused at load rather than sent verbatim.

Alertmanager copies some ``global`` settings into every integration that does not set them
(``smtp_*``, ``slack_api_url``, ``pagerduty_url``, ``http_config``). ``with_global_defaults`` does
the same on the raw config before validation, so a missing smarthost is reported at the email
config that lacks it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from email.utils import getaddresses
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from daemon.config.duration import Duration
from daemon.config.httpclient import Authorization, BasicAuth, TLSConfig, check_http_client, secret_from_file
from daemon.config.secret import Secret
from daemon.config.section import Section, field_error

DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_SLACK_API_BASE = "https://slack.com/api/"

# The specification's formats (docs: README "Receivers"); field names are daemon.notify.message's.
SPEC_SLACK_TEXT = (
    "🚨 *{severity}* - {alert_name}\n"
    "📊 *Métrique*: {metric_name} = {current_value}\n"
    "🎯 *Seuil*: {threshold}\n"
    "⏰ *Temps*: {timestamp}\n"
    "🔗 *Lien*: {dashboard_url}"
)
SPEC_SLACK_RESOLVED_TEXT = (
    "✅ *{severity}* - {alert_name} (resolved)\n"
    "📊 *Métrique*: {metric_name}\n"
    "⏰ *Temps*: {timestamp}\n"
    "🔗 *Lien*: {dashboard_url}"
)
SPEC_EMAIL_SUBJECT = "[{severity}] {alert_name} - {timestamp}"
SPEC_EMAIL_TEXT = (
    "Alert: {alert_name}\n"
    "Severity: {severity}\n"
    "Metric: {metric_name}\n"
    "Current Value: {current_value}\n"
    "Threshold: {threshold}\n"
    "Time: {timestamp}\n"
    "Dashboard: {dashboard_url}"
)
DEFAULT_PAGERDUTY_DESCRIPTION = "[{severity}] {alert_name}: {metric_name} = {current_value} (threshold {threshold})"
DEFAULT_CONSOLE_TEXT = "[{status}] " + SPEC_EMAIL_SUBJECT + " {metric_name} = {current_value} (threshold {threshold})"

SLACK_MENTIONS = {"@here": "<!here>", "@channel": "<!channel>", "none": ""}
_GO_TEMPLATE = re.compile(r"\{\{")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except ':'


def check_format(text: str) -> str:
    """``text`` unless it is an Alertmanager Go template, which alertd does not expand."""
    if _GO_TEMPLATE.search(text):
        raise ValueError(
            "Alertmanager Go templates ({{ ... }}) are not supported in notification text; "
            "use alertd's {field} substitution such as {severity} or {alert_name}"
        )
    return text


class HTTPConfig(Section):
    """``http_config`` of an integration: auth, TLS and proxy of the requests it sends."""

    unsupported = frozenset({"oauth2", "no_proxy", "proxy_from_environment", "proxy_connect_header", "http_headers"})

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    bearer_token: Secret | None = None
    bearer_token_file: str | None = None
    tls_config: TLSConfig | None = None
    proxy_url: str | None = None
    follow_redirects: bool = True
    enable_http2: bool = True

    @model_validator(mode="after")
    def _one_auth(self, info: ValidationInfo) -> HTTPConfig:
        check_http_client(self.basic_auth, self.authorization, self.bearer_token, self.bearer_token_file)
        if self.bearer_token_file is not None:
            secret, path = secret_from_file(self.bearer_token_file, "bearer_token_file", info.context)
            self._settle(bearer_token=secret, bearer_token_file=path)
        return self

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header these settings add to each request (none without auth)."""
        if self.basic_auth is not None:
            password = self.basic_auth.password.reveal() if self.basic_auth.password else ""
            token = base64.b64encode(f"{self.basic_auth.username}:{password}".encode()).decode()
            return {"Authorization": f"Basic {token}"}
        if self.authorization is not None and self.authorization.credentials:
            return {"Authorization": f"{self.authorization.type} {self.authorization.credentials.reveal()}"}
        if self.bearer_token:
            return {"Authorization": f"Bearer {self.bearer_token.reveal()}"}
        return {}

    def bearer(self) -> Secret | None:
        """The token of an ``authorization`` of type Bearer (a Slack bot token), if any."""
        if self.authorization is not None and self.authorization.type.lower() == "bearer":
            return self.authorization.credentials
        return self.bearer_token


class AlertingGlobal(Section):
    """Alertmanager's ``global`` keys: defaults that integrations inherit, and ``resolve_timeout``."""

    unsupported = frozenset(
        {
            "smtp_auth_secret",
            "smtp_auth_identity",
            "opsgenie_api_key",
            "opsgenie_api_key_file",
            "opsgenie_api_url",
            "wechat_api_url",
            "wechat_api_secret",
            "wechat_api_corp_id",
            "victorops_api_key",
            "victorops_api_key_file",
            "victorops_api_url",
            "telegram_api_url",
            "webex_api_url",
            "jira_api_url",
            "rocketchat_api_url",
            "rocketchat_token",
            "rocketchat_token_file",
            "rocketchat_token_id",
            "rocketchat_token_id_file",
        }
    )
    keys: ClassVar[tuple[str, ...]] = (
        "resolve_timeout",
        "http_config",
        "smtp_from",
        "smtp_hello",
        "smtp_smarthost",
        "smtp_auth_username",
        "smtp_auth_password",
        "smtp_auth_password_file",
        "smtp_require_tls",
        "smtp_tls_config",
        "slack_api_url",
        "slack_api_url_file",
        "pagerduty_url",
    )

    resolve_timeout: Duration = 300.0
    http_config: HTTPConfig | None = None
    smtp_from: str = ""
    smtp_hello: str = "localhost"
    smtp_smarthost: str = ""
    smtp_auth_username: str = ""
    smtp_auth_password: Secret | None = None
    smtp_auth_password_file: str | None = None
    smtp_require_tls: bool = True
    smtp_tls_config: TLSConfig | None = None
    slack_api_url: Secret | None = None
    slack_api_url_file: str | None = None
    pagerduty_url: str = DEFAULT_PAGERDUTY_URL

    @model_validator(mode="after")
    def _files(self, info: ValidationInfo) -> AlertingGlobal:
        if self.smtp_auth_password_file is not None:
            if self.smtp_auth_password is not None:
                raise field_error(None, "at most one of smtp_auth_password & smtp_auth_password_file must be configured")
            secret, _ = secret_from_file(self.smtp_auth_password_file, "smtp_auth_password_file", info.context)
            self._settle(smtp_auth_password=secret)
        if self.slack_api_url_file is not None:
            if self.slack_api_url is not None:
                raise field_error(None, "at most one of slack_api_url & slack_api_url_file must be configured")
            secret, _ = secret_from_file(self.slack_api_url_file, "slack_api_url_file", info.context)
            self._settle(slack_api_url=secret)
        return self


class SlackField(Section):
    """One ``fields`` entry of a Slack attachment."""

    title: str
    value: str
    short: bool | None = None

    @field_validator("title", "value")
    @classmethod
    def _formats(cls, value: str) -> str:
        return check_format(value)


class SlackConfig(Section):
    """``slack_configs`` entry: an incoming webhook (``api_url``) or a bot token with ``channel``.

    alertd's additions: ``token``/``token_file`` (a bot token; ``http_config.authorization``
    works too, as in Alertmanager), ``mention`` (``@here``, ``@channel`` or ``none``),
    ``update_message`` (bot token only: edit the first message on resolve and thread the
    follow-ups), ``resolved_text``. With a bot token, ``api_url`` is Slack's Web API base (or its
    ``chat.postMessage`` URL, Alertmanager's form) and may point at a proxy or a fake.
    """

    unsupported = frozenset({"actions", "callback_id", "mrkdwn_in", "app_token", "app_url"})

    send_resolved: bool = False
    http_config: HTTPConfig | None = None
    api_url: Secret | None = None
    api_url_file: str | None = None
    token: Secret | None = None
    token_file: str | None = None
    channel: str = ""
    username: str = ""
    icon_emoji: str = ""
    icon_url: str = ""
    link_names: bool = False
    color: str = ""
    title: str = ""
    title_link: str = ""
    pretext: str = ""
    text: str = SPEC_SLACK_TEXT
    resolved_text: str = SPEC_SLACK_RESOLVED_TEXT
    fallback: str = ""
    footer: str = ""
    fields: tuple[SlackField, ...] = ()
    short_fields: bool = False
    image_url: str = ""
    thumb_url: str = ""
    mention: str = "none"
    update_message: bool = False

    @field_validator("title", "pretext", "text", "resolved_text", "fallback", "footer", "channel", "username", "color")
    @classmethod
    def _formats(cls, value: str) -> str:
        return check_format(value)

    @field_validator("mention")
    @classmethod
    def _mention(cls, value: str) -> str:
        if value in SLACK_MENTIONS or re.fullmatch(r"<[!@#][A-Za-z0-9^|_-]+>", value):
            return value
        raise ValueError('must be "@here", "@channel", "none" or a Slack mention such as <@U024BE7LH>')

    @model_validator(mode="after")
    def _resolved_with_update(self) -> SlackConfig:
        # After validation: the config file's YAML gives booleans as text ("true"), typed only now.
        if self.update_message:
            if "send_resolved" in self.model_fields_set and not self.send_resolved:
                raise field_error("send_resolved", "update_message edits the message on resolve, which needs send_resolved")
            self._settle(send_resolved=True)
        return self

    @model_validator(mode="after")
    def _target(self, info: ValidationInfo) -> SlackConfig:
        if self.api_url is not None and self.api_url_file is not None:
            raise field_error(None, "at most one of api_url & api_url_file must be configured")
        if self.token is not None and self.token_file is not None:
            raise field_error(None, "at most one of token & token_file must be configured")
        if self.api_url_file is not None:
            secret, path = secret_from_file(self.api_url_file, "api_url_file", info.context)
            self._settle(api_url=secret, api_url_file=path)
        if self.token_file is not None:
            secret, path = secret_from_file(self.token_file, "token_file", info.context)
            self._settle(token=secret, token_file=path)
        if self.bot_token() is not None:
            if not self.channel:
                raise field_error("channel", "a bot token needs a channel to post to")
        elif self.api_url is None:
            raise field_error(None, "one of api_url, api_url_file or a bot token (token, http_config.authorization) must be configured")
        elif self.update_message:
            raise field_error("update_message", "editing messages needs a bot token (an incoming webhook cannot edit)")
        return self

    def bot_token(self) -> Secret | None:
        """The bot token: ``token``, else ``http_config``'s bearer credentials when ``api_url`` is
        Slack's Web API (Alertmanager's form: ``.../api/chat.postMessage``)."""
        if self.token:
            return self.token
        if self.http_config is None or self.api_url is None:
            return None
        url = self.api_url.reveal().rstrip("/")
        if url.endswith(("/chat.postMessage", "/api")):
            return self.http_config.bearer()
        return None

    def api_base(self) -> str:
        """The Web API base URL a bot token talks to (always ending in ``/``)."""
        if self.api_url is None:
            return DEFAULT_SLACK_API_BASE
        url = self.api_url.reveal()
        for method in ("chat.postMessage", "chat.update"):
            if url.endswith(method):
                url = url[: -len(method)]
        return url if url.endswith("/") else url + "/"


class EmailConfig(Section):
    """``email_configs`` entry: one multipart/alternative message per notification over SMTP.

    ``smarthost`` on port 465 is implicit TLS; elsewhere ``require_tls`` demands STARTTLS.
    """

    unsupported = frozenset({"auth_secret", "auth_identity", "auth_secret_file"})

    send_resolved: bool = False
    to: str
    from_: str = Field("", alias="from")
    smarthost: str = ""
    hello: str = "localhost"
    auth_username: str = ""
    auth_password: Secret | None = None
    auth_password_file: str | None = None
    require_tls: bool = True
    tls_config: TLSConfig | None = None
    subject: str = SPEC_EMAIL_SUBJECT
    text: str = SPEC_EMAIL_TEXT
    html: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _subject_header(cls, data: Any) -> Any:
        # Alertmanager sets the subject as a header; alertd also takes it as a key of its own.
        if isinstance(data, dict) and isinstance(data.get("headers"), dict):
            headers = {_canonical_header(str(k)): v for k, v in data["headers"].items()}
            if "Subject" in headers and "subject" not in data:
                data = {**data, "subject": headers.pop("Subject")}
                data["headers"] = headers
        return data

    @field_validator("to", "from_", "subject", "text", "html")
    @classmethod
    def _formats(cls, value: str | None) -> str | None:
        return None if value is None else check_format(value)

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("missing to address in email config")
        if "{" not in value and not [addr for _, addr in getaddresses([value]) if "@" in addr]:
            raise ValueError(f'no valid address in "{value}"')
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        normalized: dict[str, str] = {}
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f'"{name}" is not a valid header name')
            canonical = _canonical_header(name)
            if canonical in normalized:
                raise ValueError(f'duplicate header "{canonical}" in email config')
            normalized[canonical] = check_format(value)
        return normalized

    @field_validator("smarthost")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or int(port) > 65535:
                raise ValueError(f'address {value}: missing port in address (want host:port)')
        return value

    @model_validator(mode="after")
    def _complete(self, info: ValidationInfo) -> EmailConfig:
        if self.auth_password_file is not None:
            if self.auth_password is not None:
                raise field_error(None, "at most one of auth_password & auth_password_file must be configured")
            secret, path = secret_from_file(self.auth_password_file, "auth_password_file", info.context)
            self._settle(auth_password=secret, auth_password_file=path)
        if not self.smarthost:
            raise field_error("smarthost", "no global SMTP smarthost set")
        if not self.from_:
            raise field_error("from", "no global SMTP from set")
        return self

    @property
    def host(self) -> str:
        return self.smarthost.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.smarthost.rpartition(":")[2])


class PagerDutyLink(Section):
    """``links`` entry of a PagerDuty event."""

    href: str
    text: str = ""


class PagerDutyImage(Section):
    """``images`` entry of a PagerDuty event."""

    src: str
    alt: str = ""
    href: str = ""


class PagerDutyConfig(Section):
    """``pagerduty_configs`` entry: Events API v2 trigger/resolve with a dedup key from the group key."""

    unsupported = frozenset({"service_key", "service_key_file"})

    send_resolved: bool = True
    http_config: HTTPConfig | None = None
    routing_key: Secret | None = None
    routing_key_file: str | None = None
    url: str = DEFAULT_PAGERDUTY_URL
    client: str = "alertd"
    client_url: str = ""
    description: str = DEFAULT_PAGERDUTY_DESCRIPTION
    severity: str = "error"
    source: str = ""
    class_: str = Field("", alias="class")
    component: str = ""
    group: str = ""
    details: dict[str, str] | None = None
    images: tuple[PagerDutyImage, ...] = ()
    links: tuple[PagerDutyLink, ...] = ()

    @field_validator("client", "client_url", "description", "severity", "source", "class_", "component", "group")
    @classmethod
    def _formats(cls, value: str) -> str:
        return check_format(value)

    @field_validator("details")
    @classmethod
    def _detail_formats(cls, details: dict[str, str] | None) -> dict[str, str] | None:
        for value in (details or {}).values():
            check_format(value)
        return details

    @model_validator(mode="after")
    def _key(self, info: ValidationInfo) -> PagerDutyConfig:
        if self.routing_key is not None and self.routing_key_file is not None:
            raise field_error(None, "at most one of routing_key & routing_key_file must be configured")
        if self.routing_key_file is not None:
            secret, path = secret_from_file(self.routing_key_file, "routing_key_file", info.context)
            self._settle(routing_key=secret, routing_key_file=path)
        if not self.routing_key:
            raise field_error(None, "missing routing key in PagerDuty config (routing_key or routing_key_file)")
        return self


class WebhookConfig(Section):
    """``webhook_configs`` entry: Alertmanager's version 4 JSON payload POSTed to ``url``."""

    send_resolved: bool = True
    http_config: HTTPConfig | None = None
    url: Secret | None = None
    url_file: str | None = None
    max_alerts: int = Field(0, ge=0)
    timeout: Duration = 0.0

    @model_validator(mode="after")
    def _url(self, info: ValidationInfo) -> WebhookConfig:
        if self.url is not None and self.url_file is not None:
            raise field_error(None, "at most one of url & url_file must be configured")
        if self.url_file is not None:
            secret, path = secret_from_file(self.url_file, "url_file", info.context)
            self._settle(url=secret, url_file=path)
        if not self.url:
            raise field_error(None, "one of url or url_file must be configured")
        scheme = self.url.reveal().partition("://")[0]
        if scheme not in ("http", "https"):
            raise field_error("url", "unsupported scheme for webhook URL (want http or https)")
        return self


class ConsoleConfig(Section):
    """``console_configs`` entry (alertd's): one line per alert on standard output."""

    send_resolved: bool = True
    text: str = DEFAULT_CONSOLE_TEXT
    format: Literal["text", "json"] = "text"

    @field_validator("text")
    @classmethod
    def _formats(cls, value: str) -> str:
        return check_format(value)


class ReceiverConfig(Section):
    """A ``receivers`` entry: a name and the integrations a notification for it goes to."""

    unsupported = frozenset(
        {
            "opsgenie_configs",
            "wechat_configs",
            "pushover_configs",
            "victorops_configs",
            "sns_configs",
            "telegram_configs",
            "webex_configs",
            "discord_configs",
            "msteams_configs",
            "msteamsv2_configs",
            "jira_configs",
            "rocketchat_configs",
        }
    )

    name: str
    slack_configs: tuple[SlackConfig, ...] = ()
    email_configs: tuple[EmailConfig, ...] = ()
    pagerduty_configs: tuple[PagerDutyConfig, ...] = ()
    webhook_configs: tuple[WebhookConfig, ...] = ()
    console_configs: tuple[ConsoleConfig, ...] = ()
    fallback_receivers: tuple[str, ...] = ()
    """alertd: receivers that get a notification this receiver's integrations gave up on."""

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name:
            raise ValueError("missing name in receiver")
        return name


def alerting_global(data: Mapping[str, Any] | None, context: Any = None) -> AlertingGlobal:
    """The Alertmanager keys of a raw ``global`` mapping, validated (the defaults if invalid:
    the ``global`` section reports its own errors)."""
    picked = {key: value for key, value in (data or {}).items() if key in AlertingGlobal.keys}
    try:
        return AlertingGlobal.model_validate(picked, context=context)
    except ValidationError:
        return AlertingGlobal()


def with_global_defaults(receivers: Any, glob: AlertingGlobal) -> Any:
    """Raw ``receivers`` with the ``global`` settings copied into the integrations that lack them.

    Works on the parsed YAML before validation, as Prometheus' job defaults do; anything that is
    not the expected shape is passed on untouched for validation to report.
    """
    if not isinstance(receivers, list):
        return receivers
    out: list[Any] = []
    for receiver in receivers:
        if isinstance(receiver, dict):
            receiver = dict(receiver)
            for key, fill in (
                ("slack_configs", _slack_defaults),
                ("email_configs", _email_defaults),
                ("pagerduty_configs", _pagerduty_defaults),
                ("webhook_configs", _webhook_defaults),
            ):
                entries = receiver.get(key)
                if isinstance(entries, list):
                    receiver[key] = [fill(dict(e), glob) if isinstance(e, dict) else e for e in entries]
        out.append(receiver)
    return out


def _http_default(entry: dict[str, Any], glob: AlertingGlobal) -> dict[str, Any]:
    if entry.get("http_config") is None and glob.http_config is not None:
        entry["http_config"] = glob.http_config
    return entry


def _slack_defaults(entry: dict[str, Any], glob: AlertingGlobal) -> dict[str, Any]:
    _http_default(entry, glob)
    has_token = entry.get("token") is not None or entry.get("token_file") is not None
    # A global incoming-webhook URL means nothing to a bot token, which talks to the Web API.
    if not has_token and entry.get("api_url") is None and entry.get("api_url_file") is None:
        if glob.slack_api_url is not None:
            entry["api_url"] = glob.slack_api_url
    return entry


def _email_defaults(entry: dict[str, Any], glob: AlertingGlobal) -> dict[str, Any]:
    for key, value in (
        ("smarthost", glob.smtp_smarthost),
        ("from", glob.smtp_from),
        ("hello", glob.smtp_hello),
        ("auth_username", glob.smtp_auth_username),
    ):
        if not entry.get(key):
            entry[key] = value
    if entry.get("auth_password") is None and entry.get("auth_password_file") is None:
        if glob.smtp_auth_password is not None:
            entry["auth_password"] = glob.smtp_auth_password
    if entry.get("require_tls") is None:
        entry["require_tls"] = glob.smtp_require_tls
    if entry.get("tls_config") is None and glob.smtp_tls_config is not None:
        entry["tls_config"] = glob.smtp_tls_config
    return entry


def _pagerduty_defaults(entry: dict[str, Any], glob: AlertingGlobal) -> dict[str, Any]:
    _http_default(entry, glob)
    if not entry.get("url"):
        entry["url"] = glob.pagerduty_url
    return entry


def _webhook_defaults(entry: dict[str, Any], glob: AlertingGlobal) -> dict[str, Any]:
    return _http_default(entry, glob)


def _canonical_header(name: str) -> str:
    # Go's textproto.CanonicalMIMEHeaderKey: "x-priority" -> "X-Priority".
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
