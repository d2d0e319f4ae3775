"""Email over a real SMTP server on 127.0.0.1 (aiosmtpd): STARTTLS, AUTH, implicit TLS, refusals, header safety."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from daemon.clock import FakeClock
from daemon.config.receivers import ReceiverConfig
from daemon.dispatch.alert import Alert
from daemon.notify.email import EmailIntegration
from daemon.notify.notification import DeliveryError, Notification, build_integrations
from daemon.tsdb.labels import Labels

NOW = 1_700_000_000.0
EXPR_URL = "http://p/graph?g0.expr=rate%28http_requests_total%7Bstatus%3D~%225..%22%7D%5B5m%5D%29+%3E+0.05&g0.tab=1"


class Mailbox:
    """An aiosmtpd handler keeping messages; recipients in ``refuse`` get that SMTP answer."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.refuse: dict[str, str] = {}
        self.logins: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and (data.login, data.password) == (b"alertd", b"s3cret"):
            self.logins.append(mechanism)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    return context


@pytest.fixture
def smtp(certificate: tuple[Path, Path]) -> Iterator[tuple[Mailbox, int]]:
    """A server demanding STARTTLS and AUTH (only over TLS)."""
    box = Mailbox()
    controller = Controller(
        box, hostname="127.0.0.1", port=free_port(), tls_context=_server_context(certificate), require_starttls=True,
        authenticator=box.authenticate, auth_require_tls=True,
    )  # fmt: skip
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def plain_smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


def integration(port: int, certificate: tuple[Path, Path] | None = None, **extra: Any) -> EmailIntegration:
    config: dict[str, Any] = {
        "to": "alerts@digitallz.com, dev-team@digitallz.com, management@digitallz.com",
        "from": "alertd <alertd@digitallz.com>",
        "smarthost": f"127.0.0.1:{port}",
        "hello": "alertd.test",
        **extra,
    }
    if certificate is not None:
        config.setdefault("tls_config", {"ca_file": str(certificate[0])})
    receiver = ReceiverConfig.model_validate({"name": "mail", "email_configs": [config]})
    (built,) = build_integrations(receiver, http=None, aiohttp_session=None, clock=FakeClock(NOW))  # type: ignore[arg-type]
    assert isinstance(built, EmailIntegration)
    return built


def alert(resolved: bool = False, **labels: str) -> Alert:
    return Alert(
        labels=Labels.of({"alertname": "HighErrorRate", "severity": "P0", **labels}),
        annotations={"current_value": "0.07", "dashboard_url": "https://grafana/d/api"},
        starts_at=NOW - 300,
        ends_at=NOW - 1 if resolved else NOW + 300,
        generator_url=EXPR_URL,
    )


def notification(*alerts: Alert) -> Notification:
    return Notification("mail", "{}:{}", {}, alerts, "http://alertd:9095", NOW)


async def test_starttls_auth_and_the_specification_format(smtp: tuple[Mailbox, int], certificate: tuple[Path, Path]) -> None:
    box, port = smtp
    await integration(port, certificate, auth_username="alertd", auth_password="s3cret").notify(notification(alert()))
    ((sender, rcpts, message),) = box.messages
    assert sender == "alertd@digitallz.com" and box.logins
    assert rcpts == ["alerts@digitallz.com", "dev-team@digitallz.com", "management@digitallz.com"]
    assert message["Subject"] == "[P0] HighErrorRate - 2023-11-14 22:08:20 UTC"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    assert text.splitlines() == [
        "Alert: HighErrorRate",
        "Severity: P0",
        "Metric: http_requests_total",
        "Current Value: 0.07",
        "Threshold: 0.05",
        "Time: 2023-11-14 22:08:20 UTC",
        "Dashboard: https://grafana/d/api",
    ]
    html = message.get_body(("html",)).get_content()
    assert "<td>http_requests_total</td>" in html and "<td>0.05</td>" in html


async def test_require_tls_refuses_a_server_without_starttls(plain_smtp: tuple[Mailbox, int]) -> None:
    box, port = plain_smtp
    with pytest.raises(DeliveryError) as info:
        await integration(port).notify(notification(alert()))
    assert not info.value.retryable and "STARTTLS" in str(info.value)
    await integration(port, require_tls=False).notify(notification(alert()))
    assert len(box.messages) == 1


