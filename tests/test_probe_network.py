"""Probers against real servers on 127.0.0.1: HTTP, TCP and TLS, with certificates made by openssl."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from daemon.clock import FakeClock
from daemon.config import parse_config
from daemon.config.probes import ProbeConfig
from daemon.probe import ProbeLoop, ProbeReport, prober_for
from daemon.probe.tls import not_after
from daemon.tsdb import Store, parse_selector

DAY = 86400.0

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")


@dataclass(frozen=True)
class Certificates:
    """A test CA, and a server certificate for localhost/127.0.0.1 it signed, valid 10 more days."""

    ca: Path
    cert: Path
    key: Path

    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certificates]:
    d = tmp_path_factory.mktemp("certs")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"), "-days", "365",
             "-subj", "/CN=alertd test CA")
    _openssl("req", *ec, "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"), "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-out", str(d / "server.pem"), "-days", "10", "-extfile", str(d / "ext.cnf"))
    yield Certificates(d / "ca.pem", d / "server.pem", d / "server.key")


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="status: ok")


async def _broken(request: web.Request) -> web.Response:
    return web.Response(status=500, text="database unavailable")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(30)
    return web.Response(text="too late")


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ok")


@dataclass
class Site:
    base: str
    requests: list[web.Request]


async def _site(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Site]:
    seen: list[web.Request] = []

    @web.middleware
    async def record(request: web.Request, handler):  # type: ignore[no-untyped-def]
        seen.append(request)
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.add_routes([web.get("/ok", _ok), web.get("/broken", _broken), web.get("/slow", _slow), web.get("/moved", _moved),
                    web.post("/ok", _ok)])
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    scheme = "https" if ssl_context else "http"
    host = "localhost" if ssl_context else "127.0.0.1"
    try:
        yield Site(f"{scheme}://{host}:{port}", seen)
    finally:
        await runner.cleanup()


@pytest.fixture
async def http_site() -> AsyncIterator[Site]:
    async for site in _site():
        yield site


@pytest.fixture
async def https_site(certs: Certificates) -> AsyncIterator[Site]:
    async for site in _site(certs.server_context()):
        yield site


async def _redis_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"+HELLO stub-1\r\n")
    while line := await reader.readline():
        command = line.strip()
        if command == b"PING":
            writer.write(b"+PONG\r\n")
        elif command == b"QUIT":
            writer.write(b"+OK\r\n")
            break
        elif command.startswith(b"ECHO "):
            writer.write(b"+" + command[5:] + b"\r\n")
        elif command:
            writer.write(b"-ERR unknown command\r\n")
        await writer.drain()
    writer.close()


@pytest.fixture
async def redis_port() -> AsyncIterator[int]:
    server = await asyncio.start_server(_redis_like, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
async def tls_port(certs: Certificates) -> AsyncIterator[int]:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=certs.server_context())
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe_config(body: str, certs: Certificates | None = None) -> ProbeConfig:
    # The target probed is given to the loop; the config needs one to load.
    text = "probes:\n  - job_name: check\n    interval: 15s\n    targets: [\"localhost:1\"]\n" + body
    if certs is not None:
        text = text.replace("CA_FILE", str(certs.ca))
    return parse_config(text, "test.yml").probes[0]


async def probe(config: ProbeConfig, target: str, store: Store | None = None) -> tuple[ProbeReport, Store, float]:
    """One probe through a real loop; returns its report, the store and the probe's timestamp."""
    store = store or Store()
    clock = FakeClock(start=time.time())
    prober = prober_for(config)
    loop = ProbeLoop(config.job_name, target, prober, store, clock, interval=config.interval, timeout=config.timeout,
                     labels=config.labels)
    try:
        report = await loop.probe_once()
    finally:
        await prober.aclose()
    return report, store, clock.time()


def value(store: Store, selector: str, at: float) -> float | None:
    series = store.select(parse_selector(selector))
    assert len(series) == 1, [str(s.labels) for s in series]
    return series[0].latest_at(int(at * 1000))


HTTP = "    prober: http\n    timeout: 1s\n"


