"""A plain SMTP server on 127.0.0.1 (aiosmtpd, in its own thread) that keeps every mail it is sent.

::

    with RecordingSMTP() as smtp:
        ... smarthost: f"127.0.0.1:{smtp.port}", require_tls: false ...
        smtp.mailbox("alerts@example.com")[0].message["Subject"]

No STARTTLS and no AUTH: it stands in for a relay on a trusted network. ``aiosmtpd`` comes with
the test extra.
"""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from daemon.testing.process import free_port


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted SMTP transaction: the envelope and the parsed message."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    def text(self) -> str:
        """The text/plain part (the whole body of a message that is not multipart)."""
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""  # type: ignore[no-any-return]


class RecordingSMTP:
    """Accepts every mail for any recipient; ``mails`` lists them in the order they arrived.

    Safe to read from the test's thread while the server's thread appends.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._mails: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname=host, port=self.port)

    @property
    def smarthost(self) -> str:
        """``host:port``, as ``smtp_smarthost`` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def mailbox(self, address: str) -> list[ReceivedMail]:
        """The mails whose envelope named ``address`` (case-insensitive)."""
        wanted = address.lower()
        return [m for m in self.mails if wanted in (r.lower() for r in m.recipients)]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        mail = ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), message)  # type: ignore[arg-type]
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> RecordingSMTP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
