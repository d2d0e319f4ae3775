"""The http prober: one request per probe, judged by status, TLS, headers and body as blackbox_exporter does."""

from __future__ import annotations

import base64
import ssl

import httpx

from daemon import __version__
from daemon.config.probes import HTTPProbe, compile_search
from daemon.probe.prober import ProbeReport
from daemon.probe.tls import earliest_expiry, ssl_context

# blackbox_exporter sets these for every http probe; a failed request leaves them at 0.
_ALWAYS = (
    "probe_http_status_code",
    "probe_http_content_length",
    "probe_http_uncompressed_body_length",
    "probe_http_redirects",
    "probe_http_ssl",
    "probe_http_version",
    "probe_failed_due_to_regex",
)


class HTTPProber:
    """Probes URLs with one job's ``http`` settings.

    Every probe opens a new connection (no keep-alive), so each one exercises DNS, connect and
    the TLS handshake as a new visitor would, and sees the certificate served now.
    """

    def __init__(self, settings: HTTPProbe) -> None:
        self._settings = settings
        self._body_fail = [compile_search(p) for p in settings.fail_if_body_matches_regexp]
        self._body_need = [compile_search(p) for p in settings.fail_if_body_not_matches_regexp]
        self._header_fail = [(m, compile_search(m.regexp)) for m in settings.fail_if_header_matches]
        self._header_need = [(m, compile_search(m.regexp)) for m in settings.fail_if_header_not_matches]
        self._headers = _headers(settings)
        self._client: httpx.AsyncClient | None = None
        self._setup_error = ""
        try:
            verify: ssl.SSLContext = ssl_context(settings.tls_config)
        except (ssl.SSLError, OSError) as exc:
            # A bad certificate file fails every probe of the job, visibly, not the daemon.
            self._setup_error = f"cannot load tls_config: {exc}"
        else:
            self._client = httpx.AsyncClient(
                verify=verify,
                follow_redirects=settings.follow_redirects,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
                timeout=None,  # the probe's timeout is enforced around the whole probe
                max_redirects=10,
            )
        server_name = settings.tls_config.server_name
        self._extensions = {"sni_hostname": server_name} if server_name else None

    async def probe(self, target: str, report: ProbeReport) -> None:
        values = report.values
        for name in _ALWAYS:
            values[name] = 0.0
        if self._client is None:
            report.fail(self._setup_error)
            return
        url = target if "://" in target else "http://" + target
        settings = self._settings
        try:
            async with self._client.stream(
                settings.method,
                url,
                headers=self._headers,
                content=settings.body.encode() if settings.body is not None else None,
                extensions=self._extensions,
            ) as response:
                stream = response.extensions.get("network_stream")
                ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
                if ssl_object is not None:
                    values["probe_http_ssl"] = 1.0
                    expiry = earliest_expiry(ssl_object)
                    if expiry is not None:
                        values["probe_ssl_earliest_cert_expiry"] = expiry
                values["probe_http_status_code"] = float(response.status_code)
                values["probe_http_redirects"] = float(len(response.history))
                values["probe_http_version"] = _version(response.http_version)
                length = response.headers.get("content-length", "")
                values["probe_http_content_length"] = float(length) if length.isdigit() else -1.0
                body = await response.aread()
                values["probe_http_uncompressed_body_length"] = float(len(body))
        except httpx.HTTPError as exc:
            report.fail(_describe(exc))
            return
        self._judge(response, body, report)

    def _judge(self, response: httpx.Response, body: bytes, report: ProbeReport) -> None:
        settings = self._settings
        if not settings.valid_status(response.status_code):
            report.fail(f"invalid HTTP status {response.status_code} {response.reason_phrase}")
        secure = report.values["probe_http_ssl"] == 1.0
        if settings.fail_if_ssl and secure:
            report.fail("final request was over TLS (fail_if_ssl)")
        if settings.fail_if_not_ssl and not secure:
            report.fail("final request was not over TLS (fail_if_not_ssl)")
        for match, pattern in self._header_fail:
            if any(pattern.search(value) for value in response.headers.get_list(match.header)):
                report.fail(f"header {match.header} matched {match.regexp!r} (fail_if_header_matches)")
        for match, pattern in self._header_need:
            values = response.headers.get_list(match.header)
            if not values and match.allow_missing:
                continue
            if not any(pattern.search(value) for value in values):
                report.fail(f"header {match.header} did not match {match.regexp!r} (fail_if_header_not_matches)")
        if self._body_fail or self._body_need:
            text = body.decode("utf-8", errors="replace")
            failed = [p.pattern for p in self._body_fail if p.search(text)]
            missing = [p.pattern for p in self._body_need if not p.search(text)]
            if failed or missing:
                report.values["probe_failed_due_to_regex"] = 1.0
            if failed:
                report.fail(f"body matched {failed[0]!r} (fail_if_body_matches_regexp)")
            if missing:
                report.fail(f"body did not match {missing[0]!r} (fail_if_body_not_matches_regexp)")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _headers(settings: HTTPProbe) -> dict[str, str]:
    headers = {"User-Agent": f"alertd/{__version__}"}
    if settings.basic_auth is not None:
        user = settings.basic_auth.username
        password = settings.basic_auth.password.reveal() if settings.basic_auth.password is not None else ""
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif settings.authorization is not None and settings.authorization.credentials is not None:
        credentials = settings.authorization.credentials.reveal()
        headers["Authorization"] = f"{settings.authorization.type} {credentials}"
    # Configured headers win, as in blackbox_exporter (a Host header picks the virtual host).
    headers.update(settings.headers)
    return headers


def _version(http_version: str) -> float:
    # "HTTP/1.1" -> 1.1, "HTTP/2" -> 2.0, as blackbox_exporter's probe_http_version.
    try:
        return float(http_version.rpartition("/")[2])
    except ValueError:
        return 0.0


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {text}"
    if isinstance(exc, httpx.TooManyRedirects):
        return f"too many redirects: {text}"
    return f"request failed: {text}"