async def test_http_200_succeeds_with_blackbox_series(http_site: Site) -> None:
    config = probe_config(HTTP + "    labels: {severity_hint: p0}\n    http: {fail_if_body_not_matches_regexp: ['ok$']}\n")
    target = http_site.base + "/ok"
    report, store, now = await probe(config, target)
    assert report.succeeded, report.failure
    labels = f'job="check",instance="{target}",severity_hint="p0"'
    assert value(store, f"probe_success{{{labels}}}", now) == 1
    assert value(store, f"probe_http_status_code{{{labels}}}", now) == 200
    assert value(store, f"probe_http_ssl{{{labels}}}", now) == 0
    assert value(store, f"probe_http_version{{{labels}}}", now) == 1.1
    assert value(store, f"probe_failed_due_to_regex{{{labels}}}", now) == 0
    assert 0 < value(store, f"probe_duration_seconds{{{labels}}}", now) < 1  # type: ignore[operator]
    assert store.select(parse_selector("probe_ssl_earliest_cert_expiry")) == []


async def test_http_500_fails_and_reports_the_status(http_site: Site) -> None:
    report, store, now = await probe(probe_config(HTTP), http_site.base + "/broken")
    assert report.failure == "invalid HTTP status 500 Internal Server Error"
    assert value(store, "probe_success", now) == 0
    assert value(store, "probe_http_status_code", now) == 500


async def test_http_valid_status_codes_and_body_regex(http_site: Site) -> None:
    config = probe_config(HTTP + "    http: {valid_status_codes: [500], fail_if_body_matches_regexp: ['database \\w+']}\n")
    report, store, now = await probe(config, http_site.base + "/broken")
    assert "fail_if_body_matches_regexp" in report.failure
    assert value(store, "probe_failed_due_to_regex", now) == 1
    config = probe_config(HTTP + "    http: {valid_status_codes: [500]}\n")
    report, _, _ = await probe(config, http_site.base + "/broken")
    assert report.succeeded


async def test_http_timeout_fails_within_the_timeout(http_site: Site) -> None:
    config = probe_config("    prober: http\n    timeout: 300ms\n")
    began = time.monotonic()
    report, store, now = await probe(config, http_site.base + "/slow")
    assert time.monotonic() - began < 2
    assert report.failure == "probe timed out after 0.3s"
    assert value(store, "probe_success", now) == 0
    assert value(store, "probe_http_status_code", now) == 0
    assert 0.3 <= value(store, "probe_duration_seconds", now) < 2  # type: ignore[operator]


async def test_http_method_headers_and_redirects(http_site: Site) -> None:
    config = probe_config(HTTP + "    http: {method: POST, body: 'x=1', headers: {X-Check: alertd}}\n")
    report, _, _ = await probe(config, http_site.base + "/ok")
    assert report.succeeded, report.failure
    request = http_site.requests[-1]
    assert request.method == "POST" and request.headers["X-Check"] == "alertd"

    report, store, now = await probe(probe_config(HTTP), http_site.base + "/moved")
    assert report.succeeded and value(store, "probe_http_redirects", now) == 1
    report, store, now = await probe(probe_config(HTTP + "    http: {follow_redirects: false}\n"), http_site.base + "/moved")
    assert value(store, "probe_http_status_code", now) == 302 and not report.succeeded


async def test_http_target_without_scheme_is_http(http_site: Site) -> None:
    report, _, _ = await probe(probe_config(HTTP), http_site.base.removeprefix("http://") + "/ok")
    assert report.succeeded, report.failure


async def test_https_reports_the_certificate_expiry_ten_days_out(https_site: Site, certs: Certificates) -> None:
    config = probe_config(HTTP + "    http: {tls_config: {ca_file: CA_FILE}, fail_if_not_ssl: true}\n", certs)
    report, store, now = await probe(config, https_site.base + "/ok")
    assert report.succeeded, report.failure
    assert value(store, "probe_http_ssl", now) == 1
    # What the certificate_expiring rule computes: probe_ssl_earliest_cert_expiry - time().
    left = value(store, "probe_ssl_earliest_cert_expiry", now) - now  # type: ignore[operator]
    assert abs(left - 10 * DAY) < 600


async def test_https_with_an_unknown_ca_fails_unless_told_to_skip_verification(https_site: Site, certs: Certificates) -> None:
    report, store, now = await probe(probe_config(HTTP), https_site.base + "/ok")
    assert "certificate verify failed" in report.failure.lower()
    assert value(store, "probe_success", now) == 0
    config = probe_config(HTTP + "    http: {tls_config: {insecure_skip_verify: true}}\n")
    report, store, now = await probe(config, https_site.base + "/ok")
    assert report.succeeded, report.failure
    assert value(store, "probe_ssl_earliest_cert_expiry", now) == pytest.approx(not_after(certs.der()), abs=1)


