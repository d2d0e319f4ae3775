"""What an integration is given (a ``Notification``), what it raises (``DeliveryError``), and how a
receiver's config becomes its integrations (``build_integrations``).

An ``Integration`` makes ONE delivery attempt per ``notify`` call; retrying, backoff, deadlines
and the notification log belong to the pipeline that calls it. An attempt that fails raises
``DeliveryError`` saying whether trying again can help and, when the peer said so
(``Retry-After``), after how long.
"""

from __future__ import annotations

import email.utils
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TextIO, TypeVar

import httpx

from daemon.clock import Clock
from daemon.config.httpclient import TLSConfig
from daemon.config.receivers import HTTPConfig, ReceiverConfig

if TYPE_CHECKING:
    import aiohttp

    from daemon.dispatch.alert import Alert
    from daemon.store import StateStore

FIRING = "firing"
RESOLVED = "resolved"


@dataclass(frozen=True)
class Notification:
    """One flush of an aggregation group to one receiver.

    ``alerts`` are firing first, then resolved (Alertmanager's order); whether an alert is
    resolved is decided at ``now``, the time of the flush, so every integration of the receiver
    sees the same picture.
    """

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    external_url: str
    now: float

    @property
    def status(self) -> str:
        """``firing`` if any alert is firing at ``now``, else ``resolved``."""
        return FIRING if self.firing else RESOLVED

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if not a.resolved_at(self.now))

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.resolved_at(self.now))

    @property
    def common_labels(self) -> dict[str, str]:
        """Labels every alert has with the same value (Alertmanager's ``CommonLabels``)."""
        return _common([dict(a.labels.items()) for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([dict(a.annotations) for a in self.alerts])


class DeliveryError(Exception):
    """One delivery attempt failed.

    ``retryable`` says whether the same notification may succeed later (timeouts, 5xx, 429, SMTP
    4xx); ``retry_after`` is the wait the peer asked for, in seconds, if it said.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Integration(Protocol):
    """One ``*_configs`` entry of a receiver.

    ``name`` is the kind ("slack", "email", "pagerduty", "webhook", "console"), ``index`` its
    position among the receiver's entries of that kind; together with the receiver's name they
    identify it in the notification log and in metrics. ``notify`` makes one attempt and returns
    when the peer accepted the notification, or raises ``DeliveryError``; it is not called for a
    resolved notification unless ``send_resolved``.
    """

    name: str
    index: int
    send_resolved: bool

    async def notify(self, notification: Notification) -> None: ...


def build_integrations(
    receiver: ReceiverConfig,
    *,
    http: httpx.AsyncClient,
    aiohttp_session: aiohttp.ClientSession | None,
    clock: Clock,
    store: StateStore | None = None,
    stdout: TextIO | None = None,
) -> list[Integration]:
    """The integrations of ``receiver``, in config order (slack, email, pagerduty, webhook, console).

    ``http`` is the shared client for PagerDuty and webhooks (an entry whose ``http_config`` sets
    ``tls_config`` or ``proxy_url`` gets a client of its own, closed by ``close_integrations``);
    ``aiohttp_session`` is the long-lived session Slack's client runs on; ``store`` keeps the
    Slack messages that ``update_message`` edits (a memory store when None); ``stdout`` is where
    console receivers print (``sys.stdout`` when None).
    """
    from daemon.notify.console import ConsoleIntegration
    from daemon.notify.email import EmailIntegration
    from daemon.notify.pagerduty import PagerDutyIntegration
    from daemon.notify.slack import SlackIntegration
    from daemon.notify.webhook import WebhookIntegration
    from daemon.store import MemoryStateStore

    state = store if store is not None else MemoryStateStore()
    built: list[Integration] = []
    for i, slack in enumerate(receiver.slack_configs):
        if aiohttp_session is None:
            raise ValueError("Slack integrations need an aiohttp session")
        built.append(SlackIntegration(receiver.name, i, slack, session=aiohttp_session, store=state, clock=clock))
    for i, mail in enumerate(receiver.email_configs):
        built.append(EmailIntegration(receiver.name, i, mail, clock=clock))
    for i, pd in enumerate(receiver.pagerduty_configs):
        built.append(PagerDutyIntegration(receiver.name, i, pd, http=client_for(pd.http_config, http), clock=clock))
    for i, hook in enumerate(receiver.webhook_configs):
        built.append(WebhookIntegration(receiver.name, i, hook, http=client_for(hook.http_config, http), clock=clock))
    for i, console in enumerate(receiver.console_configs):
        built.append(ConsoleIntegration(receiver.name, i, console, stream=stdout or sys.stdout))
    return built


async def close_integrations(integrations: list[Integration]) -> None:
    """Release what integrations own (HTTP clients made for their own TLS or proxy settings)."""
    for integration in integrations:
        close = getattr(integration, "aclose", None)
        if close is not None:
            await close()


def owns_client(config: HTTPConfig | None) -> bool:
    """Whether an entry with this ``http_config`` needs a client of its own (TLS settings, a proxy)."""
    return config is not None and (config.tls_config is not None or config.proxy_url is not None)


def client_for(config: HTTPConfig | None, shared: httpx.AsyncClient) -> httpx.AsyncClient:
    """``shared`` unless ``config`` needs a transport of its own (``owns_client``)."""
    if config is None or not owns_client(config):
        return shared
    return httpx.AsyncClient(
        verify=ssl_context(config.tls_config) if config.tls_config is not None else True,
        proxy=config.proxy_url,
        follow_redirects=config.follow_redirects,
    )


def ssl_context(tls: TLSConfig | None) -> ssl.SSLContext:
    """A client TLS context from a ``tls_config`` (system CAs when none is given)."""
    context = ssl.create_default_context(cafile=tls.ca_file if tls and tls.ca_file else None)
    if tls is not None:
        if tls.cert_file and tls.key_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.insecure_skip_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    return context


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def retryable_status(status: int) -> bool:
    """Whether an HTTP answer with this status may succeed later: 429 and 5xx; other 4xx are permanent."""
    return status == 429 or status >= 500


def http_failure(what: str, status: int, body: str, retry_after: float | None) -> DeliveryError:
    """The error for an HTTP answer that is not a success (``retryable_status``)."""
    detail = " ".join(body.split())[:300]
    retryable = retryable_status(status)
    message = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
    return DeliveryError(message, retryable=retryable, retry_after=retry_after if retryable else None)


async def post_json(
    http: httpx.AsyncClient,
    what: str,
    url: str,
    payload: bytes,
    *,
    config: HTTPConfig | None,
    clock: Clock,
    timeout: float | None = None,
) -> httpx.Response:
    """POST a JSON body; transport errors and non-2xx answers become ``DeliveryError``."""
    headers = {"Content-Type": "application/json", "User-Agent": "alertd"}
    if config is not None:
        headers.update(config.auth_headers())
    try:
        response = await http.post(
            url,
            content=payload,
            headers=headers,
            timeout=timeout if timeout else httpx.USE_CLIENT_DEFAULT,
            follow_redirects=config.follow_redirects if config is not None else True,
        )
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", retryable=True) from None
    if not 200 <= response.status_code < 300:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), clock.time())
        raise http_failure(what, response.status_code, response.text, retry_after)
    return response


class HTTPEntry(Protocol):
    """What an HTTP integration reads of its ``*_configs`` entry besides its own fields."""

    @property
    def send_resolved(self) -> bool: ...

    @property
    def http_config(self) -> HTTPConfig | None: ...


EntryT = TypeVar("EntryT", bound=HTTPEntry)


class HTTPIntegration(Generic[EntryT]):
    """An integration that POSTs JSON (PagerDuty, webhooks); subclasses set ``name`` and ``notify``.

    ``http`` is the client ``client_for`` chose for ``config``: the shared one, or one of the
    entry's own, which ``aclose`` closes.
    """

    name: str

    def __init__(self, receiver: str, index: int, config: EntryT, *, http: httpx.AsyncClient, clock: Clock) -> None:
        self.receiver = receiver
        self.index = index
        self.config = config
        self.send_resolved = config.send_resolved
        self._http = http
        self._clock = clock

    async def post(self, url: str, body: bytes, *, timeout: float | None = None) -> httpx.Response:
        """One attempt (``post_json``) with the entry's ``http_config``."""
        return await post_json(
            self._http, self.name, url, body, config=self.config.http_config, clock=self._clock, timeout=timeout
        )

    async def aclose(self) -> None:
        if owns_client(self.config.http_config):
            await self._http.aclose()


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def describe(value: Any) -> str:
    """A short printable form of a peer's error value for messages and logs."""
    return " ".join(str(value).split())[:300]
