"""The console receiver (alertd's): notifications printed on standard output, one line per alert.

The embedded default config routes to it, so that ``make run`` shows what would be sent.
"""

from __future__ import annotations

import json
from typing import TextIO

from daemon.config.receivers import ConsoleConfig
from daemon.notify.message import alert_fields, render, single_line
from daemon.notify.notification import Notification


class ConsoleIntegration:
    """Writes each alert of a notification as one line (``text`` format) or one JSON object."""

    name = "console"

    def __init__(self, receiver: str, index: int, config: ConsoleConfig, *, stream: TextIO) -> None:
        self.receiver = receiver
        self.index = index
        self.config = config
        self.send_resolved = config.send_resolved
        self._stream = stream

    async def notify(self, notification: Notification) -> None:
        lines = []
        for alert in notification.alerts:
            fields = alert_fields(alert, notification)
            if self.config.format == "json":
                lines.append(json.dumps({"receiver": notification.receiver, "group_key": notification.group_key, **fields}))
            else:
                lines.append(f"{notification.receiver}: " + render(self.config.text, fields, escape=single_line, limit=1000))
        self._stream.write("".join(line + "\n" for line in lines))
        self._stream.flush()
