"""TLS for probes: SSL contexts from a ``tls_config``, and certificate expiry read from the peer."""

from __future__ import annotations

import calendar
import ssl
from typing import Any

from daemon.config.httpclient import TLSConfig

_SEQUENCE = 0x30
_INTEGER = 0x02
_VERSION = 0xA0  # [0] EXPLICIT, the optional version before the serial number
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18


def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """A client context verifying against ``ca_file`` (else the system's CAs) unless told not to.

    Raises ``ssl.SSLError`` or ``OSError`` when a file cannot be loaded.
    """
    context = ssl.create_default_context(cafile=tls.ca_file) if tls.ca_file else ssl.create_default_context()
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def earliest_expiry(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> float | None:
    """The earliest ``notAfter`` (Unix seconds) among the certificates the peer presented.

    Python 3.13 hands out the whole chain the peer sent; older versions only its own
    certificate, which is the one that expires first in nearly every chain. None when the peer
    sent no certificate or it cannot be read.
    """
    certificates: list[bytes] = []
    chain = getattr(ssl_object, "get_unverified_chain", None)
    if chain is not None:
        certificates = [_der(cert) for cert in chain() or ()]
    if not certificates:
        leaf = ssl_object.getpeercert(binary_form=True)
        certificates = [leaf] if leaf else []
    expiries = []
    for der in certificates:
        try:
            expiries.append(not_after(der))
        except ValueError:
            continue
    return min(expiries) if expiries else None


def _der(cert: Any) -> bytes:
    if isinstance(cert, bytes):
        return cert
    return cert.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined, no-any-return]


def not_after(der: bytes) -> float:
    """The end of a DER X.509 certificate's validity, in Unix seconds; ``ValueError`` if malformed.

    Only the path to ``validity`` is decoded, so the standard library's ssl module suffices
    (it parses certificates only when it has verified them).
    """
    tag, start, _ = _element(der, 0)
    _expect(tag, _SEQUENCE, "certificate")
    tag, tbs, _ = _element(der, start)
    _expect(tag, _SEQUENCE, "tbsCertificate")
    tag, _, end = _element(der, tbs)
    if tag == _VERSION:
        tag, _, end = _element(der, end)
    _expect(tag, _INTEGER, "serialNumber")
    for what in ("signature", "issuer"):
        tag, _, end = _element(der, end)
        _expect(tag, _SEQUENCE, what)
    tag, validity, _ = _element(der, end)
    _expect(tag, _SEQUENCE, "validity")
    _, _, after = _element(der, validity)  # notBefore
    tag, start, end = _element(der, after)
    return _time(tag, der[start:end])


def _element(der: bytes, pos: int) -> tuple[int, int, int]:
    """The tag, content start and content end of the DER element at ``pos``."""
    if pos + 2 > len(der):
        raise ValueError("truncated certificate")
    tag = der[pos]
    length = der[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(der):
            raise ValueError("bad length in certificate")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ValueError("truncated certificate")
    return tag, pos, pos + length


def _expect(tag: int, wanted: int, what: str) -> None:
    if tag != wanted:
        raise ValueError(f"unexpected tag {tag:#x} for {what} in certificate")


def _time(tag: int, content: bytes) -> float:
    text = content.decode("ascii", errors="replace")
    if not text.endswith("Z"):
        raise ValueError(f"certificate time {text!r} is not UTC")
    digits = text[:-1]
    if tag == _UTC_TIME and len(digits) == 12:
        # RFC 5280: two-digit years 50-99 are 19xx, 00-49 are 20xx.
        year = int(digits[:2])
        year += 1900 if year >= 50 else 2000
        rest = digits[2:]
    elif tag == _GENERALIZED_TIME and len(digits) == 14:
        year = int(digits[:4])
        rest = digits[4:]
    else:
        raise ValueError(f"unexpected certificate time {text!r}")
    if not rest.isdigit():
        raise ValueError(f"unexpected certificate time {text!r}")
    month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
