"""Email receiver: one multipart/alternative message (text + HTML) per notification, over SMTP.

Port 465 is implicit TLS; on other ports ``require_tls`` demands STARTTLS (and refuses a server
that does not offer it), as Alertmanager does. AUTH is used when ``auth_username`` is set and the
server offers it. Label and annotation values reach headers only through ``single_line`` and a
length cap, so a value with CR/LF cannot add a header. SMTP 4xx answers are retryable, 5xx are
not; recipients the server refuses are named in the error.
"""

from __future__ import annotations

import email.policy
import email.utils
import ssl
from email.message import EmailMessage

import aiosmtplib

from daemon.clock import Clock
from daemon.config.receivers import EmailConfig
from daemon.notify.message import first_fields, html_escape, render, render_alerts, single_line, truncate
from daemon.notify.notification import DeliveryError, Notification, ssl_context

HEADER_FIELD_LIMIT = 256
HEADER_LIMIT = 2000
BODY_FIELD_LIMIT = 20000
SMTP_TIMEOUT = 30.0
IMPLICIT_TLS_PORT = 465
HTML_ALERT = (
    "<h3>[{severity}] {alert_name}</h3>\n<table>\n"
    "<tr><th align=\"left\">Alert</th><td>{alert_name}</td></tr>\n"
    "<tr><th align=\"left\">Severity</th><td>{severity}</td></tr>\n"
    "<tr><th align=\"left\">Status</th><td>{status}</td></tr>\n"
    "<tr><th align=\"left\">Metric</th><td>{metric_name}</td></tr>\n"
    "<tr><th align=\"left\">Current Value</th><td>{current_value}</td></tr>\n"
    "<tr><th align=\"left\">Threshold</th><td>{threshold}</td></tr>\n"
    "<tr><th align=\"left\">Time</th><td>{timestamp}</td></tr>\n"
    "<tr><th align=\"left\">Dashboard</th><td><a href=\"{dashboard_url}\">{dashboard_url}</a></td></tr>\n"
    "</table>"
)


def header_value(template: str, fields: dict[str, str]) -> str:
    """A header rendered from ``template``: every value on one line and capped."""
    return truncate(single_line(render(template, fields, escape=single_line, limit=HEADER_FIELD_LIMIT)).strip(), HEADER_LIMIT)


def recipients(config: EmailConfig, fields: dict[str, str]) -> list[str]:
    """The addresses of ``to`` (comma-separated, as Alertmanager takes it)."""
    return [addr for _, addr in email.utils.getaddresses([header_value(config.to, fields)]) if "@" in addr]


def build_message(config: EmailConfig, notification: Notification, now: float) -> EmailMessage:
    """The message for ``notification``: headers from the config, text and HTML alternatives."""
    fields = first_fields(notification)
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = header_value(config.from_, fields)
    message["To"] = ", ".join(recipients(config, fields)) or header_value(config.to, fields)
    subject = header_value(config.subject, fields)
    if len(notification.alerts) > 1:
        subject += f" (+{len(notification.alerts) - 1} more)"
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(now, localtime=False)
    message["Message-Id"] = email.utils.make_msgid(domain=config.hello or "localhost")
    for name, template in config.headers.items():
        if name in message:
            del message[name]
        message[name] = header_value(template, fields)
    text = render_alerts(notification, config.text, limit=BODY_FIELD_LIMIT, separator="\n\n---\n\n")
    html_form = config.html if config.html is not None else HTML_ALERT
    html = render_alerts(notification, html_form, escape=html_escape, limit=BODY_FIELD_LIMIT, separator="\n<hr>\n")
    message.set_content(text + "\n")
    message.add_alternative(f"<!DOCTYPE html>\n<html><body>\n{html}\n</body></html>\n", subtype="html")
    return message


class EmailIntegration:
    """Sends over one SMTP connection per notification (opened and closed by each attempt)."""

    name = "email"

    def __init__(self, receiver: str, index: int, config: EmailConfig, *, clock: Clock) -> None:
        self.receiver = receiver
        self.index = index
        self.config = config
        self.send_resolved = config.send_resolved
        self._clock = clock

    async def notify(self, notification: Notification) -> None:
        message = build_message(self.config, notification, self._clock.time())
        to = recipients(self.config, first_fields(notification))
        if not to:
            raise DeliveryError(f"email: no valid recipient address in {self.config.to!r}", retryable=False)
        sender = email.utils.parseaddr(message["From"])[1]
        try:
            await self._send(sender, to, message)
        except DeliveryError:
            raise
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(f"{r.recipient} ({r.code} {describe_smtp(r.message)})" for r in exc.recipients)
            retryable = all(400 <= r.code < 500 for r in exc.recipients)
            raise DeliveryError(f"email: every recipient refused: {refused}", retryable=retryable) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"email: {self.config.smarthost} answered {exc.code} {describe_smtp(exc.message)}", retryable=400 <= exc.code < 500
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"email: {self.config.smarthost}: {type(exc).__name__}: {exc}", retryable=True) from None

    async def _send(self, sender: str, to: list[str], message: EmailMessage) -> None:
        config = self.config
        implicit = config.port == IMPLICIT_TLS_PORT
        context = ssl_context(config.tls_config)
        smtp = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=implicit,
            start_tls=False,
            tls_context=context,
            local_hostname=config.hello or "localhost",
            timeout=SMTP_TIMEOUT,
        )
        await smtp.connect()
        try:
            await smtp.ehlo()
            if not implicit and config.require_tls:
                if not smtp.supports_extension("starttls"):
                    raise DeliveryError(
                        f"email: require_tls is true (the default) but {config.smarthost} does not advertise the STARTTLS extension",
                        retryable=False,
                    )
                await smtp.starttls(tls_context=context)
                await smtp.ehlo()  # the extensions offered over TLS (AUTH) may differ
            if config.auth_username and smtp.supports_extension("auth"):
                password = config.auth_password.reveal() if config.auth_password else ""
                await smtp.login(config.auth_username, password)
            refused, _ = await smtp.sendmail(sender, to, message.as_bytes(policy=email.policy.SMTP))
            if refused:
                accepted = [r for r in to if r not in refused]
                detail = ", ".join(f"{r} ({resp.code} {describe_smtp(resp.message)})" for r, resp in refused.items())
                # The others already have it: a retry would send it to them twice.
                raise DeliveryError(f"email: sent to {', '.join(accepted)}; refused {detail}", retryable=False)
        finally:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


def describe_smtp(message: str) -> str:
    return " ".join(str(message).split())[:300]