async def test_tcp_closed_port_fails_and_open_port_succeeds(closed_port: int, redis_port: int) -> None:
    config = probe_config("    prober: tcp\n    timeout: 1s\n")
    report, store, now = await probe(config, f"127.0.0.1:{closed_port}")
    assert report.failure.startswith("connection failed")
    assert value(store, "probe_success", now) == 0
    report, store, now = await probe(config, f"127.0.0.1:{redis_port}")
    assert report.succeeded
    assert value(store, "probe_success", now) == 1


async def test_tcp_query_response_redis_ping(redis_port: int) -> None:
    ping = "    prober: tcp\n    timeout: 1s\n    tcp: {query_response: [{send: PING}, {expect: '^\\+PONG'}]}\n"
    report, store, now = await probe(probe_config(ping), f"127.0.0.1:{redis_port}")
    assert report.succeeded, report.failure
    assert value(store, "probe_failed_due_to_regex", now) == 0

    echo = (
        "    prober: tcp\n    timeout: 1s\n"
        "    tcp: {query_response: [{expect: '^\\+HELLO (\\S+)', send: 'ECHO ${1}'}, {expect: '^\\+stub-1$'}]}\n"
    )
    report, _, _ = await probe(probe_config(echo), f"127.0.0.1:{redis_port}")
    assert report.succeeded, report.failure


async def test_tcp_expectation_not_met_fails_by_regex(redis_port: int) -> None:
    config = probe_config("    prober: tcp\n    timeout: 1s\n    tcp: {query_response: [{send: QUIT}, {expect: '^\\+PONG'}]}\n")
    report, store, now = await probe(config, f"127.0.0.1:{redis_port}")
    assert report.failure == "no line matched '^\\\\+PONG' before the connection closed"
    assert value(store, "probe_failed_due_to_regex", now) == 1
    assert value(store, "probe_success", now) == 0


async def test_tls_prober_reports_expiry(tls_port: int, certs: Certificates) -> None:
    config = probe_config("    prober: tls\n    timeout: 1s\n    tls: {ca_file: CA_FILE, server_name: localhost}\n", certs)
    report, store, now = await probe(config, f"127.0.0.1:{tls_port}")
    assert report.succeeded, report.failure
    left = value(store, "probe_ssl_earliest_cert_expiry", now) - now  # type: ignore[operator]
    assert abs(left - 10 * DAY) < 600


async def test_tls_prober_fails_verification_against_system_cas(tls_port: int) -> None:
    config = probe_config("    prober: tls\n    timeout: 1s\n")
    report, store, now = await probe(config, f"localhost:{tls_port}")
    assert "certificate verification failed" in report.failure
    assert value(store, "probe_success", now) == 0
    assert store.select(parse_selector("probe_ssl_earliest_cert_expiry")) == []


async def test_tcp_with_tls(tls_port: int, certs: Certificates) -> None:
    config = probe_config("    prober: tcp\n    timeout: 1s\n    tcp: {tls: true, tls_config: {ca_file: CA_FILE}}\n", certs)
    report, store, now = await probe(config, f"localhost:{tls_port}")
    assert report.succeeded, report.failure
    assert value(store, "probe_ssl_earliest_cert_expiry", now) > now  # type: ignore[operator]


@pytest.mark.parametrize(
    ("prober", "target"),
    [("http", "http://no-such-host.invalid/health"), ("tcp", "no-such-host.invalid:6379"), ("tls", "no-such-host.invalid:443")],
)
async def test_unresolvable_target_fails(prober: str, target: str) -> None:
    report, store, now = await probe(probe_config(f"    prober: {prober}\n    timeout: 3s\n"), target)
    assert not report.succeeded
    assert value(store, "probe_success", now) == 0


def test_not_after_reads_what_openssl_wrote(certs: Certificates) -> None:
    out = subprocess.run(
        ["openssl", "x509", "-in", str(certs.cert), "-noout", "-enddate"], check=True, capture_output=True, text=True
    ).stdout
    expected = ssl.cert_time_to_seconds(out.strip().removeprefix("notAfter="))
    assert not_after(certs.der()) == expected
