"""The tcp and tls probers: connect (over TLS if asked), then an optional line dialogue."""

from __future__ import annotations

import asyncio
import re
import ssl

from daemon.config.httpclient import TLSConfig
from daemon.config.probes import TCPProbe, compile_search
from daemon.probe.prober import ProbeReport
from daemon.probe.tls import earliest_expiry, ssl_context

_LINE_LIMIT = 64 * 1024  # as Go's bufio.Scanner, which blackbox_exporter reads lines with
_EXPANSION = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


class TCPProber:
    """Probes ``host:port`` targets with one job's ``tcp`` settings.

    Succeeds when the connection (and TLS handshake, when ``tls`` is set) succeeds and every
    ``query_response`` step does: an ``expect`` reads lines until one matches (the connection
    closing first fails the probe), a ``send`` writes its text and a newline, a ``starttls``
    upgrades the connection.
    """

    def __init__(self, settings: TCPProbe) -> None:
        self._settings = settings
        self._steps = [(step, compile_search(step.expect) if step.expect else None) for step in settings.query_response]
        self._context: ssl.SSLContext | None = None
        self._setup_error = ""
        if settings.tls or any(step.starttls for step in settings.query_response):
            try:
                self._context = ssl_context(settings.tls_config)
            except (ssl.SSLError, OSError) as exc:
                self._setup_error = f"cannot load tls_config: {exc}"

    async def probe(self, target: str, report: ProbeReport) -> None:
        if self._setup_error:
            report.fail(self._setup_error)
            return
        settings = self._settings
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        server_name = settings.tls_config.server_name or host
        if self._steps:
            report.values["probe_failed_due_to_regex"] = 0.0
        try:
            reader, writer = await asyncio.open_connection(
                host,
                int(port),
                ssl=self._context if settings.tls else None,
                server_hostname=server_name if settings.tls else None,
                limit=_LINE_LIMIT,
            )
        except (OSError, ssl.SSLError) as exc:
            report.fail(f"connection failed: {_reason(exc)}")
            return
        try:
            self._record_certificate(writer, report)
            await self._dialogue(reader, writer, server_name, report)
        except (OSError, ssl.SSLError) as exc:
            report.fail(f"connection failed: {_reason(exc)}")
        finally:
            # Not waiting for the close: a peer that never acknowledges must not hold the probe.
            writer.close()

    async def _dialogue(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server_name: str, report: ProbeReport
    ) -> None:
        for step, expect in self._steps:
            match: re.Match[str] | None = None
            if expect is not None:
                match = await _read_until(reader, expect)
                if match is None:
                    report.values["probe_failed_due_to_regex"] = 1.0
                    report.fail(f"no line matched {step.expect!r} before the connection closed")
                    return
            if step.send is not None:
                line = _expand(step.send, match) if match is not None else step.send
                writer.write(line.encode() + b"\n")
                await writer.drain()
            if step.starttls:
                assert self._context is not None  # built whenever a step asks for starttls
                await writer.start_tls(self._context, server_hostname=server_name)
                self._record_certificate(writer, report)

    def _record_certificate(self, writer: asyncio.StreamWriter, report: ProbeReport) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        expiry = earliest_expiry(ssl_object)
        if expiry is not None:
            report.values["probe_ssl_earliest_cert_expiry"] = expiry

    async def aclose(self) -> None:
        return None


def tls_prober(tls: TLSConfig) -> TCPProber:
    """The tls prober: a TLS handshake with ``host:port`` and the certificates it presents."""
    return TCPProber(TCPProbe(tls=True, tls_config=tls))


async def _read_until(reader: asyncio.StreamReader, expect: re.Pattern[str]) -> re.Match[str] | None:
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # a line longer than the limit
            raise OSError(f"line longer than {_LINE_LIMIT} bytes") from None
        if not line:
            return None
        # As Go's ScanLines: the newline and one carriage return before it are not part of the line.
        text = line.removesuffix(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")
        match = expect.search(text)
        if match is not None:
            return match


def _expand(template: str, match: re.Match[str]) -> str:
    """``template`` with ``$1``, ``${1}``, ``${name}`` replaced by groups of ``match`` (Go's Regexp.Expand)."""

    def group(ref: re.Match[str]) -> str:
        name = ref.group(1) or ref.group(2)
        if name is None:
            return "$"
        try:
            return match.group(int(name) if name.isdigit() else name) or ""
        except IndexError:  # no such group: empty, as in Go
            return ""

    return _EXPANSION.sub(group, template)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