async def test_wrong_password_is_permanent(smtp: tuple[Mailbox, int], certificate: tuple[Path, Path]) -> None:
    with pytest.raises(DeliveryError) as info:
        await integration(smtp[1], certificate, auth_username="alertd", auth_password="wrong").notify(notification(alert()))
    assert not info.value.retryable and "535" in str(info.value)


async def test_untrusted_certificate_fails(smtp: tuple[Mailbox, int]) -> None:
    with pytest.raises(DeliveryError) as info:
        await integration(smtp[1]).notify(notification(alert()))
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value) or "certificate" in str(info.value).lower()


async def test_refused_recipient_is_reported(plain_smtp: tuple[Mailbox, int]) -> None:
    box, port = plain_smtp
    box.refuse["dev-team@digitallz.com"] = "550 5.1.1 no such user"
    with pytest.raises(DeliveryError) as info:
        await integration(port, require_tls=False).notify(notification(alert()))
    # Delivered to the others: a retry would send it to them twice.
    assert not info.value.retryable and "dev-team@digitallz.com (550" in str(info.value)
    assert box.messages[0][1] == ["alerts@digitallz.com", "management@digitallz.com"]


@pytest.mark.parametrize(("answer", "retryable"), [("450 4.2.1 mailbox busy", True), ("550 5.1.1 no such user", False)])
async def test_every_recipient_refused(plain_smtp: tuple[Mailbox, int], answer: str, retryable: bool) -> None:
    box, port = plain_smtp
    box.refuse["a@x.org"] = answer
    with pytest.raises(DeliveryError) as info:
        await integration(port, to="a@x.org", require_tls=False).notify(notification(alert()))
    assert info.value.retryable is retryable and "a@x.org" in str(info.value)


async def test_unreachable_server_is_retryable() -> None:
    with pytest.raises(DeliveryError) as info:
        await integration(9, require_tls=False).notify(notification(alert()))
    assert info.value.retryable


async def test_label_values_cannot_inject_headers(plain_smtp: tuple[Mailbox, int]) -> None:
    box, port = plain_smtp
    evil = alert(alertname="X\r\nBcc: victim@evil.example\r\n\r\nbody", severity="P0\nX-Injected: 1", team="<b>&</b>")
    config = {"require_tls": False, "headers": {"X-Team": "{team}\r\n"}, "html": "<p>{team}</p>"}
    await integration(port, **config).notify(notification(evil))
    ((_, rcpts, message),) = box.messages
    assert "victim@evil.example" not in rcpts and message["Bcc"] is None and message["X-Injected"] is None
    assert "\n" not in message["Subject"] and "Bcc: victim@evil.example" in message["Subject"]
    assert message["X-Team"] == "<b>&</b>"
    assert "<p>&lt;b&gt;&amp;&lt;/b&gt;</p>" in message.get_body(("html",)).get_content()


async def test_huge_values_are_cut_in_headers_and_bodies(plain_smtp: tuple[Mailbox, int]) -> None:
    box, port = plain_smtp
    await integration(port, require_tls=False).notify(notification(alert(alertname="A" * 100_000)))
    ((_, _, message),) = box.messages
    assert len(message["Subject"]) < 400
    assert len(message.get_body(("plain",)).get_content()) < 30_000


async def test_implicit_tls_on_port_465(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 465 itself may be taken on the test machine; the port that means implicit TLS is moved.
    box = Mailbox()
    port = free_port()
    monkeypatch.setattr("daemon.notify.email.IMPLICIT_TLS_PORT", port)
    controller = Controller(box, hostname="127.0.0.1", port=port, ssl_context=_server_context(certificate))
    controller.start()
    try:
        await integration(port, certificate).notify(notification(alert()))
    finally:
        controller.stop()
    assert len(box.messages) == 1


async def test_several_alerts_one_message(plain_smtp: tuple[Mailbox, int]) -> None:
    box, port = plain_smtp
    await integration(port, require_tls=False, send_resolved=True).notify(notification(alert(instance="a"), alert(resolved=True, instance="b")))
    ((_, _, message),) = box.messages
    assert message["Subject"].endswith("(+1 more)")
    assert message.get_body(("plain",)).get_content().count("Alert: HighErrorRate") == 2
